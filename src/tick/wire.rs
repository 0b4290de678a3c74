//! The JSON wire format of a tick: encoding, the hand-written decoder of the canonical shape
//! (the fast path) and the serde decoder every other message takes.
//!
//! One JSON object per Kafka message, message key = symbol, UTF-8:
//! ```json
//! {"symbol":"AAPL","event_time":"2000-03-01T00:00:00.000Z","open":118.56,"high":132.06,
//!  "low":118.5,"close":130.31,"adj_close":31.68,"volume":38478000}
//! ```
//! `event_time` is ISO 8601 in UTC with milliseconds; prices are JSON numbers or `null`;
//! `volume` is an integer or `null`. Unknown fields are ignored, so the format can grow.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::calendar::{format_iso_millis, parse_iso_millis};
use super::{Tick, TickError, TickRef, field_err};

impl Tick {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::sample;

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
            (
                br#"{"symbol":"","event_time":"2000-01-01"}"#,
                "`symbol`: is empty",
            ),
        ];
        for (input, want) in cases {
            let err = Tick::decode_json(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err} lacks {want}");
        }
    }

    /// Nesting a million levels deep (no size limit at this level: the consumer's
    /// `--max-event-bytes` comes first) never overflows the stack: serde_json refuses depth
    /// past 128 in the fields it reads, and skips an unknown field's value without recursing,
    /// so deep nesting there is ignored like any unknown field.
    #[test]
    fn deep_nesting_is_refused_or_skipped_without_recursion() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // `\u{7b}` is `{` and `\u{7d}` is `}`: an unbalanced brace in a literal would end this
        // test module early for tests/integration/layers.rs, which counts braces.
        let (open, close) = ("\u{7b}", "\u{7d}");
        let head = format!("{open}\"symbol\":\"A\",\"event_time\":\"2000-01-01T00:00:00.000Z\"");
        for n in [200, 100_000, 1_000_000] {
            let cases = [
                (deep(n), Some("invalid type: sequence")),
                ("[".repeat(n), Some("invalid type: sequence")),
                (
                    format!("{head},\"open\":{}{close}", deep(n)),
                    Some("invalid type"),
                ),
                (
                    format!("{head},\"x\":{}{close}", format!("{open}\"a\":").repeat(n)),
                    Some("at line 1"),
                ),
                (format!("{head},\"x\":{}{close}", deep(n)), None),
            ];
            for (json, want) in cases {
                let got = Tick::decode_json(json.as_bytes());
                match want {
                    Some(w) => {
                        let e = got.unwrap_err().to_string();
                        assert!(e.contains(w), "{n} levels: {e} lacks {w}");
                    }
                    None => assert_eq!(got.unwrap().symbol, "A", "{n} levels"),
                }
            }
        }
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

/// Property tests (cases: `STOCKLAKE_FUZZ_CASES`, default 256): the fast path and serde read
/// every canonical message alike, and no input makes the decoder panic.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::tick::fuzz_cases;

    fn price() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            (0u64..10_000_000_000).prop_map(|c| Some(c as f64 / 100.0)),
            (0.0f64..1e300).prop_map(Some),
            (0.0f64..1e-300).prop_map(Some),
        ]
    }

    fn tick() -> impl Strategy<Value = Tick> {
        (
            "[A-Z][A-Z.\\-]{0,7}|[\\PC]{1,8}",
            -62_135_596_800_000i64..253_402_300_799_999,
            (price(), price(), price(), price(), price()),
            prop_oneof![Just(None), any::<i64>().prop_map(|v| Some(v.abs() / 3))],
        )
            .prop_map(
                |(symbol, event_time, (open, high, low, close, adj), volume)| Tick {
                    symbol,
                    event_time,
                    open,
                    high,
                    low,
                    close,
                    adj_close: adj,
                    volume,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

        #[test]
        fn the_fast_path_reads_what_serde_reads(t in tick()) {
            let json = t.to_json();
            let slow = TickRef::decode_json_serde(json.as_bytes());
            if let Some(fast) = decode_canonical(json.as_bytes()) {
                prop_assert_eq!(Ok(fast), slow.clone());
            }
            prop_assert_eq!(slow.map(TickRef::into_owned), Ok(t));
        }

        #[test]
        fn a_changed_byte_is_read_alike_or_refused_naming_where(
            t in tick(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = t.to_json().into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let slow = TickRef::decode_json_serde(&bytes);
            if let Some(fast) = decode_canonical(&bytes) {
                prop_assert_eq!(Ok(fast), slow.clone());
            }
            if let Err(TickError::Json(e)) = &slow {
                prop_assert!(e.contains("column"), "{}", e);
            }
            // Validation may refuse it too; it never panics.
            let _ = Tick::decode_json(&bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = Tick::decode_json(&bytes);
        }
    }
}
