//! Normalise two results and diff them (GUIDE §5): rows sorted unless the query orders its
//! output (then the order of the ORDER BY keys counts too, and rows tying on every key compare
//! as a set), values compared across representations ([`value`]), float
//! tolerance, NULL distinct from `''` and NaN; a [`Comparison`] says which rows and columns differ.
//! The comparison's shapes are in `types`, its steps in `diff`, row alignment in `align`,
//! notes in `notes`, and whether a query orders its output in `order`.

mod align;
mod cells;
mod diff;
pub mod metadata;
mod nested;
mod notes;
pub mod offline;
mod order;
pub mod report;
mod rules;
pub mod run;
mod ties;
mod types;
pub mod value;

pub use diff::compare;
pub use order::{KeyTarget, OutputOrder, SortKey, output_order, without_limit};
pub use ties::check_cut_ties;
pub use types::{
    ColumnCount, ColumnInfo, Comparison, CutTie, RowDiff, RowDiffKind, SHOWN_ROWS, Side, SideFacts,
    SideSummary,
};
pub use value::{Cell, Tolerance};

/// Why a comparison could not be made or did not agree.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Results disagree.
    #[error("{mismatched} of {total} comparisons disagree")]
    Mismatch { mismatched: usize, total: usize },
    /// Some queries could not be compared (each one's error was printed as it happened).
    #[error("{failed} of {total} queries could not be compared (see the errors above)")]
    Incomplete { failed: usize, total: usize },
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
    Saved(#[from] crate::engine::saved::SavedError),
}
