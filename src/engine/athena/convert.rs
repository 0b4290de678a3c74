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
use arrow::datatypes::{
    DataType, Field, IntervalDayTime, IntervalUnit, Schema, SchemaRef, TimeUnit,
};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::tick::{days_from_civil, days_in_month};

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

/// Athena's text forms that are normalised (or, for arrays, maps and rows, kept as text for
/// `compare` to read): which one a type name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextForm {
    TimestampWithZone,
    TimeWithZone,
    IntervalDaySecond,
    IntervalYearMonth,
    Nested,
}

impl TextForm {
    /// The text form of an Athena type name, if it is one.
    pub fn of(athena_type: &str) -> Option<TextForm> {
        let t = athena_type.to_ascii_lowercase();
        let zoned = t.contains("with time zone");
        Some(if t.starts_with("timestamp") && zoned {
            TextForm::TimestampWithZone
        } else if t.starts_with("time") && zoned {
            TextForm::TimeWithZone
        } else if t.starts_with("interval day to second") {
            TextForm::IntervalDaySecond
        } else if t.starts_with("interval year to month") {
            TextForm::IntervalYearMonth
        } else if ["array", "map", "row"].iter().any(|k| {
            t.strip_prefix(k)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('('))
        }) {
            TextForm::Nested
        } else {
            return None;
        })
    }
}

fn timestamp_unit(precision: i32) -> TimeUnit {
    match precision {
        p if p <= 3 => TimeUnit::Millisecond,
        p if p <= 6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

impl ColumnMeta {
    /// The Arrow type for this column; complex and unknown types stay text. A `timestamp with
    /// time zone` is the instant, zoned UTC; a `time with time zone` the UTC time of day.
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

/// Seconds east of UTC of a zone as Athena names it (`UTC`, `Z`, `+05:30`, `-0800`, `+05`, or an
/// IANA name such as `America/New_York`) at the wall time `wall_ns` (nanoseconds from the epoch
/// read as UTC). A wall time that occurs twice (the hour a clock goes back) is read as the
/// earlier instant; one that does not occur (the hour a clock skips) does not read.
fn zone_offset(zone: &str, wall_ns: i64) -> Option<i64> {
    use chrono::{Offset, TimeZone};
    if matches!(zone, "UTC" | "Z" | "GMT" | "UT") {
        return Some(0);
    }
    if let Some(rest) = zone.strip_prefix(['+', '-']) {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "00"),
        };
        if h.len() > 2 || m.len() != 2 {
            return None;
        }
        let (h, m) = (digits(h)?, digits(m)?);
        if h > 18 || m > 59 {
            return None;
        }
        return Some(sign * (h * 3600 + m * 60));
    }
    let tz: chrono_tz::Tz = zone.parse().ok()?;
    let wall = chrono::DateTime::from_timestamp_nanos(wall_ns).naive_utc();
    let offset = tz.offset_from_local_datetime(&wall).earliest()?;
    Some(offset.fix().local_minus_utc() as i64)
}

/// Splits `<wall time> <zone>` or `<wall time><±offset>` (or a final `Z`); `date_end` is where the
/// date part ends (the offset is looked for after it, so a date's `-` is not taken for one).
fn split_zone(s: &str, date_end: usize) -> Option<(&str, &str)> {
    if let Some(wall) = s.strip_suffix('Z') {
        return Some((wall, "Z"));
    }
    if let Some((wall, zone)) = s.rsplit_once(' ')
        && wall.len() > date_end
        && !zone.is_empty()
    {
        return Some((wall, zone));
    }
    let k = s.get(date_end..)?.rfind(['+', '-'])? + date_end;
    Some((&s[..k], &s[k..]))
}

/// `YYYY-MM-DD HH:MM:SS[.f…] <zone>` (Athena's `timestamp with time zone`, the zone a name such
/// as `UTC` or `America/New_York`, or an offset `+05:30`) → the instant, in nanoseconds since
/// the epoch (UTC).
pub fn parse_timestamp_tz(s: &str) -> Option<i64> {
    let (wall, zone) = split_zone(s, s.find([' ', 'T'])?)?;
    let wall_ns = parse_timestamp(wall.trim_end())?;
    wall_ns.checked_sub(zone_offset(zone, wall_ns)?.checked_mul(1_000_000_000)?)
}

/// `HH:MM:SS[.f…]±HH:MM` (or with a space before the offset; Athena's `time with time zone`) →
/// the UTC time of day, in nanoseconds since midnight.
pub fn parse_time_tz(s: &str) -> Option<i64> {
    let (time, zone) = split_zone(s, 0)?;
    let local = parse_time(time.trim_end())?;
    if !zone.starts_with(['+', '-']) && !matches!(zone, "UTC" | "Z") {
        return None;
    }
    let offset = zone_offset(zone, 0)? * 1_000_000_000;
    Some((local - offset).rem_euclid(86_400_000_000_000))
}

/// Athena's `interval day to second`, `[-]D HH:MM:SS.fff` → days and milliseconds (both carrying
/// the sign).
pub fn parse_interval_day_second(s: &str) -> Option<IntervalDayTime> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (days, time) = rest.split_once(' ')?;
    let (days, ms) = (digits(days)?, parse_time(time)? / 1_000_000);
    let (days, ms) = (i32::try_from(days).ok()?, ms as i32);
    Some(if neg {
        IntervalDayTime::new(-days, -ms)
    } else {
        IntervalDayTime::new(days, ms)
    })
}

