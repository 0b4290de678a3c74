//! Delta per-file statistics (`numRecords`, `minValues`, `maxValues`, `nullCount`) computed from
//! the rows a file holds: readers skip files with them (Athena's file skipping, deltalake's
//! DataFusion provider pruning on `event_time`, `trade_date`, `symbol`).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::tick::{civil_from_days, format_iso_millis};

/// Strings longer than this get no min/max (a truncated max would need care; symbols are short).
const MAX_STRING_STAT: usize = 32;

/// The stats JSON of a file holding `batches` (all with the same schema).
pub fn file_stats(batches: &[RecordBatch]) -> String {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let (mut mins, mut maxs, mut nulls) = (Map::new(), Map::new(), Map::new());
    if let Some(first) = batches.first() {
        for (i, field) in first.schema().fields().iter().enumerate() {
            let columns: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            let nc: usize = columns.iter().map(|c| c.null_count()).sum();
            nulls.insert(field.name().clone(), nc.into());
            if let Some((lo, hi)) = min_max(field.data_type(), &columns) {
                mins.insert(field.name().clone(), lo);
                maxs.insert(field.name().clone(), hi);
            }
        }
    }
    serde_json::json!({
        "numRecords": rows,
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    })
    .to_string()
}

fn fold<T: Copy + PartialOrd>(values: impl Iterator<Item = T>) -> Option<(T, T)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((if v < lo { v } else { lo }, if v > hi { v } else { hi })),
    })
}

fn min_max(data_type: &DataType, columns: &[&dyn Array]) -> Option<(Value, Value)> {
    match data_type {
        DataType::Float64 => {
            let (lo, hi) = fold(
                columns
                    .iter()
                    .flat_map(|c| c.as_primitive::<Float64Type>().iter().flatten()),
            )?;
            (lo.is_finite() && hi.is_finite()).then(|| (lo.into(), hi.into()))
        }
        DataType::Int32 => fold(
            columns
                .iter()
                .flat_map(|c| c.as_primitive::<Int32Type>().iter().flatten()),
        )
        .map(|(lo, hi)| (lo.into(), hi.into())),
        DataType::Int64 => fold(
            columns
                .iter()
                .flat_map(|c| c.as_primitive::<Int64Type>().iter().flatten()),
        )
        .map(|(lo, hi)| (lo.into(), hi.into())),
        DataType::Timestamp(TimeUnit::Millisecond, _) => fold(columns.iter().flat_map(|c| {
            c.as_primitive::<TimestampMillisecondType>()
                .iter()
                .flatten()
        }))
        .map(|(lo, hi)| (timestamp(lo), timestamp(hi))),
        DataType::Date32 => fold(
            columns
                .iter()
                .flat_map(|c| c.as_primitive::<Date32Type>().iter().flatten()),
        )
        .map(|(lo, hi)| (date(lo), date(hi))),
        DataType::Utf8 => {
            let (lo, hi) = fold(
                columns
                    .iter()
                    .flat_map(|c| c.as_string::<i32>().iter().flatten()),
            )?;
            (lo.chars().count() <= MAX_STRING_STAT && hi.chars().count() <= MAX_STRING_STAT)
                .then(|| (lo.into(), hi.into()))
        }
        _ => None,
    }
}

fn timestamp(ms: i64) -> Value {
    let mut buf = [0u8; 32];
    let n = format_iso_millis(ms, &mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned().into()
}

fn date(days: i32) -> Value {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::{Tick, TickBatchBuilder};

    #[test]
    fn stats_hold_each_columns_bounds_and_nulls() {
        let mut b = TickBatchBuilder::new(true, 4);
        let t = |symbol: &str, time: &str, close: Option<f64>| Tick {
            symbol: symbol.into(),
            event_time: crate::tick::parse_iso_millis(time).unwrap(),
            open: None,
            high: None,
            low: None,
            close,
            adj_close: None,
            volume: Some(100),
        };
        b.push(&t("IBM", "2013-03-01T15:30:00Z", Some(10.5)), 2, 7);
        b.push(&t("AAPL", "2013-03-04T00:00:00Z", None), 2, 9);
        let stats: Value = serde_json::from_str(&file_stats(&[b.finish()])).unwrap();
        assert_eq!(stats["numRecords"], 2);
        assert_eq!(stats["minValues"]["symbol"], "AAPL");
        assert_eq!(stats["maxValues"]["symbol"], "IBM");
        assert_eq!(stats["minValues"]["event_time"], "2013-03-01T15:30:00.000Z");
        assert_eq!(stats["maxValues"]["trade_date"], "2013-03-04");
        assert_eq!(stats["minValues"]["close"], 10.5);
        assert_eq!(stats["nullCount"]["close"], 1);
        assert_eq!(stats["minValues"]["kafka_offset"], 7);
        assert_eq!(stats["maxValues"]["kafka_offset"], 9);
        // A column with no values gets no bounds.
        assert!(stats["minValues"].get("open").is_none());
    }
}
