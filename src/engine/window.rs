//! A streaming window operator for the window functions the saved queries lean on, put in place
//! of DataFusion's `BoundedWindowAggExec` by a physical optimizer rule when every function of
//! the node is one it computes exactly as DataFusion does:
//!
//! - `row_number()`;
//! - `lag(x)` and `lag(x, k)` with a NULL default (no IGNORE NULLS);
//! - `sum`, `avg` (of DOUBLE), `count` (of anything) and `min`, `max` (of DOUBLE or BIGINT) over
//!   a ROWS frame from `UNBOUNDED PRECEDING` or `n PRECEDING` to `CURRENT ROW` or `m PRECEDING`,
//!   without DISTINCT, FILTER or IGNORE NULLS.
//!
//! DataFusion evaluates such frames row by row through its generic accumulators: each row
//! slices every argument column, feeds the accumulator one-row arrays and builds a scalar,
//! about 60 ns a row and function. Here each function is a tight loop over the batch with the
//! state of the current partition carried between batches. The results are the same bits:
//! sums and averages add the entering value and then subtract the leaving one in the order
//! DataFusion's sliding accumulators do, and min/max compare with `total_cmp` as DataFusion's
//! do. The node requires what the node it replaces required (rows of a partition contiguous
//! and in window order: its input order mode is `Sorted`), and keeps its plan properties.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::kernels::partition::partition;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::OrderingRequirements;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::window::{
    PlainAggregateWindowExpr, SlidingAggregateWindowExpr, StandardWindowExpr, WindowExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::PlanProperties;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, InputOrderMode,
    SendableRecordBatchStream,
};
use futures::StreamExt;

/// A session with DataFusion's defaults, and [`StreamWindows`] and
/// [`super::grouping::HashGroupBySymbol`] after its physical optimizer rules
/// (`STOCKLAKE_STREAM_WINDOWS=0`, `STOCKLAKE_HASH_GROUP_BY_SYMBOL=0` leave them out, to compare).
pub fn session(config: SessionConfig) -> SessionContext {
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if std::env::var("STOCKLAKE_STREAM_WINDOWS").as_deref() != Ok("0") {
        builder = builder.with_physical_optimizer_rule(Arc::new(StreamWindows));
    }
    if std::env::var("STOCKLAKE_HASH_GROUP_BY_SYMBOL").as_deref() != Ok("0") {
        builder =
            builder.with_physical_optimizer_rule(Arc::new(super::grouping::HashGroupBySymbol));
    }
    SessionContext::new_with_state(builder.build())
}

/// The rule that puts [`StreamWindowExec`] in place of each `BoundedWindowAggExec` and
/// `WindowAggExec` it can compute (see the module docs).
#[derive(Debug, Default)]
pub struct StreamWindows;

