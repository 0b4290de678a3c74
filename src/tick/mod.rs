//! THE record: one stock tick (an OHLCV bar), its validation and its Arrow schema. The JSON wire
//! format (`wire.rs`), the calendar arithmetic (`calendar.rs`) and the Arrow batch builder
//! (`builder.rs`) live beside it and are re-exported here: every other module takes these
//! definitions from `crate::tick`.

mod builder;
mod calendar;
mod wire;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use builder::TickBatchBuilder;
pub use calendar::{
    MS_PER_DAY, civil_from_days, days_from_civil, days_in_month, format_iso_millis,
    parse_iso_millis,
};

/// The longest symbol accepted, in bytes.
pub const MAX_SYMBOL_BYTES: usize = 64;

/// One bar of market data for one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Ticker symbol, also the Kafka message key.
    pub symbol: String,
    /// Start of the bar, milliseconds since the Unix epoch, UTC. Daily bars start at 00:00 UTC.
    pub event_time: i64,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    /// Close adjusted for splits and dividends, where the source has it.
    pub adj_close: Option<f64>,
    pub volume: Option<i64>,
}

/// How the table's columns look to every engine: name, Arrow type, Athena (Hive DDL) type.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub athena_type: &'static str,
    pub nullable: bool,
    pub comment: &'static str,
}

/// The record's columns, in file order. `trade_date` is derived from `event_time`.
pub const RECORD_COLUMNS: &[ColumnSpec] = &[
    col(
        "symbol",
        "string",
        false,
        "ticker symbol, the Kafka message key",
    ),
    col("event_time", "timestamp", false, "start of the bar, UTC"),
    col(
        "trade_date",
        "date",
        false,
        "UTC calendar date of event_time",
    ),
    col("open", "double", true, "opening price"),
    col("high", "double", true, "highest price"),
    col("low", "double", true, "lowest price"),
    col("close", "double", true, "closing price"),
    col(
        "adj_close",
        "double",
        true,
        "close adjusted for splits and dividends",
    ),
    col("volume", "bigint", true, "shares traded"),
];

/// Lineage columns the lake adds to every row: where in Kafka the event came from.
pub const LINEAGE_COLUMNS: &[ColumnSpec] = &[
    col(
        "kafka_partition",
        "int",
        false,
        "Kafka partition of the event",
    ),
    col("kafka_offset", "bigint", false, "Kafka offset of the event"),
];

const fn col(
    name: &'static str,
    athena_type: &'static str,
    nullable: bool,
    comment: &'static str,
) -> ColumnSpec {
    ColumnSpec {
        name,
        athena_type,
        nullable,
        comment,
    }
}

impl ColumnSpec {
    /// The Arrow type that stands for this column's Athena type.
    pub fn arrow_type(&self) -> DataType {
        match self.athena_type {
            "string" => DataType::Utf8,
            "timestamp" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            "date" => DataType::Date32,
            "double" => DataType::Float64,
            "bigint" => DataType::Int64,
            "int" => DataType::Int32,
            other => unreachable!("column type {other} has no Arrow mapping"),
        }
    }

    pub fn arrow_field(&self) -> Field {
        Field::new(self.name, self.arrow_type(), self.nullable)
    }
}

/// Every column a lake file may hold, in file order: record columns then lineage columns.
pub fn all_columns() -> impl Iterator<Item = &'static ColumnSpec> {
    RECORD_COLUMNS.iter().chain(LINEAGE_COLUMNS.iter())
}

/// Arrow schema of a lake file. `with_symbol` is false when `symbol` is a partition key (then it
/// lives in the directory name, as Hive and Athena expect, and not in the file).
pub fn file_schema(with_symbol: bool) -> SchemaRef {
    static WITH: OnceLock<SchemaRef> = OnceLock::new();
    static WITHOUT: OnceLock<SchemaRef> = OnceLock::new();
    let cell = if with_symbol { &WITH } else { &WITHOUT };
    cell.get_or_init(|| {
        Arc::new(Schema::new(
            all_columns()
                .filter(|c| with_symbol || c.name != "symbol")
                .map(ColumnSpec::arrow_field)
                .collect::<Vec<_>>(),
        ))
    })
    .clone()
}

