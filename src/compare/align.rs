//! Row alignment: a result's rows as cells, sorted for unordered comparisons (and within each
//! tie of the ORDER BY keys for ordered ones), and paired with the other side's rows (equal rows
//! pair up; a row missing on one side is found by looking ahead [`LOOKAHEAD`] rows; same rows in
//! another order are shown position by position; a tie cut by a LIMIT or OFFSET that kept other
//! rows on each side is set apart).

use std::cmp::Ordering;
use std::ops::Range;

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
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Same,
    Changed(usize, usize),
    OnlyLeft(usize),
    OnlyRight(usize),
}

/// How the rows of both results are to be ordered.
#[derive(Debug, Clone, Default)]
pub(super) struct RowOrder {
    /// The query orders its output.
    pub ordered: bool,
    /// The compared columns (indexes into a row's cells) whose values order the rows; rows
    /// equal on all of them tie and compare as a set.
    pub keys: Vec<usize>,
    /// A LIMIT keeps the first rows (the last tie may be cut).
    pub limit: bool,
    /// An OFFSET skips rows (the first tie may be cut).
    pub offset: bool,
}

/// Where a tie was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    Limit,
    Offset,
}

/// A tie of the ORDER BY keys cut by a LIMIT or OFFSET where the engines kept different rows:
/// the tie's positions (0-based, in the aligned rows) and the rows each side alone kept.
#[derive(Debug, Clone)]
pub(super) struct CutTie {
    pub at: Cut,
    pub rows: Range<usize>,
    pub only_left: Vec<usize>,
    pub only_right: Vec<usize>,
}

/// The alignment of two results.
pub(super) struct Alignment {
    pub steps: Vec<Step>,
    /// Both sides hold the same rows in another order: the first differing position (1-based).
    pub order_differs_at: Option<usize>,
    /// Ties cut by the LIMIT or OFFSET that kept different rows (their rows are not in `steps`).
    pub cut_ties: Vec<CutTie>,
}

impl Alignment {
    fn of(steps: Vec<Step>) -> Alignment {
        Alignment {
            steps,
            order_differs_at: None,
            cut_ties: Vec::new(),
        }
    }
}

/// Aligns `left` with `right`. Unordered: both sides are sorted first. Ordered: rows keep their
/// order, except that rows tying on every key are sorted among themselves (a tie may come back
/// in any order). Sorting is in place: the steps index the sorted rows.
pub(super) fn align_rows(
    left: &mut Rows,
    right: &mut Rows,
    order: &RowOrder,
    tol: Tolerance,
) -> Alignment {
    if !order.ordered {
        sort_rows(left);
        sort_rows(right);
        return Alignment::of(align(left, right, tol, true));
    }
    sort_ties(left, &order.keys, tol);
    sort_ties(right, &order.keys, tol);
    let positional = align(left, right, tol, true);
    if differing_steps(&positional) == 0 || left.len() != right.len() {
        return Alignment::of(positional);
    }
    if let Some(cut) = cut_ties(left, right, order, tol) {
        return cut;
    }
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
            cut_ties: Vec::new(),
        };
    }
    Alignment::of(positional)
}

pub(super) fn cells_agree(a: &[Cell], b: &[Cell], tol: Tolerance) -> bool {
    a.iter().zip(b).all(|(x, y)| x.differs(y, tol).is_none())
}

fn keys_agree(keys: &[usize], a: &[Cell], b: &[Cell], tol: Tolerance) -> bool {
    keys.iter().all(|&k| a[k].differs(&b[k], tol).is_none())
}

/// Sorts each run of rows that tie on every key among themselves.
fn sort_ties(rows: &mut Rows, keys: &[usize], tol: Tolerance) {
    let mut start = 0;
    while start < rows.len() {
        let end = start + tie_len(&rows[start..], keys, tol);
        rows[start..end].sort_by(|a, b| row_cmp(&a.1, &b.1));
        start = end;
    }
}

/// How many rows from the first tie with it on every key.
fn tie_len<'a>(
    rows: impl IntoIterator<Item = &'a (usize, Vec<Cell>)>,
    keys: &[usize],
    tol: Tolerance,
) -> usize {
    let mut it = rows.into_iter();
    let Some(first) = it.next() else {
        return 0;
    };
    1 + it
        .take_while(|r| keys_agree(keys, &first.1, &r.1, tol))
        .count()
}

