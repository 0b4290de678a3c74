//! Cells as values, not Arrow types: one [`Cell`] per value whatever its representation
//! (text, any integer width, decimals, floats, dates, timestamps at their own precision,
//! intervals, arrays, maps, rows), compared by the normalisation rules (README: "Normalisation
//! rules"): decimals at the coarser scale rounded half-up, floats within a tolerance, a date
//! with a midnight timestamp, Athena's text of an array/map/row with the value it renders;
//! NULL distinct from `''` and from NaN. Arrow columns become cells in `cells`.

use std::cmp::Ordering;
use std::fmt;

use arrow::datatypes::DataType;

pub use super::cells::column_cells;
use super::nested;

/// Nanoseconds in a day (of 24 hours: intervals and dates count days so).
pub const DAY_NANOS: i128 = 86_400_000_000_000;

/// One value of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i128),
    /// `mantissa × 10^-scale`.
    Decimal(i128, u32),
    Float(f64),
    Text(String),
    /// Days since 1970-01-01.
    Date(i64),
    /// Nanoseconds since the epoch (UTC: the instant of a zoned timestamp, the wall time of a
    /// naive one) and the number of fraction digits the side keeps.
    Timestamp(i128, u32),
    /// Nanoseconds since midnight and the fraction digits kept.
    Time(i128, u32),
    Bytes(Vec<u8>),
    /// An interval or duration: whole months, an exact duration in nanoseconds (a day is 24
    /// hours), and the fraction digits of a second the side keeps.
    Interval(i64, i128, u32),
    List(Vec<Cell>),
    /// A map's entries, sorted by key ([`Cell::map`]).
    Map(Vec<(Cell, Cell)>),
    /// A row (struct): its fields' names and values, in order.
    Row(Vec<(String, Cell)>),
}

/// When two floats agree: `|a - b| <= abs` or `|a - b| <= rel × max(|a|, |b|)`. The default is
/// in `crate::settings::defaults`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

/// The kind of value, for type reports ("text vs number").
pub fn class_of(ty: &DataType) -> &'static str {
    match ty {
        DataType::Null => "null",
        DataType::Boolean => "boolean",
        t if t.is_integer() || t.is_floating() || t.is_decimal() => "number",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, _) => "timestamp",
        DataType::Time32(_) | DataType::Time64(_) => "time",
        DataType::Interval(_) | DataType::Duration(_) => "interval",
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => "array",
        DataType::Map(..) => "map",
        DataType::Struct(_) => "row",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        _ => "other",
    }
}

impl Cell {
    /// A map cell: its entries sorted by key, so that maps compare whatever their order.
    pub fn map(mut entries: Vec<(Cell, Cell)>) -> Cell {
        entries.sort_by(|a, b| a.0.sort_cmp(&b.0));
        Cell::Map(entries)
    }