impl PhysicalOptimizerRule for StreamWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let exec = if let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() {
                if window.input_order_mode != InputOrderMode::Sorted {
                    return Ok(Transformed::no(node));
                }
                StreamWindowExec::try_new(window.window_expr(), window.input(), &node, false)?
            } else if let Some(window) = node.downcast_ref::<WindowAggExec>() {
                // Its input is sorted by the partition keys (it requires that).
                StreamWindowExec::try_new(window.window_expr(), window.input(), &node, true)?
            } else {
                None
            };
            match exec {
                Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "stocklake_stream_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One window function the operator computes.
#[derive(Debug, Clone)]
enum Func {
    RowNumber,
    /// An aggregate over the whole partition, computed by DataFusion's own accumulator.
    Whole(Arc<AggregateFunctionExpr>),
    /// `lag(arg, offset)` with a NULL default.
    Lag {
        offset: usize,
    },
    Agg {
        kind: AggKind,
        frame: RowsFrame,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    /// `sum` of DOUBLE.
    Sum,
    /// `avg` of DOUBLE.
    Avg,
    /// `count` of any type (non-null values).
    Count,
    Min,
    Max,
}

/// A ROWS frame ending at or before the current row: `start` rows before it (None: unbounded)
/// to `end` rows before it (0: the current row).
#[derive(Debug, Clone, Copy)]
struct RowsFrame {
    start: Option<usize>,
    end: usize,
}

impl RowsFrame {
    /// The frame of the row at `pos` in its partition, as DataFusion computes it.
    fn range(&self, pos: usize) -> (usize, usize) {
        let end = (pos + 1).saturating_sub(self.end);
        let start = self.start.map_or(0, |n| pos.saturating_sub(n)).min(end);
        (start, end)
    }
}

#[derive(Debug, Clone)]
struct Spec {
    func: Func,
    /// The argument (none for `row_number`).
    arg: Option<Arc<dyn PhysicalExpr>>,
    /// The argument's type.
    arg_type: DataType,
    name: String,
}

/// DataFusion's `BoundedWindowAggExec` for the functions listed in the module docs, as a
/// streaming loop per function.
#[derive(Debug)]
pub struct StreamWindowExec {
    input: Arc<dyn ExecutionPlan>,
    specs: Vec<Spec>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The replaced node: its expressions, properties, input requirements and schema are this
    /// operator's (it computes the same columns).
    original: Arc<dyn ExecutionPlan>,
    /// Every function is an aggregate over its whole partition: rows are held until their
    /// partition ends (see [`whole`]).
    whole: bool,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamWindowExec {
    /// The operator for the window node `node` (its expressions `exprs` over `input`, whose
    /// rows of a partition are contiguous and in window order), or None when one of its
    /// functions is not one it computes. `whole`: the node is DataFusion's unbounded
    /// `WindowAggExec`, taken only when every function is an aggregate over its whole
    /// partition.
    fn try_new(
        exprs: &[Arc<dyn WindowExpr>],
        input: &Arc<dyn ExecutionPlan>,
        node: &Arc<dyn ExecutionPlan>,
        whole: bool,
    ) -> Result<Option<Self>> {
        let input_schema = input.schema();
        let mut specs = Vec::new();
        for expr in exprs {
            let spec = if whole {
                whole::spec(expr.as_ref())
            } else {
                spec(expr.as_ref(), &input_schema)?
            };
            match spec {
                Some(s) => specs.push(s),
                None => return Ok(None),
            }
        }
        let partition_by = exprs
            .first()
            .map(|e| e.partition_by().to_vec())
            .unwrap_or_default();
        if exprs.iter().any(|e| {
            e.partition_by().len() != partition_by.len()
                || e.partition_by()
                    .iter()
                    .zip(&partition_by)
                    .any(|(a, b)| !a.eq(b))
        }) {
            return Ok(None);
        }
        Ok(Some(StreamWindowExec {
            input: Arc::clone(input),
            original: Arc::clone(node),
            whole,
            specs,
            partition_by,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

/// The spec of one window expression, or None when it is not one this operator computes.
fn spec(expr: &dyn WindowExpr, input: &SchemaRef) -> Result<Option<Spec>> {
    let name = expr.name().to_string();
    let any = expr.as_any();
    if let Some(std) = any.downcast_ref::<StandardWindowExpr>() {
        let Some(udf) = std
            .get_standard_func_expr()
            .as_any()
            .downcast_ref::<WindowUDFExpr>()
        else {
            return Ok(None);
        };
        // IGNORE NULLS and a reversed evaluation have no accessor; the Debug form carries them.
        let debug = format!("{udf:?}");
        if debug.contains("ignore_nulls: true") || debug.contains("is_reversed: true") {
            return Ok(None);
        }
        let args = udf.args();
        return Ok(match (udf.fun().name(), args) {
            ("row_number", []) => Some(Spec {
                func: Func::RowNumber,
                arg: None,
                arg_type: DataType::Null,
                name,
            }),
            ("lag", [arg, rest @ ..]) => {
                let offset = match rest.first() {
                    None => Some(1),
                    Some(e) => literal_offset(e.as_ref()),
                };
                let default_null = rest
                    .get(1)
                    .is_none_or(|d| literal(d.as_ref()).is_some_and(ScalarValue::is_null));
                match offset {
                    Some(offset) if default_null && rest.len() <= 2 => Some(Spec {
                        func: Func::Lag { offset },
                        arg: Some(Arc::clone(arg)),
                        arg_type: arg.data_type(input)?,
                        name,
                    }),
                    _ => None,
                }
            }
            _ => None,
        });
    }
    let (agg, filter) = if let Some(s) = any.downcast_ref::<SlidingAggregateWindowExpr>() {
        (s.get_aggregate_expr(), has_filter(s))
    } else if let Some(p) = any.downcast_ref::<PlainAggregateWindowExpr>() {
        (p.get_aggregate_expr(), has_filter(p))
    } else {
        return Ok(None);
    };
    if filter || agg.is_distinct() || agg.ignore_nulls() || agg.is_reversed() {
        return Ok(None);
    }
    let Some(frame) = rows_frame(expr) else {
        return Ok(None);
    };
    let args = agg.expressions();
    let [arg] = args.as_slice() else {
        return Ok(None);
    };
    let arg_type = arg.data_type(input)?;
    let kind = match (agg.fun().name(), &arg_type) {
        ("sum", DataType::Float64) => AggKind::Sum,
        ("avg", DataType::Float64) => AggKind::Avg,
        ("count", _) => AggKind::Count,
        ("min", DataType::Float64 | DataType::Int64) => AggKind::Min,
        ("max", DataType::Float64 | DataType::Int64) => AggKind::Max,
        _ => return Ok(None),
    };
    // The result type must be the argument's (count: BIGINT), as computed below.
    let expected = match kind {
        AggKind::Count => DataType::Int64,
        _ => arg_type.clone(),
    };
    if expr.field()?.data_type() != &expected {
        return Ok(None);
    }
    Ok(Some(Spec {
        func: Func::Agg { kind, frame },
        arg: Some(Arc::clone(arg)),
        arg_type,
        name,
    }))
}

/// The aggregate window expression has a FILTER clause (which has no public accessor; the
/// Debug form carries it).
fn has_filter(expr: &impl fmt::Debug) -> bool {
    format!("{expr:?}").contains("filter: Some")
}

/// The expression's frame when it is a ROWS frame this operator computes.
fn rows_frame(expr: &dyn WindowExpr) -> Option<RowsFrame> {
    let frame = expr.get_window_frame();
    if frame.units != WindowFrameUnits::Rows {
        return None;
    }
    let start = match &frame.start_bound {
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)) => None,
        WindowFrameBound::Preceding(ScalarValue::UInt64(Some(n))) => {
            Some(usize::try_from(*n).ok()?)
        }
        WindowFrameBound::CurrentRow => Some(0),
        _ => return None,
    };
    let end = match &frame.end_bound {
        WindowFrameBound::Preceding(ScalarValue::UInt64(Some(n))) => usize::try_from(*n).ok()?,
        WindowFrameBound::CurrentRow => 0,
        _ => return None,
    };
    if start.is_some_and(|s| s < end) {
        return None;
    }
    Some(RowsFrame { start, end })
}

fn literal(expr: &dyn PhysicalExpr) -> Option<&ScalarValue> {
    expr.downcast_ref::<Literal>().map(Literal::value)
}

/// A literal non-negative lag offset.
fn literal_offset(expr: &dyn PhysicalExpr) -> Option<usize> {
    let v = literal(expr)?;
    let n = match v {
        ScalarValue::Int64(Some(n)) => *n,
        ScalarValue::Int32(Some(n)) => i64::from(*n),
        ScalarValue::UInt64(Some(n)) => i64::try_from(*n).ok()?,
        _ => return None,
    };
    usize::try_from(n).ok()
}

impl DisplayAs for StreamWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
        write!(f, "StreamWindowExec: wdw=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for StreamWindowExec {
    fn name(&self) -> &str {
        "StreamWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.original.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.original.input_distribution_requirements()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.original.apply_expressions(f)
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.original.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::common::DataFusionError::Internal("StreamWindowExec has one input".into())
        })?;
        Ok(Arc::new(StreamWindowExec {
            input,
            original: Arc::clone(&self.original),
            whole: self.whole,
            specs: self.specs.clone(),
            partition_by: self.partition_by.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        if self.whole {
            let state = whole::WholeState::new(
                self.specs.clone(),
                self.partition_by.clone(),
                self.schema(),
            );
            return Ok(whole::stream(input, state, metrics));
        }
        let mut state = PartitionState {
            specs: self.specs.clone(),
            partition_by: self.partition_by.clone(),
            schema: self.schema(),
            last_key: None,
            pos: 0,
            funcs: self
                .specs
                .iter()
                .map(|s| FuncState::new(&s.func, &s.arg_type))
                .collect(),
        };
        let stream = input.map(move |batch| {
            let timer = metrics.elapsed_compute().timer();
            let out = batch.and_then(|b| state.process(&b));
            timer.done();
            if let Ok(b) = &out {
                metrics.record_output(b.num_rows());
            }
            out
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The state of one output partition: where the current window partition is, and each
/// function's state in it.
struct PartitionState {
    specs: Vec<Spec>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    /// The window-partition key of the last row seen.
    last_key: Option<Vec<ScalarValue>>,
    /// The position in its window partition of the next row.
    pos: usize,
    funcs: Vec<FuncState>,
}

/// A run of rows of one window partition within a batch.
pub(crate) struct Run {
    start: usize,
    end: usize,
    /// The position in its window partition of the run's first row.
    first_pos: usize,
}

impl PartitionState {
    fn process(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let runs = self.runs(batch)?;
        let mut columns = batch.columns().to_vec();
        for (spec, func) in self.specs.iter().zip(&mut self.funcs) {
            let arg = match &spec.arg {
                Some(e) => Some(e.evaluate(batch)?.into_array(n)?),
                None => None,
            };
            columns.push(func.eval(&spec.func, arg.as_ref(), &runs, n)?);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// The batch's rows split at window-partition changes, each with the position of its first
    /// row in its partition; updates the carried key and position.
    fn runs(&mut self, batch: &RecordBatch) -> Result<Vec<Run>> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (ranges, continues, last_key) = key_ranges(&self.partition_by, batch, &self.last_key)?;
        let mut runs = Vec::with_capacity(ranges.len());
        for (i, r) in ranges.into_iter().enumerate() {
            let first_pos = if i == 0 && continues { self.pos } else { 0 };
            self.pos = first_pos + r.len();
            runs.push(Run {
                start: r.start,
                end: r.end,
                first_pos,
            });
        }
        self.last_key = Some(last_key);
        Ok(runs)
    }
}

/// A non-empty batch's runs of equal window-partition keys (`partition_by`), whether its first
/// row continues the partition of `last_key` (the last row seen before), and its last row's key.
fn key_ranges(
    partition_by: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
    last_key: &Option<Vec<ScalarValue>>,
) -> Result<(Vec<std::ops::Range<usize>>, bool, Vec<ScalarValue>)> {
    let n = batch.num_rows();
    let keys = partition_by
        .iter()
        .map(|e| e.evaluate(batch)?.into_array(n))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let ranges = if keys.is_empty() {
        std::iter::once(0..n).collect()
    } else {
        partition(&keys)?.ranges()
    };
    let key_at = |row: usize| {
        keys.iter()
            .map(|k| ScalarValue::try_from_array(k, row))
            .collect::<Result<Vec<_>>>()
    };
    let continues = last_key.as_ref() == Some(&key_at(0)?);
    Ok((ranges, continues, key_at(n - 1)?))
}

mod state;
mod whole;

use state::FuncState;

#[cfg(test)]
mod tests;
