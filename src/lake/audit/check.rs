//! The proof for one Kafka partition: given every offset the ticks and the rejects tables hold,
//! and the committed offset, find each range of offsets missing (gap), held more than once
//! (duplicate) or held above the committed offset (uncommitted). Offsets are counted in an
//! array over their span when they are dense (one pass, no sort), else sorted and merged.

use serde::Serialize;

/// What a range of offsets is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// In neither table, between the partition's first offset in the lake and its committed
    /// offset.
    Gap,
    /// More than once across the two tables (at or below the committed offset, or in the
    /// rejects table only above it).
    Duplicate,
    /// In the ticks table above the committed offset (data no commit covers became visible),
    /// or in the rejects table above both tables' committed offsets; also every row of a
    /// partition without a committed offset.
    Uncommitted,
    /// In the rejects table above the ticks table's committed offset but covered by the rejects
    /// table's own: a flush between its two commits, or one whose ticks commit never came (the
    /// next owner reads those offsets again and does not write their rejects twice). Not a
    /// problem.
    RejectsAhead,
    /// The ticks table has a committed offset for the partition but neither table holds a row
    /// of it (`first` and `last` are the committed offset).
    NoRows,
}

impl FindingKind {
    /// Whether the finding makes the audit fail.
    pub fn is_problem(self) -> bool {
        !matches!(self, FindingKind::RejectsAhead)
    }
}

/// A range of offsets `first..=last` of one kind, each held `in_ticks` times by the ticks table
/// and `in_rejects` times by the rejects table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub first: i64,
    pub last: i64,
    pub in_ticks: u32,
    pub in_rejects: u32,
}

impl Finding {
    /// How many offsets the range spans.
    pub fn offsets(&self) -> u64 {
        u64::try_from(i128::from(self.last) - i128::from(self.first) + 1).unwrap_or(0)
    }
}

/// What the two tables hold of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// The lowest and highest offset held (either table).
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Rows of each table, and distinct offsets of both.
    pub ticks: u64,
    pub rejects: u64,
    pub distinct: u64,
    pub findings: Vec<Finding>,
}

/// Offsets whose span is at most this many times their count (plus [`DENSE_SLACK`]) are
/// counted in an array; others are sorted.
const DENSE_FACTOR: u64 = 2;
const DENSE_SLACK: u64 = 1 << 20;

/// Builds the findings from the offsets held, visited in increasing order.
struct Walk {
    committed: Option<i64>,
    rejects_committed: Option<i64>,
    next: Option<i64>,
    open: Option<Finding>,
    out: Coverage,
}

impl Walk {
    fn new(committed: Option<i64>, rejects_committed: Option<i64>) -> Walk {
        Walk {
            committed,
            rejects_committed,
            next: None,
            open: None,
            out: Coverage::default(),
        }
    }

    fn push(&mut self, f: Finding) {
        if let Some(open) = &mut self.open {
            if open.kind == f.kind
                && (open.in_ticks, open.in_rejects) == (f.in_ticks, f.in_rejects)
                && open.last + 1 == f.first
            {
                open.last = f.last;
                return;
            }
            self.out.findings.push(*open);
        }
        self.open = Some(f);
    }

    /// The offsets `from..=to` are in neither table: a gap where it is committed.
    fn missing(&mut self, from: i64, to: i64) {
        let Some(c) = self.committed else { return };
        let to = to.min(c);
        if from <= to {
            self.push(Finding {
                kind: FindingKind::Gap,
                first: from,
                last: to,
                in_ticks: 0,
                in_rejects: 0,
            });
        }
    }

