//! `stocklake demo`: the whole path on one machine with nothing installed: the embedded broker,
//! the sample data produced flat out, consumed exactly once into a local lake, every saved
//! query run on the lake; then what to try next (or the REPL).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::cli::DemoArgs;
use crate::engine::{Engine, EngineKind, queries};
use crate::error::Error;
use crate::kafka::consumer::{ConsumeOptions, LakeConsumer};
use crate::kafka::producer::produce;
use crate::kafka::{BrokerOptions, EmbeddedBroker, KafkaSettings, Producer};
use crate::lake::Lake;
use crate::print::OutputFormat;
use crate::source::csv::{CsvOptions, read_csv};
use crate::source::{
    CsvStream, Pacer, Pacing, Replay, StreamFailure, StreamOptions, scan_csv_files, sort_for_replay,
};
use crate::tick::Tick;

/// The sample data, built in so that the demo runs from any folder.
const SAMPLE_CSV: &[u8] = include_bytes!("../../data/stocks.csv");
const TOPIC: &str = "ticks";

pub fn run(args: &DemoArgs, quiet: bool) -> Result<(), Error> {
    let started = Instant::now();
    let say = |text: String| {
        if !quiet {
            eprintln!("{text}");
        }
    };
    let (ticks, total, failure) = sample_ticks(&args.files)?;

    // 1. The broker.
    let partitions = args.partitions.max(1);
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![(TOPIC.into(), partitions)],
        ..Default::default()
    })?;
    let kafka = KafkaSettings {
        brokers: broker.bootstrap_servers().to_string(),
        properties: vec![],
    };
    say(format!(
        "1/4 embedded Kafka broker on {} (topic {TOPIC}, {partitions} partitions)",
        broker.bootstrap_servers(),
    ));

    // 2. Produce.
    say(produce_all(&kafka, ticks)?);
    if let Some(e) = failure.take() {
        return Err(e.into());
    }

    // 3. Consume into the lake.
    let rt = super::runtime(None)?;
    let lake = rt.block_on(Lake::open(&args.lake))?;
    rt.block_on(crate::lake::upgrade::refuse_0_1_lake(&lake))?;
    say(consume_all(&kafka, &lake, total, &rt)?);

    // 4. Every saved query.
    let saved = queries::load(crate::settings::queries_dir(None).as_deref())?;
    say(format!(
        "4/4 running {} saved queries on the lake (first {} rows of each)\n",
        saved.len(),
        args.maxrows
    ));
    let show = crate::script::Show {
        format: OutputFormat::Table,
        max_rows: Some(args.maxrows),
        timing: !quiet,
        tolerance: Default::default(),
        cancel: crate::signal::stop_flag(),
    };
    rt.block_on(async {
        let engine = Engine::connect(
            EngineKind::Local,
            lake.url.as_str(),
            Default::default(),
            None,
        )
        .await?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        crate::script::run_saved_queries(&engine, &saved, show, quiet, &mut out).await?;
        out.flush().ok();
        Ok::<(), Error>(())
    })?;
    drop(broker);
    say(next_steps(&args.lake, started));
    if args.repl {
        crate::cmd::repl::run_on(&args.lake, quiet)?;
    }
    Ok(())
}

/// Step 2: every tick into the topic, flat out; the line that says how it went.
fn produce_all(
    kafka: &KafkaSettings,
    ticks: Box<dyn Iterator<Item = Tick>>,
) -> Result<String, Error> {
    let producer = Producer::new(kafka, TOPIC)?;
    let summary = produce(
        &producer,
        ticks,
        &mut Pacer::new(Pacing::FlatOut),
        None,
        crate::signal::stop_flag(),
        crate::signal::abort_flag(),
        |_| {},
    )?;
    summary.check()?;
    Ok(format!(
        "2/4 produced {} events in {:.2?} ({:.0} events/s)",
        summary.progress.acked,
        summary.elapsed,
        summary.events_per_second()
    ))
}

/// Step 3: the topic into the lake until every partition is read (`total` events were sent);
/// the line that says how it went.
fn consume_all(
    kafka: &KafkaSettings,
    lake: &Lake,
    total: u64,
    rt: &tokio::runtime::Runtime,
) -> Result<String, Error> {
    let opts = ConsumeOptions {
        topic: TOPIC.into(),
        group: "stocklake-demo".into(),
        max_events: Some(total),
        // A lake that already holds the stream is read from its end (nothing to count up to
        // `total`): stop once every partition is read to its end.
        exit_when_idle: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    let consumed_at = Instant::now();
    let mut consumer = LakeConsumer::new(kafka, lake.clone(), None, opts, rt.handle().clone())?;
    consumer.run(crate::signal::stop_flag(), |_| {})?;
    let stats = consumer.stats().clone();
    consumer.close();
    let already = total.saturating_sub(stats.rows + stats.rejects);
    Ok(format!(
        "3/4 consumed into {}ticks/: {} rows in {} Parquet files, {} rejects, in {:.2?}{}",
        lake.url,
        stats.rows,
        stats.files,
        stats.rejects,
        consumed_at.elapsed(),
        if already > 0 {
            format!(" ({already} events were already in the lake: not written twice)")
        } else {
            String::new()
        }
    ))
}

/// What to try after the demo.
fn next_steps(lake: &str, started: Instant) -> String {
    format!(
        "\ndemo finished in {:.1?}. Next:\n\
         \x20 stocklake sql --lake {lake} -c \"SELECT symbol, count(*) FROM stocklake.ticks GROUP BY 1 ORDER BY 1\"\n\
         \x20 stocklake repl --lake {lake}                 # \\? lists the commands, \\queries the saved ones\n\
         \x20 stocklake broker  # then, in two more terminals, the tutorial at 1 event/s:\n\
         \x20 stocklake produce data/stocks.csv --delay 1s    |    stocklake consume --lake {lake}\n\
         \x20 .venv/bin/jupyter lab notebooks/                 # plots of the lake (bash scripts/python-env.sh first)",
        started.elapsed()
    )
}

type Ticks = Box<dyn Iterator<Item = Tick>>;

/// The ticks to replay, in replay order, their number, and where a read error that ends them
/// waits: the given files, else data/stocks.csv (streamed like `produce` streams them), else
/// the built-in copy of it (12,154 rows compiled in: loaded and sorted in memory).
fn sample_ticks(files: &[PathBuf]) -> Result<(Ticks, u64, StreamFailure), Error> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let local = PathBuf::from("data/stocks.csv");
        if local.exists() { vec![local] } else { vec![] }
    } else {
        files.to_vec()
    };
    if !files.is_empty() {
        let opts = StreamOptions {
            csv: CsvOptions::default(),
            file_order: false,
            looping: false,
            run_rows: crate::settings::defaults::SORT_RUN_ROWS,
            max_open: crate::settings::defaults::MAX_OPEN_FILES,
            cancel: Some(crate::signal::stop_flag()),
        };
        let scan = scan_csv_files(&files, &opts)?;
        let stream = CsvStream::new(&files, &scan, opts)?;
        let (total, failure) = (stream.rows_per_pass(), stream.failure());
        return Ok((Box::new(stream), total, failure));
    }
    let mut ticks = Vec::new();
    let mut skipped = Vec::new();
    read_csv(
        std::path::Path::new("<built-in>/stocks.csv"),
        SAMPLE_CSV,
        &CsvOptions::default(),
        &mut ticks,
        &mut skipped,
    )?;
    sort_for_replay(&mut ticks);
    let total = ticks.len() as u64;
    Ok((
        Box::new(Replay::new(ticks, false)),
        total,
        StreamFailure::default(),
    ))
}
