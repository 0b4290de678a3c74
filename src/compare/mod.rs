//! Normalise two results and diff them (GUIDE §5): rows sorted unless the query orders its
//! output (then order counts too), values compared across representations ([`value`]), float
//! tolerance, NULL distinct from `''` and NaN; a [`Comparison`] says which rows and columns differ.

pub mod metadata;
pub mod offline;
pub mod report;
pub mod run;
pub mod value;

use std::cmp::Ordering;

use serde::Serialize;

use crate::engine::QueryOutput;
use crate::engine::lakestate::LakeState;
pub use value::{Cell, Tolerance};

/// How many differing rows a comparison keeps in detail (all are counted).
pub const SHOWN_ROWS: usize = 10;
/// How far ahead the alignment looks for a row missing on one side.
const LOOKAHEAD: usize = 16;

/// Why a comparison could not be made or did not agree.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Results disagree.
    #[error("{mismatched} of {total} comparisons disagree")]
    Mismatch { mismatched: usize, total: usize },
    /// A side could not produce a result.
    #[error("{what}: the {side} side could not run: {message}")]
    SideFailed {
        what: String,
        side: String,
        message: String,
    },
    /// No saved result to compare a query against.
    #[error("{query}: no saved result in {against} (looked for its SQL text and for {looked})")]
    NoSavedResult {
        query: String,
        against: String,
        looked: String,
    },
    #[error(transparent)]
    Saved(#[from] offline::OfflineError),
}

/// What is known about where one side's result came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SideFacts {
    /// `local`, `athena`, or a file's name.
    pub label: String,
    pub engine: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// When the query ran (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_at: Option<String>,
    /// The file a saved result was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The lake files and committed offsets the local engine saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake: Option<LakeState>,
    /// Column types were guessed from the values (a CSV without metadata).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub types_inferred: bool,
}

/// One side of a comparison: a result and where it came from.
pub struct Side<'a> {
    pub output: &'a QueryOutput,
    pub facts: SideFacts,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    #[serde(flatten)]
    pub facts: SideFacts,
    pub rows: usize,
    pub columns: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowDiffKind {
    /// The same row position (or aligned rows) with different cells.
    Changed,
    /// A row only the left side has.
    OnlyLeft,
    /// A row only the right side has.
    OnlyRight,
}

/// One differing row, as both sides show it. Row numbers are 1-based positions in each side's
/// result as returned.
#[derive(Debug, Clone, Serialize)]
pub struct RowDiff {
    pub kind: RowDiffKind,
    pub left_row: Option<usize>,
    pub right_row: Option<usize>,
    pub left: Option<Vec<String>>,
    pub right: Option<Vec<String>>,
    /// Names of the differing columns (every column for a row only one side has).
    pub differing: Vec<String>,
    /// Why each differing column differs ("value", "type", "NULL vs value", …).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnCount {
    pub column: String,
    pub mismatches: usize,
}

/// The outcome of comparing two results.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The query's name or origin.
    pub query: String,
    pub agree: bool,
    pub left: SideSummary,
    pub right: SideSummary,
    /// Rows compared in order (the query orders its output) or as sorted sets.
    pub ordered: bool,
    pub tolerance: Tolerance,
    /// Column count, name and type differences.
    pub schema: Vec<String>,
    /// The columns compared (by position, or by name when the counts differ).
    pub columns: Vec<String>,
    /// Both sides hold the same rows, in a different order: the first differing position.
    pub order_differs_at: Option<usize>,
    pub changed_rows: usize,
    pub only_left_rows: usize,
    pub only_right_rows: usize,
    pub column_mismatches: Vec<ColumnCount>,
    /// The first differing rows (at most [`SHOWN_ROWS`]).
    pub rows: Vec<RowDiff>,
    /// Things a reader should know (different lake states, inferred types…).
    pub notes: Vec<String>,
}

