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
use crate::lake::{Lake, ensure_layout};
use crate::print::OutputFormat;
use crate::source::csv::{CsvOptions, read_csv};
use crate::source::{Pacer, Pacing, Replay, load_csv_files, sort_for_replay};
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
    let ticks = sample_ticks(&args.files)?;
    let total = ticks.len() as u64;

    // 1. The broker.
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![(TOPIC.into(), args.partitions.max(1))],
        ..Default::default()
    })?;
    let kafka = KafkaSettings {
        brokers: broker.bootstrap_servers().to_string(),
        properties: vec![],
    };
    say(format!(
        "1/4 embedded Kafka broker on {} (topic {TOPIC}, {} partitions)",
        broker.bootstrap_servers(),
        args.partitions.max(1)
    ));

    // 2. Produce.
    let producer = Producer::new(&kafka, TOPIC)?;
    let stop = crate::signal::stop_flag();
    let summary = produce(
        &producer,
        Replay::new(ticks, false),
        &mut Pacer::new(Pacing::FlatOut),
        None,
        stop,
        crate::signal::abort_flag(),
        |_| {},
    )?;
    summary.check()?;
    drop(producer);
    say(format!(
        "2/4 produced {} events in {:.2?} ({:.0} events/s)",
        summary.progress.acked,
        summary.elapsed,
        summary.events_per_second()
    ));

    // 3. Consume into the lake.
    let rt = super::runtime(None)?;
    let lake = rt.block_on(Lake::open(&args.lake))?;
    let layout = rt.block_on(ensure_layout(&lake, None))?;
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
    let mut consumer = LakeConsumer::new(&kafka, lake.clone(), layout, opts, rt.handle().clone())?;
    consumer.run(stop, |_| {})?;
    let stats = consumer.stats().clone();
    consumer.close();
    say(format!(
        "3/4 consumed into {}ticks/: {} rows in {} Parquet files, {} rejects, in {:.2?}{}",
        lake.url,
        stats.rows,
        stats.files,
        stats.rejects,
        consumed_at.elapsed(),
        if stats.rows + stats.rejects < total {
            format!(
                " ({} events were already in the lake: not written twice)",
                total - stats.rows - stats.rejects
            )
        } else {
            String::new()
        }
    ));

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
        cancel: stop,
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

    let lake_arg = args.lake.clone();
    say(format!(
        "\ndemo finished in {:.1?}. Next:\n\
         \x20 stocklake sql --lake {lake_arg} -c \"SELECT symbol, count(*) FROM stocklake.ticks GROUP BY 1 ORDER BY 1\"\n\
         \x20 stocklake repl --lake {lake_arg}                 # \\? lists the commands, \\queries the saved ones\n\
         \x20 stocklake broker  # then, in two more terminals, the tutorial at 1 event/s:\n\
         \x20 stocklake produce data/stocks.csv --delay 1s    |    stocklake consume --lake {lake_arg}\n\
         \x20 .venv/bin/jupyter lab notebooks/                 # plots of the lake (bash scripts/python-env.sh first)",
        started.elapsed()
    ));
    if args.repl {
        crate::cmd::repl::run_on(&args.lake, quiet)?;
    }
    Ok(())
}

/// The ticks to replay, in replay order: the given files, else data/stocks.csv, else the
/// built-in copy of it.
fn sample_ticks(files: &[PathBuf]) -> Result<Vec<Tick>, Error> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let local = PathBuf::from("data/stocks.csv");
        if local.exists() { vec![local] } else { vec![] }
    } else {
        files.to_vec()
    };
    if !files.is_empty() {
        return Ok(load_csv_files(&files, &CsvOptions::default())?.0);
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
    Ok(ticks)
}