    /// `offset` is held `t` times in ticks and `r` times in rejects (t + r > 0).
    fn held(&mut self, offset: i64, t: u32, r: u32) {
        if let Some(n) = self.next
            && offset > n
        {
            self.missing(n, offset - 1);
        }
        self.next = Some(offset.saturating_add(1));
        self.out.first.get_or_insert(offset);
        self.out.last = Some(offset);
        self.out.distinct += 1;
        let committed = self.committed.is_some_and(|c| offset <= c);
        let kind = if committed {
            (t + r > 1).then_some(FindingKind::Duplicate)
        } else if t > 0 {
            Some(FindingKind::Uncommitted)
        } else if r > 1 {
            Some(FindingKind::Duplicate)
        } else if self.rejects_committed.is_some_and(|c| offset <= c) {
            Some(FindingKind::RejectsAhead)
        } else {
            Some(FindingKind::Uncommitted)
        };
        if let Some(kind) = kind {
            self.push(Finding {
                kind,
                first: offset,
                last: offset,
                in_ticks: t,
                in_rejects: r,
            });
        }
    }

    fn finish(mut self) -> Coverage {
        match (self.next, self.committed) {
            (Some(n), Some(c)) => self.missing(n, c),
            (None, Some(c)) if c >= 0 => self.push(Finding {
                kind: FindingKind::NoRows,
                first: c,
                last: c,
                in_ticks: 0,
                in_rejects: 0,
            }),
            _ => {}
        }
        if let Some(open) = self.open.take() {
            self.out.findings.push(open);
        }
        self.out
    }
}

/// Checks one partition: `ticks` and `rejects` are the offsets each table holds (any order,
/// consumed), `committed` the ticks table's `txn` version, `rejects_committed` the rejects
/// table's.
pub fn check(
    ticks: Vec<i64>,
    rejects: Vec<i64>,
    committed: Option<i64>,
    rejects_committed: Option<i64>,
) -> Coverage {
    let mut walk = Walk::new(committed, rejects_committed);
    walk.out.ticks = ticks.len() as u64;
    walk.out.rejects = rejects.len() as u64;
    let bounds = ticks
        .iter()
        .chain(&rejects)
        .fold(None, |acc: Option<(i64, i64)>, &o| match acc {
            None => Some((o, o)),
            Some((lo, hi)) => Some((lo.min(o), hi.max(o))),
        });
    let Some((lo, hi)) = bounds else {
        return walk.finish();
    };
    let n = (ticks.len() + rejects.len()) as u64;
    let span = (hi as i128 - lo as i128 + 1) as u128;
    if span <= u128::from(n * DENSE_FACTOR + DENSE_SLACK) {
        dense(&mut walk, &ticks, &rejects, lo, span as usize);
    } else {
        sparse(&mut walk, ticks, rejects);
    }
    walk.finish()
}

/// Counts each offset in an array over `lo..lo + span` (saturating at 255 per table).
fn dense(walk: &mut Walk, ticks: &[i64], rejects: &[i64], lo: i64, span: usize) {
    let count = |offsets: &[i64]| {
        let mut c = vec![0u8; span];
        for &o in offsets {
            let slot = &mut c[(o - lo) as usize];
            *slot = slot.saturating_add(1);
        }
        c
    };
    let t = count(ticks);
    let r = if rejects.is_empty() {
        Vec::new()
    } else {
        count(rejects)
    };
    for (i, &ti) in t.iter().enumerate() {
        let ri = r.get(i).copied().unwrap_or(0);
        if ti != 0 || ri != 0 {
            walk.held(lo + i as i64, u32::from(ti), u32::from(ri));
        }
    }
}

