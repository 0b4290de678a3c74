//! The comparison itself, in steps: pair the columns (by position, or by name when the counts
//! differ) and note schema differences, align the rows ([`super::align`]), then count the
//! differing rows per kind and column and keep the first [`SHOWN_ROWS`] in detail.

use arrow::datatypes::{DataType, Schema};

use super::align::{self, Rows, Step};
use super::notes::notes;
use super::rules;
use super::types::{
    ColumnCount, ColumnInfo, Comparison, RowDiff, RowDiffKind, SHOWN_ROWS, Side, SideSummary,
};
use super::value::{self, Cell, Tolerance};

/// Compares two results. `ordered`: the query orders its output, so row order is compared too.
pub fn compare(
    query: &str,
    left: &Side,
    right: &Side,
    ordered: bool,
    tol: Tolerance,
) -> Comparison {
    let (ls, rs) = (&left.output.schema, &right.output.schema);
    let labels = Labels {
        left: &left.facts.label,
        right: &right.facts.label,
    };
    let (pairs, mut schema) = pair_columns(ls, rs, labels);
    let (kinds, renamed) = pair_differences(ls, rs, &pairs, labels);
    schema.extend(kinds);
    let columns: Vec<String> = pairs
        .iter()
        .map(|&(i, _)| ls.field(i).name().clone())
        .collect();
    let (lcols, rcols): (Vec<usize>, Vec<usize>) = pairs.iter().copied().unzip();
    let mut lrows = align::rows_of(left.output, &lcols);
    let mut rrows = align::rows_of(right.output, &rcols);
    let alignment = align::align_rows(&mut lrows, &mut rrows, ordered, tol);
    let t = tally(&alignment.steps, [&lrows, &rrows], &columns, labels, tol);
    Comparison {
        query: query.to_string(),
        agree: schema.is_empty() && t.changed + t.only_left + t.only_right == 0,
        left: summary(left),
        right: summary(right),
        ordered,
        tolerance: tol,
        schema,
        order_differs_at: alignment.order_differs_at,
        changed_rows: t.changed,
        only_left_rows: t.only_left,
        only_right_rows: t.only_right,
        column_mismatches: column_counts(&columns, &t.per_column),
        columns,
        rows: t.rows,
        notes: notes(&left.facts, &right.facts)
            .into_iter()
            .chain(renamed)
            .collect(),
    }
}

/// The two sides' labels, as messages name them.
#[derive(Clone, Copy)]
struct Labels<'a> {
    left: &'a str,
    right: &'a str,
}

fn type_name(ty: &DataType) -> String {
    format!("{ty} ({})", value::class_of(ty))
}

fn summary(side: &Side) -> SideSummary {
    SideSummary {
        facts: side.facts.clone(),
        rows: side.output.num_rows(),
        columns: side
            .output
            .schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                ty: type_name(f.data_type()),
            })
            .collect(),
    }
}

/// The column pairs (left index, right index): by position when the counts agree, else the
/// columns both sides name alike; with a schema note when the counts differ.
fn pair_columns(
    ls: &Schema,
    rs: &Schema,
    Labels {
        left: ln,
        right: rn,
    }: Labels,
) -> (Vec<(usize, usize)>, Vec<String>) {
    if ls.fields().len() == rs.fields().len() {
        return ((0..ls.fields().len()).map(|i| (i, i)).collect(), Vec::new());
    }
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let note = format!(
        "column count: {ln} has {} ({}), {rn} has {} ({}); comparing the columns both have",
        ls.fields().len(),
        names(ls),
        rs.fields().len(),
        names(rs)
    );
    let pairs = ls
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            rs.fields()
                .iter()
                .position(|g| g.name().eq_ignore_ascii_case(f.name()))
                .map(|j| (i, j))
        })
        .collect();
    (pairs, vec![note])
}

