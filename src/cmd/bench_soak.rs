//! `stocklake bench soak`: a long stream (50M synthetic events by default) through the embedded
//! broker into `stocklake consume` (its own process, as users run it) writing a temporary local
//! lake: the consumer's memory (VmRSS and its high-water mark VmHWM) and its committed rate at
//! 10 %, 50 % and 100 % of the events, then an audit that the lake holds every event once.
//!
//! The embedded broker keeps at most 5 MiB a partition and silently drops the oldest beyond, so
//! the producer stays at most `--window` events ahead of what the consumer has committed (read
//! from its `--metrics` endpoint); an event dropped unread would show as lost in the audit. The
//! default window is sized from that retention, the events' size and the busiest partition of
//! their keys ([`default_window`]).
//!
//! The verdict is printed as figures: the growth of the peak memory and of the rate (over the
//! last [`RATE_SPAN`] before each point) from the 10 % point to the 100 % point.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::cli::BenchSoakArgs;
use crate::error::Error;
use crate::kafka::broker::PARTITION_RETENTION_BYTES;
use crate::kafka::{BrokerOptions, EmbeddedBroker, KafkaSettings, Producer};
use crate::lake::audit::audit_lake;
use crate::source::runs::TempDir;
use crate::source::{Synthetic, SyntheticOptions};

const TOPIC: &str = "bench-soak";
/// How often the consumer's memory and committed rows are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The points of the stream at which the figures are reported, in percent.
const MARKS: [u64; 3] = [10, 50, 100];
/// The rate at a point is over this span before it (several flushes: commits land in steps).
const RATE_SPAN: Duration = Duration::from_secs(10);
/// The share of a partition's retention the default window may fill (the rest covers smaller,
/// less compressed batches and a busier stretch of the stream than the sample).
const WINDOW_FILL: f64 = 0.75;
/// Events sent to measure what a partition holds (several times what fits, see
/// [`default_window`]).
const WINDOW_SAMPLE: u64 = 300_000;
/// The topic of that measurement.
const CALIBRATION_TOPIC: &str = "bench-soak-calibration";

/// The consumer at one point of the stream.
#[derive(Debug, Clone, Copy)]
struct Mark {
    percent: u64,
    secs: f64,
    committed: u64,
    /// Committed events a second over the last [`RATE_SPAN`] before the point.
    recent_rate: f64,
    rss_kib: u64,
    hwm_kib: u64,
}

