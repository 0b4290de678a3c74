//! `stocklake bench consume`: committed events/s from a pre-filled topic into a local lake, and
//! the consumer's peak memory, next to a flat-out write of the same rows from memory (ceiling).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::kafka::{BrokerOptions, EmbeddedBroker, KafkaSettings};
use crate::lake::layout::{TABLE_DIR, file_name};
use crate::lake::{TableLayout, writer};
use crate::source::{Synthetic, SyntheticOptions};
use crate::tick::{Tick, TickBatchBuilder};

/// Rows per flush, as `consume`'s default.
const FLUSH_ROWS: usize = 500_000;

pub fn run(rows: u64, partitions: i32, symbols: usize, runs: u32) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench consume`");
    }
    let opts = SyntheticOptions {
        symbols,
        rows,
        seed: 7,
        interval_ms: 60_000,
        ..Default::default()
    };
    let broker = EmbeddedBroker::start(BrokerOptions::default())?;
    let topic = "bench-consume";
    broker.create_topic(topic, partitions)?;
    let settings = KafkaSettings {
        brokers: broker.bootstrap_servers().to_string(),
        properties: vec![],
    };
    let started = Instant::now();
    super::bench::run_produce(&settings, topic, Synthetic::new(opts.clone()))?;
    check_nothing_evicted(&settings, topic, partitions)?;
    eprintln!(
        "filled {topic}: {rows} events in {partitions} partitions, {:.1?}",
        started.elapsed()
    );

    let tmp = std::env::temp_dir().join(format!("stocklake-bench-{}", std::process::id()));
    let exe = std::env::current_exe().map_err(Error::io("finding this executable"))?;
    let mut consumed = Vec::new();
    for run in 0..runs.max(1) {
        consumed.push(consume_once(
            &exe,
            broker.bootstrap_servers(),
            topic,
            rows,
            &tmp.join(format!("lake-{run}")),
            run,
        )?);
    }
    let mut ceilings = Vec::new();
    for run in 0..runs.max(1) {
        ceilings.push(ceiling(&opts, &tmp.join(format!("ceiling-{run}")))?.as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&tmp);

    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let secs = median(consumed.iter().map(|c| c.secs).collect());
    let first = median(consumed.iter().map(|c| c.first_event).collect());
    let peak_mib = consumed.iter().map(|c| c.peak_mib).fold(0.0, f64::max);
    let ceiling_secs = median(ceilings);
    let rate = rows as f64 / secs;
    let ceiling_rate = rows as f64 / ceiling_secs;
    println!(
        "consume, pre-filled topic into a local lake (zstd Parquet, partitioned by symbol); median of {} runs",
        consumed.len()
    );
    println!(
        "{:<46} {:>10} {:>9} {:>12} {:>12}",
        "workload", "events", "seconds", "events/s", "peak RSS"
    );
    println!(
        "{:<46} {:>10} {:>9.2} {:>12.0} {:>9.0} MiB",
        format!("stocklake consume ({partitions} partitions, {symbols} symbols)"),
        rows,
        secs,
        rate,
        peak_mib
    );
    println!(
        "{:<46} {:>10} {:>9.2} {:>12.0}",
        "  the same, from its first event",
        rows,
        secs - first,
        rows as f64 / (secs - first)
    );
    println!(
        "{:<46} {:>10} {:>9.2} {:>12.0}",
        "ceiling: same rows, memory to Parquet files", rows, ceiling_secs, ceiling_rate
    );
    println!(
        "ratio: {:.0}% of the ceiling (the consumer's time includes process start, group join ({first:.2} s to the first event), JSON decoding and the commit protocol)",
        100.0 * rate / ceiling_rate
    );
    let all: Vec<String> = consumed
        .iter()
        .map(|c| format!("{:.0}", rows as f64 / c.secs))
        .collect();
    println!("runs (events/s): {}", all.join(", "));
    Ok(())
}

struct Consumed {
    secs: f64,
    first_event: f64,
    peak_mib: f64,
}

/// One `stocklake consume` process over the whole topic into a new lake, as a new group.
fn consume_once(
    exe: &std::path::Path,
    brokers: &str,
    topic: &str,
    rows: u64,
    lake: &std::path::Path,
    run: u32,
) -> Result<Consumed, Error> {
    let started = Instant::now();
    // The consumer as its own process, as users run it; its summary reports its peak memory
    // (VmHWM, which exec resets, unlike rusage's maxrss that also counts the forked parent).
    let out = std::process::Command::new(exe)
        .args(["consume", "--brokers", brokers, "--topic", topic])
        .args(["--group", &format!("bench-{run}")])
        .arg("--lake")
        .arg(lake)
        .args(["--max-events", &rows.to_string()])
        .output()
        .map_err(Error::io("starting the consumer"))?;
    let secs = started.elapsed().as_secs_f64();
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(Error::Bench(format!("the consumer failed: {summary}")));
    }
    let field = |after: &str| -> Option<f64> {
        summary
            .split(after)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let bad = |what: &str| Error::Bench(format!("no {what} in the consumer's summary: {summary}"));
    let committed = field("committed ").ok_or_else(|| bad("row count"))?;
    if committed != rows as f64 {
        return Err(Error::Bench(format!(
            "the consumer committed {committed} rows, not {rows}: {summary}"
        )));
    }
    Ok(Consumed {
        secs,
        // Measured from the consumer's own start, a little after this process started it.
        first_event: field("first event after ").ok_or_else(|| bad("first event time"))?,
        peak_mib: field("peak memory ").ok_or_else(|| bad("peak memory"))?,
    })
}

fn check_nothing_evicted(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
) -> Result<(), Error> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = settings
        .consumer_config("bench-check")
        .create()
        .map_err(|e| crate::kafka::KafkaError::client("creating the check consumer", e))?;
    for p in 0..partitions {
        let (low, _) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| {
                crate::kafka::KafkaError::client(format!("watermarks of {topic}/{p}"), e)
            })?;
        if low > 0 {
            return Err(Error::Usage(format!(
                "the embedded broker evicted the oldest events of partition {p}: use more --partitions or fewer --rows"
            )));
        }
    }
    Ok(())
}

/// The same rows, already decoded in memory, written with the same Parquet profile and the
/// same batching (one file per symbol per flush): what the consumer could reach at best.
fn ceiling(opts: &SyntheticOptions, dir: &std::path::Path) -> Result<Duration, Error> {
    let ticks: Vec<Tick> = Synthetic::new(opts.clone()).collect();
    let layout = TableLayout::default();
    let io = |source| Error::File {
        path: dir.to_path_buf(),
        source,
    };
    let started = Instant::now();
    for (chunk_no, chunk) in ticks.chunks(FLUSH_ROWS).enumerate() {
        let mut files: HashMap<String, TickBatchBuilder> = HashMap::new();
        for (i, t) in chunk.iter().enumerate() {
            files
                .entry(layout.partition_dir(&t.symbol, t.event_time))
                .or_insert_with(|| TickBatchBuilder::new(false, 1024))
                .push(t, 0, (chunk_no * FLUSH_ROWS + i) as i64);
        }
        for (d, mut b) in files {
            let bytes = writer::encode(&[b.finish()])
                .map_err(|e| Error::Bench(format!("encoding Parquet: {e}")))?;
            let path = dir.join(TABLE_DIR).join(d);
            std::fs::create_dir_all(&path).map_err(io)?;
            std::fs::write(
                path.join(file_name("bench", 0, (chunk_no * FLUSH_ROWS) as i64)),
                bytes,
            )
            .map_err(io)?;
        }
    }
    Ok(started.elapsed())
}
