//! Hostile events from a raw client (issue 16): a plain librdkafka producer, not `stocklake
//! produce`, sends a 10 MB message, deep nesting, duplicate keys, numbers out of range, invalid
//! UTF-8, control characters, a 1 KB symbol, an empty value and a null payload between good
//! events. Each is quarantined with its reason or accepted as the README's wire format says; the
//! consumer never stops; every good event lands once; pyarrow and deltalake read both tables.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use stocklake::lake::rejects::{KEPT_VALUE_BYTES, Reject, sha256_hex};
use stocklake::tick::{Tick, parse_iso_millis};

use crate::harness::kafka::{broker_with_topic, consume_until_idle, partition_sizes};
use crate::harness::lake::{Row, assert_exactly_once, assert_same_ticks, read_lake, read_rejects};
use crate::harness::{cmd, python, repo, stderr, stdout};

/// What must become of a message.
enum Want {
    /// Quarantined, the reason containing this text.
    Reject(&'static str),
    /// Accepted as this tick.
    Tick(Tick),
}

struct Hostile {
    what: &'static str,
    partition: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    want: Want,
}

const TIME: &str = "2024-01-02T00:00:00.000Z";

fn bare(symbol: &str) -> Tick {
    Tick {
        symbol: symbol.into(),
        event_time: parse_iso_millis(TIME).unwrap(),
        open: None,
        high: None,
        low: None,
        close: None,
        adj_close: None,
        volume: None,
    }
}

/// `{"symbol":"<symbol>","event_time":"…"<rest>}` as bytes.
fn json(symbol: &str, rest: &str) -> Vec<u8> {
    format!(r#"{{"symbol":"{symbol}","event_time":"{TIME}"{rest}}}"#).into_bytes()
}

fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

fn reject(what: &'static str, value: Vec<u8>, why: &'static str) -> Hostile {
    Hostile {
        what,
        partition: 0,
        key: Some(b"K".to_vec()),
        value: Some(value),
        want: Want::Reject(why),
    }
}

fn accept(what: &'static str, value: Vec<u8>, tick: Tick) -> Hostile {
    Hostile {
        what,
        partition: 0,
        key: Some(tick.symbol.clone().into_bytes()),
        value: Some(value),
        want: Want::Tick(tick),
    }
}

/// 10 MiB of hex digits that lz4 cannot shrink much, inside a valid tick.
fn ten_megabytes() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let pad: String = (0..10 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdef"[(x & 15) as usize])
        })
        .collect();
    json("BIG", &format!(r#","close":1.5,"pad":"{pad}""#))
}

fn cases() -> Vec<Hostile> {
    let with = |symbol: &str, f: &dyn Fn(&mut Tick)| {
        let mut t = bare(symbol);
        f(&mut t);
        t
    };
    let long = "S".repeat(1024);
    let max_symbol = "M".repeat(64);
    let valid = json("OK", r#","close":1.5"#);
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend(&valid);
    let mut trailing = valid.clone();
    trailing.extend(b" x");
    vec![
        Hostile {
            what: "10 MB message (own partition)",
            partition: 1,
            key: Some(b"BIG".to_vec()),
            value: Some(ten_megabytes()),
            want: Want::Reject("oversized: 10485837 bytes, the limit is 65536"),
        },
        reject(
            "nesting, 30k levels",
            deep(30_000).into_bytes(),
            "invalid type: sequence",
        ),
        reject(
            "nesting, 100k levels",
            deep(100_000).into_bytes(),
            "oversized: 200000 bytes",
        ),
        reject(
            "nesting, 30k levels in `open`",
            json("N1", &format!(r#","open":{}"#, deep(30_000))),
            "invalid type: sequence, expected f64 at line 1 column 62",
        ),
        accept(
            "nesting, 30k levels in an unknown field",
            json("NESTX", &format!(r#","close":2.5,"x":{}"#, deep(30_000))),
            with("NESTX", &|t| t.close = Some(2.5)),
        ),
        reject(
            "duplicate key `close`",
            json("DUPC", r#","close":1.5,"close":2.5"#),
            "duplicate field `close`",
        ),
        reject(
            "duplicate key `symbol`",
            br#"{"symbol":"A","symbol":"B","event_time":"2024-01-02"}"#.to_vec(),
            "duplicate field `symbol`",
        ),
        accept(
            "duplicate unknown key `price`",
            json("DUPX", r#","close":1.5,"price":1,"price":2"#),
            with("DUPX", &|t| t.close = Some(1.5)),
        ),
        reject(
            "close 1e400",
            json("R1", r#","close":1e400"#),
            "number out of range",
        ),
        reject(
            "volume -1",
            json("R2", r#","volume":-1"#),
            "field `volume`: -1 is negative",
        ),
        reject(
            "volume 2^63 (i64 overflow)",
            json("R3", r#","volume":9223372036854775808"#),
            "invalid value: integer `9223372036854775808`, expected i64",
        ),
        reject(
            "volume of 30 digits",
            json("R4", r#","volume":123456789012345678901234567890"#),
            "invalid type: floating point",
        ),
        accept(
            "volume 2^63-1",
            json("MAXVOL", r#","volume":9223372036854775807"#),
            with("MAXVOL", &|t| t.volume = Some(i64::MAX)),
        ),
        accept(
            "close 1e-400 (underflow)",
            json("TINY", r#","close":1e-400"#),
            with("TINY", &|t| t.close = Some(0.0)),
        ),
        reject(
            "event_time year 10000",
            br#"{"symbol":"R5","event_time":"10000-01-01T00:00:00.000Z"}"#.to_vec(),
            "field `event_time`",
        ),
        reject(
            "invalid UTF-8 in the symbol",
            json("\u{1}", "")
                .iter()
                .map(|&b| if b == 1 { 0xC3 } else { b })
                .collect(),
            "not UTF-8",
        ),
        reject(
            "lone surrogate escape",
            json(r"\ud800", ""),
            "unexpected end of hex escape",
        ),
        Hostile {
            what: "invalid UTF-8 key, good value",
            partition: 0,
            key: Some(b"\xff\xfe".to_vec()),
            value: Some(json("BADKEY", r#","close":3.5"#)),
            want: Want::Tick(with("BADKEY", &|t| t.close = Some(3.5))),
        },
        reject(
            "NUL escaped in the symbol",
            json(r"A\u0000B", ""),
            "field `symbol`: contains a control character",
        ),
        reject(
            "NUL byte in the symbol",
            json("A\0B", ""),
            "control character (\\u0000-\\u001F) found while parsing a string",
        ),
        reject(
            "DEL in the symbol",
            json("A\u{7f}B", ""),
            "field `symbol`: contains a control character",
        ),
        reject(
            "C1 control U+0085 in the symbol",
            json("A\u{85}B", ""),
            "field `symbol`: contains a control character",
        ),
        accept(
            "bidi override U+202E in the symbol (not a control character)",
            json("\u{202e}RTL", ""),
            bare("\u{202e}RTL"),
        ),
        reject(
            "1 KB symbol",
            json(&long, ""),
            "field `symbol`: 1024 bytes, longer than 64",
        ),
        accept("64-byte symbol", json(&max_symbol, ""), bare(&max_symbol)),
        reject("empty value", Vec::new(), "empty: a value of 0 bytes"),
        Hostile {
            what: "null payload",
            partition: 0,
            key: Some(b"K".to_vec()),
            value: None,
            want: Want::Reject("empty: a null payload (a Kafka tombstone)"),
        },
        Hostile {
            what: "null key and null payload",
            partition: 0,
            key: None,
            value: None,
            want: Want::Reject("empty: a null payload"),
        },
        reject("JSON null", b"null".to_vec(), "invalid type: null"),
        reject("byte order mark", bom, "expected value at line 1 column 1"),
        reject("trailing characters", trailing, "trailing characters"),
    ]
}

/// Where a message landed: (partition, offset), or the delivery error.
type Delivered = Result<(i32, i64), String>;

/// A message to send: (partition, key, value); None is a null key or payload.
type Raw<'a> = (i32, Option<&'a [u8]>, Option<&'a [u8]>);

/// Delivery reports by message index.
struct Reports(Mutex<HashMap<usize, Delivered>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let r = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap().insert(*index, r);
    }
}

/// Sends each (partition, key, value) with a plain librdkafka producer (no compression, a
/// 20 MB message limit); returns each message's (partition, offset).
fn send_raw(bootstrap: &str, topic: &str, messages: &[Raw<'_>]) -> Vec<(i32, i64)> {
    let producer: BaseProducer<Reports> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "20000000")
        .set("compression.type", "none")
        .set("linger.ms", "0")
        .create_with_context(Reports(Mutex::new(HashMap::new())))
        .expect("raw producer");
    for (i, (partition, key, value)) in messages.iter().enumerate() {
        let mut record = BaseRecord::<[u8], [u8], Box<usize>>::with_opaque_to(topic, Box::new(i))
            .partition(*partition);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        producer.send(record).map_err(|(e, _)| e).expect("queued");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flushed");
    let reports = producer.context().0.lock().unwrap();
    (0..messages.len())
        .map(|i| match reports.get(&i) {
            Some(Ok(at)) => *at,
            other => panic!("message {i} not acknowledged: {other:?}"),
        })
        .collect()
}

fn good(i: i64) -> Tick {
    let mut t = bare(["GA", "GB", "GC"][i as usize % 3]);
    t.event_time += i * stocklake::tick::MS_PER_DAY;
    t.close = Some(i as f64 / 4.0);
    t.volume = Some(i);
    t
}

#[test]
fn hostile_events_are_quarantined_or_accepted_as_documented() {
    let (broker, topic) = broker_with_topic(2);
    let bootstrap = broker.bootstrap_servers();
    let cases = cases();
    // Ten good events before each hostile one on partition 0, ten after the last.
    let goods: Vec<(Tick, Vec<u8>)> = (0..10 * cases.len() as i64 + 10)
        .map(|i| {
            let t = good(i);
            let v = t.to_json().into_bytes();
            (t, v)
        })
        .collect();
    let mut messages: Vec<Raw<'_>> = Vec::new();
    let mut of_message: Vec<Option<usize>> = Vec::new();
    let mut goods_iter = goods.iter();
    for (c, h) in cases.iter().enumerate() {
        for (t, v) in goods_iter.by_ref().take(10) {
            messages.push((0, Some(t.symbol.as_bytes()), Some(v)));
            of_message.push(None);
        }
        messages.push((h.partition, h.key.as_deref(), h.value.as_deref()));
        of_message.push(Some(c));
    }
    for (t, v) in goods_iter {
        messages.push((0, Some(t.symbol.as_bytes()), Some(v)));
        of_message.push(None);
    }
    let at = send_raw(bootstrap, &topic, &messages);
    let sizes = partition_sizes(bootstrap, &topic, 2);
    assert_eq!(sizes[&0] + sizes[&1], messages.len() as i64, "{sizes:?}");

    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let out = consume_until_idle(bootstrap, &topic, dir.path(), &["--flush-rows", "25"]);
    let err = stderr(&out);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
    eprintln!("consumed in {:.1?}", started.elapsed());

    let mut want_ticks: Vec<Tick> = goods.iter().map(|(t, _)| t.clone()).collect();
    let mut want_rejects: WantRejects<'_> = HashMap::new();
    for (m, c) in of_message.iter().enumerate() {
        if let Some(c) = c {
            match &cases[*c].want {
                Want::Tick(t) => want_ticks.push(t.clone()),
                Want::Reject(why) => {
                    want_rejects.insert(at[m], (cases[*c].what, why, &cases[*c]));
                }
            }
        }
    }
    assert!(
        err.contains(&format!("committed {} rows", want_ticks.len()))
            && err.contains(&format!("and {} rejects", want_rejects.len())),
        "{err}"
    );

    // Every good event and every accepted hostile one lands once, with its values.
    let rows = read_lake(dir.path());
    assert_same_ticks(
        rows.iter().map(|r| r.tick.clone()).collect(),
        want_ticks.clone(),
    );
    let rejects: Vec<Reject> = read_rejects(dir.path());
    assert_eq!(rejects.len(), want_rejects.len());
    let wrong: Vec<String> = rejects
        .iter()
        .filter_map(|r| {
            let (what, why, _) = want_rejects.get(&(r.partition, r.offset))?;
            (!r.reason.contains(why)).then(|| format!("{what}: {:?} lacks {why:?}", r.reason))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    for r in &rejects {
        let (what, _, h) = want_rejects
            .get(&(r.partition, r.offset))
            .unwrap_or_else(|| panic!("unexpected reject {r:?}"));
        let value = h.value.as_deref().unwrap_or_default();
        assert_eq!(r.value_bytes, value.len() as u64, "{what}");
        if value.len() > KEPT_VALUE_BYTES {
            assert_eq!(r.value_sha256.as_deref(), Some(sha256_hex(value).as_str()));
            assert_eq!(r.value().unwrap(), &value[..KEPT_VALUE_BYTES], "{what}");
        } else {
            assert_eq!(r.value().unwrap(), value, "{what}");
        }
        if h.value.is_none() {
            assert_eq!((&r.value_text, &r.value_base64), (&None, &None), "{what}");
        }
    }
    let mut all = rows.clone();
    all.extend(rejects.iter().map(|r| Row {
        tick: bare("reject"),
        partition: r.partition,
        offset: r.offset,
        file: Default::default(),
    }));
    assert_exactly_once(&all, &sizes);
    eprintln!(
        "produced {} ({} good, {} hostile): {} rows ({} hostile accepted), {} rejects",
        messages.len(),
        goods.len(),
        cases.len(),
        rows.len(),
        want_ticks.len() - goods.len(),
        rejects.len()
    );

    // The audit agrees, Kafka's watermarks included.
    let audit = cmd(&["audit", "--lake"])
        .arg(dir.path())
        .args(["--brokers", bootstrap])
        .output();
    assert_eq!(
        audit.status.code(),
        Some(0),
        "{}{}",
        stdout(&audit),
        stderr(&audit)
    );

    read_with_python(dir.path(), &want_ticks, &want_rejects);
}

/// Where each expected reject is: (what, the reason's text, the message).
type WantRejects<'a> = HashMap<(i32, i64), (&'a str, &'static str, &'a Hostile)>;

/// pyarrow and deltalake read both tables of `lake` alike, with the expected rows.
fn read_with_python(lake: &std::path::Path, want_ticks: &[Tick], want_rejects: &WantRejects<'_>) {
    // pyarrow and deltalake read both tables alike.
    let check = python(&[
        repo().join("tests/py/read_lake_tables.py"),
        lake.to_path_buf(),
    ])
    .output();
    assert!(check.status.success(), "{}", stderr(&check));
    let py: serde_json::Value = serde_json::from_str(&stdout(&check)).unwrap();
    let n = want_ticks.len() as u64;
    for key in [
        "deltalake_rows",
        "pyarrow_rows",
        "dataset_rows",
        "distinct_offsets",
    ] {
        assert_eq!(py["ticks"][key].as_u64(), Some(n), "ticks {key}");
    }
    let mut symbols: Vec<String> = want_ticks.iter().map(|t| t.symbol.clone()).collect();
    symbols.sort();
    symbols.dedup();
    assert_eq!(py["ticks"]["symbols"], serde_json::json!(symbols));
    let m = want_rejects.len() as u64;
    for key in ["deltalake_rows", "pyarrow_rows"] {
        assert_eq!(py["rejects"][key].as_u64(), Some(m), "rejects {key}");
    }
    for row in py["rejects"]["rows"].as_array().unwrap() {
        let at = (row[0].as_i64().unwrap() as i32, row[1].as_i64().unwrap());
        let (what, why, h) = want_rejects[&at];
        assert!(row[2].as_str().unwrap().contains(why), "{what}: {row}");
        let len = h.value.as_ref().map_or(0, Vec::len);
        assert_eq!(row[3].as_u64(), Some(len as u64), "{what}: {row}");
        if len > KEPT_VALUE_BYTES {
            assert_eq!(
                row[4].as_u64(),
                Some(KEPT_VALUE_BYTES as u64),
                "{what}: {row}"
            );
        }
    }
}