pub fn run(args: &BenchSoakArgs) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench soak`");
    }
    if args.events == 0 {
        return Err(Error::Usage("--events must be at least 1".into()));
    }
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![
            (TOPIC.into(), args.partitions),
            (CALIBRATION_TOPIC.into(), 1),
        ],
        ..Default::default()
    })?;
    let tmp = TempDir::with_prefix("stocklake-soak")?;
    let lake = match &args.lake {
        Some(l) => l.clone(),
        None => tmp.path().join("lake"),
    };
    let window = match args.window {
        Some(w) => w,
        None => default_window(
            args,
            broker.bootstrap_servers(),
            CALIBRATION_TOPIC,
            &AtomicBool::new(false),
        )?,
    };
    let port = free_port()?;
    let mut consumer = ConsumerProcess(spawn_consumer(
        broker.bootstrap_servers(),
        &lake,
        port,
        args.events,
        args.compact_every,
        &tmp.path().join("consume.log"),
    )?);
    eprintln!(
        "streaming {} events ({} symbols, {} partitions) into `stocklake consume` (pid {}), \
         at most {} ahead of its last commit…",
        args.events,
        args.symbols,
        args.partitions,
        consumer.0.id(),
        window
    );
    let committed = Arc::new(AtomicU64::new(0));
    let abort = Arc::new(AtomicBool::new(false));
    let producing = start_producer(args, window, broker.bootstrap_servers(), &committed, &abort);
    let watched = watch(args.events, &mut consumer.0, port, &committed);
    abort.store(true, Ordering::SeqCst);
    let acked = match producing.join() {
        Ok(r) => r?,
        Err(_) => return Err(Error::Bench("the producer thread panicked".into())),
    };
    let log = std::fs::read_to_string(tmp.path().join("consume.log")).unwrap_or_default();
    let (marks, status) = watched?;
    if !status.success() {
        return Err(Error::Bench(format!("consume failed ({status}): {log}")));
    }
    let watermarks = watermarks(broker.bootstrap_servers(), TOPIC, args.partitions)?;
    let rt = super::runtime(Some(2))?;
    let mut audit = rt.block_on(audit_lake(&lake.display().to_string(), Some(TOPIC)))?;
    audit.add_kafka(&watermarks);
    print_report(args, acked, &marks, &audit);
    if audit.problems() > 0 || audit.rows != acked {
        return Err(Error::Bench(format!(
            "the lake does not hold every event once: {} rows for {acked} events, {} problems \
             (run `stocklake audit --lake {}` with --lake DIR to keep it)",
            audit.rows,
            audit.problems(),
            lake.display()
        )));
    }
    Ok(())
}

/// Kills the consumer if the bench stops early.
struct ConsumerProcess(Child);

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::io("finding a free port"))?;
    Ok(l.local_addr()
        .map_err(Error::io("finding a free port"))?
        .port())
}

fn spawn_consumer(
    brokers: &str,
    lake: &Path,
    port: u16,
    events: u64,
    compact_every: Option<std::time::Duration>,
    log: &Path,
) -> Result<Child, Error> {
    let exe = std::env::current_exe().map_err(Error::io("finding the stocklake binary"))?;
    let log = std::fs::File::create(log).map_err(Error::io("creating the consume log"))?;
    let mut command = Command::new(exe);
    command
        .arg("consume")
        .args([
            "--brokers",
            brokers,
            "--topic",
            TOPIC,
            "--group",
            "bench-soak",
        ])
        .arg("--lake")
        .arg(lake)
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .args(["--max-events", &events.to_string()]);
    if let Some(every) = compact_every {
        command
            .arg("--compact-every")
            .arg(humantime::format_duration(every).to_string())
            .args(["--compact-min-age", "0s"]);
    }
    command
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(Error::io("starting consume"))
}

/// Sends `args.events` synthetic events, never more than `args.window` past `committed`;
/// returns how many were acknowledged.
fn start_producer(
    args: &BenchSoakArgs,
    window: u64,
    brokers: &str,
    committed: &Arc<AtomicU64>,
    abort: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<u64, Error>> {
    let brokers = brokers.to_string();
    let opts = synthetic_options(args, args.events);
    let (committed, abort) = (committed.clone(), abort.clone());
    std::thread::spawn(move || -> Result<u64, Error> {
        let producer = producer(&brokers, TOPIC)?;
        let mut payload = Vec::with_capacity(256);
        for (sent, tick) in (0u64..).zip(Synthetic::new(opts)) {
            while sent.saturating_sub(committed.load(Ordering::Relaxed)) >= window {
                if abort.load(Ordering::Relaxed) {
                    return Err(Error::Bench("the consumer stopped early".into()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            payload.clear();
            tick.encode_json(&mut payload);
            producer.send(tick.symbol.as_bytes(), &payload, &abort)?;
        }
        producer.flush(Duration::from_secs(120), &abort, |_| {});
        let progress = producer.stats().snapshot();
        if progress.failed > 0 || progress.acked != progress.sent {
            return Err(Error::Bench(format!(
                "{} of {} events not acknowledged: {}",
                progress.sent - progress.acked,
                progress.sent,
                producer.stats().first_error().unwrap_or_default()
            )));
        }
        Ok(progress.acked)
    })
}

/// Samples the consumer until it exits: its committed rows (into `committed`, for the
/// producer) and its memory at each of [`MARKS`].
fn watch(
    events: u64,
    child: &mut Child,
    port: u16,
    committed: &AtomicU64,
) -> Result<(Vec<Mark>, std::process::ExitStatus), Error> {
    let started = Instant::now();
    let status_file = format!("/proc/{}/status", child.id());
    let mut marks = Vec::new();
    let mut last_report = Instant::now();
    let mut last = (0, 0);
    // (seconds, committed) samples, the oldest at most RATE_SPAN before the newest.
    let mut recent = VecDeque::new();
    loop {
        if let Some(status) = child.try_wait().map_err(Error::io("waiting for consume"))? {
            // It stops after its last commit (--max-events), maybe before a scrape saw it: the
            // end is its exit, with the memory of the last sample (the audit checks the count).
            if marks.len() < MARKS.len() {
                let secs = started.elapsed().as_secs_f64();
                marks.push(Mark {
                    percent: 100,
                    secs,
                    committed: events,
                    recent_rate: rate_since(&mut recent, secs, events),
                    rss_kib: last.0,
                    hwm_kib: last.1,
                });
            }
            return Ok((marks, status));
        }
        let (rss, hwm) = memory(&status_file).unwrap_or(last);
        last = (rss, hwm);
        if let Some(rows) = scrape(port, "stocklake_consumer_rows_committed_total") {
            committed.store(rows, Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64();
            let recent_rate = rate_since(&mut recent, secs, rows);
            for percent in MARKS.into_iter().skip(marks.len()) {
                if rows * 100 < events * percent {
                    break;
                }
                marks.push(Mark {
                    percent,
                    secs,
                    committed: rows,
                    recent_rate,
                    rss_kib: rss,
                    hwm_kib: hwm,
                });
                eprintln!(
                    "{percent:>3} %: {rows} committed after {secs:.1} s, RSS {} MiB, peak {} MiB",
                    rss / 1024,
                    hwm / 1024
                );
            }
            if last_report.elapsed() >= Duration::from_secs(30) {
                last_report = Instant::now();
                eprintln!(
                    "      {rows} committed after {:.0} s, RSS {} MiB, peak {} MiB",
                    started.elapsed().as_secs_f64(),
                    rss / 1024,
                    hwm / 1024
                );
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// Records the sample (`secs`, `rows`) and returns the rate since the oldest sample kept, which
/// is the newest one at least [`RATE_SPAN`] old (or the first).
fn rate_since(samples: &mut VecDeque<(f64, u64)>, secs: f64, rows: u64) -> f64 {
    let span = RATE_SPAN.as_secs_f64();
    while samples.len() > 1 && samples.get(1).is_some_and(|&(s, _)| secs - s >= span) {
        samples.pop_front();
    }
    let rate = match samples.front() {
        Some(&(s, r)) if secs > s => rows.saturating_sub(r) as f64 / (secs - s),
        _ => 0.0,
    };
    samples.push_back((secs, rows));
    rate
}

/// The default `--window`: the events that fill [`WINDOW_FILL`] of the retention of the
/// partition that gets the most of them. What a partition holds is measured, not guessed: the
/// first events of the stream are sent into `calibration`, a topic of one partition, until the
/// broker drops some; its watermarks then tell how many fit (lz4 batches as the soak sends
/// them). Each key's partition is Kafka's murmur2 of it, as `stocklake produce` sends them.
fn default_window(
    args: &BenchSoakArgs,
    brokers: &str,
    calibration: &str,
    abort: &AtomicBool,
) -> Result<u64, Error> {
    let partitions = args.partitions.max(1) as usize;
    let producer = producer(brokers, calibration)?;
    let mut counts = vec![0u64; partitions];
    let mut payload = Vec::with_capacity(256);
    let mut sent = 0u64;
    for tick in Synthetic::new(synthetic_options(args, WINDOW_SAMPLE)) {
        payload.clear();
        tick.encode_json(&mut payload);
        let key = tick.symbol.as_bytes();
        counts[(murmur2(key) & 0x7fff_ffff) as usize % partitions] += 1;
        producer.send(key, &payload, abort)?;
        sent += 1;
    }
    producer.flush(Duration::from_secs(60), abort, |_| {});
    let (low, high) = *watermarks(brokers, calibration, 1)?
        .get(&0)
        .ok_or_else(|| Error::Bench("no watermarks for the calibration topic".into()))?;
    // Nothing dropped: all of the sample fits (a lower bound of what does).
    let fits = (high - low).max(1) as f64;
    let busiest = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let share = busiest / sent.max(1) as f64;
    let window = ((fits * WINDOW_FILL / share) as u64).clamp(1, args.events.max(1));
    eprintln!(
        "{fits} events fill a partition's {} MiB (of {sent} sent); the busiest partition gets \
         {:.1} % of the events: a window of {window}",
        PARTITION_RETENTION_BYTES >> 20,
        share * 100.0
    );
    Ok(window)
}

/// A producer to `topic` of the embedded broker at `brokers`, with stocklake's settings.
fn producer(brokers: &str, topic: &str) -> Result<Producer, Error> {
    let settings = KafkaSettings {
        brokers: brokers.to_string(),
        properties: vec![],
    };
    Ok(Producer::new(&settings, topic)?)
}

fn synthetic_options(args: &BenchSoakArgs, rows: u64) -> SyntheticOptions {
    SyntheticOptions {
        symbols: args.symbols.max(1),
        rows,
        seed: 7,
        ..Default::default()
    }
}

/// Kafka's murmur2 hash of a key (the Java client's `Utils.murmur2`, librdkafka's
/// `murmur2_random` partitioner for keyed messages).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// (VmRSS, VmHWM) in KiB.
fn memory(status_file: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The value of an unlabelled metric from `GET /metrics` on 127.0.0.1:`port`.
fn scrape(port: u16, metric: &str) -> Option<u64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let line = body
        .lines()
        .find(|l| l.split_whitespace().next() == Some(metric))?;
    let value: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(value as u64)
}

/// `+12 %`: the change from `from` to `to`.
fn growth(from: f64, to: f64) -> String {
    if from <= 0.0 {
        return "n/a".into();
    }
    format!("{:+.0} %", (to / from - 1.0) * 100.0)
}

/// Each partition's (low, high) watermarks.
fn watermarks(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, (i64, i64)>, Error> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| Error::Bench(format!("a client for the watermarks: {e}")))?;
    (0..partitions)
        .map(|p| {
            client
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map(|w| (p, w))
                .map_err(|e| Error::Bench(format!("watermarks of partition {p}: {e}")))
        })
        .collect()
}

fn print_report(
    args: &BenchSoakArgs,
    acked: u64,
    marks: &[Mark],
    audit: &crate::lake::audit::AuditReport,
) {
    println!(
        "soak: {} events ({} symbols, {} partitions) through the embedded broker into \
         `stocklake consume` (its own process) writing a local lake{}",
        args.events,
        args.symbols,
        args.partitions,
        args.compact_every.map_or(String::new(), |d| format!(
            ", compacting every {}",
            humantime::format_duration(d)
        ))
    );
    println!(
        "{:>6} {:>12} {:>9} {:>12} {:>12} {:>10} {:>10}",
        "point", "committed", "seconds", "events/s", "last 10 s", "RSS MiB", "peak MiB"
    );
    let mut before = (0.0, 0);
    for m in marks {
        let rate = (m.committed - before.1) as f64 / (m.secs - before.0).max(1e-9);
        println!(
            "{:>5}% {:>12} {:>9.1} {:>12.0} {:>12.0} {:>10.0} {:>10.0}",
            m.percent,
            m.committed,
            m.secs,
            rate,
            m.recent_rate,
            m.rss_kib as f64 / 1024.0,
            m.hwm_kib as f64 / 1024.0
        );
        before = (m.secs, m.committed);
    }
    println!(
        "(events/s: committed rows over the interval since the previous point, the first from \
         the consumer's start; last 10 s: over the {} s before the point; 100 %: its exit after \
         the last commit, memory as last sampled)",
        RATE_SPAN.as_secs()
    );
    if let (Some(first), Some(end)) = (marks.first(), marks.last()) {
        println!(
            "from {} % to {} %: peak memory {} ({:.0} -> {:.0} MiB), rate {} ({:.0} -> {:.0} \
             events/s over the last {} s)",
            first.percent,
            end.percent,
            growth(first.hwm_kib as f64, end.hwm_kib as f64),
            first.hwm_kib as f64 / 1024.0,
            end.hwm_kib as f64 / 1024.0,
            growth(first.recent_rate, end.recent_rate),
            first.recent_rate,
            end.recent_rate,
            RATE_SPAN.as_secs()
        );
    }
    let distinct: u64 = audit.partitions.iter().map(|p| p.coverage.distinct).sum();
    let ticks: u64 = audit.partitions.iter().map(|p| p.coverage.ticks).sum();
    println!(
        "lake: {ticks} rows, {distinct} distinct offsets, for {acked} events acknowledged: \
         {} duplicates, {} lost; audit: {} problems",
        ticks.saturating_sub(distinct),
        acked.saturating_sub(distinct),
        audit.problems()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // The Java client's own test vectors (UtilsTest.testMurmur2).
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key) as i32,
                want,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn the_rate_is_over_the_last_span() {
        let mut samples = VecDeque::new();
        assert_eq!(rate_since(&mut samples, 0.0, 0), 0.0);
        assert_eq!(rate_since(&mut samples, 5.0, 500), 100.0);
        assert_eq!(rate_since(&mut samples, 10.0, 1000), 100.0);
        // 12 s: the oldest sample kept is the one of 0 s (the 5 s one is less than 10 s old).
        assert_eq!(rate_since(&mut samples, 12.0, 3400), 3400.0 / 12.0);
        // 16 s: now 5 s is 11 s old, the newest at least 10 s old.
        assert_eq!(rate_since(&mut samples, 16.0, 3500), 3000.0 / 11.0);
    }
}
