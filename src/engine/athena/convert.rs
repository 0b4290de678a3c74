//! Athena results as Arrow: column metadata (`ColumnInfo`) to Arrow types, string values (NULL =
//! absent) to typed arrays, and Athena's result CSV (NULL = unquoted empty field, empty string =
//! `""`) read and written without confusing the two. Athena's text forms are read here
//! (README: "Normalisation rules"): `timestamp with time zone` (`… UTC`, `… America/New_York`,
//! `… +05:30`) as the instant in UTC, `time with time zone` as the UTC time of day, intervals
//! (`2 03:04:05.000`, `1-2`); arrays, maps and rows stay their text, marked with their Athena
//! type ([`ATHENA_TYPE`]) for `compare` to read against the other side's value.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, IntervalDayTimeBuilder,
    IntervalYearMonthBuilder, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
    TimestampMillisecondBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::tick::{days_from_civil, days_in_month};

mod forms;

use forms::common_zone;
pub use forms::{
    TextForm, parse_interval_day_second, parse_interval_year_month, parse_time_tz,
    parse_timestamp_tz,
};

/// One result column as Athena describes it (`ResultSetMetadata.ColumnInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    /// Athena's type name, e.g. `varchar`, `decimal`, `array(integer)`.
    pub athena_type: String,
    pub precision: i32,
    pub scale: i32,
    /// false only when Athena says NOT_NULL.
    pub nullable: bool,
}

/// A row of strings; None is SQL NULL.
pub type Row = Vec<Option<String>>;

/// The field metadata key that holds a column's Athena type, on the columns whose values are
/// normalised from Athena's text forms (zoned timestamps and times, intervals, arrays, maps,
/// rows), for `compare`'s notes.
pub const ATHENA_TYPE: &str = "athena_type";

fn timestamp_unit(precision: i32) -> TimeUnit {
    match precision {
        p if p <= 3 => TimeUnit::Millisecond,
        p if p <= 6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

impl ColumnMeta {
    /// The Arrow type for this column; complex and unknown types stay text. A `timestamp with
    /// time zone` is the instant, zoned UTC (or, in [`build_batch`], the one zone all its values
    /// name); a `time with time zone` the UTC time of day.
    pub fn arrow_type(&self) -> DataType {
        match TextForm::of(&self.athena_type) {
            Some(TextForm::TimestampWithZone) => {
                return DataType::Timestamp(timestamp_unit(self.precision), Some("UTC".into()));
            }
            Some(TextForm::TimeWithZone) => return DataType::Time64(TimeUnit::Microsecond),
            Some(TextForm::IntervalDaySecond) => return DataType::Interval(IntervalUnit::DayTime),
            Some(TextForm::IntervalYearMonth) => {
                return DataType::Interval(IntervalUnit::YearMonth);
            }
            Some(TextForm::Nested) | None => {}
        }
        let base = self.athena_type.to_ascii_lowercase();
        let base = base.split('(').next().unwrap_or("").trim();
        match base {
            "boolean" => DataType::Boolean,
            "tinyint" => DataType::Int8,
            "smallint" => DataType::Int16,
            "integer" | "int" => DataType::Int32,
            "bigint" => DataType::Int64,
            "real" | "float" => DataType::Float32,
            "double" => DataType::Float64,
            "decimal" => {
                let p = self.precision.clamp(1, 38) as u8;
                let s = self.scale.clamp(0, p as i32) as i8;
                DataType::Decimal128(p, s)
            }
            "date" => DataType::Date32,
            "timestamp" => DataType::Timestamp(timestamp_unit(self.precision), None),
            "time" => DataType::Time64(TimeUnit::Microsecond),
            "varbinary" => DataType::Binary,
            // varchar, char, string, array, map, row, json, interval, timestamp with time zone…
            _ => DataType::Utf8,
        }
    }
}

fn field(c: &ColumnMeta, ty: DataType) -> Field {
    let f = Field::new(&c.name, ty, c.nullable);
    if TextForm::of(&c.athena_type).is_some() {
        let meta = [(ATHENA_TYPE.to_string(), c.athena_type.clone())];
        f.with_metadata(meta.into_iter().collect())
    } else {
        f
    }
}

pub fn schema(cols: &[ColumnMeta]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| field(c, c.arrow_type()))
            .collect::<Vec<_>>(),
    ))
}

