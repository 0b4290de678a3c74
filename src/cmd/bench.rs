//! `stocklake bench`: throughput figures of the release build, each next to its ceiling.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::cli::{BenchArgs, BenchWhat};
use crate::error::Error;
use crate::kafka::producer::{produce, produce_encoded};
use crate::kafka::{BrokerOptions, EmbeddedBroker, KafkaSettings, ProduceSummary, Producer};
use crate::source::{
    CsvOptions, Pacer, Pacing, Replay, Synthetic, SyntheticOptions, load_csv_files,
};
use crate::tick::Tick;

pub fn run(args: &BenchArgs) -> Result<(), Error> {
    match &args.what {
        BenchWhat::Produce {
            file,
            passes,
            rows,
            partitions,
        } => bench_produce(file, *passes, *rows, *partitions),
        BenchWhat::Consume {
            rows,
            partitions,
            symbols,
            runs,
        } => super::bench_consume::run(*rows, *partitions, *symbols, *runs),
        BenchWhat::Query(args) => super::bench_query::run(args),
        BenchWhat::Compact(args) => super::bench_compact::run(args),
        BenchWhat::Freshness(args) => super::bench_freshness::run(args),
        BenchWhat::ProduceMemory(args) => super::bench_produce_memory::run(args),
        BenchWhat::Soak(args) => super::bench_soak::run(args),
    }
}

fn bench_produce(file: &Path, passes: u64, rows: u64, partitions: i32) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench produce`");
    }
    let broker = EmbeddedBroker::start(BrokerOptions::default())?;
    let settings = KafkaSettings {
        brokers: broker.bootstrap_servers().to_string(),
        properties: vec![],
    };
    let mut topic_no = 0;
    let mut fresh_topic = || -> Result<String, Error> {
        topic_no += 1;
        let t = format!("bench-{topic_no}");
        broker.create_topic(&t, partitions)?;
        Ok(t)
    };
    println!(
        "produce, flat out, into the embedded broker ({partitions} partitions, lz4, acks=all, idempotent)"
    );
    println!(
        "{:<34} {:>10} {:>9} {:>12} {:>12} {:>8}",
        "workload", "events", "seconds", "events/s", "ceiling/s", "ratio"
    );

    // The sample file: parse once (timed), replay `passes` times.
    let started = Instant::now();
    let (ticks, report) = load_csv_files(&[file.to_path_buf()], &CsvOptions::default())?;
    let parse = started.elapsed();
    let n = report.rows() * passes;
    let (real, ceiling) = real_and_ceiling(&settings, &mut fresh_topic, || {
        Replay::new(ticks.clone(), true).take(n as usize)
    })?;
    let label = format!("{} x{passes}", file.display());
    print_row(&label, &real, &ceiling, parse.as_secs_f64());

    // Synthetic events: generated while sending.
    let opts = SyntheticOptions {
        symbols: 500,
        rows,
        seed: 7,
        ..Default::default()
    };
    let (real, ceiling) =
        real_and_ceiling(&settings, &mut fresh_topic, || Synthetic::new(opts.clone()))?;
    print_row("synthetic, 500 symbols", &real, &ceiling, 0.0);
    println!(
        "(ceiling: librdkafka sending the same pre-encoded key/payload pairs, no parsing or encoding)"
    );
    Ok(())
}

fn encode(ticks: impl Iterator<Item = Tick>) -> Vec<(Vec<u8>, Vec<u8>)> {
    ticks
        .map(|t| {
            let mut payload = Vec::with_capacity(192);
            t.encode_json(&mut payload);
            (t.symbol.into_bytes(), payload)
        })
        .collect()
}

/// The same events into two fresh topics: pre-encoded straight through librdkafka (the
/// ceiling), then through stocklake's producer; returns (real, ceiling).
fn real_and_ceiling<I: Iterator<Item = Tick>>(
    settings: &KafkaSettings,
    fresh_topic: &mut dyn FnMut() -> Result<String, Error>,
    events: impl Fn() -> I,
) -> Result<(ProduceSummary, ProduceSummary), Error> {
    let encoded = encode(events());
    let ceiling = produce_encoded(
        &Producer::new(settings, &fresh_topic()?)?,
        &encoded,
        &AtomicBool::new(false),
    )?;
    drop(encoded);
    let real = run_produce(settings, &fresh_topic()?, events())?;
    Ok((real, ceiling))
}

/// Every event into `topic` flat out; fails unless every one was acknowledged.
pub(super) fn run_produce(
    settings: &KafkaSettings,
    topic: &str,
    ticks: impl Iterator<Item = Tick>,
) -> Result<ProduceSummary, Error> {
    let producer = Producer::new(settings, topic)?;
    let never = AtomicBool::new(false);
    let summary = produce(
        &producer,
        ticks,
        &mut Pacer::new(Pacing::FlatOut),
        None,
        &never,
        &never,
        |_| {},
    )?;
    summary.check()?;
    Ok(summary)
}

fn print_row(label: &str, real: &ProduceSummary, ceiling: &ProduceSummary, parse_secs: f64) {
    // The file's one-off parse counts against it: it is part of what a user waits for.
    let secs = real.elapsed.as_secs_f64() + parse_secs;
    let rate = real.progress.acked as f64 / secs;
    let ceiling_rate = ceiling.events_per_second();
    println!(
        "{:<34} {:>10} {:>9.2} {:>12.0} {:>12.0} {:>7.0}%",
        label,
        real.progress.acked,
        secs,
        rate,
        ceiling_rate,
        100.0 * rate / ceiling_rate
    );
}