/// Why an event is not a valid tick.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TickError {
    #[error("not UTF-8: {0}")]
    Utf8(String),
    #[error("not a valid tick JSON object: {0}")]
    Json(String),
    #[error("field `{field}`: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

impl Tick {
    /// Checks the values a lake must never hold: NaN or infinite or negative prices, negative
    /// volume, over-long or control-character symbols, and dates outside years 1..9999.
    pub fn validate(&self) -> Result<(), TickError> {
        self.as_ref().validate()
    }

    /// A borrowed view of this tick.
    pub fn as_ref(&self) -> TickRef<'_> {
        TickRef {
            symbol: Cow::Borrowed(&self.symbol),
            event_time: self.event_time,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            adj_close: self.adj_close,
            volume: self.volume,
        }
    }

    /// UTC calendar date of the event, as days since 1970-01-01.
    pub fn trade_date(&self) -> i32 {
        self.as_ref().trade_date()
    }
}

/// A tick whose symbol may borrow from the message it was decoded from: what the consumer
/// decodes, so that a million events do not cost a million symbol allocations.
#[derive(Debug, Clone, PartialEq)]
pub struct TickRef<'a> {
    pub symbol: Cow<'a, str>,
    pub event_time: i64,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    pub adj_close: Option<f64>,
    pub volume: Option<i64>,
}

impl<'a> TickRef<'a> {
    /// Checks the values a lake must never hold (see [`Tick::validate`]).
    pub fn validate(&self) -> Result<(), TickError> {
        if self.symbol.is_empty() {
            // A lake partition needs a value: Delta and Hive read an empty one as NULL.
            return Err(field_err("symbol", "is empty".into()));
        }
        if self.symbol.len() > MAX_SYMBOL_BYTES {
            return Err(field_err(
                "symbol",
                format!(
                    "{} bytes, longer than {MAX_SYMBOL_BYTES}",
                    self.symbol.len()
                ),
            ));
        }
        if self.symbol.chars().any(char::is_control) {
            return Err(field_err("symbol", "contains a control character".into()));
        }
        if !(MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(&self.event_time) {
            return Err(field_err(
                "event_time",
                format!("{} ms is outside years 1..9999", self.event_time),
            ));
        }
        for (name, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("adj_close", self.adj_close),
        ] {
            if let Some(v) = value {
                if !v.is_finite() {
                    return Err(field_err(name, format!("{v} is not a finite number")));
                }
                if v < 0.0 {
                    return Err(field_err(name, format!("{v} is negative")));
                }
            }
        }
        if let Some(v) = self.volume
            && v < 0
        {
            return Err(field_err("volume", format!("{v} is negative")));
        }
        Ok(())
    }

    /// UTC calendar date of the event, as days since 1970-01-01.
    pub fn trade_date(&self) -> i32 {
        self.event_time.div_euclid(MS_PER_DAY) as i32
    }

    /// The owned tick (the symbol copied if it was borrowed).
    pub fn into_owned(self) -> Tick {
        Tick {
            symbol: self.symbol.into_owned(),
            event_time: self.event_time,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            adj_close: self.adj_close,
            volume: self.volume,
        }
    }
}

fn field_err(field: &'static str, message: String) -> TickError {
    TickError::Field { field, message }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in ms since the epoch.
const MIN_EVENT_TIME: i64 = -62_135_596_800_000;
const MAX_EVENT_TIME: i64 = 253_402_300_799_999;

/// The tick the unit tests of this module's files share.
#[cfg(test)]
fn sample() -> Tick {
    Tick {
        symbol: "AAPL".into(),
        event_time: parse_iso_millis("2000-03-01").unwrap(),
        open: Some(118.56),
        high: Some(132.06),
        low: Some(118.5),
        close: Some(130.31),
        adj_close: None,
        volume: Some(38_478_000),
    }
}

/// How many cases each property test runs: `STOCKLAKE_FUZZ_CASES`, default 256 (CI); set it
/// higher for a longer search.
#[cfg(test)]
pub(crate) fn fuzz_cases() -> u32 {
    std::env::var("STOCKLAKE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}
