//! Cells as values, not Arrow types: one [`Cell`] per value whatever its representation
//! (Utf8/Utf8View/LargeUtf8, any integer width, decimals, floats, dates, timestamps at their own
//! precision), compared with a float tolerance, NULL distinct from `''` and from NaN.

use std::cmp::Ordering;
use std::fmt;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

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
    /// Nanoseconds since the epoch (UTC) and the number of fraction digits the side keeps.
    Timestamp(i128, u32),
    /// Nanoseconds since midnight and the fraction digits kept.
    Time(i128, u32),
    Bytes(Vec<u8>),
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
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        _ => "other",
    }
}

impl Cell {
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
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Decimal(m, s) => Some(*m as f64 / 10f64.powi(*s as i32)),
            Cell::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Exact numbers as (mantissa, scale).
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
            (a, b) if a.class() == "number" && b.class() == "number" => {
                if let (Some(x), Some(y)) = (a.as_exact(), b.as_exact())
                    && let Some(eq) = exact_eq(x, y)
                {
                    return (!eq).then_some("value");
                }
                let (x, y) = (a.as_f64()?, b.as_f64()?);
                (!floats_agree(x, y, tol)).then_some("value beyond tolerance")
            }
            _ => Some("type"),
        }
    }

    /// A total order used to sort rows of unordered results (same on both sides).
    pub fn sort_cmp(&self, other: &Cell) -> Ordering {
        use Cell::*;
        let rank = |c: &Cell| match c {
            Null => 0,
            Bool(_) => 1,
            Int(_) | Decimal(..) | Float(_) => 2,
            Text(_) => 3,
            Date(_) => 4,
            Timestamp(..) => 5,
            Time(..) => 6,
            Bytes(_) => 7,
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
            (a, b) if rank(a) == 2 && rank(b) == 2 => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

fn truncate(nanos: i128, digits: u32) -> i128 {
    nanos.div_euclid(10i128.pow(9 - digits.min(9)))
}

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
                let days = n.div_euclid(86_400_000_000_000) as i64;
                let (y, m, d) = crate::tick::civil_from_days(days);
                write!(f, "{y:04}-{m:02}-{d:02} ")?;
                write_time(f, n.rem_euclid(86_400_000_000_000), *p)
            }
            Cell::Time(n, p) => write_time(f, *n, *p),
            Cell::Bytes(b) => {
                let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                write!(f, "x'{}'", hex.join(""))
            }
        }
    }
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

fn unit_digits(u: &TimeUnit) -> (i128, u32) {
    match u {
        TimeUnit::Second => (1_000_000_000, 0),
        TimeUnit::Millisecond => (1_000_000, 3),
        TimeUnit::Microsecond => (1_000, 6),
        TimeUnit::Nanosecond => (1, 9),
    }
}

/// The cells of one column.
pub fn column_cells(array: &dyn Array) -> Vec<Cell> {
    use arrow::datatypes as t;
    let n = array.len();
    macro_rules! prim {
        ($ty:ty, $map:expr) => {{
            let a = array.as_primitive::<$ty>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        $map(a.value(i))
                    }
                })
                .collect()
        }};
    }
    match array.data_type() {
        DataType::Null => vec![Cell::Null; n],
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Bool(a.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => prim!(t::Int8Type, |v| Cell::Int(v as i128)),
        DataType::Int16 => prim!(t::Int16Type, |v| Cell::Int(v as i128)),
        DataType::Int32 => prim!(t::Int32Type, |v| Cell::Int(v as i128)),
        DataType::Int64 => prim!(t::Int64Type, |v| Cell::Int(v as i128)),
        DataType::UInt8 => prim!(t::UInt8Type, |v| Cell::Int(v as i128)),
        DataType::UInt16 => prim!(t::UInt16Type, |v| Cell::Int(v as i128)),
        DataType::UInt32 => prim!(t::UInt32Type, |v| Cell::Int(v as i128)),
        DataType::UInt64 => prim!(t::UInt64Type, |v| Cell::Int(v as i128)),
        // A float's shortest decimal text, so that 0.1f32 is 0.1 and not 0.10000000149.
        DataType::Float16 => match arrow::compute::cast(array, &DataType::Float64) {
            Ok(a) => column_cells(a.as_ref()),
            Err(_) => displayed(array),
        },
        DataType::Float32 => prim!(t::Float32Type, |v: f32| Cell::Float(
            v.to_string().parse().unwrap_or(f64::NAN)
        )),
        DataType::Float64 => prim!(t::Float64Type, Cell::Float),
        DataType::Decimal128(_, s) if *s >= 0 => {
            let s = *s as u32;
            prim!(t::Decimal128Type, |v| Cell::Decimal(v, s))
        }
        DataType::Utf8 => text(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => text(array.as_string::<i64>().iter()),
        DataType::Utf8View => text(array.as_string_view().iter()),
        DataType::Date32 => prim!(t::Date32Type, |v| Cell::Date(v as i64)),
        DataType::Date64 => prim!(t::Date64Type, |v: i64| Cell::Date(v.div_euclid(86_400_000))),
        DataType::Timestamp(u, _) => {
            let (mul, digits) = unit_digits(u);
            let map = |v: i64| Cell::Timestamp(v as i128 * mul, digits);
            match u {
                TimeUnit::Second => prim!(t::TimestampSecondType, map),
                TimeUnit::Millisecond => prim!(t::TimestampMillisecondType, map),
                TimeUnit::Microsecond => prim!(t::TimestampMicrosecondType, map),
                TimeUnit::Nanosecond => prim!(t::TimestampNanosecondType, map),
            }
        }
        DataType::Time32(u) => {
            let (mul, digits) = unit_digits(u);
            let map = |v: i32| Cell::Time(v as i128 * mul, digits);
            match u {
                TimeUnit::Second => prim!(t::Time32SecondType, map),
                _ => prim!(t::Time32MillisecondType, map),
            }
        }
        DataType::Time64(u) => {
            let (mul, digits) = unit_digits(u);
            let map = |v: i64| Cell::Time(v as i128 * mul, digits);
            match u {
                TimeUnit::Microsecond => prim!(t::Time64MicrosecondType, map),
                _ => prim!(t::Time64NanosecondType, map),
            }
        }
        DataType::Binary => bytes(array.as_binary::<i32>().iter()),
        DataType::LargeBinary => bytes(array.as_binary::<i64>().iter()),
        _ => displayed(array),
    }
}

fn text<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<Cell> {
    it.map(|v| v.map_or(Cell::Null, |s| Cell::Text(s.to_string())))
        .collect()
}

fn bytes<'a>(it: impl Iterator<Item = Option<&'a [u8]>>) -> Vec<Cell> {
    it.map(|v| v.map_or(Cell::Null, |b| Cell::Bytes(b.to_vec())))
        .collect()
}

/// Any other type (lists, structs, maps, big decimals) as Arrow displays it.
fn displayed(array: &dyn Array) -> Vec<Cell> {
    let opts = FormatOptions::default();
    match ArrayFormatter::try_new(array, &opts) {
        Ok(fmt) => (0..array.len())
            .map(|i| {
                if array.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Text(fmt.value(i).to_string())
                }
            })
            .collect(),
        Err(_) => vec![Cell::Text("<unreadable>".into()); array.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_across_representations() {
        let tol = Tolerance::default();
        assert_eq!(Cell::Int(1).differs(&Cell::Float(1.0), tol), None);
        assert_eq!(
            Cell::Decimal(12345, 2).differs(&Cell::Int(123), tol),
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
}
