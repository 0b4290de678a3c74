//! The Arrow batch builder: lake rows (record columns plus lineage columns) in the file schema.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;

use super::{Tick, TickRef, file_schema};

/// Builds Arrow record batches of lake rows (record columns plus lineage columns).
pub struct TickBatchBuilder {
    with_symbol: bool,
    symbol: StringBuilder,
    event_time: TimestampMillisecondBuilder,
    trade_date: Date32Builder,
    open: Float64Builder,
    high: Float64Builder,
    low: Float64Builder,
    close: Float64Builder,
    adj_close: Float64Builder,
    volume: Int64Builder,
    kafka_partition: Int32Builder,
    kafka_offset: Int64Builder,
    rows: usize,
}

impl TickBatchBuilder {
    pub fn new(with_symbol: bool, capacity: usize) -> Self {
        TickBatchBuilder {
            with_symbol,
            symbol: StringBuilder::with_capacity(capacity, capacity * 4),
            event_time: TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            trade_date: Date32Builder::with_capacity(capacity),
            open: Float64Builder::with_capacity(capacity),
            high: Float64Builder::with_capacity(capacity),
            low: Float64Builder::with_capacity(capacity),
            close: Float64Builder::with_capacity(capacity),
            adj_close: Float64Builder::with_capacity(capacity),
            volume: Int64Builder::with_capacity(capacity),
            kafka_partition: Int32Builder::with_capacity(capacity),
            kafka_offset: Int64Builder::with_capacity(capacity),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row: the tick and where in Kafka it came from.
    pub fn push(&mut self, tick: &Tick, partition: i32, offset: i64) {
        self.push_ref(&tick.as_ref(), partition, offset);
    }

    /// Appends one row from a borrowed tick.
    pub fn push_ref(&mut self, tick: &TickRef<'_>, partition: i32, offset: i64) {
        if self.with_symbol {
            self.symbol.append_value(&tick.symbol);
        }
        self.event_time.append_value(tick.event_time);
        self.trade_date.append_value(tick.trade_date());
        self.open.append_option(tick.open);
        self.high.append_option(tick.high);
        self.low.append_option(tick.low);
        self.close.append_option(tick.close);
        self.adj_close.append_option(tick.adj_close);
        self.volume.append_option(tick.volume);
        self.kafka_partition.append_value(partition);
        self.kafka_offset.append_value(offset);
        self.rows += 1;
    }

    /// Takes the rows appended so far as one batch with `file_schema(with_symbol)`.
    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(11);
        if self.with_symbol {
            columns.push(Arc::new(self.symbol.finish()));
        }
        columns.push(Arc::new(self.event_time.finish()));
        columns.push(Arc::new(self.trade_date.finish()));
        columns.push(Arc::new(self.open.finish()));
        columns.push(Arc::new(self.high.finish()));
        columns.push(Arc::new(self.low.finish()));
        columns.push(Arc::new(self.close.finish()));
        columns.push(Arc::new(self.adj_close.finish()));
        columns.push(Arc::new(self.volume.finish()));
        columns.push(Arc::new(self.kafka_partition.finish()));
        columns.push(Arc::new(self.kafka_offset.finish()));
        self.rows = 0;
        RecordBatch::try_new(file_schema(self.with_symbol), columns)
            .expect("builder columns match file_schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::sample;

    #[test]
    fn batch_has_the_file_schema() {
        let mut b = TickBatchBuilder::new(false, 4);
        b.push(&sample(), 2, 41);
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), file_schema(false));
        assert!(batch.schema().field_with_name("symbol").is_err());
        assert_eq!(file_schema(true).fields().len(), 11);
    }
}
