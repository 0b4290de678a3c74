//! Row alignment: a result's rows as cells, sorted for unordered comparisons, and paired with
//! the other side's rows (equal rows pair up; a row missing on one side is found by looking
//! ahead [`LOOKAHEAD`] rows; same rows in another order are shown position by position).

use std::cmp::Ordering;

use super::value::{self, Cell, Tolerance};
use crate::engine::QueryOutput;

/// How far ahead the alignment looks for a row missing on one side.
const LOOKAHEAD: usize = 16;

/// A result's rows: each one's 1-based position and its cells.
pub(super) type Rows = Vec<(usize, Vec<Cell>)>;

/// Rows of a result as cells (the columns `columns`), each with its 1-based position.
pub(super) fn rows_of(out: &QueryOutput, columns: &[usize]) -> Rows {
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

fn sort_rows(rows: &mut Rows) {
    rows.sort_by(|a, b| row_cmp(&a.1, &b.1));
}

/// How one left row and one right row (indexes into the aligned [`Rows`]) pair up.
pub(super) enum Step {
    Same,
    Changed(usize, usize),
    OnlyLeft(usize),
    OnlyRight(usize),
}

/// The alignment of two results.
pub(super) struct Alignment {
    pub steps: Vec<Step>,
    /// Both sides hold the same rows in another order: the first differing position (1-based).
    pub order_differs_at: Option<usize>,
}

/// Aligns `left` with `right`. `ordered`: the query orders its output, so rows are compared in
/// the order given; else both sides are sorted first (in place: the steps index the sorted rows).
pub(super) fn align_rows(
    left: &mut Rows,
    right: &mut Rows,
    ordered: bool,
    tol: Tolerance,
) -> Alignment {
    if !ordered {
        sort_rows(left);
        sort_rows(right);
        return Alignment {
            steps: align(left, right, tol, true),
            order_differs_at: None,
        };
    }
    let positional = align(left, right, tol, true);
    if differing_steps(&positional) > 0 && left.len() == right.len() {
        let mut ls = left.clone();
        let mut rs = right.clone();
        sort_rows(&mut ls);
        sort_rows(&mut rs);
        if differing_steps(&align(&ls, &rs, tol, true)) == 0 {
            // The same rows in another order: show them position by position.
            let by_position = align(left, right, tol, false);
            let order_differs_at = by_position.iter().find_map(|s| match s {
                Step::Changed(i, _) => Some(i + 1),
                _ => None,
            });
            return Alignment {
                steps: by_position,
                order_differs_at,
            };
        }
    }
    Alignment {
        steps: positional,
        order_differs_at: None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[i128]) -> Rows {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i + 1, vec![Cell::Int(*v)]))
            .collect()
    }

    fn shape(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|s| match s {
                Step::Same => "=".to_string(),
                Step::Changed(i, j) => format!("~{i}{j}"),
                Step::OnlyLeft(i) => format!("<{i}"),
                Step::OnlyRight(j) => format!(">{j}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn aligned(l: &[i128], r: &[i128], ordered: bool) -> (String, Option<usize>) {
        let (mut l, mut r) = (rows(l), rows(r));
        let a = align_rows(&mut l, &mut r, ordered, Tolerance::default());
        (shape(&a.steps), a.order_differs_at)
    }

    #[test]
    fn missing_rows_are_found_by_looking_ahead() {
        assert_eq!(aligned(&[1, 2, 3], &[1, 3], true), ("= <1 =".into(), None));
        assert_eq!(aligned(&[1, 3], &[1, 2, 3], true), ("= >1 =".into(), None));
        assert_eq!(aligned(&[1, 2], &[1, 5], true), ("= ~11".into(), None));
        assert_eq!(aligned(&[1], &[1, 2, 3], true), ("= >1 >2".into(), None));
    }

    #[test]
    fn order_counts_only_when_the_query_orders_its_output() {
        assert_eq!(aligned(&[2, 1], &[1, 2], false), ("= =".into(), None));
        assert_eq!(aligned(&[2, 1], &[1, 2], true), ("~00 ~11".into(), Some(1)));
        assert_eq!(aligned(&[1, 3, 2], &[1, 2, 3], true).1, Some(2));
    }
}
