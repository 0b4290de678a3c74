//! THE record: one stock tick (an OHLCV bar), its JSON wire format, its Arrow schema and its
//! Arrow batch builder. Every other module takes these definitions from here.
//!
//! Wire format (one JSON object per Kafka message, message key = symbol, UTF-8):
//! ```json
//! {"symbol":"AAPL","event_time":"2000-03-01T00:00:00.000Z","open":118.56,"high":132.06,
//!  "low":118.5,"close":130.31,"adj_close":31.68,"volume":38478000}
//! ```
//! `event_time` is ISO 8601 in UTC with milliseconds; prices are JSON numbers or `null`;
//! `volume` is an integer or `null`. Unknown fields are ignored, so the format can grow.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

/// Milliseconds in one day.
pub const MS_PER_DAY: i64 = 86_400_000;
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

    /// Appends the wire-format JSON of this tick to `out`.
    pub fn encode_json(&self, out: &mut Vec<u8>) {
        let wire = WireOut {
            symbol: &self.symbol,
            event_time: IsoMillis(self.event_time),
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            adj_close: self.adj_close,
            volume: self.volume,
        };
        // Writing to a Vec cannot fail and every field serialises.
        serde_json::to_writer(out, &wire).expect("tick JSON serialisation is infallible");
    }

    /// The wire-format JSON of this tick as a String.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(160);
        self.encode_json(&mut out);
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Decodes and validates one wire-format message.
    pub fn decode_json(bytes: &[u8]) -> Result<Tick, TickError> {
        TickRef::decode_json(bytes).map(TickRef::into_owned)
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
    /// Decodes and validates one wire-format message.
    ///
    /// Messages in exactly the shape [`Tick::encode_json`] writes (every producer of ours) take
    /// a hand-written path that is several times faster than serde; anything else (other key
    /// order, whitespace, escapes, unknown fields, errors) takes serde's, so both accept the
    /// same messages with the same values and every error comes from one place.
    pub fn decode_json(bytes: &'a [u8]) -> Result<TickRef<'a>, TickError> {
        let tick = match decode_canonical(bytes) {
            Some(t) => t,
            None => Self::decode_json_serde(bytes)?,
        };
        tick.validate()?;
        Ok(tick)
    }

    /// The general decoder (not validated).
    fn decode_json_serde(bytes: &'a [u8]) -> Result<TickRef<'a>, TickError> {
        let text = std::str::from_utf8(bytes).map_err(|e| TickError::Utf8(e.to_string()))?;
        let wire: WireIn<'_> =
            serde_json::from_str(text).map_err(|e| TickError::Json(e.to_string()))?;
        let event_time = parse_iso_millis(&wire.event_time).ok_or_else(|| {
            field_err(
                "event_time",
                format!("{:?} is not an ISO 8601 UTC timestamp", wire.event_time),
            )
        })?;
        Ok(TickRef {
            symbol: wire.symbol,
            event_time,
            open: wire.open,
            high: wire.high,
            low: wire.low,
            close: wire.close,
            adj_close: wire.adj_close,
            volume: wire.volume,
        })
    }

    /// Checks the values a lake must never hold (see [`Tick::validate`]).
    pub fn validate(&self) -> Result<(), TickError> {
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

/// The fast path of [`TickRef::decode_json`]: the canonical shape only, else None.
///
/// Accepts exactly `{"symbol":"S","event_time":"T","open":N,"high":N,"low":N,"close":N,
/// "adj_close":N,"volume":I}` without whitespace, where S and T hold no escapes or control
/// characters, N is a non-negative JSON number or `null` and I a non-negative integer of at most
/// 18 digits or `null`. For these, serde's reading is the same: strings are taken verbatim,
/// numbers are rounded correctly by both (serde_json's `float_roundtrip`). Everything else
/// (including negative numbers, so that `-0` never differs) goes to serde.
fn decode_canonical(b: &[u8]) -> Option<TickRef<'_>> {
    let mut r = Canonical { b, i: 0 };
    r.lit(b"{\"symbol\":\"")?;
    let symbol = r.plain_str()?;
    r.lit(b",\"event_time\":\"")?;
    let event_time = parse_iso_millis(r.plain_str()?)?;
    r.lit(b",\"open\":")?;
    let open = r.number()?;
    r.lit(b",\"high\":")?;
    let high = r.number()?;
    r.lit(b",\"low\":")?;
    let low = r.number()?;
    r.lit(b",\"close\":")?;
    let close = r.number()?;
    r.lit(b",\"adj_close\":")?;
    let adj_close = r.number()?;
    r.lit(b",\"volume\":")?;
    let volume = r.integer()?;
    r.lit(b"}")?;
    (r.i == b.len()).then_some(TickRef {
        symbol: Cow::Borrowed(symbol),
        event_time,
        open,
        high,
        low,
        close,
        adj_close,
        volume,
    })
}

/// 10^0 ..= 10^22, every one exactly representable as f64.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Canonical<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Canonical<'a> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        let end = self.i + s.len();
        (self.b.get(self.i..end)? == s).then(|| self.i = end)
    }

    /// A string body up to its closing quote, with no escapes or control characters.
    fn plain_str(&mut self) -> Option<&'a str> {
        let start = self.i;
        let len = self.b[start..].iter().position(|&c| c == b'"')?;
        let body = &self.b[start..start + len];
        if body.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i = start + len + 1;
        std::str::from_utf8(body).ok()
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn null(&mut self) -> bool {
        self.lit(b"null").is_some()
    }

    /// `null` or a non-negative JSON number, rounded correctly to f64.
    fn number(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        let (mut mantissa, mut digits) = (0u64, 0usize);
        let int = self.accumulate(&mut mantissa, &mut digits);
        if int == 0 || (int > 1 && self.b[start] == b'0') {
            return None;
        }
        let mut scale = 0;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            scale = self.accumulate(&mut mantissa, &mut digits);
            if scale == 0 {
                return None;
            }
        }
        let mut exponent = false;
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            exponent = true;
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        // Clinger's fast path: with at most 15 digits the mantissa and 10^scale are exact
        // doubles, so one IEEE division rounds correctly. Prices nearly always qualify.
        if !exponent && digits <= 15 && scale < EXACT_POWERS_OF_TEN.len() {
            return Some(Some(mantissa as f64 / EXACT_POWERS_OF_TEN[scale]));
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        let v: f64 = text.parse().ok()?;
        // serde_json calls an overflow an error; let it say so.
        v.is_finite().then_some(Some(v))
    }

    /// Reads digits into `mantissa` (while it has room) and counts them into `digits`; returns
    /// how many were read.
    fn accumulate(&mut self, mantissa: &mut u64, digits: &mut usize) -> usize {
        let start = self.i;
        while let Some(&c) = self.b.get(self.i)
            && c.is_ascii_digit()
        {
            if *digits < 19 {
                *mantissa = *mantissa * 10 + u64::from(c - b'0');
            }
            *digits += 1;
            self.i += 1;
        }
        self.i - start
    }

    /// `null` or a non-negative integer of at most 18 digits.
    fn integer(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        let (mut value, mut digits) = (0u64, 0usize);
        let n = self.accumulate(&mut value, &mut digits);
        if n == 0 || n > 18 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        // At most 18 digits: below 10^18, inside i64.
        Some(Some(value as i64))
    }
}

fn field_err(field: &'static str, message: String) -> TickError {
    TickError::Field { field, message }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in ms since the epoch.
const MIN_EVENT_TIME: i64 = -62_135_596_800_000;
const MAX_EVENT_TIME: i64 = 253_402_300_799_999;

#[derive(Serialize)]
struct WireOut<'a> {
    symbol: &'a str,
    event_time: IsoMillis,
    open: Option<f64>,
    high: Option<f64>,
    low: Option<f64>,
    close: Option<f64>,
    adj_close: Option<f64>,
    volume: Option<i64>,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(borrow)]
    event_time: Cow<'a, str>,
    #[serde(default)]
    open: Option<f64>,
    #[serde(default)]
    high: Option<f64>,
    #[serde(default)]
    low: Option<f64>,
    #[serde(default)]
    close: Option<f64>,
    #[serde(default)]
    adj_close: Option<f64>,
    #[serde(default)]
    volume: Option<i64>,
}