/// Builds one batch from string rows. Errors name the row (1-based) and column. A column in a
/// normalised text form ([`TextForm`]) with a value that does not read stays text (with a
/// warning), so that it is compared as Athena wrote it rather than not at all.
pub fn build_batch(cols: &[ColumnMeta], rows: &[Row]) -> Result<RecordBatch, String> {
    let mut fields = Vec::with_capacity(cols.len());
    let mut arrays = Vec::with_capacity(cols.len());
    for (i, c) in cols.iter().enumerate() {
        let values = || {
            rows.iter()
                .map(move |r| r.get(i).and_then(Option::as_deref))
        };
        let form = TextForm::of(&c.athena_type);
        let mut ty = c.arrow_type();
        if let (Some(TextForm::TimestampWithZone), DataType::Timestamp(unit, _)) = (form, &ty)
            && let Some(zone) = common_zone(values())
        {
            ty = DataType::Timestamp(*unit, Some(zone.into()));
        }
        let array = match build_array(&ty, form, values()) {
            Ok(a) => a,
            Err((row, v)) if form.is_some() => {
                tracing::warn!(
                    "row {}, column {} ({}): cannot read {v:?}; the column is compared as text",
                    row + 1,
                    c.name,
                    c.athena_type
                );
                ty = DataType::Utf8;
                build_array(&ty, None, values()).map_err(|(_, v)| v)?
            }
            Err((row, v)) => {
                return Err(format!(
                    "row {}, column {} ({}): cannot read {v:?}",
                    row + 1,
                    c.name,
                    c.athena_type
                ));
            }
        };
        fields.push(field(c, ty));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|e| e.to_string())
}

type Fail = (usize, String);

fn build_array<'a>(
    ty: &DataType,
    form: Option<TextForm>,
    values: impl Iterator<Item = Option<&'a str>>,
) -> Result<ArrayRef, Fail> {
    let stamp: fn(&str) -> Option<i64> = if form == Some(TextForm::TimestampWithZone) {
        parse_timestamp_tz
    } else {
        parse_timestamp
    };
    let time: fn(&str) -> Option<i64> = if form == Some(TextForm::TimeWithZone) {
        parse_time_tz
    } else {
        parse_time
    };
    macro_rules! typed {
        ($builder:expr, $parse:expr) => {{
            let mut b = $builder;
            for (row, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(s) => b.append_value($parse(s).ok_or_else(|| (row, s.to_string()))?),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty {
        DataType::Boolean => typed!(BooleanBuilder::new(), |s: &str| match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }),
        DataType::Int8 => typed!(Int8Builder::new(), |s: &str| s.parse().ok()),
        DataType::Int16 => typed!(Int16Builder::new(), |s: &str| s.parse().ok()),
        DataType::Int32 => typed!(Int32Builder::new(), |s: &str| s.parse().ok()),
        DataType::Int64 => typed!(Int64Builder::new(), |s: &str| s.parse().ok()),
        DataType::Float32 => typed!(Float32Builder::new(), |s: &str| s.parse().ok()),
        DataType::Float64 => typed!(Float64Builder::new(), |s: &str| s.parse().ok()),
        DataType::Decimal128(p, s) => {
            let scale = *s;
            let b = Decimal128Builder::new()
                .with_precision_and_scale(*p, scale)
                .map_err(|e| (0, e.to_string()))?;
            typed!(b, |v: &str| parse_decimal(v, scale as u32))
        }
        DataType::Date32 => typed!(Date32Builder::new(), |s: &str| parse_date(s)
            .and_then(|d| i32::try_from(d).ok())),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            let b = TimestampMillisecondBuilder::new().with_timezone_opt(tz.clone());
            typed!(b, |s: &str| stamp(s).map(|ns| ns.div_euclid(1_000_000)))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let b = TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone());
            typed!(b, |s: &str| stamp(s).map(|ns| ns.div_euclid(1_000)))
        }
        DataType::Timestamp(_, tz) => {
            typed!(
                TimestampNanosecondBuilder::new().with_timezone_opt(tz.clone()),
                stamp
            )
        }
        DataType::Time64(_) => typed!(Time64MicrosecondBuilder::new(), |s: &str| time(s)
            .map(|ns| ns / 1_000)),
        DataType::Interval(IntervalUnit::DayTime) => {
            typed!(IntervalDayTimeBuilder::new(), parse_interval_day_second)
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            typed!(IntervalYearMonthBuilder::new(), parse_interval_year_month)
        }
        DataType::Binary => typed!(BinaryBuilder::new(), parse_hex),
        _ => typed!(StringBuilder::new(), |s: &str| Some(s.to_string())),
    })
}