fn type_name(ty: &arrow::datatypes::DataType) -> String {
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

/// Rows of a result as cells, each with its 1-based position.
fn rows_of(out: &QueryOutput, columns: &[usize]) -> Vec<(usize, Vec<Cell>)> {
    let mut rows = Vec::with_capacity(out.num_rows());
    for b in &out.batches {
        let cols: Vec<Vec<Cell>> = columns
            .iter()
            .map(|&c| value::column_cells(b.column(c).as_ref()))
            .collect();
        for r in 0..b.num_rows() {
            let n = rows.len() + 1;
            rows.push((n, cols.iter().map(|c| c[r].clone()).collect()));
        }
    }
    rows
}

fn row_cmp(a: &[Cell], b: &[Cell]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.sort_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

type Rows = Vec<(usize, Vec<Cell>)>;

enum Step {
    Same,
    Changed(usize, usize),
    OnlyLeft(usize),
    OnlyRight(usize),
}

/// Aligns two row sequences: equal rows pair up; a row with no partner within [`LOOKAHEAD`]
/// rows pairs with the other side's current row as a changed row (or, without `lookahead`,
/// rows always pair by position).
fn align(left: &Rows, right: &Rows, tol: Tolerance, lookahead: bool) -> Vec<Step> {
    let eq = |a: &[Cell], b: &[Cell]| a.iter().zip(b).all(|(x, y)| x.differs(y, tol).is_none());
    let (mut i, mut j) = (0, 0);
    let mut steps = Vec::new();
    while i < left.len() || j < right.len() {
        if i == left.len() {
            steps.push(Step::OnlyRight(j));
            j += 1;
            continue;
        }
        if j == right.len() {
            steps.push(Step::OnlyLeft(i));
            i += 1;
            continue;
        }
        if eq(&left[i].1, &right[j].1) {
            steps.push(Step::Same);
            i += 1;
            j += 1;
            continue;
        }
        let mut skipped = None;
        if lookahead {
            for k in 1..=LOOKAHEAD {
                if j + k < right.len() && eq(&left[i].1, &right[j + k].1) {
                    skipped = Some((0, k));
                    break;
                }
                if i + k < left.len() && eq(&left[i + k].1, &right[j].1) {
                    skipped = Some((k, 0));
                    break;
                }
            }
        }
        match skipped {
            Some((0, k)) => {
                steps.extend((j..j + k).map(Step::OnlyRight));
                j += k;
            }
            Some((k, _)) => {
                steps.extend((i..i + k).map(Step::OnlyLeft));
                i += k;
            }
            None => {
                steps.push(Step::Changed(i, j));
                i += 1;
                j += 1;
            }
        }
    }
    steps
}

fn differing_steps(steps: &[Step]) -> usize {
    steps.iter().filter(|s| !matches!(s, Step::Same)).count()
}

/// Compares two results. `ordered`: the query orders its output, so row order is compared too.
pub fn compare(
    query: &str,
    left: &Side,
    right: &Side,
    ordered: bool,
    tol: Tolerance,
) -> Comparison {
    let (ls, rs) = (&left.output.schema, &right.output.schema);
    let (ln, rn) = (&left.facts.label, &right.facts.label);
    let mut schema = Vec::new();
    // Column pairs: by position when the counts agree, else by name.
    let pairs: Vec<(usize, usize)> = if ls.fields().len() == rs.fields().len() {
        (0..ls.fields().len()).map(|i| (i, i)).collect()
    } else {
        let names = |s: &arrow::datatypes::Schema| {
            s.fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        schema.push(format!(
            "column count: {ln} has {} ({}), {rn} has {} ({}); comparing the columns both have",
            ls.fields().len(),
            names(ls),
            rs.fields().len(),
            names(rs)
        ));
        ls.fields()
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                rs.fields()
                    .iter()
                    .position(|g| g.name().eq_ignore_ascii_case(f.name()))
                    .map(|j| (i, j))
            })
            .collect()
    };
    for &(i, j) in &pairs {
        let (f, g) = (ls.field(i), rs.field(j));
        if !f.name().eq_ignore_ascii_case(g.name()) {
            schema.push(format!(
                "column {}: named {} on {ln}, {} on {rn}",
                i + 1,
                f.name(),
                g.name()
            ));
        }
        let (cf, cg) = (
            value::class_of(f.data_type()),
            value::class_of(g.data_type()),
        );
        if cf != cg && cf != "null" && cg != "null" {
            schema.push(format!(
                "column {}: {} on {ln}, {} on {rn}",
                f.name(),
                type_name(f.data_type()),
                type_name(g.data_type())
            ));
        }
    }
    let columns: Vec<String> = pairs
        .iter()
        .map(|&(i, _)| ls.field(i).name().clone())
        .collect();
    let (lcols, rcols): (Vec<usize>, Vec<usize>) = pairs.iter().copied().unzip();
    let mut lrows = rows_of(left.output, &lcols);
    let mut rrows = rows_of(right.output, &rcols);

    let mut order_differs_at = None;
    let steps = if ordered {
        let positional = align(&lrows, &rrows, tol, true);
        if differing_steps(&positional) > 0 && lrows.len() == rrows.len() {
            let mut ls2 = lrows.clone();
            let mut rs2 = rrows.clone();
            ls2.sort_by(|a, b| row_cmp(&a.1, &b.1));
            rs2.sort_by(|a, b| row_cmp(&a.1, &b.1));
            if differing_steps(&align(&ls2, &rs2, tol, true)) == 0 {
                // The same rows in another order: show them position by position.
                let by_position = align(&lrows, &rrows, tol, false);
                order_differs_at = by_position.iter().find_map(|s| match s {
                    Step::Changed(i, _) => Some(i + 1),
                    _ => None,
                });
                by_position
            } else {
                positional
            }
        } else {
            positional
        }
    } else {
        lrows.sort_by(|a, b| row_cmp(&a.1, &b.1));
        rrows.sort_by(|a, b| row_cmp(&a.1, &b.1));
        align(&lrows, &rrows, tol, true)
    };

    let mut per_column = vec![0usize; columns.len()];
    let (mut changed, mut only_left, mut only_right) = (0, 0, 0);
    let mut rows = Vec::new();
    let show = |cells: &[Cell]| cells.iter().map(ToString::to_string).collect::<Vec<_>>();
    for step in &steps {
        let diff = match *step {
            Step::Same => continue,
            Step::Changed(i, j) => {
                changed += 1;
                let (a, b) = (&lrows[i], &rrows[j]);
                let mut differing = Vec::new();
                let mut reasons = Vec::new();
                for (c, (x, y)) in a.1.iter().zip(&b.1).enumerate() {
                    if let Some(why) = x.differs(y, tol) {
                        per_column[c] += 1;
                        differing.push(columns[c].clone());
                        reasons.push(why.to_string());
                    }
                }
                RowDiff {
                    kind: RowDiffKind::Changed,
                    left_row: Some(a.0),
                    right_row: Some(b.0),
                    left: Some(show(&a.1)),
                    right: Some(show(&b.1)),
                    differing,
                    reasons,
                }
            }
            Step::OnlyLeft(i) => {
                only_left += 1;
                RowDiff {
                    kind: RowDiffKind::OnlyLeft,
                    left_row: Some(lrows[i].0),
                    right_row: None,
                    left: Some(show(&lrows[i].1)),
                    right: None,
                    differing: columns.clone(),
                    reasons: vec![format!("row missing on {rn}")],
                }
            }
            Step::OnlyRight(j) => {
                only_right += 1;
                RowDiff {
                    kind: RowDiffKind::OnlyRight,
                    left_row: None,
                    right_row: Some(rrows[j].0),
                    left: None,
                    right: Some(show(&rrows[j].1)),
                    differing: columns.clone(),
                    reasons: vec![format!("row missing on {ln}")],
                }
            }
        };
        if rows.len() < SHOWN_ROWS {
            rows.push(diff);
        }
    }
    let column_mismatches = columns
        .iter()
        .zip(&per_column)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| ColumnCount {
            column: c.clone(),
            mismatches: *n,
        })
        .collect();
    let mut notes = Vec::new();
    for s in [&left.facts, &right.facts] {
        if s.types_inferred {
            notes.push(format!(
                "{}: no column metadata; types were inferred from the values",
                s.label
            ));
        }
    }
    notes.extend(lake_notes(&left.facts, &right.facts));
    Comparison {
        query: query.to_string(),
        agree: schema.is_empty() && changed + only_left + only_right == 0,
        left: summary(left),
        right: summary(right),
        ordered,
        tolerance: tol,
        schema,
        columns,
        order_differs_at,
        changed_rows: changed,
        only_left_rows: only_left,
        only_right_rows: only_right,
        column_mismatches,
        rows,
        notes,
    }
}

