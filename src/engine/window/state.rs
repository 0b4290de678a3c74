//! The per-function state of [`super::StreamWindowExec`] within the current window partition,
//! and the loops that compute each function over a batch's runs of rows.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::Result;

use super::{AggKind, Func, RowsFrame, Run};

/// A function's state within the current window partition.
pub(crate) enum FuncState {
    RowNumber,
    /// The last `offset` argument values of the partition (fewer at its start).
    Lag {
        carry: Option<ArrayRef>,
    },
    Float(AggState<f64>),
    /// BIGINT min/max, and count (each value 1 or NULL).
    Int(AggState<i64>),
}

impl FuncState {
    pub(super) fn new(func: &Func, arg_type: &DataType) -> Self {
        match func {
            Func::RowNumber | Func::Whole(_) => FuncState::RowNumber,
            Func::Lag { .. } => FuncState::Lag { carry: None },
            Func::Agg { kind, .. } => {
                if *kind != AggKind::Count && *arg_type == DataType::Float64 {
                    FuncState::Float(AggState::default())
                } else {
                    FuncState::Int(AggState::default())
                }
            }
        }
    }

    pub(super) fn eval(
        &mut self,
        func: &Func,
        arg: Option<&ArrayRef>,
        runs: &[Run],
        n: usize,
    ) -> Result<ArrayRef> {
        match (self, func, arg) {
            (FuncState::RowNumber, Func::RowNumber, _) => {
                let mut out = Vec::with_capacity(n);
                for run in runs {
                    let len = run.end - run.start;
                    out.extend((run.first_pos..run.first_pos + len).map(|p| p as u64 + 1));
                }
                Ok(Arc::new(UInt64Array::from(out)))
            }
            (FuncState::Lag { carry }, Func::Lag { offset }, Some(arg)) => {
                lag(carry, *offset, arg, runs)
            }
            (FuncState::Float(state), Func::Agg { kind, frame }, Some(arg)) => {
                let values = arg.as_primitive::<Float64Type>();
                let mut out = Vec::with_capacity(n);
                state.run(
                    runs,
                    &mut out,
                    |row| values.is_valid(row).then(|| values.value(row)),
                    |s, pos, v| match kind {
                        AggKind::Sum | AggKind::Avg => s.step_sum(*kind, *frame, pos, v),
                        _ => s.step_extreme(*kind, *frame, pos, v, f64::total_cmp),
                    },
                );
                Ok(Arc::new(Float64Array::from(out)))
            }
            (
                FuncState::Int(state),
                Func::Agg {
                    kind: AggKind::Count,
                    frame,
                },
                Some(arg),
            ) => {
                let mut out = Vec::with_capacity(n);
                state.run(
                    runs,
                    &mut out,
                    |row| arg.is_valid(row).then_some(1),
                    |s, pos, v| Some(s.step_count(*frame, pos, v)),
                );
                Ok(Arc::new(Int64Array::from(out)))
            }
            (FuncState::Int(state), Func::Agg { kind, frame }, Some(arg)) => {
                let values = arg.as_primitive::<Int64Type>();
                let mut out = Vec::with_capacity(n);
                state.run(
                    runs,
                    &mut out,
                    |row| values.is_valid(row).then(|| values.value(row)),
                    |s, pos, v| s.step_extreme(*kind, *frame, pos, v, i64::cmp),
                );
                Ok(Arc::new(Int64Array::from(out)))
            }
            _ => Err(datafusion::common::DataFusionError::Internal(
                "StreamWindowExec: a function without its argument".into(),
            )),
        }
    }
}

/// `lag(arg, offset)` over the batch: each row takes the value `offset` rows before it in its
/// partition (from the carried rows of earlier batches where needed), NULL before that.
fn lag(
    carry: &mut Option<ArrayRef>,
    offset: usize,
    arg: &ArrayRef,
    runs: &[Run],
) -> Result<ArrayRef> {
    let carried = match runs.first() {
        Some(r) if r.first_pos > 0 => carry.take(),
        _ => None,
    };
    let carried_len = carried.as_ref().map_or(0, |c| c.len());
    let combined = match carried {
        Some(c) => arrow::compute::concat(&[c.as_ref(), arg.as_ref()])?,
        None => Arc::clone(arg),
    };
    let mut indices: Vec<Option<u32>> = Vec::with_capacity(arg.len());
    for run in runs {
        for (row, pos) in (run.start..run.end).zip(run.first_pos..) {
            indices.push(if pos >= offset {
                u32::try_from(carried_len + row - offset).ok()
            } else {
                None
            });
        }
    }
    let out = arrow::compute::take(combined.as_ref(), &UInt32Array::from(indices), None)?;
    // Carry the last `offset` rows of the last run's partition, copied so that they do not
    // hold the whole batch.
    *carry = None;
    if let Some(last) = runs.last() {
        let rows_in_partition = last.first_pos + (last.end - last.start);
        let keep = offset.min(rows_in_partition);
        if keep > 0 {
            let end = carried_len + last.end;
            let kept = combined.slice(end - keep, keep);
            *carry = Some(arrow::compute::concat(&[kept.as_ref()])?);
        }
    }
    Ok(out)
}