/// When the rows differ only inside the first tie (under an OFFSET) or the last one (under a
/// LIMIT), and those ties have the same key values and length on both sides: the engines kept
/// different rows among tied ones, which is not a difference of values.
fn cut_ties(left: &Rows, right: &Rows, order: &RowOrder, tol: Tolerance) -> Option<Alignment> {
    let n = left.len();
    let head = if order.offset {
        let (l, r) = (
            tie_len(left, &order.keys, tol),
            tie_len(right, &order.keys, tol),
        );
        (l == r && keys_agree(&order.keys, &left[0].1, &right[0].1, tol)).then_some(l)?
    } else {
        0
    };
    let tail = if order.limit {
        let (l, r) = (
            tie_len(left.iter().rev(), &order.keys, tol),
            tie_len(right.iter().rev(), &order.keys, tol),
        );
        (l == r && keys_agree(&order.keys, &left[n - 1].1, &right[n - 1].1, tol))
            .then_some(n - l)?
    } else {
        n
    };
    let mut ties = Vec::new();
    if head >= tail {
        // One tie holds every row.
        let at = if order.limit { Cut::Limit } else { Cut::Offset };
        ties.push((at, 0..n));
    } else {
        if head > 0 {
            ties.push((Cut::Offset, 0..head));
        }
        if tail < n {
            ties.push((Cut::Limit, tail..n));
        }
    }
    let middle = if head >= tail { 0..0 } else { head..tail };
    let mut cut = Vec::new();
    for (at, rows) in ties {
        let mut ls: Rows = left[rows.clone()].to_vec();
        let mut rs: Rows = right[rows.clone()].to_vec();
        sort_rows(&mut ls);
        sort_rows(&mut rs);
        let (mut only_left, mut only_right) = (Vec::new(), Vec::new());
        for step in align(&ls, &rs, tol, true) {
            let (l, r) = match step {
                Step::Same => (None, None),
                Step::Changed(i, j) => (Some(i), Some(j)),
                Step::OnlyLeft(i) => (Some(i), None),
                Step::OnlyRight(j) => (None, Some(j)),
            };
            // Back to indexes into the aligned rows, by each row's position within the tie.
            let back = |side: &Rows, pos: usize| {
                side[rows.clone()]
                    .iter()
                    .position(|x| x.0 == pos)
                    .map(|k| k + rows.start)
            };
            only_left.extend(l.and_then(|i| back(left, ls[i].0)));
            only_right.extend(r.and_then(|j| back(right, rs[j].0)));
        }
        if !only_left.is_empty() || !only_right.is_empty() {
            cut.push(CutTie {
                at,
                rows,
                only_left,
                only_right,
            });
        }
    }
    if cut.is_empty() {
        return None;
    }
    // The rows between the cut ties are aligned as usual.
    let at = middle.start;
    let steps = align(&left[middle.clone()], &right[middle], tol, true)
        .into_iter()
        .map(|s| match s {
            Step::Same => Step::Same,
            Step::Changed(i, j) => Step::Changed(i + at, j + at),
            Step::OnlyLeft(i) => Step::OnlyLeft(i + at),
            Step::OnlyRight(j) => Step::OnlyRight(j + at),
        })
        .collect();
    Some(Alignment {
        steps,
        order_differs_at: None,
        cut_ties: cut,
    })
}

