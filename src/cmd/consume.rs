//! `stocklake consume`: the topic into the lake, with a live status line and a final summary.

use std::time::Instant;

use crate::cli::ConsumeArgs;
use crate::error::Error;
use crate::kafka::consumer::{ConsumeStats, LakeConsumer};
use crate::lake::{Lake, TableLayout};
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &ConsumeArgs, quiet: bool) -> Result<(), Error> {
    // Before the runtime's and librdkafka's threads: each may create a malloc arena. Only here:
    // a long-running consumer gains, a query engine on many cores may want its arenas.
    crate::memory::limit_arenas();
    let kafka = settings.kafka(&args.kafka);
    let opts = settings.consume(args);
    let lake_url = settings.lake_url(args.lake.as_ref());
    let wanted = (!args.partition_by.is_empty()).then(|| TableLayout {
        partition_by: dedup(&args.partition_by),
    });
    // Two workers: one encodes a flush while the other does the lake I/O.
    let rt = super::runtime(Some(2))?;
    let lake = rt.block_on(Lake::open(&lake_url))?;
    rt.block_on(crate::lake::upgrade::refuse_0_1_lake(&lake))?;
    let consumer = LakeConsumer::new(
        &kafka,
        lake.clone(),
        wanted,
        opts.clone(),
        rt.handle().clone(),
    );
    let mut consumer = consumer?;
    let _metrics = match &args.metrics {
        Some(addr) => {
            let mut registry = prometheus_client::registry::Registry::default();
            let stall_after = (opts.flush_interval * 3).max(crate::settings::defaults::STALL_AFTER);
            let m = crate::metrics::ConsumerMetrics::register(&mut registry, stall_after);
            consumer = consumer.with_metrics(m.clone());
            Some(serve_metrics(addr, registry, m)?)
        }
        None => None,
    };
    if args.register_partitions {
        tracing::warn!(
            "--register-partitions is no longer needed: the lake is a Delta table, which Athena reads without registered partitions (run `stocklake catalog` once)"
        );
    }
    if !quiet {
        eprintln!(
            "consuming {} as group {} into the Delta table {}ticks/ (Ctrl-C flushes, commits and stops)",
            opts.topic, opts.group, lake.url
        );
    }
    let bar = super::progress_bar(
        quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()),
        None,
        "{spinner} {wide_msg}",
    );
    let compactor = crate::settings::background_compact(args)
        .map(|(every, opts)| super::compact::background(&lake_url, every, opts, quiet));
    let started = Instant::now();
    let result = consumer.run(crate::signal::stop_flag(), |s| {
        bar.set_message(status_line(s, started));
        bar.tick();
    });
    bar.finish_and_clear();
    if let Some(c) = compactor {
        c.stop();
    }
    let stats = consumer.stats().clone();
    consumer.close();
    if !quiet || result.is_err() {
        print_summary(&stats, started);
    }
    Ok(result?)
}

/// Serves `registry` on `addr` and says where (the port may have been picked).
pub(super) fn serve_metrics(
    addr: &str,
    registry: prometheus_client::registry::Registry,
    health: std::sync::Arc<dyn crate::metrics::Health>,
) -> Result<crate::metrics::MetricsServer, Error> {
    let server = crate::metrics::serve(addr, registry, health)
        .map_err(|e| Error::Usage(format!("--metrics {addr}: {e}")))?;
    eprintln!(
        "metrics on http://{}/metrics (health: /healthz)",
        server.addr
    );
    Ok(server)
}

fn dedup(keys: &[crate::lake::PartitionKey]) -> Vec<crate::lake::PartitionKey> {
    let mut out = Vec::new();
    for k in keys {
        if !out.contains(k) {
            out.push(*k);
        }
    }
    out
}

fn status_line(s: &ConsumeStats, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    format!(
        "{:.0} events/s | {} rows in {} files ({:.0} rows/file) | {} rejects | lag {}",
        s.events as f64 / secs,
        s.rows,
        s.files,
        s.rows as f64 / s.files.max(1) as f64,
        s.rejects,
        s.lag
    )
}

fn print_summary(s: &ConsumeStats, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let first = s.first_event_at.map_or(String::new(), |t| {
        format!(
            "; first event after {:.2} s",
            t.saturating_duration_since(started).as_secs_f64()
        )
    });
    eprintln!(
        "committed {} rows in {} files ({:.1} MiB) and {} rejects in {} flushes, {:.1} s ({:.0} events/s); {} events were already in the lake; peak memory {}{first}",
        s.rows,
        s.files,
        s.bytes as f64 / (1 << 20) as f64,
        s.rejects,
        s.flushes,
        secs,
        (s.rows + s.rejects) as f64 / secs.max(1e-9),
        s.already_in_lake,
        peak_rss().map_or("unknown".into(), |kb| format!(
            "{:.0} MiB",
            kb as f64 / 1024.0
        ))
    );
    let mut reasons: Vec<_> = s.reject_reasons.iter().collect();
    reasons.sort();
    for (reason, n) in reasons {
        eprintln!("  rejected {n}: {reason}");
    }
}

/// Peak resident memory of this process in KiB (Linux: VmHWM).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
