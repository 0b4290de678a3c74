//! `date_trunc` with a fast path: DataFusion's own function, except that truncating a column of
//! UTC timestamps (or of DATEs, which the planner casts to timestamps) to a day, week, month,
//! quarter or year is integer arithmetic on the day number instead of a calendar conversion
//! through chrono for every value. Same signature, same result type, the same values (a test
//! holds it to DataFusion's on every unit over four centuries); anything else is DataFusion's.

use std::sync::Arc;

use arrow::array::Date32Array;
use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::Date32Type;
use arrow::datatypes::{
    DataType, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue, exec_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Volatility};
use datafusion::optimizer::AnalyzerRule;

/// DataFusion's `date_trunc` with the fast path of the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FastDateTrunc {
    inner: Arc<ScalarUDF>,
}

impl FastDateTrunc {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(FastDateTrunc {
            inner: datafusion::functions::datetime::date_trunc(),
        })
    }
}

/// The units the fast path truncates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        Some(match s.to_ascii_lowercase().as_str() {
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "quarter" => Unit::Quarter,
            "year" => Unit::Year,
            _ => return None,
        })
    }

    /// The days of the unit that holds `days` (days since 1970-01-01): its first day and the
    /// first day of the next.
    fn span(self, days: i64) -> (i64, i64) {
        match self {
            Unit::Day => (days, days + 1),
            // 1970-01-01 was a Thursday; weeks start on Monday.
            Unit::Week => {
                let start = days - (days + 3).rem_euclid(7);
                (start, start + 7)
            }
            Unit::Month | Unit::Quarter | Unit::Year => {
                let (y, m, _) = civil_from_days(days);
                let (first, months) = match self {
                    Unit::Month => (m, 1),
                    Unit::Quarter => ((m - 1) / 3 * 3 + 1, 3),
                    _ => (1, 12),
                };
                let next = first - 1 + months;
                (
                    days_from_civil(y, first, 1),
                    days_from_civil(y + next / 12, next % 12 + 1, 1),
                )
            }
        }
    }
}

/// Truncates day numbers to a unit, remembering the last unit's span: a column in date order
/// (as the lake's are, per symbol) costs a comparison a value.
struct Truncator {
    unit: Unit,
    span: (i64, i64),
}

impl Truncator {
    fn new(unit: Unit) -> Self {
        Truncator { unit, span: (1, 0) }
    }

    fn truncate(&mut self, days: i64) -> i64 {
        if !(self.span.0 <= days && days < self.span.1) {
            self.span = self.unit.span(days);
        }
        self.span.0
    }
}

/// The proleptic Gregorian (year, month, day) of a day number (days since 1970-01-01).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Each value truncated, when every one stays in range; None sends the column to DataFusion.
fn truncate_all<T: arrow::datatypes::ArrowTimestampType>(
    array: &ArrayRef,
    unit: Unit,
    per_day: i64,
) -> Option<ArrayRef> {
    let values = array.as_primitive::<T>();
    let mut out = Vec::with_capacity(values.len());
    let mut t = Truncator::new(unit);
    for v in values.values().iter() {
        let days = v.div_euclid(per_day);
        out.push(t.truncate(days).checked_mul(per_day)?);
    }
    let out = PrimitiveArray::<T>::new(out.into(), values.nulls().cloned())
        .with_timezone_opt(values.timezone().map(Arc::<str>::from));
    Some(Arc::new(out))
}

/// The fast path's result for these arguments, or None.
fn fast(args: &[ColumnarValue]) -> Option<ArrayRef> {
    let [ColumnarValue::Scalar(unit), ColumnarValue::Array(array)] = args else {
        return None;
    };
    let unit = match unit {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Unit::parse(s)?,
        _ => return None,
    };
    let DataType::Timestamp(time_unit, tz) = array.data_type() else {
        return None;
    };
    // Truncation is by the UTC calendar only for UTC values.
    if tz
        .as_deref()
        .is_some_and(|tz| !matches!(tz, "UTC" | "+00:00" | "Z"))
    {
        return None;
    }
    const DAY: i64 = 86_400;
    match time_unit {
        TimeUnit::Second => truncate_all::<TimestampSecondType>(array, unit, DAY),
        TimeUnit::Millisecond => truncate_all::<TimestampMillisecondType>(array, unit, DAY * 1_000),
        TimeUnit::Microsecond => {
            truncate_all::<TimestampMicrosecondType>(array, unit, DAY * 1_000_000)
        }
        TimeUnit::Nanosecond => {
            truncate_all::<TimestampNanosecondType>(array, unit, DAY * 1_000_000_000)
        }
    }
}