/// For paired columns: schema differences (kinds of value that do not compare), and notes on
/// names that differ and on the normalisation rules applied ([`rules`]: one note per column and
/// rule, e.g. "column 2 (close): decimals compared at scale 2, rounded half-up"). A name alone
/// never makes the results disagree: Athena names unaliased columns `_col0`, `_col1`, … where
/// DataFusion names them after the expression, and columns are paired by position when the
/// counts agree. Notes never make them disagree either.
fn pair_differences(
    ls: &Schema,
    rs: &Schema,
    pairs: &[(usize, usize)],
    Labels {
        left: ln,
        right: rn,
    }: Labels,
) -> (Vec<String>, Vec<String>) {
    let mut schema = Vec::new();
    let mut renamed = Vec::new();
    for &(i, j) in pairs {
        let (f, g) = (ls.field(i), rs.field(j));
        if !f.name().eq_ignore_ascii_case(g.name()) {
            renamed.push(format!(
                "column {}: named {} on {ln}, {} on {rn} (compared by position)",
                i + 1,
                f.name(),
                g.name()
            ));
        }
        match rules::column_rules(f, g, ln, rn) {
            Some(applied) => renamed.extend(
                applied
                    .into_iter()
                    .map(|rule| format!("column {} ({}): {rule}", i + 1, f.name())),
            ),
            None => schema.push(format!(
                "column {}: {} on {ln}, {} on {rn}",
                f.name(),
                type_name(f.data_type()),
                type_name(g.data_type())
            )),
        }
    }
    (schema, renamed)
}

/// The differing rows: how many of each kind, how many per column, the first few in detail.
#[derive(Default)]
struct Tally {
    changed: usize,
    only_left: usize,
    only_right: usize,
    /// Changed rows per compared column.
    per_column: Vec<usize>,
    /// The first [`SHOWN_ROWS`] differing rows.
    rows: Vec<RowDiff>,
}

fn tally(
    steps: &[Step],
    [lrows, rrows]: [&Rows; 2],
    columns: &[String],
    labels: Labels,
    tol: Tolerance,
) -> Tally {
    let mut t = Tally {
        per_column: vec![0; columns.len()],
        ..Tally::default()
    };
    for step in steps {
        let diff = match *step {
            Step::Same => continue,
            Step::Changed(i, j) => {
                t.changed += 1;
                changed_row(&lrows[i], &rrows[j], columns, tol, &mut t.per_column)
            }
            Step::OnlyLeft(i) => {
                t.only_left += 1;
                one_sided(RowDiffKind::OnlyLeft, &lrows[i], columns, labels.right)
            }
            Step::OnlyRight(j) => {
                t.only_right += 1;
                one_sided(RowDiffKind::OnlyRight, &rrows[j], columns, labels.left)
            }
        };
        if t.rows.len() < SHOWN_ROWS {
            t.rows.push(diff);
        }
    }
    t
}

fn show(cells: &[Cell]) -> Vec<String> {
    cells.iter().map(ToString::to_string).collect()
}

/// Two aligned rows with different cells; counts each differing column in `per_column`.
fn changed_row(
    (lpos, a): &(usize, Vec<Cell>),
    (rpos, b): &(usize, Vec<Cell>),
    columns: &[String],
    tol: Tolerance,
    per_column: &mut [usize],
) -> RowDiff {
    let mut differing = Vec::new();
    let mut reasons = Vec::new();
    for (c, (x, y)) in a.iter().zip(b).enumerate() {
        if let Some(why) = x.differs(y, tol) {
            per_column[c] += 1;
            differing.push(columns[c].clone());
            reasons.push(why.to_string());
        }
    }
    RowDiff {
        kind: RowDiffKind::Changed,
        left_row: Some(*lpos),
        right_row: Some(*rpos),
        left: Some(show(a)),
        right: Some(show(b)),
        differing,
        reasons,
    }
}

/// A row only one side has (`kind` says which); `missing_on` labels the other side.
fn one_sided(
    kind: RowDiffKind,
    (pos, cells): &(usize, Vec<Cell>),
    columns: &[String],
    missing_on: &str,
) -> RowDiff {
    let (here, cells) = (Some(*pos), Some(show(cells)));
    let (left_row, right_row, left, right) = match kind {
        RowDiffKind::OnlyRight => (None, here, None, cells),
        _ => (here, None, cells, None),
    };
    RowDiff {
        kind,
        left_row,
        right_row,
        left,
        right,
        differing: columns.to_vec(),
        reasons: vec![format!("row missing on {missing_on}")],
    }
}

fn column_counts(columns: &[String], per_column: &[usize]) -> Vec<ColumnCount> {
    columns
        .iter()
        .zip(per_column)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| ColumnCount {
            column: c.clone(),
            mismatches: *n,
        })
        .collect()
}
