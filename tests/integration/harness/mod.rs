//! Shared test harness: the embedded broker, unique names, running the real binary, reading a
//! topic back with a plain consumer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use stocklake::kafka::{BrokerOptions, EmbeddedBroker};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample_csv() -> PathBuf {
    repo().join("data/stocks.csv")
}

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A broker with one topic of `partitions` partitions.
pub fn broker_with_topic(partitions: i32) -> (EmbeddedBroker, String) {
    let topic = unique("ticks");
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![(topic.clone(), partitions)],
        ..Default::default()
    })
    .expect("embedded broker starts");
    (broker, topic)
}

/// Runs the stocklake binary with these arguments from the repository root.
pub fn stocklake(args: &[&str]) -> Output {
    stocklake_in(&repo(), args)
}

pub fn stocklake_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stocklake"))
        .args(args)
        .current_dir(dir)
        .env_remove("STOCKLAKE_LAKE")
        .env_remove("RUST_LOG")
        .output()
        .expect("stocklake binary runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// One message read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Sum of the high watermarks of a topic's partitions: how many messages it holds.
pub fn topic_size(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("size"))
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            let (lo, hi) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            hi - lo
        })
        .sum()
}

/// Reads every message of the topic from the beginning, until `expected` arrived (and a short
/// quiet period shows no more come) or `timeout` passes.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + timeout;
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                quiet_since = None;
                out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {
                if out.len() >= expected {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(500) {
                        break;
                    }
                }
            }
        }
    }
    out
}

pub mod golden;
pub mod lake;
pub mod moto;

pub use golden::*;

/// Per-partition message counts of a topic (high minus low watermark).
pub fn partition_sizes(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> std::collections::HashMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("size"))
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            let (lo, hi) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            assert_eq!(
                lo, 0,
                "the mock broker evicted messages of partition {p}: the test stream is too large"
            );
            (p, hi - lo)
        })
        .collect()
}

/// Produces ticks flat out with the library's producer; panics unless all are acknowledged.
pub fn produce_ticks(
    bootstrap: &str,
    topic: &str,
    ticks: impl Iterator<Item = stocklake::tick::Tick>,
) -> u64 {
    let settings = stocklake::kafka::KafkaSettings {
        brokers: bootstrap.to_string(),
        properties: vec![],
    };
    let producer = stocklake::kafka::Producer::new(&settings, topic).unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    let summary = stocklake::kafka::producer::produce(
        &producer,
        ticks,
        &mut stocklake::source::Pacer::new(stocklake::source::Pacing::FlatOut),
        None,
        &never,
        &never,
        |_| {},
    )
    .unwrap();
    summary.check().unwrap();
    summary.progress.acked
}

/// Produces raw key/value messages; panics unless all are acknowledged.
pub fn produce_raw(bootstrap: &str, topic: &str, messages: &[(Vec<u8>, Vec<u8>)]) {
    let settings = stocklake::kafka::KafkaSettings {
        brokers: bootstrap.to_string(),
        properties: vec![],
    };
    let producer = stocklake::kafka::Producer::new(&settings, topic).unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    let s = stocklake::kafka::producer::produce_encoded(&producer, messages, &never).unwrap();
    s.check().unwrap();
}

/// `stocklake consume` into `lake` until idle for a second.
pub fn consume_until_idle(
    bootstrap: &str,
    topic: &str,
    group: &str,
    lake: &Path,
    extra: &[&str],
) -> Output {
    let lake = lake.to_str().unwrap();
    let mut args = vec![
        "consume",
        "--brokers",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--lake",
        lake,
        "--exit-when-idle",
        "1500ms",
        "-X",
        "session.timeout.ms=6000",
        "-X",
        "heartbeat.interval.ms=1000",
    ];
    args.extend_from_slice(extra);
    stocklake(&args)
}

/// Starts `stocklake consume` as a child process (stderr to a file in `log_dir`).
pub fn spawn_consumer(
    bootstrap: &str,
    topic: &str,
    group: &str,
    lake: &Path,
    extra: &[&str],
    log: &Path,
) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_stocklake"))
        .args([
            "consume",
            "--brokers",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--lake",
        ])
        .arg(lake)
        .args([
            "-X",
            "session.timeout.ms=3000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .args(extra)
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("stocklake consume starts")
}

/// Produces `rows` synthetic ticks at `rate` events/s on a background thread.
pub fn background_stream(
    bootstrap: &str,
    topic: &str,
    rows: u64,
    rate: f64,
) -> std::thread::JoinHandle<u64> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || {
        let settings = stocklake::kafka::KafkaSettings {
            brokers: bootstrap,
            properties: vec![],
        };
        let producer = stocklake::kafka::Producer::new(&settings, &topic).unwrap();
        let never = std::sync::atomic::AtomicBool::new(false);
        let ticks = stocklake::source::Synthetic::new(stocklake::source::SyntheticOptions {
            symbols: 60,
            rows,
            seed: 11,
            ..Default::default()
        });
        let s = stocklake::kafka::producer::produce(
            &producer,
            ticks,
            &mut stocklake::source::Pacer::new(stocklake::source::Pacing::Rate(rate)),
            None,
            &never,
            &never,
            |_| {},
        )
        .unwrap();
        s.check().unwrap();
        s.progress.acked
    })
}