impl ScalarUDFImpl for FastDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match fast(&args.args) {
            Some(array) => Ok(ColumnarValue::Array(array)),
            None => self.inner.invoke_with_args(args),
        }
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// The analyzer rule that computes `CAST(date_trunc(unit, d) AS DATE)` of a DATE `d` (what the
/// planner makes of Trino's `date_trunc(unit, d)`, which is a DATE there) as [`TruncDate`] of
/// `d`: no cast of every date to a timestamp and back. Names are kept.
#[derive(Debug, Default)]
pub struct TruncDateRule;

impl AnalyzerRule for TruncDateRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::cast::rewrite_exprs(plan, rewrite_expr)
    }

    fn name(&self) -> &str {
        "stocklake_date_trunc_date"
    }
}

/// `CAST(date_trunc(unit, CAST(d AS TIMESTAMP)) AS DATE)` with `d` a DATE and `unit` a literal
/// the fast path knows, as `TruncDate(unit, d)`.
fn rewrite_expr(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if field.data_type() != &DataType::Date32 {
        return Ok(Transformed::no(expr));
    }
    let Expr::ScalarFunction(call) = inner.as_ref() else {
        return Ok(Transformed::no(expr));
    };
    let [
        unit,
        Expr::Cast(Cast {
            expr: date,
            field: ts,
        }),
    ] = call.args.as_slice()
    else {
        return Ok(Transformed::no(expr));
    };
    let known_unit = matches!(
        unit,
        Expr::Literal(ScalarValue::Utf8(Some(u)) | ScalarValue::Utf8View(Some(u)), _)
            if Unit::parse(u).is_some()
    );
    if call.func.name() != "date_trunc"
        || !known_unit
        || !matches!(ts.data_type(), DataType::Timestamp(_, None))
        || date.get_type(schema)? != DataType::Date32
    {
        return Ok(Transformed::no(expr));
    }
    let udf = ScalarUDF::new_from_impl(TruncDate::default());
    Ok(Transformed::yes(
        udf.call(vec![unit.clone(), date.as_ref().clone()]),
    ))
}

/// `date_trunc(unit, d)` of DATEs as DATEs (the day, week, month, quarter or year's first day).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TruncDate {
    signature: Signature,
}

