//! `stocklake produce`: CSV files or synthetic ticks into a Kafka topic.

use std::time::Instant;

use crate::cli::ProduceArgs;
use crate::error::Error;
use crate::kafka::producer::{Progress, produce};
use crate::kafka::{ProduceSummary, Producer};
use crate::settings::Settings;
use crate::source::{
    CsvOptions, CsvStream, OnError, Pacer, Pacing, StreamOptions, Synthetic, SyntheticOptions,
    scan_csv_files,
};
use crate::tick::{MS_PER_DAY, parse_iso_millis};

pub fn run(settings: &Settings, args: &ProduceArgs, quiet: bool) -> Result<(), Error> {
    let kafka = settings.kafka(&args.kafka);
    let topic = settings.topic(&args.kafka);
    let pacing = pacing(args)?;

    let mut failure = None;
    let (ticks, expected): (Box<dyn Iterator<Item = crate::tick::Tick>>, Option<u64>) =
        if args.synthetic {
            let opts = synthetic_options(args)?;
            let rows = opts.rows;
            (Box::new(Synthetic::new(opts)), Some(rows))
        } else {
            let stream = csv_stream(args, quiet)?;
            failure = Some(stream.failure());
            let n = stream.rows_per_pass();
            (Box::new(stream), (!args.looping).then_some(n))
        };
    let expected = match (expected, args.limit) {
        (Some(e), Some(l)) => Some(e.min(l)),
        (e, l) => l.or(e),
    };

    let producer = Producer::new(&kafka, &topic)?;
    let metrics = match &args.metrics {
        Some(addr) => {
            let mut registry = prometheus_client::registry::Registry::default();
            let m = crate::metrics::ProducerMetrics::register(&mut registry);
            let server = super::consume::serve_metrics(addr, registry, m.clone())?;
            Some((m, server))
        }
        None => None,
    };
    let bar = super::progress_bar(
        quiet,
        expected,
        "{spinner} {pos}/{len} acknowledged {wide_msg} [{elapsed_precise}]",
    );
    let started = Instant::now();
    let mut pacer = Pacer::new(pacing);
    let summary = produce(
        &producer,
        ticks,
        &mut pacer,
        args.limit,
        crate::signal::stop_flag(),
        crate::signal::abort_flag(),
        |p: Progress| {
            if let Some((m, _)) = &metrics {
                m.report(p.sent, p.acked, p.failed);
            }
            bar.set_position(p.acked);
            let rate = p.acked as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "sent {} failed {} {:.0} events/s",
                p.sent, p.failed, rate
            ));
        },
    )?;
    bar.finish_and_clear();
    if let Some((m, _)) = &metrics {
        let p = summary.progress;
        m.report(p.sent, p.acked, p.failed);
    }
    print_summary(&summary, &topic, quiet);
    if let Some(e) = failure.and_then(|f| f.take()) {
        return Err(e.into());
    }
    summary.check()?;
    Ok(())
}

/// The first pass over the files (every row validated; what it found said on stderr), then
/// the streaming replay.
fn csv_stream(args: &ProduceArgs, quiet: bool) -> Result<CsvStream, Error> {
    let opts = StreamOptions {
        csv: CsvOptions {
            layout: args.layout,
            symbol: args.symbol.clone(),
            on_error: args.on_error,
        },
        file_order: args.file_order,
        looping: args.looping,
        run_rows: args.sort_run_rows,
        max_open: args.max_open_files,
        cancel: Some(crate::signal::stop_flag()),
    };
    let started = Instant::now();
    let scan = scan_csv_files(&args.files, &opts)?;
    let report = &scan.report;
    for f in &report.files {
        tracing::info!(
            "{}: {} layout, {} rows, {} skipped",
            f.path.display(),
            f.layout.name(),
            f.rows,
            f.skipped
        );
    }
    let skipped = report.skipped_rows();
    if args.on_error == OnError::Skip && skipped > 0 {
        eprintln!("skipped {skipped} malformed row(s):");
        for e in report.skipped.iter().take(20) {
            eprintln!("  {e}");
        }
        if skipped > 20 {
            eprintln!("  … and {} more", skipped - 20);
        }
    }
    if !quiet {
        eprintln!(
            "read {} rows from {} file(s) in {:.2?}",
            report.rows(),
            report.files.len(),
            started.elapsed()
        );
    }
    let sorting = Instant::now();
    let stream = CsvStream::new(&args.files, &scan, opts)?;
    if !quiet && !stream.sorted_files.is_empty() {
        eprintln!(
            "sorted {} file(s) not in time order in {:.2?} ({} run(s) of at most {} rows)",
            stream.sorted_files.len(),
            sorting.elapsed(),
            stream
                .sorted_files
                .iter()
                .map(|(_, runs)| runs)
                .sum::<usize>(),
            args.sort_run_rows
        );
    }
    Ok(stream)
}

fn print_summary(s: &ProduceSummary, topic: &str, quiet: bool) {
    let p = s.progress;
    if quiet && p.failed == 0 && p.outstanding() == 0 && s.stopped_by.is_none() {
        return;
    }
    eprintln!(
        "{}sent {} events to topic {topic}: {} acknowledged, {} failed, {} unconfirmed{}, in {:.2?} ({:.0} events/s)",
        if s.interrupted { "interrupted: " } else { "" },
        p.sent,
        p.acked,
        p.failed,
        p.outstanding(),
        if s.stopped_by.is_some() {
            ", 1 refused (sending stopped there)"
        } else {
            ""
        },
        s.elapsed,
        s.events_per_second()
    );
}

fn pacing(args: &ProduceArgs) -> Result<Pacing, Error> {
    Ok(match (args.delay, args.rate, args.replay_speed) {
        (Some(d), _, _) => Pacing::Delay(d),
        (_, Some(r), _) if r > 0.0 && r.is_finite() => Pacing::Rate(r),
        (_, Some(r), _) => return Err(Error::Usage(format!("--rate {r}: must be positive"))),
        (_, _, Some(s)) if s > 0.0 && s.is_finite() => Pacing::ReplaySpeed(s),
        (_, _, Some(s)) => {
            return Err(Error::Usage(format!(
                "--replay-speed {s}: must be positive"
            )));
        }
        _ => Pacing::FlatOut,
    })
}

fn synthetic_options(args: &ProduceArgs) -> Result<SyntheticOptions, Error> {
    let start_ms = parse_iso_millis(&args.start).ok_or_else(|| {
        Error::Usage(format!("--start {:?}: not a date (YYYY-MM-DD)", args.start))
    })?;
    if args.symbols == 0 {
        return Err(Error::Usage("--symbols must be at least 1".into()));
    }
    let interval_ms = i64::try_from(args.interval.as_millis()).unwrap_or(i64::MAX);
    if interval_ms < 1 || (interval_ms > MS_PER_DAY && interval_ms % MS_PER_DAY != 0) {
        return Err(Error::Usage(format!(
            "--interval {:?}: must be at least 1ms, and whole days above a day",
            args.interval
        )));
    }
    Ok(SyntheticOptions {
        symbols: args.symbols,
        rows: args.limit.map_or(args.rows, |l| l.min(args.rows)),
        seed: args.seed,
        interval_ms,
        start_ms,
    })
}