    fn class(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Bool(_) => "boolean",
            Cell::Int(_) | Cell::Decimal(..) | Cell::Float(_) => "number",
            Cell::Text(_) => "text",
            Cell::Date(_) => "date",
            Cell::Timestamp(..) => "timestamp",
            Cell::Time(..) => "time",
            Cell::Bytes(_) => "binary",
            Cell::Interval(..) => "interval",
            Cell::List(_) => "array",
            Cell::Map(_) => "map",
            Cell::Row(_) => "row",
        }
    }

    fn is_nested(&self) -> bool {
        matches!(self, Cell::List(_) | Cell::Map(_) | Cell::Row(_))
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Decimal(m, s) => Some(*m as f64 / 10f64.powi(*s as i32)),
            Cell::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Exact numbers as (mantissa, scale): an integer is scale 0.
    fn as_exact(&self) -> Option<(i128, u32)> {
        match self {
            Cell::Int(i) => Some((*i, 0)),
            Cell::Decimal(m, s) => Some((*m, *s)),
            _ => None,
        }
    }

    /// Whether two cells hold the same value. `None` when they agree; otherwise a short reason.
    pub fn differs(&self, other: &Cell, tol: Tolerance) -> Option<&'static str> {
        use Cell::*;
        match (self, other) {
            (Null, Null) => None,
            (Null, _) | (_, Null) => Some("NULL vs value"),
            (Text(a), Text(b)) => (a != b).then_some("value"),
            (Bool(a), Bool(b)) => (a != b).then_some("value"),
            (Date(a), Date(b)) => (a != b).then_some("value"),
            (Bytes(a), Bytes(b)) => (a != b).then_some("value"),
            (Timestamp(a, pa), Timestamp(b, pb)) | (Time(a, pa), Time(b, pb)) => {
                let p = (*pa).min(*pb);
                (truncate(*a, p) != truncate(*b, p)).then_some("value")
            }
            (Date(d), Timestamp(n, _)) | (Timestamp(n, _), Date(d)) => {
                if n.rem_euclid(DAY_NANOS) != 0 {
                    Some("date vs timestamp not at midnight")
                } else {
                    (n.div_euclid(DAY_NANOS) != *d as i128).then_some("value")
                }
            }
            (Interval(ma, a, pa), Interval(mb, b, pb)) => {
                let p = (*pa).min(*pb);
                (ma != mb || truncate(*a, p) != truncate(*b, p)).then_some("value")
            }
            (List(a), List(b)) => lists_differ(a, b, tol),
            (Map(a), Map(b)) => maps_differ(a, b, tol),
            (Row(a), Row(b)) => rows_differ(a, b, tol),
            (Text(t), n) | (n, Text(t)) if n.is_nested() => match nested::read_like(t, n) {
                Some(read) => read.differs(n, tol),
                None => Some("type"),
            },
            (a, b) if a.class() == "number" && b.class() == "number" => {
                if let (Some(x), Some(y)) = (a.as_exact(), b.as_exact()) {
                    // Two decimals may be the same value rounded to two scales; an integer is
                    // exact, and a decimal matches it only when equal.
                    let rounded = matches!(a, Decimal(..)) && matches!(b, Decimal(..));
                    let eq = if rounded {
                        decimals_agree(x, y)
                    } else {
                        exact_eq(x, y)
                    };
                    if let Some(eq) = eq {
                        return (!eq).then_some("value");
                    }
                }
                let (x, y) = (a.as_f64()?, b.as_f64()?);
                (!floats_agree(x, y, tol)).then_some("value beyond tolerance")
            }
            _ => Some("type"),
        }
    }

    /// A total order used to sort rows of unordered results (same on both sides). Arrays, maps
    /// and rows sort by their Athena text, among texts, so that Athena's text of one sorts
    /// where the value does.
    pub fn sort_cmp(&self, other: &Cell) -> Ordering {
        use Cell::*;
        let rank = |c: &Cell| match c {
            Null => 0,
            Bool(_) => 1,
            Int(_) | Decimal(..) | Float(_) => 2,
            Text(_) | List(_) | Map(_) | Row(_) => 3,
            Date(_) => 4,
            Timestamp(..) => 5,
            Time(..) => 6,
            Bytes(_) => 7,
            Interval(..) => 8,
        };
        match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Timestamp(a, pa), Timestamp(b, pb)) | (Time(a, pa), Time(b, pb)) => {
                let p = (*pa).min(*pb);
                truncate(*a, p).cmp(&truncate(*b, p))
            }
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Interval(ma, a, _), Interval(mb, b, _)) => (ma, a).cmp(&(mb, b)),
            (a, b) if rank(a) == 2 && rank(b) == 2 => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
            (a, b) if rank(a) == 3 && rank(b) == 3 => a.athena_text().cmp(&b.athena_text()),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }

    /// The value as Athena renders it inside an array, map or row: strings unquoted, NULL as
    /// `null`, maps and rows as `{k=v, …}`.
    fn athena_text(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Text(t) => t.clone(),
            other => other.to_string(),
        }
    }
}

fn lists_differ(a: &[Cell], b: &[Cell], tol: Tolerance) -> Option<&'static str> {
    if a.len() != b.len() {
        return Some("array length");
    }
    let differ = a.iter().zip(b).any(|(x, y)| x.differs(y, tol).is_some());
    differ.then_some("array element")
}

/// Whether the pairs' second halves (map values, row fields) differ.
fn seconds_differ<K, L>(a: &[(K, Cell)], b: &[(L, Cell)], tol: Tolerance) -> bool {
    a.iter()
        .zip(b)
        .any(|(x, y)| x.1.differs(&y.1, tol).is_some())
}

/// Maps, their entries sorted by key on both sides.
fn maps_differ(a: &[(Cell, Cell)], b: &[(Cell, Cell)], tol: Tolerance) -> Option<&'static str> {
    let keys_differ = a.len() != b.len()
        || a.iter()
            .zip(b)
            .any(|(x, y)| x.0.differs(&y.0, tol).is_some());
    if keys_differ {
        Some("map keys")
    } else {
        seconds_differ(a, b, tol).then_some("map value")
    }
}

/// Rows, field by field by position (as columns are paired: names are not compared).
fn rows_differ(a: &[(String, Cell)], b: &[(String, Cell)], tol: Tolerance) -> Option<&'static str> {
    if a.len() != b.len() {
        Some("row fields")
    } else {
        seconds_differ(a, b, tol).then_some("row field")
    }
}