impl Default for TruncDate {
    fn default() -> Self {
        TruncDate {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TruncDate {
    fn name(&self) -> &str {
        "date_trunc_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(u)) | ScalarValue::Utf8View(Some(u))),
            dates,
        ] = args.args.as_slice()
        else {
            return exec_err!("date_trunc_date takes a unit and dates");
        };
        let Some(unit) = Unit::parse(u) else {
            return exec_err!("date_trunc_date: unknown unit {u}");
        };
        let mut t = Truncator::new(unit);
        let mut truncate = |d: i32| -> Result<i32> {
            i32::try_from(t.truncate(i64::from(d)))
                .map_err(|_| DataFusionError::Execution(format!("date_trunc: {d} out of range")))
        };
        match dates {
            ColumnarValue::Array(a) => {
                let a = a.as_primitive::<Date32Type>();
                let mut out = Vec::with_capacity(a.len());
                for (i, d) in a.values().iter().enumerate() {
                    out.push(if a.is_null(i) { 0 } else { truncate(*d)? });
                }
                let out = Date32Array::new(out.into(), a.nulls().cloned());
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            ColumnarValue::Scalar(ScalarValue::Date32(d)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Date32(d.map(&mut truncate).transpose()?),
            )),
            other => exec_err!("date_trunc_date: {} is not a date", other.data_type()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::TimestampNanosecondArray;
    use arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    use super::*;

    /// The fast path against DataFusion's own function, value for value, for every unit over
    /// days from 1677 to 2262 (the nanosecond range) at odd times of day, and NULLs.
    #[test]
    fn fast_path_matches_datafusion() {
        let fast_udf = FastDateTrunc::udf();
        let plain = datafusion::functions::datetime::date_trunc();
        let mut values = Vec::new();
        let mut t: i64 = -9_000_000_000_000_000_000;
        while t < 9_000_000_000_000_000_000 {
            values.push(Some(t));
            values.push(None);
            t += 3_600_000_000_000 * 24 * 11 + 7_777_777_777;
        }
        values.push(Some(0));
        values.push(Some(-1));
        for tz in [None, Some("UTC")] {
            let array: ArrayRef =
                Arc::new(TimestampNanosecondArray::from(values.clone()).with_timezone_opt(tz));
            for unit in ["day", "week", "month", "quarter", "year", "MONTH"] {
                let args = || ScalarFunctionArgs {
                    args: vec![
                        ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit.into()))),
                        ColumnarValue::Array(Arc::clone(&array)),
                    ],
                    arg_fields: vec![
                        Arc::new(Field::new("u", DataType::Utf8, false)),
                        Arc::new(Field::new("t", array.data_type().clone(), true)),
                    ],
                    number_rows: array.len(),
                    return_field: Arc::new(Field::new("r", array.data_type().clone(), true)),
                    config_options: Arc::new(ConfigOptions::default()),
                };
                assert!(
                    fast(&args().args).is_some(),
                    "{unit} {tz:?}: fast path not taken"
                );
                let got = fast_udf.invoke_with_args(args()).expect("fast");
                let want = plain.invoke_with_args(args()).expect("datafusion");
                let (ColumnarValue::Array(got), ColumnarValue::Array(want)) = (got, want) else {
                    panic!("arrays expected");
                };
                assert_eq!(got.as_ref(), want.as_ref(), "{unit} {tz:?}");
            }
        }
    }

    /// `CAST(date_trunc(unit, d) AS DATE)` of DATEs from 1682 to 2257 (and NULLs), selected and
    /// grouped by, with the rule against DataFusion without it: the same rows. (Outside
    /// DataFusion's nanosecond range the rewritten form still answers, as Trino does, where
    /// DataFusion's cast to a timestamp fails: see `dates_outside_nanoseconds_truncate`.)
    #[tokio::test]
    async fn dates_truncated_as_dates_match_datafusion() {
        use arrow::datatypes::Schema;
        use datafusion::datasource::MemTable;
        use datafusion::prelude::SessionContext;

        // DataFusion's range: its timestamps are nanoseconds (1677 to 2262).
        let days: Vec<Option<i32>> = (-105_000..105_000)
            .step_by(13)
            .map(|d| (d % 7 != 0).then_some(d))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Date32Array::from(days))],
        )
        .expect("batch");
        let ours = SessionContext::new();
        ours.register_udf(FastDateTrunc::udf());
        ours.add_analyzer_rule(Arc::new(TruncDateRule));
        let theirs = SessionContext::new();
        for ctx in [&ours, &theirs] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![batch.clone()]]);
            ctx.register_table("t", Arc::new(table.expect("table")))
                .expect("register");
        }
        for unit in ["day", "week", "month", "quarter", "year"] {
            for sql in [
                format!("SELECT d, CAST(date_trunc('{unit}', d) AS DATE) AS m FROM t ORDER BY d"),
                format!(
                    "SELECT CAST(date_trunc('{unit}', d) AS DATE) AS m, count(*) AS n FROM t \
                     GROUP BY CAST(date_trunc('{unit}', d) AS DATE) ORDER BY m"
                ),
            ] {
                let df = ours.sql(&sql).await.expect("plan");
                let optimized = df.clone().into_optimized_plan().expect("optimize");
                let plan = format!("{}", optimized.display_indent());
                assert!(
                    plan.contains("date_trunc_date"),
                    "{sql}: not rewritten:\n{plan}"
                );
                let got = df.collect().await.expect("ours");
                let want = theirs
                    .sql(&sql)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("theirs");
                let got = arrow::compute::concat_batches(&got[0].schema(), &got).expect("concat");
                let want =
                    arrow::compute::concat_batches(&want[0].schema(), &want).expect("concat");
                assert!(got.num_rows() > 100, "{sql}: {} rows", got.num_rows());
                assert_eq!(got.columns(), want.columns(), "{sql}");
            }
        }
    }

    #[tokio::test]
    async fn dates_outside_nanoseconds_truncate() {
        use datafusion::prelude::SessionContext;
        let ctx = SessionContext::new();
        ctx.register_udf(FastDateTrunc::udf());
        ctx.add_analyzer_rule(Arc::new(TruncDateRule));
        let sql = "SELECT CAST(date_trunc('quarter', DATE '1600-05-17') AS DATE) AS q, \
                   CAST(date_trunc('year', DATE '2400-12-31') AS DATE) AS y";
        let got = ctx
            .sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let shown = arrow::util::pretty::pretty_format_batches(&got).expect("format");
        assert!(
            shown.to_string().contains("| 1600-04-01 | 2400-01-01 |"),
            "{shown}"
        );
    }

    #[test]
    fn other_time_zones_and_units_are_datafusions() {
        let array: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(vec![Some(1)]).with_timezone("+01:00"));
        let unit = ColumnarValue::Scalar(ScalarValue::Utf8(Some("month".into())));
        assert!(fast(&[unit, ColumnarValue::Array(Arc::clone(&array))]).is_none());
        let hour = ColumnarValue::Scalar(ScalarValue::Utf8(Some("hour".into())));
        let utc: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![Some(1)]));
        assert!(fast(&[hour, ColumnarValue::Array(utc)]).is_none());
    }
}
