//! The shapes of a comparison: each side's facts and summary, the differing rows, the
//! per-column counts and the [`Comparison`] that holds them (serialised as the JSON report).

use serde::Serialize;

use super::value::{Cell, Tolerance};
use crate::engine::QueryOutput;
use crate::engine::lakestate::LakeState;

/// How many differing rows a comparison keeps in detail (all are counted).
pub const SHOWN_ROWS: usize = 10;

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
    /// Whose clock `ran_at` is (Athena's submission time, or this machine's clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<crate::engine::Clock>,
    /// The file a saved result was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The table version, files and committed offsets the local engine read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake: Option<LakeState>,
    /// Athena: the ticks table's latest versions just before the query started and just
    /// after it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_versions: Option<crate::engine::TableVersions>,
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

/// A tie of the ORDER BY keys that a LIMIT (or OFFSET) cut through, where the engines kept
/// different rows: both are correct results of the query, so this is its own kind of
/// difference and does not make the results disagree.
#[derive(Debug, Clone, Serialize)]
pub struct CutTie {
    /// `limit` (the last tie) or `offset` (the first).
    pub at: &'static str,
    /// The tie's first row and its number of rows (1-based positions, the same on both sides).
    pub first_row: usize,
    pub rows: usize,
    /// The key values the tied rows share, as `column = value`.
    pub keys: Vec<String>,
    /// The tied rows only the left side kept, and those only the right side kept.
    pub only_left: Vec<Vec<String>>,
    pub only_right: Vec<Vec<String>>,
    /// How many rows tie on these key values when the left side's query runs without its
    /// LIMIT and OFFSET (each row only the right side kept must be one of them); None when
    /// that was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tie_rows_without_limit: Option<usize>,
    /// Rows only the right side kept that are not rows of the tie (then the results
    /// disagree, and these rows count as only on the right).
    #[serde(skip_serializing_if = "is_zero")]
    pub not_in_tie: usize,
    /// What checking the right side's rows against the whole tie needs.
    #[serde(skip)]
    pub(super) check: TieCheck,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The cells behind a [`CutTie`], to check it against the left side's unlimited result.
#[derive(Debug, Clone, Default)]
pub(super) struct TieCheck {
    /// The compared columns' indexes in the left side's result.
    pub left_columns: Vec<usize>,
    /// The key columns (indexes into the compared columns) and a tied row's cells.
    pub keys: Vec<usize>,
    pub tied: Vec<Cell>,
    /// The tied rows only the right side kept, with their 1-based positions there.
    pub only_right: Vec<(usize, Vec<Cell>)>,
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
    /// The compared columns that order the rows (the ORDER BY keys that are output columns);
    /// rows equal on all of them tie and compare as a set.
    pub order_keys: Vec<String>,
    pub tolerance: Tolerance,
    /// Column count, name and type differences.
    pub schema: Vec<String>,
    /// The columns compared (by position, or by name when the counts differ).
    pub columns: Vec<String>,
    /// Both sides hold the same rows, in a different order: the first differing position.
    pub order_differs_at: Option<usize>,
    /// Ties cut by a LIMIT or OFFSET where the engines kept different rows.
    pub cut_ties: Vec<CutTie>,
    pub changed_rows: usize,
    pub only_left_rows: usize,
    pub only_right_rows: usize,
    pub column_mismatches: Vec<ColumnCount>,
    /// The first differing rows (at most [`SHOWN_ROWS`]).
    pub rows: Vec<RowDiff>,
    /// Things a reader should know (different lake states, inferred types…).
    pub notes: Vec<String>,
}
