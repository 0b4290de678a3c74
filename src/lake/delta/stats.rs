//! Delta per-file statistics (`numRecords`, `minValues`, `maxValues`, `nullCount`) computed from
//! the rows a file holds: readers skip files with them (Athena's file skipping, deltalake's
//! DataFusion provider pruning on `event_time`, `trade_date`, `symbol`).
//!
//! One key of our own rides along: [`SORTED_BY`], written only when the file's rows were checked
//! to be in [`ROW_ORDER`] (the columns of it the file holds; a partition column is one value per
//! file). The local engine declares that order to DataFusion for a table whose every file says
//! so; other readers ignore keys they do not know.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, RowConverter, SortField};
use serde_json::{Map, Value};

use crate::tick::{civil_from_days, format_iso_millis};

/// Strings longer than this get no min/max (a truncated max would need care; symbols are short).
const MAX_STRING_STAT: usize = 32;

/// The stats key that says the file's rows are in [`ROW_ORDER`]: its value names the columns of
/// that order the file holds, comma-separated (`event_time` when `symbol` is a partition column).
pub const SORTED_BY: &str = "stocklakeSortedBy";

/// The order the lake's rows come in: each symbol's events by event time (the order Kafka
/// delivers one symbol's events in, when they were sent in time order).
pub const ROW_ORDER: [&str; 2] = ["symbol", "event_time"];

/// The [`SORTED_BY`] value a file of `schema` carries when its rows are in [`ROW_ORDER`]: the
/// columns of that order it holds. None when it holds none of them.
pub fn row_order_mark(schema: &arrow::datatypes::Schema) -> Option<String> {
    let held: Vec<&str> = ROW_ORDER
        .iter()
        .copied()
        .filter(|c| schema.index_of(c).is_ok())
        .collect();
    (!held.is_empty()).then(|| held.join(","))
}

/// Whether a file's stats carry `mark`, the [`SORTED_BY`] value its schema earns (see
/// [`row_order_mark`]).
pub fn has_row_order_mark(stats: &Value, mark: Option<&str>) -> bool {
    mark.is_some() && stats.get(SORTED_BY).and_then(Value::as_str) == mark
}

/// Checks, batch after batch, that a file's rows are in [`ROW_ORDER`] (ascending, no NULLs, ties
/// allowed) on the columns of it the batches have.
pub struct OrderCheck {
    columns: Vec<usize>,
    /// The [`SORTED_BY`] value the rows earn if they stay in order.
    mark: Option<String>,
    converter: Option<RowConverter>,
    last: Option<OwnedRow>,
    sorted: bool,
}

impl OrderCheck {
    /// A check for batches of `schema`.
    pub fn new(schema: &arrow::datatypes::Schema) -> Self {
        let (mut columns, mut fields) = (Vec::new(), Vec::new());
        for name in ROW_ORDER {
            if let Ok(i) = schema.index_of(name) {
                columns.push(i);
                fields.push(SortField::new(schema.field(i).data_type().clone()));
            }
        }
        let converter = if columns.is_empty() {
            None
        } else {
            RowConverter::new(fields).ok()
        };
        let sorted = converter.is_some();
        OrderCheck {
            columns,
            mark: row_order_mark(schema),
            converter,
            last: None,
            sorted,
        }
    }

    /// Takes the next batch of the file.
    pub fn push(&mut self, batch: &RecordBatch) {
        if !self.sorted || batch.num_rows() == 0 {
            return;
        }
        let Some(converter) = &self.converter else {
            return;
        };
        let arrays: Vec<_> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        if arrays.iter().any(|a| a.null_count() > 0) {
            self.sorted = false;
            return;
        }
        let Ok(rows) = converter.convert_columns(&arrays) else {
            self.sorted = false;
            return;
        };
        let first = rows.row(0);
        if self.last.as_ref().is_some_and(|last| last.row() > first) {
            self.sorted = false;
            return;
        }
        for i in 1..rows.num_rows() {
            if rows.row(i - 1) > rows.row(i) {
                self.sorted = false;
                return;
            }
        }
        self.last = Some(rows.row(rows.num_rows() - 1).owned());
    }

    /// The [`SORTED_BY`] value, when every row pushed was in order.
    pub fn sorted_by(&self) -> Option<String> {
        self.mark.clone().filter(|_| self.sorted)
    }

    /// Sets or removes the [`SORTED_BY`] key of a stats JSON object.
    pub fn mark(&self, stats: &mut Value) {
        if let Some(object) = stats.as_object_mut() {
            match self.sorted_by() {
                Some(columns) => object.insert(SORTED_BY.into(), columns.into()),
                None => object.remove(SORTED_BY),
            };
        }
    }
}

/// The stats JSON of a file holding `batches` (all with the same schema).
pub fn file_stats(batches: &[RecordBatch]) -> String {
    file_stats_value(batches).to_string()
}

/// [`file_stats`] as a JSON value.
pub fn file_stats_value(batches: &[RecordBatch]) -> Value {
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
    let mut stats = serde_json::json!({
        "numRecords": rows,
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    });
    if let Some(first) = batches.first() {
        let mut order = OrderCheck::new(&first.schema());
        for b in batches {
            order.push(b);
        }
        order.mark(&mut stats);
    }
    stats
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

    fn batch(symbol_in_file: bool, rows: &[(&str, &str)]) -> RecordBatch {
        let mut b = TickBatchBuilder::new(symbol_in_file, rows.len());
        for (i, (symbol, time)) in rows.iter().enumerate() {
            let t = Tick {
                symbol: (*symbol).into(),
                event_time: crate::tick::parse_iso_millis(time).unwrap(),
                open: None,
                high: None,
                low: None,
                close: Some(1.0),
                adj_close: None,
                volume: Some(1),
            };
            b.push(&t, 0, i as i64);
        }
        b.finish()
    }

    fn mark(batches: &[RecordBatch]) -> Option<String> {
        file_stats_value(batches)[SORTED_BY]
            .as_str()
            .map(str::to_string)
    }

    #[test]
    fn the_order_mark_is_written_only_for_rows_in_symbol_then_time_order() {
        let (a1, a2, b1) = (
            ("AAPL", "2013-03-01T00:00:00Z"),
            ("AAPL", "2013-03-02T00:00:00Z"),
            ("IBM", "2013-03-01T00:00:00Z"),
        );
        assert_eq!(
            mark(&[batch(true, &[a1, a2, a2, b1])]).as_deref(),
            Some("symbol,event_time")
        );
        // Time going back within a symbol, or a symbol out of order.
        assert_eq!(mark(&[batch(true, &[a2, a1])]), None);
        assert_eq!(mark(&[batch(true, &[b1, a1])]), None);
        // Across batches of one file.
        assert_eq!(
            mark(&[batch(true, &[a1]), batch(true, &[a2, b1])]).as_deref(),
            Some("symbol,event_time")
        );
        assert_eq!(mark(&[batch(true, &[a2]), batch(true, &[a1])]), None);
        // A file without the symbol column (a partition column) is checked on event time.
        assert_eq!(
            mark(&[batch(false, &[a1, a2])]).as_deref(),
            Some("event_time")
        );
        assert_eq!(mark(&[batch(false, &[a2, a1])]), None);
        // The mark can be set and taken away on stats merged from parts.
        let mut check = OrderCheck::new(&batch(false, &[]).schema());
        let mut stats = file_stats_value(&[batch(false, &[a1])]);
        check.push(&batch(false, &[a2]));
        check.push(&batch(false, &[a1]));
        check.mark(&mut stats);
        assert!(stats.get(SORTED_BY).is_none());
    }
}
