//! Arrow columns as [`Cell`]s: every integer width, decimals, floats, dates, timestamps (with or
//! without a zone: the instant, in UTC), times, intervals and durations (months plus an exact
//! duration), lists, maps (entries sorted by key) and structs (rows); anything else as Arrow
//! displays it.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::value::{Cell, DAY_NANOS};

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
        // With or without a zone, the value is the same count from the epoch: for a zoned
        // timestamp the instant (UTC), for a naive one its wall time read as UTC.
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
        DataType::Time32(u) | DataType::Time64(u) => {
            let (mul, digits) = unit_digits(u);
            let map32 = |v: i32| Cell::Time(v as i128 * mul, digits);
            let map64 = |v: i64| Cell::Time(v as i128 * mul, digits);
            match array.data_type() {
                DataType::Time32(TimeUnit::Second) => prim!(t::Time32SecondType, map32),
                DataType::Time32(_) => prim!(t::Time32MillisecondType, map32),
                DataType::Time64(TimeUnit::Microsecond) => prim!(t::Time64MicrosecondType, map64),
                _ => prim!(t::Time64NanosecondType, map64),
            }
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            prim!(t::IntervalYearMonthType, |v: i32| Cell::Interval(
                v as i64, 0, 9
            ))
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            prim!(t::IntervalDayTimeType, |v: t::IntervalDayTime| {
                let nanos = v.days as i128 * DAY_NANOS + v.milliseconds as i128 * 1_000_000;
                Cell::Interval(0, nanos, 3)
            })
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            prim!(t::IntervalMonthDayNanoType, |v: t::IntervalMonthDayNano| {
                let nanos = v.days as i128 * DAY_NANOS + v.nanoseconds as i128;
                Cell::Interval(v.months as i64, nanos, 9)
            })
        }
        DataType::Duration(u) => {
            let (mul, digits) = unit_digits(u);
            let map = |v: i64| Cell::Interval(0, v as i128 * mul, digits);
            match u {
                TimeUnit::Second => prim!(t::DurationSecondType, map),
                TimeUnit::Millisecond => prim!(t::DurationMillisecondType, map),
                TimeUnit::Microsecond => prim!(t::DurationMicrosecondType, map),
                TimeUnit::Nanosecond => prim!(t::DurationNanosecondType, map),
            }
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => lists(array),
        DataType::Map(..) => maps(array),
        DataType::Struct(_) => rows(array),
        DataType::Binary => bytes(array.as_binary::<i32>().iter()),
        DataType::LargeBinary => bytes(array.as_binary::<i64>().iter()),
        _ => displayed(array),
    }
}

/// Each row's list as a [`Cell::List`] of its elements' cells.
fn lists(array: &dyn Array) -> Vec<Cell> {
    let value = |i: usize| {
        if let Some(l) = array.as_list_opt::<i32>() {
            Some(l.value(i))
        } else if let Some(l) = array.as_list_opt::<i64>() {
            Some(l.value(i))
        } else {
            array.as_fixed_size_list_opt().map(|l| l.value(i))
        }
    };
    (0..array.len())
        .map(|i| match value(i) {
            _ if array.is_null(i) => Cell::Null,
            Some(items) => Cell::List(column_cells(items.as_ref())),
            None => Cell::Text("<unreadable>".into()),
        })
        .collect()
}

/// Each row's map as a [`Cell::Map`], its entries sorted by key.
fn maps(array: &dyn Array) -> Vec<Cell> {
    let Some(m) = array.as_map_opt() else {
        return displayed(array);
    };
    (0..array.len())
        .map(|i| {
            if m.is_null(i) {
                return Cell::Null;
            }
            let entries = m.value(i);
            if entries.num_columns() < 2 {
                return Cell::Text("<unreadable>".into());
            }
            let keys = column_cells(entries.column(0).as_ref());
            let values = column_cells(entries.column(1).as_ref());
            Cell::map(keys.into_iter().zip(values).collect())
        })
        .collect()
}

