//! Checking a tie cut by the LIMIT (or OFFSET): the rows only the right side kept among the
//! tied rows must be rows of that tie, which the left side's result of the same query without
//! its LIMIT and OFFSET shows. A row that is not is a real difference (a row missing on the
//! left), and the results disagree.

use super::align::{self, cells_agree};
use super::diff::one_sided;
use super::types::{Comparison, RowDiffKind, SHOWN_ROWS};
use crate::engine::QueryOutput;

/// Checks every cut tie of `c` against `unlimited`, the left side's result of the query
/// without its LIMIT and OFFSET.
pub fn check_cut_ties(c: &mut Comparison, unlimited: &QueryOutput) {
    let tol = c.tolerance;
    let mut missing = Vec::new();
    for tie in &mut c.cut_ties {
        let check = &tie.check;
        let rows = align::rows_of(unlimited, &check.left_columns);
        let tied: Vec<&Vec<_>> = rows
            .iter()
            .map(|(_, cells)| cells)
            .filter(|cells| {
                check
                    .keys
                    .iter()
                    .all(|&k| cells[k].differs(&check.tied[k], tol).is_none())
            })
            .collect();
        tie.tie_rows_without_limit = Some(tied.len());
        let before = missing.len();
        missing.extend(
            check
                .only_right
                .iter()
                .filter(|(_, cells)| !tied.iter().any(|t| cells_agree(t, cells, tol)))
                .cloned(),
        );
        tie.not_in_tie = missing.len() - before;
    }
    if missing.is_empty() {
        return;
    }
    c.agree = false;
    c.only_right_rows += missing.len();
    let left = c.left.facts.label.clone();
    for row in &missing {
        if c.rows.len() < SHOWN_ROWS {
            let mut d = one_sided(RowDiffKind::OnlyRight, row, &c.columns, &left);
            d.reasons = vec![format!(
                "kept among the tied rows at the cut, but not a row of that tie on {left}"
            )];
            c.rows.push(d);
        }
    }
}