fn truncate(nanos: i128, digits: u32) -> i128 {
    nanos.div_euclid(10i128.pow(9 - digits.min(9)))
}

/// `mantissa × 10^-from` rounded half-up (away from zero on .5) to `to` fraction digits
/// (`to <= from`).
pub fn round_half_up(m: i128, from: u32, to: u32) -> Option<i128> {
    let d = 10i128.checked_pow(from.checked_sub(to)?)?;
    let (q, r) = (m / d, m % d);
    Some(if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        q + m.signum()
    } else {
        q
    })
}

/// Exact numbers agree when equal at the coarser (smaller) of their scales, each rounded
/// half-up to it: Trino rounds `CAST(1.005 AS DECIMAL(3,2))` to 1.01 where a binary double
/// rounds to 1.00. `None` when a scale is out of range.
fn decimals_agree((a, sa): (i128, u32), (b, sb): (i128, u32)) -> Option<bool> {
    let s = sa.min(sb);
    Some(round_half_up(a, sa, s)? == round_half_up(b, sb, s)?)
}

/// Exact numbers equal as values (at the finer of their scales). `None` on overflow.
fn exact_eq((a, sa): (i128, u32), (b, sb): (i128, u32)) -> Option<bool> {
    let s = sa.max(sb);
    let a = a.checked_mul(10i128.checked_pow(s - sa)?)?;
    let b = b.checked_mul(10i128.checked_pow(s - sb)?)?;
    Some(a == b)
}

/// Two floats agree within `tol`; NaN agrees only with NaN; infinities only with themselves.
pub fn floats_agree(a: f64, b: f64, tol: Tolerance) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let d = (a - b).abs();
    d <= tol.abs || d <= tol.rel * a.abs().max(b.abs())
}

fn joined<T>(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    items: &[T],
    close: &str,
    item: impl Fn(&T) -> String,
) -> fmt::Result {
    let parts: Vec<String> = items.iter().map(item).collect();
    write!(f, "{open}{}{close}", parts.join(", "))
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => f.write_str("NULL"),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Decimal(m, s) => {
                let neg = *m < 0;
                let digits = m.unsigned_abs().to_string();
                let s = *s as usize;
                let padded = format!("{digits:0>width$}", width = s + 1);
                let (int, frac) = padded.split_at(padded.len() - s);
                let sign = if neg { "-" } else { "" };
                if s == 0 {
                    write!(f, "{sign}{int}")
                } else {
                    write!(f, "{sign}{int}.{frac}")
                }
            }
            Cell::Float(v) => write!(f, "{v:?}"),
            Cell::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
            Cell::Date(d) => {
                let (y, m, day) = crate::tick::civil_from_days(*d);
                write!(f, "{y:04}-{m:02}-{day:02}")
            }
            Cell::Timestamp(n, p) => {
                let days = n.div_euclid(DAY_NANOS) as i64;
                let (y, m, d) = crate::tick::civil_from_days(days);
                write!(f, "{y:04}-{m:02}-{d:02} ")?;
                write_time(f, n.rem_euclid(DAY_NANOS), *p)
            }
            Cell::Time(n, p) => write_time(f, *n, *p),
            Cell::Bytes(b) => {
                let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                write!(f, "x'{}'", hex.join(""))
            }
            Cell::Interval(months, nanos, p) => write_interval(f, *months, *nanos, *p),
            Cell::List(items) => joined(f, "[", items, "]", Cell::athena_text),
            Cell::Map(entries) => joined(f, "{", entries, "}", |(k, v)| {
                format!("{}={}", k.athena_text(), v.athena_text())
            }),
            Cell::Row(fields) => joined(f, "{", fields, "}", |(k, v)| {
                format!("{k}={}", v.athena_text())
            }),
        }
    }
}