/// Each row's struct as a [`Cell::Row`] of named fields.
fn rows(array: &dyn Array) -> Vec<Cell> {
    let Some(s) = array.as_struct_opt() else {
        return displayed(array);
    };
    let names = s.column_names();
    let columns: Vec<Vec<Cell>> = s
        .columns()
        .iter()
        .map(|c| column_cells(c.as_ref()))
        .collect();
    (0..array.len())
        .map(|i| {
            if s.is_null(i) {
                return Cell::Null;
            }
            Cell::Row(
                names
                    .iter()
                    .zip(&columns)
                    .map(|(name, cells)| (name.to_string(), cells[i].clone()))
                    .collect(),
            )
        })
        .collect()
}

fn text<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<Cell> {
    it.map(|v| v.map_or(Cell::Null, |s| Cell::Text(s.to_string())))
        .collect()
}

fn bytes<'a>(it: impl Iterator<Item = Option<&'a [u8]>>) -> Vec<Cell> {
    it.map(|v| v.map_or(Cell::Null, |b| Cell::Bytes(b.to_vec())))
        .collect()
}

/// Any other type (big decimals, unions, dictionaries…) as Arrow displays it.
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
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, DurationMicrosecondArray, Int64Array, IntervalDayTimeArray,
        IntervalMonthDayNanoArray, IntervalYearMonthArray, ListArray, MapArray, StringArray,
        StructArray, TimestampNanosecondArray,
    };
    use arrow::datatypes::{Field, Int64Type, IntervalDayTime, IntervalMonthDayNano};

    use super::*;

    #[test]
    fn intervals_and_durations_become_months_and_nanoseconds() {
        let ym = IntervalYearMonthArray::from(vec![Some(14), None]);
        assert_eq!(
            column_cells(&ym),
            vec![Cell::Interval(14, 0, 9), Cell::Null]
        );
        let dt = IntervalDayTimeArray::from(vec![IntervalDayTime::new(2, 11_045_000)]);
        let want = 2 * DAY_NANOS + 11_045_000_000_000;
        assert_eq!(column_cells(&dt), vec![Cell::Interval(0, want, 3)]);
        let mdn = IntervalMonthDayNanoArray::from(vec![IntervalMonthDayNano::new(
            1,
            2,
            11_045_000_000_000,
        )]);
        assert_eq!(column_cells(&mdn), vec![Cell::Interval(1, want, 9)]);
        let d = DurationMicrosecondArray::from(vec![want as i64 / 1000]);
        assert_eq!(column_cells(&d), vec![Cell::Interval(0, want, 6)]);
    }

    #[test]
    fn zoned_timestamps_are_instants() {
        let a = TimestampNanosecondArray::from(vec![1_000]).with_timezone("America/New_York");
        assert_eq!(column_cells(&a), vec![Cell::Timestamp(1_000, 9)]);
    }

    #[test]
    fn lists_maps_and_structs_become_nested_cells() {
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
        ]);
        assert_eq!(
            column_cells(&list),
            vec![Cell::List(vec![Cell::Int(1), Cell::Null]), Cell::Null]
        );
        let keys = StringArray::from(vec!["b", "a"]);
        let values = Int64Array::from(vec![2, 1]);
        let entries = StructArray::from(vec![
            (
                Arc::new(Field::new("key", DataType::Utf8, false)),
                Arc::new(keys) as ArrayRef,
            ),
            (
                Arc::new(Field::new("value", DataType::Int64, true)),
                Arc::new(values) as ArrayRef,
            ),
        ]);
        let field = Arc::new(Field::new("entries", entries.data_type().clone(), false));
        let offsets = arrow::buffer::OffsetBuffer::new(vec![0, 2].into());
        let map = MapArray::new(field, offsets, entries.clone(), None, false);
        assert_eq!(
            column_cells(&map),
            vec![Cell::Map(vec![
                (Cell::Text("a".into()), Cell::Int(1)),
                (Cell::Text("b".into()), Cell::Int(2)),
            ])]
        );
        assert_eq!(
            column_cells(&entries)[0],
            Cell::Row(vec![
                ("key".into(), Cell::Text("b".into())),
                ("value".into(), Cell::Int(2)),
            ])
        );
    }
}