/// `-123.45` at scale 2 → -12345. More fraction digits than the scale are an error.
pub fn parse_decimal(s: &str, scale: u32) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || frac.len() > scale as usize
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    v = v.checked_mul(10i128.checked_pow(scale - frac.len() as u32)?)?;
    Some(if neg { -v } else { v })
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` → days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (
        digits(it.next()?)?,
        digits(it.next()?)?,
        digits(it.next()?)?,
    );
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m as u32) as i64 {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32))
}

/// `HH:MM:SS[.f…]` → nanoseconds since midnight.
pub fn parse_time(s: &str) -> Option<i64> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.splitn(3, ':');
    let (h, m, sec) = (
        digits(it.next()?)?,
        digits(it.next()?)?,
        digits(it.next()?)?,
    );
    if h > 23 || m > 59 || sec > 59 || frac.len() > 9 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        digits(frac)? * 10i64.pow(9 - frac.len() as u32)
    };
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + nanos)
}

/// `YYYY-MM-DD HH:MM:SS[.f…]` (or with `T`) → nanoseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (date, time) = s.split_once([' ', 'T'])?;
    let days = parse_date(date)?;
    days.checked_mul(86_400_000_000_000)?
        .checked_add(parse_time(time)?)
}

/// Athena shows varbinary as hex byte pairs separated by spaces: `68 65 6c`.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let hex: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// Parses Athena's result CSV: RFC 4180 with `""` escapes; an unquoted empty field is NULL, a
/// quoted one the empty string. Rows end at `\n` or `\r\n` outside quotes.
pub fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut row: Row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut at_row_start = true;
    while let Some(c) = chars.next() {
        at_row_start = false;
        match c {
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                        None => return Err(format!("line {line}: unterminated quoted field")),
                    }
                }
                match chars.peek() {
                    None | Some(',') | Some('\n') | Some('\r') => {}
                    Some(ch) => {
                        return Err(format!("line {line}: {ch:?} after a closing quote"));
                    }
                }
            }
            ',' => {
                row.push(take_field(&mut field, &mut quoted));
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(take_field(&mut field, &mut quoted));
                rows.push(std::mem::take(&mut row));
                line += 1;
                at_row_start = true;
            }
            ch => field.push(ch),
        }
    }
    if !at_row_start {
        row.push(take_field(&mut field, &mut quoted));
        rows.push(row);
    }
    Ok(rows)
}

fn take_field(field: &mut String, quoted: &mut bool) -> Option<String> {
    let f = std::mem::take(field);
    let was_quoted = std::mem::replace(quoted, false);
    if f.is_empty() && !was_quoted {
        None
    } else {
        Some(f)
    }
}

/// Writes rows as Athena's result CSV (every value quoted, NULL as an empty field).
pub fn write_csv(out: &mut String, rows: &[Row]) {
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(v) = v {
                out.push('"');
                out.push_str(&v.replace('"', "\"\""));
                out.push('"');
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_keeps_null_and_empty_string_apart() {
        let text = "\"a\",\"b\",\"c\"\n\"x\"\"y\",,\"\"\r\n\"multi\nline\",\"1\",\"2\"";
        let rows = parse_csv(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            vec![Some("x\"y".to_string()), None, Some(String::new())]
        );
        assert_eq!(rows[2][0].as_deref(), Some("multi\nline"));
        let mut back = String::new();
        write_csv(&mut back, &rows);
        assert_eq!(parse_csv(&back).unwrap(), rows);
    }

    #[test]
    fn scalar_parsers() {
        assert_eq!(parse_decimal("-12.5", 2), Some(-1250));
        assert_eq!(parse_decimal("7", 0), Some(7));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2013-02-29"), None);
        assert_eq!(parse_time("00:00:01.5"), Some(1_500_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00.001"), Some(1_000_000));
        assert_eq!(parse_hex("68 65 6c"), Some(b"hel".to_vec()));
        assert_eq!(parse_hex("6"), None);
    }

    fn meta(name: &str, athena_type: &str, precision: i32) -> ColumnMeta {
        ColumnMeta {
            name: name.into(),
            athena_type: athena_type.into(),
            precision,
            scale: 0,
            nullable: true,
        }
    }

    #[test]
    fn text_forms_become_typed_columns_marked_with_their_athena_type() {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::TimestampMillisecondType;
        let cols = [
            meta("ts", "timestamp with time zone", 3),
            meta("t", "time with time zone", 3),
            meta("ds", "interval day to second", 0),
            meta("ym", "interval year to month", 0),
            meta("a", "array(integer)", 0),
            meta("n", "integer", 10),
        ];
        let row = |v: [&str; 6]| v.iter().map(|s| Some(s.to_string())).collect::<Row>();
        let rows = [row([
            "2000-02-29 19:00:00.000 America/New_York",
            "01:02:03.456+05:30",
            "2 03:04:05.000",
            "1-2",
            "[1, 2, 3]",
            "7",
        ])];
        let b = build_batch(&cols, &rows).unwrap();
        let s = b.schema();
        let ty = |i: usize| s.field(i).data_type().clone();
        assert_eq!(
            ty(0),
            DataType::Timestamp(TimeUnit::Millisecond, Some("America/New_York".into())),
            "the column's one zone is kept"
        );
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.value(0), 951_868_800_000, "2000-03-01 00:00:00 UTC");
        assert_eq!(ty(1), DataType::Time64(TimeUnit::Microsecond));
        assert_eq!(ty(2), DataType::Interval(IntervalUnit::DayTime));
        assert_eq!(ty(3), DataType::Interval(IntervalUnit::YearMonth));
        assert_eq!(ty(4), DataType::Utf8);
        assert_eq!(
            s.field(4).metadata().get(ATHENA_TYPE).map(String::as_str),
            Some("array(integer)")
        );
        assert!(s.field(5).metadata().is_empty());
        // Values in several zones: the column is zoned UTC (the values are instants).
        let mut other = rows[0].clone();
        other[0] = Some("2000-03-01 05:30:00.000 +05:30".into());
        let b = build_batch(&cols, &[rows[0].clone(), other]).unwrap();
        assert_eq!(
            b.schema().field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            (ts.value(0), ts.value(1)),
            (951_868_800_000, 951_868_800_000)
        );
        // A value in a text form that does not read: that column stays text.
        let mut odd = rows[0].clone();
        odd[0] = Some("2000-02-29 19:00:00.000 Mars/Olympus".into());
        let b = build_batch(&cols, &[odd]).unwrap();
        assert_eq!(b.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(b.column(0).as_string::<i32>().value(0).len(), 36);
        assert_eq!(b.column(1).len(), 1);
        // Other types still fail with the row and column.
        let mut bad = rows[0].clone();
        bad[5] = Some("seven".into());
        let e = build_batch(&cols, &[bad]).unwrap_err();
        assert!(e.contains("row 1, column n (integer)"), "{e}");
    }
}

/// Property tests (cases: `STOCKLAKE_FUZZ_CASES`, default 256).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::tick::fuzz_cases()))]

        /// What Athena's CSV writer writes, the reader reads back: NULL and `""` kept apart,
        /// quotes, commas and line breaks inside values.
        #[test]
        fn written_rows_read_back(rows in prop::collection::vec(
            prop::collection::vec(prop::option::of("[a-z,\"\r\n ]{0,6}|\\PC{0,4}"), 1..5),
            0..8,
        )) {
            let mut text = String::new();
            write_csv(&mut text, &rows);
            prop_assert_eq!(parse_csv(&text), Ok(rows));
        }

        /// Any text is read or refused with the line it failed on; never a panic.
        #[test]
        fn any_text_is_read_or_refused_naming_the_line(text in "[a-z,\"\r\n]{0,40}|\\PC{0,40}") {
            if let Err(e) = parse_csv(&text) {
                let line: usize = e
                    .strip_prefix("line ")
                    .and_then(|r| r.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                prop_assert!(line >= 1 && line <= text.matches('\n').count() + 1, "{}", e);
            }
        }

        /// The typed readers of Athena's text forms take any text without panicking.
        #[test]
        fn scalar_readers_never_panic(s in "\\PC{0,30}|[0-9:. +-]{0,30}") {
            let _ = parse_decimal(&s, 2);
            let _ = parse_decimal(&s, 38);
            let _ = parse_date(&s);
            let _ = parse_time(&s);
            let _ = parse_timestamp(&s);
            let _ = parse_hex(&s);
            let _ = forms::parse_timestamp_tz(&s);
            let _ = forms::parse_time_tz(&s);
            let _ = forms::parse_interval_day_second(&s);
            let _ = forms::parse_interval_year_month(&s);
        }
    }
}