/// Aligns two row sequences: equal rows pair up; a row with no partner within [`LOOKAHEAD`]
/// rows pairs with the other side's current row as a changed row (or, without `lookahead`,
/// rows always pair by position).
fn align(
    left: &[(usize, Vec<Cell>)],
    right: &[(usize, Vec<Cell>)],
    tol: Tolerance,
    lookahead: bool,
) -> Vec<Step> {
    let eq = |a: &[Cell], b: &[Cell]| cells_agree(a, b, tol);
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
        let order = RowOrder {
            ordered,
            keys: vec![0],
            ..RowOrder::default()
        };
        let a = align_rows(&mut l, &mut r, &order, Tolerance::default());
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

    /// Rows of (key, value) pairs.
    fn pairs(values: &[(i128, &str)]) -> Rows {
        values
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (i + 1, vec![Cell::Int(*k), Cell::Text(v.to_string())]))
            .collect()
    }

    fn by_key(limit: bool, offset: bool) -> RowOrder {
        RowOrder {
            ordered: true,
            keys: vec![0],
            limit,
            offset,
        }
    }

    fn tied(l: &[(i128, &str)], r: &[(i128, &str)], order: &RowOrder) -> Alignment {
        let (mut l, mut r) = (pairs(l), pairs(r));
        align_rows(&mut l, &mut r, order, Tolerance::default())
    }

    #[test]
    fn rows_that_tie_on_every_key_compare_as_a_set() {
        let a = tied(
            &[(1, "a"), (2, "b"), (2, "c"), (3, "d")],
            &[(1, "a"), (2, "c"), (2, "b"), (3, "d")],
            &by_key(false, false),
        );
        assert_eq!(shape(&a.steps), "= = = =");
        assert_eq!(a.order_differs_at, None);
        // Not a tie: the key orders these rows, so their order counts.
        let a = tied(
            &[(1, "a"), (2, "b"), (3, "c")],
            &[(1, "a"), (3, "c"), (2, "b")],
            &by_key(false, false),
        );
        assert_eq!(a.order_differs_at, Some(2));
        // A value changed inside a tie is still a change.
        let a = tied(
            &[(2, "b"), (2, "c")],
            &[(2, "c"), (2, "x")],
            &by_key(false, false),
        );
        assert_eq!(differing_steps(&a.steps), 2, "{}", shape(&a.steps));
        // Without keys (none is an output column) the whole result is one tie.
        let mut l = pairs(&[(1, "a"), (2, "b")]);
        let mut r = pairs(&[(2, "b"), (1, "a")]);
        let order = RowOrder {
            ordered: true,
            ..RowOrder::default()
        };
        let a = align_rows(&mut l, &mut r, &order, Tolerance::default());
        assert_eq!(shape(&a.steps), "= =");
    }

    #[test]
    fn a_tie_cut_by_the_limit_is_set_apart_from_changed_rows() {
        let l = [(1, "a"), (2, "b"), (3, "c"), (3, "d")];
        let r = [(1, "a"), (2, "b"), (3, "e"), (3, "c")];
        let a = tied(&l, &r, &by_key(true, false));
        assert_eq!(shape(&a.steps), "= =");
        assert_eq!(a.cut_ties.len(), 1);
        let cut = &a.cut_ties[0];
        assert_eq!((cut.at, cut.rows.clone()), (Cut::Limit, 2..4));
        assert_eq!((cut.only_left.len(), cut.only_right.len()), (1, 1));
        // Without a LIMIT the same results differ.
        let a = tied(&l, &r, &by_key(false, false));
        assert!(a.cut_ties.is_empty());
        assert_eq!(differing_steps(&a.steps), 1);
        // A difference before the tie is a difference, LIMIT or not; the tie is still cut.
        let r2 = [(1, "z"), (2, "b"), (3, "e"), (3, "c")];
        let a = tied(&l, &r2, &by_key(true, false));
        assert_eq!(shape(&a.steps), "~00 =");
        assert_eq!(a.cut_ties.len(), 1);
        // The last rows of the two sides do not tie with each other: not a cut tie.
        let r3 = [(1, "a"), (2, "b"), (4, "c"), (4, "d")];
        let a = tied(&l, &r3, &by_key(true, false));
        assert!(a.cut_ties.is_empty());
        // Ties of different lengths at the limit: a row that should be outside the tie.
        let r4 = [(1, "a"), (3, "x"), (3, "c"), (3, "d")];
        let a = tied(&l, &r4, &by_key(true, false));
        assert!(a.cut_ties.is_empty());
        // An OFFSET cuts the first tie the same way.
        let a = tied(
            &[(1, "a"), (1, "b"), (2, "c")],
            &[(1, "x"), (1, "a"), (2, "c")],
            &by_key(false, true),
        );
        assert_eq!(a.cut_ties.len(), 1);
        assert_eq!(a.cut_ties[0].at, Cut::Offset);
    }
}