/// As Athena shows intervals: `Y-M` for months, `D HH:MM:SS.fff` for a duration, both when
/// both are set.
fn write_interval(f: &mut fmt::Formatter<'_>, months: i64, nanos: i128, p: u32) -> fmt::Result {
    if months != 0 || nanos == 0 {
        let sign = if months < 0 { "-" } else { "" };
        write!(f, "{sign}{}-{}", months.abs() / 12, months.abs() % 12)?;
        if nanos == 0 {
            return Ok(());
        }
        f.write_str(" ")?;
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.abs();
    write!(f, "{sign}{} ", n / DAY_NANOS)?;
    write_time(f, n % DAY_NANOS, p)
}

fn write_time(f: &mut fmt::Formatter<'_>, nanos: i128, digits: u32) -> fmt::Result {
    let secs = nanos / 1_000_000_000;
    write!(
        f,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )?;
    if digits > 0 {
        let frac = nanos % 1_000_000_000 / 10i128.pow(9 - digits.min(9));
        write!(f, ".{frac:0width$}", width = digits as usize)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_across_representations() {
        let tol = Tolerance::default();
        assert_eq!(Cell::Int(1).differs(&Cell::Float(1.0), tol), None);
        // An integer is exact: a decimal matches it only when equal (the half-up rule is for
        // two decimals at different scales).
        assert_eq!(
            Cell::Decimal(12345, 2).differs(&Cell::Int(123), tol),
            Some("value")
        );
        assert_eq!(
            Cell::Decimal(1005, 3).differs(&Cell::Decimal(101, 2), tol),
            None
        );
        assert_eq!(
            Cell::Decimal(1005, 3).differs(&Cell::Decimal(100, 2), tol),
            Some("value")
        );
        assert_eq!(Cell::Decimal(12300, 2).differs(&Cell::Int(123), tol), None);
        assert_eq!(
            Cell::Decimal(12345, 2).differs(&Cell::Float(123.45), tol),
            None
        );
        assert_eq!(
            Cell::Text("1.0".into()).differs(&Cell::Float(1.0), tol),
            Some("type")
        );
        assert_eq!(
            Cell::Null.differs(&Cell::Text(String::new()), tol),
            Some("NULL vs value")
        );
        assert_eq!(
            Cell::Null.differs(&Cell::Float(f64::NAN), tol),
            Some("NULL vs value")
        );
        assert_eq!(
            Cell::Float(f64::NAN).differs(&Cell::Float(f64::NAN), tol),
            None
        );
        assert!(
            Cell::Float(1.0)
                .differs(&Cell::Float(1.0 + 1e-12), tol)
                .is_none()
        );
        assert!(
            Cell::Float(1.0)
                .differs(&Cell::Float(1.0 + 1e-6), tol)
                .is_some()
        );
        assert!(Cell::Float(0.0).differs(&Cell::Float(1e-17), tol).is_none());
        // Timestamps at the lower precision of the two sides.
        let ms = Cell::Timestamp(1_000_123_000_000, 3);
        let us = Cell::Timestamp(1_000_123_456_000, 6);
        assert_eq!(ms.differs(&us, tol), None);
        assert!(
            Cell::Timestamp(1_000_124_000_000, 3)
                .differs(&us, tol)
                .is_some()
        );
        assert_eq!(Cell::Decimal(-5, 2).to_string(), "-0.05");
        assert_eq!(ms.to_string(), "1970-01-01 00:16:40.123");
        assert_eq!(Cell::Text("it's".into()).to_string(), "'it''s'");
    }

    #[test]
    fn decimals_agree_at_the_coarser_scale_rounded_half_up() {
        let tol = Tolerance::default();
        // Trino: CAST(1.005 AS DECIMAL(3,2)) = 1.01; the same value at scale 3 agrees with it.
        assert_eq!(
            Cell::Decimal(101, 2).differs(&Cell::Decimal(1005, 3), tol),
            None
        );
        assert_eq!(
            Cell::Decimal(100, 2).differs(&Cell::Decimal(1005, 3), tol),
            Some("value")
        );
        assert_eq!(
            Cell::Decimal(100, 2).differs(&Cell::Decimal(101, 2), tol),
            Some("value")
        );
        // Half-up is away from zero on .5, below .5 rounds down, negative values mirror.
        assert_eq!(
            Cell::Decimal(-101, 2).differs(&Cell::Decimal(-1005, 3), tol),
            None
        );
        assert_eq!(
            Cell::Decimal(100, 2).differs(&Cell::Decimal(1004, 3), tol),
            None
        );
        assert_eq!(round_half_up(-1005, 3, 2), Some(-101));
        assert_eq!(round_half_up(1_049, 3, 1), Some(10));
        assert_eq!(round_half_up(7, 0, 0), Some(7));
        assert_eq!(round_half_up(7, 0, 1), None);
        // decimal(38,0): exact, at the extremes of 38 digits.
        let big = 10i128.pow(38) - 1;
        assert_eq!(Cell::Decimal(big, 0).differs(&Cell::Int(big), tol), None);
        assert!(
            Cell::Decimal(big, 0)
                .differs(&Cell::Decimal(big - 1, 0), tol)
                .is_some()
        );
        // Against a double: the float tolerance.
        assert_eq!(
            Cell::Decimal(1005, 3).differs(&Cell::Float(1.005), tol),
            None
        );
        assert!(
            Cell::Decimal(101, 2)
                .differs(&Cell::Float(1.005), tol)
                .is_some()
        );
    }

    #[test]
    fn dates_meet_midnight_timestamps_and_intervals_meet_durations() {
        let tol = Tolerance::default();
        let day = 11_017; // 2000-03-01
        let midnight = Cell::Timestamp(day as i128 * DAY_NANOS, 9);
        assert_eq!(Cell::Date(day).differs(&midnight, tol), None);
        assert_eq!(midnight.differs(&Cell::Date(day), tol), None);
        assert_eq!(Cell::Date(day + 1).differs(&midnight, tol), Some("value"));
        let later = Cell::Timestamp(day as i128 * DAY_NANOS + 3_600_000_000_000, 3);
        assert_eq!(
            Cell::Date(day).differs(&later, tol),
            Some("date vs timestamp not at midnight")
        );
        let before = Cell::Timestamp(-1, 9);
        assert_eq!(
            Cell::Date(-1).differs(&before, tol),
            Some("date vs timestamp not at midnight")
        );

        // Athena's `2 03:04:05.000` (ms) against DataFusion's nanosecond interval.
        let dur = 2 * DAY_NANOS + 11_045_000_000_000;
        assert_eq!(
            Cell::Interval(0, dur, 3).differs(&Cell::Interval(0, dur + 123, 9), tol),
            None
        );
        assert_eq!(
            Cell::Interval(0, dur, 3).differs(&Cell::Interval(0, dur + 1_000_000, 9), tol),
            Some("value")
        );
        // A month is not 30 days.
        assert_eq!(
            Cell::Interval(1, 0, 9).differs(&Cell::Interval(0, 30 * DAY_NANOS, 9), tol),
            Some("value")
        );
        assert_eq!(Cell::Interval(14, 0, 9).to_string(), "1-2");
        assert_eq!(Cell::Interval(0, dur, 3).to_string(), "2 03:04:05.000");
        assert_eq!(Cell::Interval(0, -dur, 3).to_string(), "-2 03:04:05.000");
    }

    #[test]
    fn arrays_maps_and_rows_compare_by_element_with_athena_text() {
        let tol = Tolerance::default();
        let list = Cell::List(vec![Cell::Float(17.55), Cell::Float(45.0), Cell::Null]);
        assert_eq!(list.to_string(), "[17.55, 45.0, null]");
        let athena = Cell::Text("[17.55, 45.0, null]".into());
        assert_eq!(list.differs(&athena, tol), None);
        assert_eq!(athena.differs(&list, tol), None);
        let close = Cell::Text("[17.550000000000001, 45.0, null]".into());
        assert_eq!(
            list.differs(&close, tol),
            None,
            "elements within the float tolerance"
        );
        let off = Cell::Text("[17.56, 45.0, null]".into());
        assert_eq!(list.differs(&off, tol), Some("array element"));
        let short = Cell::Text("[17.55, 45.0]".into());
        assert_eq!(list.differs(&short, tol), Some("array length"));
        let garbled = Cell::Text("17.55, 45.0".into());
        assert_eq!(list.differs(&garbled, tol), Some("type"));

        let map = Cell::map(vec![
            (Cell::Text("low".into()), Cell::Float(17.55)),
            (Cell::Text("high".into()), Cell::Float(45.0)),
        ]);
        assert_eq!(map.to_string(), "{high=45.0, low=17.55}");
        let athena = Cell::Text("{low=17.55, high=45.0}".into());
        assert_eq!(map.differs(&athena, tol), None, "in any order");
        let other_key = Cell::Text("{low=17.55, hi=45.0}".into());
        assert_eq!(map.differs(&other_key, tol), Some("map keys"));
        let other_value = Cell::Text("{low=17.55, high=46.0}".into());
        assert_eq!(map.differs(&other_value, tol), Some("map value"));

        let row = Cell::Row(vec![
            ("first".into(), Cell::Date(11_017)),
            ("days".into(), Cell::Int(196)),
        ]);
        assert_eq!(row.to_string(), "{first=2000-03-01, days=196}");
        let athena = Cell::Text("{first=2000-03-01, days=196}".into());
        assert_eq!(row.differs(&athena, tol), None);
        let off = Cell::Text("{first=2000-03-02, days=196}".into());
        assert_eq!(row.differs(&off, tol), Some("row field"));
        // Sorted among texts by their Athena text, so both sides sort alike.
        assert_eq!(row.sort_cmp(&athena), Ordering::Equal);
    }
}
