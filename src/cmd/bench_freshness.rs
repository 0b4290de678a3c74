//! `stocklake bench freshness`: how long an event takes from its send to the first local query
//! that sees it, at a slow and a fast rate, with the embedded broker, the library consumer
//! (short flush interval) into a temporary local lake, and a poller on the local engine; and
//! what that setting costs (commits and files per hour).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int32Array, Int64Array};
use arrow::datatypes::{DataType, TimeUnit};

use crate::cli::BenchFreshnessArgs;
use crate::engine::LocalEngine;
use crate::error::Error;
use crate::kafka::consumer::{ConsumeOptions, ConsumeStats, LakeConsumer};
use crate::kafka::{BrokerOptions, EmbeddedBroker, KafkaSettings, Producer};
use crate::lake::Lake;
use crate::settings::defaults;
use crate::source::{Synthetic, SyntheticOptions};

const TOPIC: &str = "bench-freshness";
/// How long the poller waits for the last events of a phase before calling them lost.
const GRACE: Duration = Duration::from_secs(30);

/// One rate's figures.
struct Phase {
    rate: f64,
    sent: u64,
    /// Send-to-seen latencies, milliseconds, sorted.
    latencies: Vec<i64>,
    seconds: f64,
    commits: u64,
    files: u64,
}

impl Phase {
    /// Nearest-rank percentile (`p` in 0..=1) of the latencies.
    fn percentile(&self, p: f64) -> Option<i64> {
        let n = self.latencies.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
        self.latencies.get(rank - 1).copied()
    }

    fn per_hour(&self, n: u64) -> f64 {
        n as f64 * 3600.0 / self.seconds.max(1e-9)
    }
}