/// Sorts both tables' offsets and walks them together.
fn sparse(walk: &mut Walk, mut ticks: Vec<i64>, mut rejects: Vec<i64>) {
    ticks.sort_unstable();
    rejects.sort_unstable();
    let (mut i, mut j) = (0, 0);
    while i < ticks.len() || j < rejects.len() {
        let offset = match (ticks.get(i), rejects.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let (mut t, mut r) = (0u32, 0u32);
        while ticks.get(i) == Some(&offset) {
            t += 1;
            i += 1;
        }
        while rejects.get(j) == Some(&offset) {
            r += 1;
            j += 1;
        }
        walk.held(offset, t, r);
    }
}

#[cfg(test)]
mod tests {
    use super::FindingKind::*;
    use super::*;

    fn f(kind: FindingKind, first: i64, last: i64, t: u32, r: u32) -> Finding {
        Finding {
            kind,
            first,
            last,
            in_ticks: t,
            in_rejects: r,
        }
    }

    /// Runs both strategies and checks they agree.
    fn both(ticks: &[i64], rejects: &[i64], c: Option<i64>, rc: Option<i64>) -> Coverage {
        let got = check(ticks.to_vec(), rejects.to_vec(), c, rc);
        let mut walk = Walk::new(c, rc);
        walk.out.ticks = ticks.len() as u64;
        walk.out.rejects = rejects.len() as u64;
        sparse(&mut walk, ticks.to_vec(), rejects.to_vec());
        assert_eq!(walk.finish(), got, "dense and sparse disagree");
        got
    }

    #[test]
    fn a_complete_partition_has_no_findings() {
        let ticks: Vec<i64> = (5..100).filter(|o| o % 7 != 0).rev().collect();
        let rejects: Vec<i64> = (5..100).filter(|o| o % 7 == 0).collect();
        let c = both(&ticks, &rejects, Some(99), Some(98));
        assert_eq!((c.first, c.last, c.distinct), (Some(5), Some(99), 95));
        assert_eq!(
            (c.ticks, c.rejects),
            (ticks.len() as u64, rejects.len() as u64)
        );
        assert!(c.findings.is_empty(), "{:?}", c.findings);
    }

    #[test]
    fn gaps_duplicates_and_uncommitted_ranges_are_named() {
        let mut ticks: Vec<i64> = (0..50).chain(55..101).collect();
        ticks.extend(10..13); // twice in ticks
        ticks.extend(103..105); // above the committed offset
        let rejects = vec![20, 30, 31, 101];
        let c = both(&ticks, &rejects, Some(100), Some(101));
        assert_eq!(
            c.findings,
            vec![
                f(Duplicate, 10, 12, 2, 0),
                f(Duplicate, 20, 20, 1, 1),
                f(Duplicate, 30, 31, 1, 1),
                f(Gap, 50, 54, 0, 0),
                f(RejectsAhead, 101, 101, 0, 1),
                f(Uncommitted, 103, 104, 1, 0),
            ]
        );
        assert!(!RejectsAhead.is_problem() && Gap.is_problem());
        assert_eq!(c.findings[3].offsets(), 5);
    }

    #[test]
    fn the_tail_below_the_committed_offset_is_a_gap_and_above_it_is_not() {
        let c = both(&[0, 1, 2], &[], Some(6), None);
        assert_eq!(c.findings, vec![f(Gap, 3, 6, 0, 0)]);
        let c = both(&[0, 1, 2, 5], &[3], Some(2), Some(3));
        assert_eq!(
            c.findings,
            vec![f(RejectsAhead, 3, 3, 0, 1), f(Uncommitted, 5, 5, 1, 0)]
        );
    }

    #[test]
    fn a_partition_without_a_committed_offset_or_without_rows() {
        let c = both(&[7, 8], &[9], None, None);
        assert_eq!(
            c.findings,
            vec![f(Uncommitted, 7, 8, 1, 0), f(Uncommitted, 9, 9, 0, 1)]
        );
        let c = both(&[], &[], Some(41), None);
        assert_eq!(c.findings, vec![f(NoRows, 41, 41, 0, 0)]);
        // Claimed, never written: nothing to prove.
        assert!(both(&[], &[], Some(-1), None).findings.is_empty());
    }

    #[test]
    fn sparse_offsets_are_sorted_instead_of_counted() {
        let far = 1_i64 << 40;
        let c = both(&[far, 0, 1, far, 2], &[3], Some(far), Some(3));
        assert_eq!(
            c.findings,
            vec![f(Gap, 4, far - 1, 0, 0), f(Duplicate, far, far, 2, 0)]
        );
        assert_eq!(c.distinct, 5);
    }
}
