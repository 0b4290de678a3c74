//! The comparison itself, in steps: pair the columns (by position, or by name when the counts
//! differ) and note schema differences, find the ORDER BY keys among the compared columns,
//! align the rows ([`super::align`]), then count the differing rows per kind and column and keep
//! the first [`SHOWN_ROWS`] in detail.

use arrow::datatypes::{DataType, Schema};

use super::align::{self, Cut, RowOrder, Rows, Step};
use super::notes::notes;
use super::order::{KeyTarget, OutputOrder};
use super::rules;
use super::types::{
    ColumnCount, ColumnInfo, Comparison, CutTie, RowDiff, RowDiffKind, SHOWN_ROWS, Side,
    SideSummary, TieCheck,
};
use super::value::{self, Cell, Tolerance};

/// Compares two results. `order`: how the query orders its output (see [`OutputOrder`]); when
/// it does, the order of the ORDER BY keys is compared too.
pub fn compare(
    query: &str,
    left: &Side,
    right: &Side,
    order: &OutputOrder,
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
    let (row_order, key_notes) = row_order(order, ls, rs, &pairs);
    let mut lrows = align::rows_of(left.output, &lcols);
    let mut rrows = align::rows_of(right.output, &rcols);
    let alignment = align::align_rows(&mut lrows, &mut rrows, &row_order, tol);
    let t = tally(&alignment.steps, [&lrows, &rrows], &columns, labels, tol);
    let cut_ties = alignment
        .cut_ties
        .iter()
        .map(|c| cut_tie(c, [&lrows, &rrows], &columns, &row_order.keys, &lcols))
        .collect();
    Comparison {
        query: query.to_string(),
        agree: schema.is_empty() && t.changed + t.only_left + t.only_right == 0,
        left: summary(left),
        right: summary(right),
        ordered: order.ordered,
        order_keys: row_order.keys.iter().map(|&k| columns[k].clone()).collect(),
        tolerance: tol,
        schema,
        order_differs_at: alignment.order_differs_at,
        cut_ties,
        changed_rows: t.changed,
        only_left_rows: t.only_left,
        only_right_rows: t.only_right,
        column_mismatches: column_counts(&columns, &t.per_column),
        columns,
        rows: t.rows,
        notes: notes(&left.facts, &right.facts)
            .into_iter()
            .chain(renamed)
            .chain(key_notes)
            .collect(),
    }
}

/// The ORDER BY keys as compared columns (indexes into `pairs`), up to the first key that is
/// not an output column (the order by it, and by the keys after it, cannot be checked: rows
/// equal on the keys before it compare as a set), with a note when keys were left out.
fn row_order(
    order: &OutputOrder,
    ls: &Schema,
    rs: &Schema,
    pairs: &[(usize, usize)],
) -> (RowOrder, Vec<String>) {
    let mut row_order = RowOrder {
        ordered: order.ordered,
        keys: Vec::new(),
        limit: order.limit,
        offset: order.offset,
    };
    if !order.ordered {
        return (row_order, Vec::new());
    }
    if !order.keys_known {
        // ORDER BY ALL, or SQL the parser does not know: whole rows order.
        row_order.keys = (0..pairs.len()).collect();
        return (row_order, Vec::new());
    }
    let named = |(l, r): (usize, usize), n: &str| {
        ls.field(l).name().eq_ignore_ascii_case(n) || rs.field(r).name().eq_ignore_ascii_case(n)
    };
    for (i, key) in order.keys.iter().enumerate() {
        let found = match &key.target {
            KeyTarget::Position(p) | KeyTarget::Item(p) => pairs.iter().position(|&(l, _)| l == *p),
            KeyTarget::Name(n) => pairs.iter().position(|&pair| named(pair, n)),
            KeyTarget::Unknown => None,
        };
        match found {
            Some(c) => {
                if !row_order.keys.contains(&c) {
                    row_order.keys.push(c);
                }
            }
            None => {
                let checked = if i == 0 {
                    "the order cannot be checked: rows compare as a set".to_string()
                } else {
                    format!(
                        "the order is checked on the key{} before it, and rows equal on {} \
                         compare as a set",
                        if i == 1 { "" } else { "s" },
                        if i == 1 { "it" } else { "them" }
                    )
                };
                let note = format!(
                    "ORDER BY key {} ({}) is not an output column: {checked}",
                    i + 1,
                    key.text
                );
                return (row_order, vec![note]);
            }
        }
    }
    (row_order, Vec::new())
}

/// A cut tie as reported: its rows 1-based, the key values the tied rows share, and the rows
/// only one side kept.
fn cut_tie(
    c: &align::CutTie,
    [lrows, rrows]: [&Rows; 2],
    columns: &[String],
    keys: &[usize],
    left_columns: &[usize],
) -> CutTie {
    let first = &lrows[c.rows.start].1;
    CutTie {
        at: match c.at {
            Cut::Limit => "limit",
            Cut::Offset => "offset",
        },
        first_row: c.rows.start + 1,
        rows: c.rows.len(),
        keys: keys
            .iter()
            .map(|&k| format!("{} = {}", columns[k], first[k]))
            .collect(),
        only_left: c.only_left.iter().map(|&i| show(&lrows[i].1)).collect(),
        only_right: c.only_right.iter().map(|&j| show(&rrows[j].1)).collect(),
        tie_rows_without_limit: None,
        not_in_tie: 0,
        check: TieCheck {
            left_columns: left_columns.to_vec(),
            keys: keys.to_vec(),
            tied: first.clone(),
            only_right: c.only_right.iter().map(|&j| rrows[j].clone()).collect(),
        },
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

pub(super) fn show(cells: &[Cell]) -> Vec<String> {
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
pub(super) fn one_sided(
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