pub fn run(args: &BenchFreshnessArgs) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench freshness`");
    }
    let broker = EmbeddedBroker::start(BrokerOptions::default())?;
    broker.create_topic(TOPIC, args.partitions)?;
    let kafka = KafkaSettings {
        brokers: broker.bootstrap_servers().to_string(),
        properties: args.property.clone(),
    };
    let tmp = std::env::temp_dir().join(format!("stocklake-freshness-{}", std::process::id()));
    let lake_url = tmp.join("lake").display().to_string();
    let rt = super::runtime(Some(2))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(ConsumeStats::default()));
    let consumer = start_consumer(args, &kafka, &lake_url, &rt, stop.clone(), stats.clone())?;
    let result = measure(args, &kafka, &lake_url, &rt, &stats);
    stop.store(true, Ordering::SeqCst);
    let consumed = consumer.join();
    let _ = std::fs::remove_dir_all(&tmp);
    match consumed {
        Ok(r) => r?,
        Err(_) => return Err(Error::Usage("the consumer thread panicked".into())),
    }
    print_report(args, &result?);
    Ok(())
}

/// The consumer on a thread of its own, keeping `stats` up to date; returns once the lake's
/// tables exist.
fn start_consumer(
    args: &BenchFreshnessArgs,
    kafka: &KafkaSettings,
    lake_url: &str,
    rt: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ConsumeStats>>,
) -> Result<std::thread::JoinHandle<Result<(), Error>>, Error> {
    let lake = rt.block_on(Lake::open(lake_url))?;
    let opts = ConsumeOptions {
        topic: TOPIC.into(),
        group: "bench-freshness".into(),
        flush_rows: defaults::FLUSH_ROWS,
        flush_bytes: defaults::FLUSH_BYTES,
        flush_interval: args.flush_interval,
        max_event_bytes: defaults::MAX_EVENT_BYTES,
        exit_when_idle: None,
        max_events: None,
        reset_lake_offsets: false,
    };
    let (kafka, handle) = (kafka.clone(), rt.handle().clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || -> Result<(), Error> {
        let created = LakeConsumer::new(&kafka, lake, None, opts, handle);
        let mut consumer = match created {
            Ok(c) => {
                let _ = ready_tx.send(Ok(()));
                c
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return Ok(());
            }
        };
        let result = consumer.run(&stop, |s| {
            if let Ok(mut shared) = stats.lock() {
                *shared = s.clone();
            }
        });
        consumer.close();
        Ok(result?)
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Error::Usage(
            "the consumer thread ended during start-up".into(),
        )),
    }
}

/// A warm-up event (until a query sees it: the consumer holds its partitions), then each rate.
fn measure(
    args: &BenchFreshnessArgs,
    kafka: &KafkaSettings,
    lake_url: &str,
    rt: &tokio::runtime::Runtime,
    stats: &Mutex<ConsumeStats>,
) -> Result<Vec<Phase>, Error> {
    let engine = rt.block_on(LocalEngine::open(lake_url))?;
    let mut poller = Poller {
        engine,
        seen: BTreeMap::new(),
        version: None,
        every: args.poll,
    };
    let producer = Producer::new(kafka, TOPIC)?;
    let mut ticks = Synthetic::new(SyntheticOptions {
        symbols: args.symbols,
        rows: u64::MAX,
        seed: 7,
        ..Default::default()
    });
    eprintln!("warming up: one event until a query sees it…");
    send_paced(&producer, &mut ticks, 1.0, Duration::from_secs(1))?;
    poller.collect(rt, 1, GRACE * 2)?;
    let mut phases = Vec::new();
    for (rate, secs) in [
        (args.slow_rate, args.slow_for),
        (args.fast_rate, args.fast_for),
    ] {
        eprintln!("{rate} events/s for {}…", humantime::format_duration(secs));
        let before = snapshot(stats);
        let started = Instant::now();
        let mut latencies = std::thread::scope(|s| -> Result<Vec<i64>, Error> {
            let (producer, ticks) = (&producer, &mut ticks);
            let sending = s.spawn(move || send_paced(producer, ticks, rate, secs));
            let expected = (rate * secs.as_secs_f64()).round().max(1.0) as u64;
            let seen = poller.collect(rt, expected, secs + GRACE);
            match sending.join() {
                Ok(sent) => sent?,
                Err(_) => return Err(Error::Usage("the producer thread panicked".into())),
            };
            seen
        })?;
        let seconds = started.elapsed().as_secs_f64();
        let after = snapshot(stats);
        latencies.sort_unstable();
        phases.push(Phase {
            rate,
            sent: (rate * secs.as_secs_f64()).round().max(1.0) as u64,
            latencies,
            seconds,
            commits: after.flushes - before.flushes,
            files: after.files - before.files,
        });
    }
    Ok(phases)
}

fn snapshot(stats: &Mutex<ConsumeStats>) -> ConsumeStats {
    stats.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Sends `rate × secs` events (at least one), each at its due time, its event time the moment
/// it is sent (ms): the poller reads the send time back from the row.
fn send_paced(
    producer: &Producer,
    ticks: &mut Synthetic,
    rate: f64,
    secs: Duration,
) -> Result<(), Error> {
    let n = (rate * secs.as_secs_f64()).round().max(1.0) as u64;
    let never = AtomicBool::new(false);
    let start = Instant::now();
    let mut payload = Vec::with_capacity(256);
    for (i, mut tick) in (0..n).zip(ticks.by_ref()) {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        tick.event_time = chrono::Utc::now().timestamp_millis();
        payload.clear();
        tick.encode_json(&mut payload);
        producer.send(tick.symbol.as_bytes(), &payload, &never)?;
    }
    producer.flush(Duration::from_secs(60), &never, |_| {});
    Ok(())
}

/// Reads the new rows of the lake every `every`: each poll reads the table's latest version
/// (its Delta log) and, when it moved, queries the rows past the offsets already seen.
struct Poller {
    engine: LocalEngine,
    /// Per Kafka partition, the last offset seen.
    seen: BTreeMap<i32, i64>,
    version: Option<u64>,
    every: Duration,
}

impl Poller {
    /// Polls until `n` new events were seen or `limit` passed; returns each one's latency
    /// (ms from its send to the end of the query that first returned it).
    fn collect(
        &mut self,
        rt: &tokio::runtime::Runtime,
        n: u64,
        limit: Duration,
    ) -> Result<Vec<i64>, Error> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while (out.len() as u64) < n && Instant::now() < deadline {
            let started = Instant::now();
            rt.block_on(self.poll(&mut out))?;
            if let Some(wait) = (started + self.every).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if (out.len() as u64) < n {
            eprintln!(
                "warning: {} of {n} events not seen within {}",
                n - out.len() as u64,
                humantime::format_duration(limit)
            );
        }
        Ok(out)
    }

    async fn poll(&mut self, out: &mut Vec<i64>) -> Result<(), Error> {
        let version = self.engine.refresh().await?;
        if self.version == Some(version) {
            return Ok(());
        }
        let result = self.engine.query(&self.new_rows_sql()).await?;
        let now = chrono::Utc::now().timestamp_millis();
        self.version = result.info.table_versions.map(|v| v.after);
        for batch in &result.batches {
            let cast = |i: usize, to: &DataType| arrow::compute::cast(batch.column(i), to);
            // The send time in ms, whatever unit the table keeps event_time in.
            let ms = cast(2, &DataType::Timestamp(TimeUnit::Millisecond, None))
                .and_then(|t| arrow::compute::cast(&t, &DataType::Int64));
            let (p, o, t) = (
                cast(0, &DataType::Int32).map_err(query_err)?,
                cast(1, &DataType::Int64).map_err(query_err)?,
                ms.map_err(query_err)?,
            );
            let p = p.as_any().downcast_ref::<Int32Array>();
            let o = o.as_any().downcast_ref::<Int64Array>();
            let t = t.as_any().downcast_ref::<Int64Array>();
            let (Some(p), Some(o), Some(t)) = (p, o, t) else {
                return Err(query_err("unexpected column types"));
            };
            for row in 0..batch.num_rows() {
                if p.is_null(row) || o.is_null(row) || t.is_null(row) {
                    continue;
                }
                let last = self.seen.entry(p.value(row)).or_insert(-1);
                *last = (*last).max(o.value(row));
                out.push(now - t.value(row));
            }
        }
        Ok(())
    }

    /// The rows past the offsets seen, each partition's offset range pruning the files read.
    fn new_rows_sql(&self) -> String {
        let mut cond: Vec<String> = self
            .seen
            .iter()
            .map(|(p, o)| format!("(kafka_partition = {p} AND kafka_offset > {o})"))
            .collect();
        let known: Vec<String> = self.seen.keys().map(i32::to_string).collect();
        cond.push(if known.is_empty() {
            "TRUE".into()
        } else {
            format!("kafka_partition NOT IN ({})", known.join(", "))
        });
        format!(
            "SELECT kafka_partition, kafka_offset, event_time FROM ticks WHERE {}",
            cond.join(" OR ")
        )
    }
}

fn query_err(e: impl std::fmt::Display) -> Error {
    crate::engine::EngineError::Query {
        engine: "local",
        message: format!("reading the poll's rows: {e}"),
    }
    .into()
}

fn print_report(args: &BenchFreshnessArgs, phases: &[Phase]) {
    println!(
        "freshness: send -> first local query that returns the event (embedded broker, {} \
         partitions, {} symbols; consumer flush interval {}; a poll every {}, which adds up to \
         one poll interval)",
        args.partitions,
        args.symbols,
        humantime::format_duration(args.flush_interval),
        humantime::format_duration(args.poll)
    );
    println!(
        "{:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "events/s", "events", "seen", "p50 ms", "p99 ms", "max ms", "commits/h", "files/h"
    );
    let ms = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    for p in phases {
        println!(
            "{:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10.0} {:>10.0}",
            p.rate,
            p.sent,
            p.latencies.len(),
            ms(p.percentile(0.5)),
            ms(p.percentile(0.99)),
            ms(p.latencies.last().copied()),
            p.per_hour(p.commits),
            p.per_hour(p.files)
        );
    }
    if let Some(slow) = phases.first() {
        let met = slow.percentile(0.5).is_some_and(|v| v <= 1000)
            && slow.percentile(0.99).is_some_and(|v| v <= 2000)
            && slow.latencies.len() as u64 == slow.sent;
        println!(
            "target at {} event/s: p50 <= 1000 ms and p99 <= 2000 ms: {}",
            slow.rate,
            if met { "met" } else { "missed" }
        );
    }
    println!(
        "(commits and files per hour: the consumer's commits and data files during each phase, \
         extrapolated; a live feed's many small files are what `consume --compact-every` merges)"
    );
}
