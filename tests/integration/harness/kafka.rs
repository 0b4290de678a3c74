//! Kafka fixtures: the embedded broker with a fresh topic, producing with the library's producer
//! (flat out or paced, on a background thread), `stocklake produce` and `stocklake consume`
//! through the binary, and reading a topic back with a plain consumer.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use stocklake::kafka::producer::{produce, produce_encoded};
use stocklake::kafka::{BrokerOptions, EmbeddedBroker, KafkaSettings, Producer};
use stocklake::source::{Pacer, Pacing, Synthetic, SyntheticOptions};
use stocklake::tick::Tick;

use super::cmd::{Cmd, Running, cmd};
use super::unique;

/// Group settings of a consumer that runs to idle: a lost member is noticed within 6 s.
pub const SESSION: [&str; 4] = [
    "-X",
    "session.timeout.ms=6000",
    "-X",
    "heartbeat.interval.ms=1000",
];

/// Group settings of consumers that are killed and replaced: partitions move within 3 s.
pub const SHORT_SESSION: [&str; 4] = [
    "-X",
    "session.timeout.ms=3000",
    "-X",
    "heartbeat.interval.ms=500",
];

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

/// `stocklake produce FILE --brokers … --topic …`.
pub fn produce_file(file: &Path, bootstrap: &str, topic: &str) -> Cmd {
    cmd(&["produce"])
        .arg(file)
        .args(["--brokers", bootstrap, "--topic", topic])
}

/// `stocklake consume --brokers … --topic … --group … --lake LAKE` (a path or an URL).
pub fn consume(bootstrap: &str, topic: &str, group: &str, lake: impl AsRef<OsStr>) -> Cmd {
    cmd(&[
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
}

/// `stocklake consume … --exit-when-idle 1500ms` with [`SESSION`].
pub fn idle_consumer(bootstrap: &str, topic: &str, group: &str, lake: impl AsRef<OsStr>) -> Cmd {
    consume(bootstrap, topic, group, lake)
        .args(["--exit-when-idle", "1500ms"])
        .args(SESSION)
}

/// `stocklake consume` into `lake` until idle for 1.5 s, in a new group (no committed offsets).
pub fn consume_until_idle(bootstrap: &str, topic: &str, lake: &Path, extra: &[&str]) -> Output {
    idle_consumer(bootstrap, topic, &unique("g"), lake)
        .args(extra)
        .output()
}

/// Starts `stocklake consume` as a child process (stderr to the file `log`).
pub fn spawn_consumer(
    bootstrap: &str,
    topic: &str,
    group: &str,
    lake: &Path,
    extra: &[&str],
    log: &Path,
) -> Running {
    let log = std::fs::File::create(log).expect("consumer log file");
    consume(bootstrap, topic, group, lake)
        .args(SHORT_SESSION)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
}

/// Produces `ticks` with the library's producer at `pacing`; panics unless all are
/// acknowledged. Returns how many were.
pub fn produce_paced(
    bootstrap: &str,
    topic: &str,
    ticks: impl Iterator<Item = Tick>,
    pacing: Pacing,
) -> u64 {
    let producer = producer(bootstrap, topic);
    let never = AtomicBool::new(false);
    let summary = produce(
        &producer,
        ticks,
        &mut Pacer::new(pacing),
        None,
        &never,
        &never,
        |_| {},
    )
    .expect("produce");
    summary.check().expect("every event acknowledged");
    summary.progress.acked
}

/// Produces ticks flat out; panics unless all are acknowledged.
pub fn produce_ticks(bootstrap: &str, topic: &str, ticks: impl IntoIterator<Item = Tick>) -> u64 {
    produce_paced(bootstrap, topic, ticks.into_iter(), Pacing::FlatOut)
}

/// Produces raw key/value messages; panics unless all are acknowledged.
pub fn produce_raw(bootstrap: &str, topic: &str, messages: &[(Vec<u8>, Vec<u8>)]) {
    let producer = producer(bootstrap, topic);
    let never = AtomicBool::new(false);
    let summary = produce_encoded(&producer, messages, &never).expect("produce");
    summary.check().expect("every message acknowledged");
}

/// Produces `rows` synthetic ticks (60 symbols) at `rate` events/s on a background thread.
pub fn background_stream(bootstrap: &str, topic: &str, rows: u64, rate: f64) -> JoinHandle<u64> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || {
        let ticks = Synthetic::new(SyntheticOptions {
            symbols: 60,
            rows,
            seed: 11,
            ..Default::default()
        });
        produce_paced(&bootstrap, &topic, ticks, Pacing::Rate(rate))
    })
}

/// Produces synthetic ticks (60 symbols) at `rate` events/s on a background thread until
/// `stop` is set; returns how many were acknowledged.
pub fn stream_until(
    bootstrap: &str,
    topic: &str,
    rate: f64,
    stop: std::sync::Arc<AtomicBool>,
) -> JoinHandle<u64> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || {
        let ticks = Synthetic::new(SyntheticOptions {
            symbols: 60,
            rows: u64::MAX,
            seed: 11,
            ..Default::default()
        });
        let never = AtomicBool::new(false);
        let producer = producer(&bootstrap, &topic);
        let mut pacer = Pacer::new(Pacing::Rate(rate));
        let summary = produce(&producer, ticks, &mut pacer, None, &stop, &never, |_| {});
        let summary = summary.expect("produce");
        assert_eq!(summary.first_error, None, "every event acknowledged");
        summary.progress.acked
    })
}

fn producer(bootstrap: &str, topic: &str) -> Producer {
    let settings = KafkaSettings {
        brokers: bootstrap.to_string(),
        properties: vec![],
    };
    Producer::new(&settings, topic).expect("producer")
}

fn plain_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique(group))
        .set("enable.auto.commit", "false")
        .create()
        .expect("plain consumer")
}

/// (low, high) watermarks of each partition `0..partitions`.
fn watermarks(bootstrap: &str, topic: &str, partitions: i32) -> Vec<(i32, i64, i64)> {
    let c = plain_consumer(bootstrap, "size");
    (0..partitions)
        .map(|p| {
            let (lo, hi) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, lo, hi)
        })
        .collect()
}

/// Sum of the high watermarks of a topic's partitions: how many messages it holds.
pub fn topic_size(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    watermarks(bootstrap, topic, partitions)
        .iter()
        .map(|(_, lo, hi)| hi - lo)
        .sum()
}

/// Per-partition message counts of a topic (high minus low watermark).
pub fn partition_sizes(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> std::collections::HashMap<i32, i64> {
    watermarks(bootstrap, topic, partitions)
        .into_iter()
        .map(|(p, lo, hi)| {
            assert_eq!(
                lo, 0,
                "the mock broker evicted messages of partition {p}: the test stream is too large"
            );
            (p, hi - lo)
        })
        .collect()
}

/// One message read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
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
    let c = plain_consumer(bootstrap, "reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition offset");
    }
    c.assign(&tpl).expect("assign");
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
