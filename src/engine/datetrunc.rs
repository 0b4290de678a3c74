//! `date_trunc` with a fast path: DataFusion's own function, except that truncating a column of
//! UTC timestamps (or of DATEs, which the planner casts to timestamps) to a day, week, month,
//! quarter or year is integer arithmetic on the day number instead of a calendar conversion
//! through chrono for every value. Same signature, same result type, the same values (a test
//! holds it to DataFusion's on every unit over four centuries); anything else is DataFusion's.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    DataType, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

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

    /// The first day of the unit that holds `days` (days since 1970-01-01).
    fn truncate(self, days: i64) -> i64 {
        match self {
            Unit::Day => days,
            // 1970-01-01 was a Thursday; weeks start on Monday.
            Unit::Week => days - (days + 3).rem_euclid(7),
            Unit::Month | Unit::Quarter | Unit::Year => {
                let (y, m, _) = civil_from_days(days);
                let m = match self {
                    Unit::Month => m,
                    Unit::Quarter => (m - 1) / 3 * 3 + 1,
                    _ => 1,
                };
                days_from_civil(y, m, 1)
            }
        }
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
    for v in values.values().iter() {
        let days = v.div_euclid(per_day);
        out.push(unit.truncate(days).checked_mul(per_day)?);
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