/// The state of an aggregate over a ROWS frame in the current window partition.
pub(crate) struct AggState<T> {
    /// The argument values of the rows that may still enter or leave the frame, from
    /// partition position `base` on.
    values: VecDeque<Option<T>>,
    base: usize,
    /// The frame of the previous row.
    last: (usize, usize),
    /// sum/avg: the running sum and count of non-null values in the frame.
    sum: f64,
    count: u64,
    /// min/max: the frame's candidates (position, value) in position order, each better than
    /// every later one, so the best is at the front.
    best: VecDeque<(usize, T)>,
}

impl<T> Default for AggState<T> {
    fn default() -> Self {
        AggState {
            values: VecDeque::new(),
            base: 0,
            last: (0, 0),
            sum: 0.0,
            count: 0,
            best: VecDeque::new(),
        }
    }
}

impl<T: Copy> AggState<T> {
    /// Steps through the runs' rows, resetting at each new partition: `value` reads a row's
    /// argument, `step` gives the result of the row at a partition position.
    fn run<R>(
        &mut self,
        runs: &[Run],
        out: &mut Vec<Option<R>>,
        value: impl Fn(usize) -> Option<T>,
        mut step: impl FnMut(&mut Self, usize, Option<T>) -> Option<R>,
    ) {
        for run in runs {
            if run.first_pos == 0 {
                *self = AggState::default();
            }
            for (row, pos) in (run.start..run.end).zip(run.first_pos..) {
                let v = value(row);
                out.push(step(self, pos, v));
            }
        }
    }

    fn at(&self, pos: usize) -> Option<T> {
        self.values.get(pos - self.base).copied().flatten()
    }

    /// Forgets the values that can no longer enter or leave the frame.
    fn trim(&mut self, frame: RowsFrame) {
        let (start, end) = self.last;
        let keep_from = if frame.start.is_none() { end } else { start };
        while self.base < keep_from && self.values.pop_front().is_some() {
            self.base += 1;
        }
    }

    /// count over the frame of the row at `pos` (`v` is Some when its argument is non-null).
    fn step_count(&mut self, frame: RowsFrame, pos: usize, v: Option<T>) -> i64 {
        self.values.push_back(v);
        let (start, end) = frame.range(pos);
        let (last_start, last_end) = self.last;
        let entered = (last_end..end).filter(|p| self.at(*p).is_some()).count();
        let left = (last_start..start)
            .filter(|p| self.at(*p).is_some())
            .count();
        self.count = self.count + entered as u64 - left as u64;
        self.last = (start, end);
        self.trim(frame);
        self.count as i64
    }

    /// min/max over the frame of the row at `pos` (argument `v`).
    fn step_extreme(
        &mut self,
        kind: AggKind,
        frame: RowsFrame,
        pos: usize,
        v: Option<T>,
        cmp: fn(&T, &T) -> std::cmp::Ordering,
    ) -> Option<T> {
        self.values.push_back(v);
        let (start, end) = frame.range(pos);
        for p in self.last.1..end {
            if let Some(x) = self.at(p) {
                let worse = |b: &T| match kind {
                    AggKind::Max => cmp(b, &x).is_lt(),
                    _ => cmp(b, &x).is_gt(),
                };
                while self.best.back().is_some_and(|(_, b)| worse(b)) {
                    self.best.pop_back();
                }
                self.best.push_back((p, x));
            }
        }
        while self.best.front().is_some_and(|(p, _)| *p < start) {
            self.best.pop_front();
        }
        self.last = (start, end);
        self.trim(frame);
        self.best.front().map(|(_, b)| *b)
    }
}

impl AggState<f64> {
    /// sum/avg over the frame of the row at `pos` (argument `v`): the entering value is added
    /// and then the leaving one subtracted, as DataFusion's sliding accumulators do.
    fn step_sum(
        &mut self,
        kind: AggKind,
        frame: RowsFrame,
        pos: usize,
        v: Option<f64>,
    ) -> Option<f64> {
        self.values.push_back(v);
        let (start, end) = frame.range(pos);
        if start == end {
            // An empty frame (the partition's first rows with an `m PRECEDING` end): nothing
            // has entered yet.
            self.last = (start, end);
            return None;
        }
        let (last_start, last_end) = self.last;
        for p in last_end..end {
            if let Some(x) = self.at(p) {
                // A batch sum of one value is the value plus 0.0 (-0.0 becomes 0.0).
                self.sum += x + 0.0;
                self.count += 1;
            }
        }
        for p in last_start..start {
            if let Some(x) = self.at(p) {
                self.sum -= x + 0.0;
                self.count -= 1;
            }
        }
        self.last = (start, end);
        self.trim(frame);
        match kind {
            AggKind::Avg if self.count > 0 => Some(self.sum / self.count as f64),
            AggKind::Sum if self.count > 0 => Some(self.sum),
            _ => None,
        }
    }
}
