//! [`super::StreamWindowExec`] in place of DataFusion's unbounded `WindowAggExec` when every
//! function is an aggregate over its whole partition (`count(*) OVER (PARTITION BY day)`): the
//! rows of a partition are held until the partition ends (its input is sorted by the partition
//! keys), then each aggregate is computed once over them by DataFusion's own accumulator, so
//! the values are DataFusion's. `WindowAggExec` holds its whole input before it computes
//! anything; this holds one partition.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::WindowFrameBound;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::window::{PlainAggregateWindowExpr, WindowExpr};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::BaselineMetrics;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use arrow::array::RecordBatch;

use super::{Func, Spec};

/// The spec of a whole-partition aggregate (no FILTER), or None.
pub(super) fn spec(expr: &dyn WindowExpr) -> Option<Spec> {
    let plain = expr.as_any().downcast_ref::<PlainAggregateWindowExpr>()?;
    if super::has_filter(plain) {
        return None;
    }
    let frame = expr.get_window_frame();
    let whole = matches!(frame.start_bound, WindowFrameBound::Preceding(ref v) if v.is_null())
        && matches!(frame.end_bound, WindowFrameBound::Following(ref v) if v.is_null());
    whole.then(|| Spec {
        func: Func::Whole(Arc::new(plain.get_aggregate_expr().clone())),
        arg: None,
        arg_type: DataType::Null,
        name: expr.name().to_string(),
    })
}

/// The rows of the partition not yet ended, and what is needed to finish it.
pub(super) struct WholeState {
    specs: Vec<Spec>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    /// The partition key of the last row seen.
    last_key: Option<Vec<ScalarValue>>,
    /// The rows of the current partition so far.
    pending: Vec<RecordBatch>,
}

impl WholeState {
    pub(super) fn new(
        specs: Vec<Spec>,
        partition_by: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    ) -> Self {
        WholeState {
            specs,
            partition_by,
            schema,
            last_key: None,
            pending: Vec::new(),
        }
    }

    /// Takes a batch; returns the rows of the partitions it ended, with their values.
    fn process(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let (ranges, continues, last_key) =
            super::key_ranges(&self.partition_by, batch, &self.last_key)?;
        let mut done = Vec::new();
        for (i, r) in ranges.into_iter().enumerate() {
            let starts_partition = i > 0 || !continues;
            if starts_partition && !self.pending.is_empty() {
                done.push(self.finish_partition()?);
            }
            self.pending.push(batch.slice(r.start, r.len()));
        }
        self.last_key = Some(last_key);
        if done.is_empty() {
            return Ok(None);
        }
        Ok(Some(arrow::compute::concat_batches(&self.schema, &done)?))
    }

    /// The held rows of the current partition with each aggregate's value over them.
    fn finish_partition(&mut self) -> Result<RecordBatch> {
        let schema = self.pending[0].schema();
        let rows = arrow::compute::concat_batches(&schema, &self.pending)?;
        self.pending.clear();
        let n = rows.num_rows();
        let mut columns = rows.columns().to_vec();
        for spec in &self.specs {
            let Func::Whole(agg) = &spec.func else {
                return Err(datafusion::common::DataFusionError::Internal(
                    "StreamWindowExec: a partial-frame function among whole-partition ones".into(),
                ));
            };
            let args = agg
                .expressions()
                .iter()
                .map(|e| e.evaluate(&rows)?.into_array(n))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let mut acc = agg.create_accumulator()?;
            acc.update_batch(&args)?;
            columns.push(acc.evaluate()?.to_array_of_size(n)?);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// The operator's output stream in whole-partition mode: each input batch gives the rows of
/// the partitions it ended; the end of the input ends the last one.
pub(super) fn stream(
    input: SendableRecordBatchStream,
    state: WholeState,
    metrics: BaselineMetrics,
) -> SendableRecordBatchStream {
    let schema = Arc::clone(&state.schema);
    let out = futures::stream::unfold(Some((input, state, metrics)), |st| async move {
        let (mut input, mut state, metrics) = st?;
        loop {
            let next = input.next().await;
            let timer = metrics.elapsed_compute().timer();
            let result = match next {
                Some(Ok(batch)) => state.process(&batch).transpose(),
                Some(Err(e)) => Some(Err(e)),
                None if state.pending.is_empty() => return None,
                None => {
                    let last = state.finish_partition();
                    timer.done();
                    if let Ok(b) = &last {
                        metrics.record_output(b.num_rows());
                    }
                    return Some((last, None));
                }
            };
            timer.done();
            match result {
                None => continue,
                Some(Ok(b)) => {
                    metrics.record_output(b.num_rows());
                    return Some((Ok(b), Some((input, state, metrics))));
                }
                Some(Err(e)) => return Some((Err(e), None)),
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, out))
}