/// Athena's `interval year to month`, `[-]Y-M` → months.
pub fn parse_interval_year_month(s: &str) -> Option<i32> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (y, m) = rest.split_once('-')?;
    let (y, m) = (digits(y)?, digits(m)?);
    if m > 11 {
        return None;
    }
    let months = i32::try_from(y.checked_mul(12)?.checked_add(m)?).ok()?;
    Some(if neg { -months } else { months })
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

    #[test]
    fn zoned_timestamps_read_as_instants() {
        let utc = parse_timestamp("2018-10-16 00:03:00.000").unwrap();
        assert_eq!(parse_timestamp_tz("2018-10-16 00:03:00.000 UTC"), Some(utc));
        assert_eq!(parse_timestamp_tz("2018-10-16 00:03:00.000 Z"), Some(utc));
        assert_eq!(parse_timestamp_tz("2018-10-16T00:03:00Z"), Some(utc));
        // New York is 4 hours behind UTC in October (daylight time), 5 in March.
        assert_eq!(
            parse_timestamp_tz("2018-10-15 20:03:00.000 America/New_York"),
            Some(utc)
        );
        let march = parse_timestamp("2000-03-01 00:00:00.000").unwrap();
        assert_eq!(
            parse_timestamp_tz("2000-02-29 19:00:00.000 America/New_York"),
            Some(march)
        );
        assert_eq!(
            parse_timestamp_tz("2018-10-16 05:33:00.000 +05:30"),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp_tz("2018-10-16 05:33:00.000+05:30"),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp_tz("2018-10-15 16:03:00.000 -0800"),
            Some(utc)
        );
        assert_eq!(parse_timestamp_tz("2018-10-16 02:03:00.000 +02"), Some(utc));
        // 01:30 happens twice when New York goes back to standard time: the earlier instant.
        let first = parse_timestamp("2018-11-04 05:30:00.000").unwrap();
        assert_eq!(
            parse_timestamp_tz("2018-11-04 01:30:00.000 America/New_York"),
            Some(first)
        );
        assert_eq!(
            parse_timestamp_tz("2018-11-04 01:30:00.000 -04:00"),
            Some(first),
            "the earlier one is still daylight time"
        );
        // 02:30 does not happen when it goes forward; no zone, or an unknown one, does not read.
        for bad in [
            "2018-03-11 02:30:00.000 America/New_York",
            "2018-10-16 00:03:00.000",
            "2018-10-16 00:03:00.000 Mars/Olympus",
            "2018-10-16 00:03:00.000 +25:00",
            "2018-10-16 00:03:00.000 +5:3",
        ] {
            assert_eq!(parse_timestamp_tz(bad), None, "{bad}");
        }
    }

    #[test]
    fn zoned_times_read_as_utc_time_of_day() {
        let at = |s| parse_time(s).unwrap();
        assert_eq!(
            parse_time_tz("01:02:03.456+05:30"),
            Some(at("19:32:03.456"))
        );
        assert_eq!(
            parse_time_tz("01:02:03.456 +05:30"),
            Some(at("19:32:03.456"))
        );
        assert_eq!(parse_time_tz("20:00:00.000-08:00"), Some(at("04:00:00")));
        assert_eq!(parse_time_tz("12:00:00.000 UTC"), Some(at("12:00:00")));
        assert_eq!(parse_time_tz("12:00:00.000"), None);
        assert_eq!(parse_time_tz("12:00:00.000 America/New_York"), None);
    }

    #[test]
    fn intervals_read_as_athena_renders_them() {
        assert_eq!(
            parse_interval_day_second("2 03:04:05.000"),
            Some(IntervalDayTime::new(2, 11_045_000))
        );
        assert_eq!(
            parse_interval_day_second("-2 03:04:05.500"),
            Some(IntervalDayTime::new(-2, -11_045_500))
        );
        assert_eq!(
            parse_interval_day_second("0 00:00:00.000"),
            Some(IntervalDayTime::new(0, 0))
        );
        assert_eq!(parse_interval_day_second("2 days"), None);
        assert_eq!(parse_interval_year_month("1-2"), Some(14));
        assert_eq!(parse_interval_year_month("-1-2"), Some(-14));
        assert_eq!(parse_interval_year_month("0-0"), Some(0));
        assert_eq!(parse_interval_year_month("1-12"), None);
        assert_eq!(parse_interval_year_month("14"), None);
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
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
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