/// A timestamp that serialises as `YYYY-MM-DDTHH:MM:SS.mmmZ` without allocating.
struct IsoMillis(i64);

impl Serialize for IsoMillis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        let n = format_iso_millis(self.0, &mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..n]).expect("ASCII"))
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ` into `buf`, returning its length.
pub fn format_iso_millis(ms: i64, buf: &mut [u8; 32]) -> usize {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    use std::io::Write;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    write!(
        cur,
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
    )
    .expect("32 bytes hold any year 1..9999 timestamp");
    cur.position() as usize
}

/// Parses an ISO 8601 timestamp in UTC (`Z` or `+00:00`), with optional fraction of a second,
/// to milliseconds since the epoch. A bare date (`YYYY-MM-DD`) means midnight UTC.
pub fn parse_iso_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0i64, |acc, c| acc * 10 + (c - b'0') as i64),
        )
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32) as i64 {
        return None;
    }
    let day_ms = days_from_civil(y, mo as u32, d as u32) * MS_PER_DAY;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !(b[10] == b'T' || b[10] == b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds: the first three digits, padded; finer digits are truncated.
        let digits = &b[start..i];
        for k in 0..3 {
            frac_ms = frac_ms * 10 + digits.get(k).map_or(0, |c| (c - b'0') as i64);
        }
    }
    match &b[i..] {
        b"Z" | b"z" | b"+00:00" | b"+0000" | b"" => {}
        _ => return None,
    }
    Some(day_ms + ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms)
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

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

    #[test]
    fn json_round_trip_is_exact() {
        let t = sample();
        let json = t.to_json();
        assert_eq!(
            json,
            r#"{"symbol":"AAPL","event_time":"2000-03-01T00:00:00.000Z","open":118.56,"high":132.06,"low":118.5,"close":130.31,"adj_close":null,"volume":38478000}"#
        );
        assert_eq!(Tick::decode_json(json.as_bytes()).unwrap(), t);
    }

    #[test]
    fn civil_conversions_round_trip() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn iso_parsing_accepts_utc_forms_only() {
        let base = parse_iso_millis("2013-03-01T00:00:00Z").unwrap();
        assert_eq!(parse_iso_millis("2013-03-01"), Some(base));
        assert_eq!(parse_iso_millis("2013-03-01 00:00:00"), Some(base));
        assert_eq!(parse_iso_millis("2013-03-01T00:00:00.5Z"), Some(base + 500));
        assert_eq!(
            parse_iso_millis("2013-03-01T00:00:00.123456+00:00"),
            Some(base + 123)
        );
        assert_eq!(parse_iso_millis("2013-02-29"), None);
        assert_eq!(parse_iso_millis("2013-03-01T00:00:00+01:00"), None);
        assert_eq!(parse_iso_millis("2013-03-01T24:00:00Z"), None);
        assert_eq!(parse_iso_millis("garbage"), None);
    }

    #[test]
    fn bad_events_are_rejected_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not a valid tick JSON"),
            (b"\xff\xfe", "not UTF-8"),
            (br#"{"event_time":"2000-01-01"}"#, "missing field `symbol`"),
            (
                br#"{"symbol":"A","event_time":"2000-01-01","open":"1"}"#,
                "invalid type",
            ),
            (
                br#"{"symbol":"A","event_time":"2000-01-01","open":-1}"#,
                "negative",
            ),
            (br#"{"symbol":"A","event_time":"yesterday"}"#, "event_time"),
            (
                br#"{"symbol":"A","event_time":"2000-01-01","volume":1.5}"#,
                "invalid type",
            ),
            (
                br#"{"symbol":"A","event_time":"2000-01-01","close":NaN}"#,
                "not a valid",
            ),
        ];
        for (input, want) in cases {
            let err = Tick::decode_json(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err} lacks {want}");
        }
    }

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
    /// What serde alone makes of a message: the reference the fast path must equal.
    fn serde_only(b: &[u8]) -> Result<TickRef<'_>, TickError> {
        let t = TickRef::decode_json_serde(b)?;
        t.validate()?;
        Ok(t)
    }

    /// Equal as decoded values, with floats compared bit for bit.
    fn same(a: &Result<TickRef<'_>, TickError>, b: &Result<TickRef<'_>, TickError>) -> bool {
        let bits = |t: &TickRef<'_>| {
            [t.open, t.high, t.low, t.close, t.adj_close].map(|v| v.map(f64::to_bits))
        };
        match (a, b) {
            (Ok(x), Ok(y)) => {
                x.symbol == y.symbol
                    && x.event_time == y.event_time
                    && x.volume == y.volume
                    && bits(x) == bits(y)
            }
            (Err(x), Err(y)) => x == y,
            _ => false,
        }
    }

    #[test]
    fn the_fast_path_takes_what_we_write_and_agrees_with_serde() {
        let opts = crate::source::SyntheticOptions {
            symbols: 40,
            rows: 20_000,
            seed: 11,
            ..Default::default()
        };
        let mut ticks: Vec<Tick> = crate::source::Synthetic::new(opts).collect();
        let mut odd = sample();
        odd.symbol = "ünï©ødé ../x %2F".into();
        odd.open = Some(0.0);
        odd.high = Some(1e-7);
        odd.low = Some(123_456_789_012_345.67);
        odd.close = Some(f64::MAX);
        odd.adj_close = Some(5e-324);
        odd.volume = Some(999_999_999_999_999_999);
        ticks.push(odd);
        for t in &ticks {
            let json = t.to_json();
            let fast = decode_canonical(json.as_bytes())
                .unwrap_or_else(|| panic!("canonical message not taken by the fast path: {json}"));
            assert!(same(&Ok(fast), &serde_only(json.as_bytes())), "{json}");
            assert_eq!(
                TickRef::decode_json(json.as_bytes()).unwrap().into_owned(),
                *t
            );
        }
    }

    #[test]
    fn numbers_parse_as_serde_parses_them() {
        // A deterministic spread of magnitudes and spellings, fast path and slow path alike.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut texts = vec![
            "0".to_string(),
            "0.0".into(),
            "00".into(),
            "0.000000000000000000000000001".into(),
            "1e22".into(),
            "1E+2".into(),
            "9007199254740993".into(),
            "123456789012345678901234567890".into(),
            "1.7976931348623157e308".into(),
            "1e309".into(),
            "2.2250738585072011e-308".into(),
            "1.".into(),
            ".5".into(),
            "01.5".into(),
            "1.5e".into(),
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x >> 2) % 1e12;
            let cents = (x % 10_000_000) as f64 / 100.0;
            texts.push(format!("{v}"));
            texts.push(format!("{cents}"));
            texts.push(format!("{cents:.4}"));
            texts.push(format!("{v:e}"));
            texts.push(format!("{}", x % 1_000_000_000_000_000));
        }
        for t in texts {
            let json = format!(
                r#"{{"symbol":"A","event_time":"2000-01-01T00:00:00.000Z","open":{t},"high":null,"low":null,"close":null,"adj_close":null,"volume":null}}"#
            );
            let b = json.as_bytes();
            assert!(same(&TickRef::decode_json(b), &serde_only(b)), "{json}");
        }
    }

    #[test]
    fn damaged_messages_decode_as_serde_decodes_them() {
        let base = sample().to_json().into_bytes();
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for i in 0..base.len() {
            let mut cut = base.clone();
            cut.remove(i);
            variants.push(cut);
            variants.push(base[..i].to_vec());
            for c in [
                b' ', b'"', b'\\', b'-', b'+', b'.', b'e', b'0', b'9', b'n', b'}', b',', b':',
                0x01, 0x7f, 0xff,
            ] {
                let mut swapped = base.clone();
                swapped[i] = c;
                variants.push(swapped);
                let mut inserted = base.clone();
                inserted.insert(i, c);
                variants.push(inserted);
            }
        }
        for v in &variants {
            assert!(
                same(&TickRef::decode_json(v), &serde_only(v)),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
}