/// When the local side saw files newer than the Athena query, say so and offer `--as-of`.
fn lake_notes(a: &SideFacts, b: &SideFacts) -> Vec<String> {
    let mut notes = Vec::new();
    for (local, remote) in [(a, b), (b, a)] {
        let (Some(lake), Some(ran_at)) = (&local.lake, &remote.ran_at) else {
            continue;
        };
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(ran_at) else {
            continue;
        };
        let newer = lake.files_modified_after(t.with_timezone(&chrono::Utc));
        if newer > 0 && lake.as_of.is_none() {
            notes.push(format!(
                "{} saw {newer} file(s) written after the {} query ran ({ran_at}): the engines may \
                 have read different data; pin the local engine to the files of that moment with \
                 --as-of {}",
                local.label,
                remote.label,
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    notes
}

/// Whether `sql`'s last statement orders its output (a final ORDER BY of the outermost query).
pub fn orders_output(sql: &str) -> bool {
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    match Parser::parse_sql(&GenericDialect {}, sql) {
        Ok(stmts) => match stmts.last() {
            Some(Statement::Query(q)) => q.order_by.is_some(),
            _ => false,
        },
        Err(_) => top_level_order_by(sql),
    }
}

/// A scan for `ORDER BY` outside parentheses, strings and comments (for SQL our parser does not
/// know, e.g. Athena-only syntax).
fn top_level_order_by(sql: &str) -> bool {
    let mut depth = 0i32;
    let mut words: Vec<String> = Vec::new();
    let mut found = false;
    let mut chars = sql.chars().peekable();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        let boundary = !(c.is_alphanumeric() || c == '_');
        if boundary && !word.is_empty() {
            if depth == 0 {
                words.push(std::mem::take(&mut word).to_ascii_uppercase());
                if words.len() >= 2
                    && words[words.len() - 2] == "ORDER"
                    && words[words.len() - 1] == "BY"
                {
                    found = true;
                }
            }
            word.clear();
        }
        match c {
            '\'' | '"' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' if depth == 0 => {}
            c if !boundary => word.push(c),
            _ => {}
        }
    }
    if !word.is_empty() && depth == 0 {
        words.push(word.to_ascii_uppercase());
        if words.len() >= 2 && words[words.len() - 2] == "ORDER" && words[words.len() - 1] == "BY" {
            found = true;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_order_by_of_the_outermost_query_orders_the_output() {
        assert!(orders_output("SELECT a FROM t ORDER BY a"));
        assert!(orders_output(
            "WITH x AS (SELECT a FROM t ORDER BY a) SELECT * FROM x ORDER BY 1;"
        ));
        assert!(!orders_output(
            "WITH x AS (SELECT a FROM t ORDER BY a) SELECT * FROM x"
        ));
        assert!(!orders_output(
            "SELECT lag(a) OVER (PARTITION BY b ORDER BY c) FROM t"
        ));
        assert!(!orders_output("SELECT * FROM (SELECT a FROM t ORDER BY a)"));
        // Fallback scan for SQL the parser rejects.
        assert!(top_level_order_by(
            "SELECT x FROM t CROSS JOIN UNNEST(y) ?? ORDER BY x"
        ));
        assert!(!top_level_order_by(
            "SELECT x ?? FROM (SELECT 1 ORDER BY 1) -- ORDER BY\n"
        ));
    }
}
