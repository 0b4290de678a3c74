//! `stocklake compact`: bin-pack the lake's small files, vacuum, and print what was done; and the
//! background compaction of `consume --compact-every`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cli::CompactArgs;
use crate::error::Error;
use crate::lake::delta::compact::{CompactOptions, CompactReport, compact_lake};
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &CompactArgs, quiet: bool) -> Result<(), Error> {
    let opts = crate::settings::compact(args)?;
    let lake = settings.lake_url(args.lake.as_ref());
    let rt = super::runtime(None)?;
    let bar = super::progress_bar(
        quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()),
        None,
        "{spinner} {wide_msg}",
    );
    let started = Instant::now();
    let progress = |line: &str| {
        bar.set_message(line.to_string());
        bar.tick();
        tracing::info!("{line}");
    };
    let reports = rt.block_on(compact_lake(
        &lake,
        &opts,
        &progress,
        crate::signal::stop_flag(),
    ));
    bar.finish_and_clear();
    let reports = reports?;
    let mut out = String::new();
    for r in &reports {
        out.push_str(&describe(r, &opts));
    }
    if !quiet {
        let _ = writeln!(out, "({:.1} s)", started.elapsed().as_secs_f64());
    }
    print!("{out}");
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// What a compaction did, for people: a few lines per table.
pub fn describe(r: &CompactReport, opts: &CompactOptions) -> String {
    let mut s = String::new();
    let would = if r.dry_run { "would " } else { "" };
    let _ = writeln!(
        s,
        "{}{}",
        r.table,
        if r.dry_run {
            " (dry run: nothing written or deleted)"
        } else {
            ""
        }
    );
    if r.dry_run {
        let _ = writeln!(
            s,
            "  files     {} ({}) at version {}",
            r.files_before,
            mib(r.bytes_before),
            r.version_before
        );
    } else {
        let _ = writeln!(
            s,
            "  files     {} ({}) -> {} ({}); version {} -> {}",
            r.files_before,
            mib(r.bytes_before),
            r.files_after,
            mib(r.bytes_after),
            r.version_before,
            r.version_after
        );
    }
    let _ = writeln!(
        s,
        "  compact   {would}rewrite {} small files ({}) of {} of {} partitions into {} files{}",
        r.files_removed,
        mib(r.bytes_removed),
        r.partitions_compacted,
        r.partitions,
        r.files_added,
        if r.dry_run {
            String::new()
        } else {
            format!(
                " ({}, {} rows) in {} commits",
                mib(r.bytes_added),
                r.rows_rewritten,
                r.commits
            )
        }
    );
    if r.partitions_live > 0 {
        let _ = writeln!(
            s,
            "  skipped   {} partitions with a commit in the last {}",
            r.partitions_live,
            humantime::format_duration(opts.min_age)
        );
    }
    if r.stopped {
        let _ = writeln!(
            s,
            "  stopped   by Ctrl-C: what was rewritten is committed; no vacuum this time"
        );
    }
    if r.refused > 0 {
        let _ = writeln!(
            s,
            "  refused   {} times: another compaction committed first (the table was read again)",
            r.refused
        );
    }
    if r.bins_skipped > 0 {
        let _ = writeln!(
            s,
            "  left      {} groups of files whose columns differ",
            r.bins_skipped
        );
    }
    if opts.vacuum {
        let _ = writeln!(
            s,
            "  vacuum    {would}delete {} unreferenced files and {} staging files older than {}{}",
            r.vacuumed_files,
            r.staging_files,
            humantime::format_duration(opts.retain),
            if r.dry_run {
                String::new()
            } else {
                format!("; {} expired log entries", r.log_entries_removed)
            }
        );
    }
    s
}

/// The compaction `consume --compact-every` runs on a thread of its own, one run per interval.
pub struct Background {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
}

/// Starts compacting `lake` every `every` (the first run after one interval).
pub fn background(lake: &str, every: Duration, opts: CompactOptions, quiet: bool) -> Background {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, done) = mpsc::channel();
    let lake = lake.to_string();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("compact".into())
        .spawn(move || {
            background_loop(&lake, every, &opts, quiet, &flag);
            let _ = tx.send(());
        })
        .map_or_else(
            |e| tracing::warn!("cannot start the background compaction: {e}"),
            |_| (),
        );
    Background { stop, done }
}

fn background_loop(
    lake: &str,
    every: Duration,
    opts: &CompactOptions,
    quiet: bool,
    stop: &AtomicBool,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("background compaction: {e}");
            return;
        }
    };
    loop {
        let started = Instant::now();
        while started.elapsed() < every {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100).min(every));
        }
        match rt.block_on(compact_lake(
            lake,
            opts,
            &|line| tracing::debug!("{line}"),
            stop,
        )) {
            Ok(reports) => {
                for r in reports {
                    let line = format!(
                        "background compaction of {}: {} small files into {} ({} partitions still changing), {} files vacuumed; version {} -> {}",
                        r.table,
                        r.files_removed,
                        r.files_added,
                        r.partitions_live,
                        r.vacuumed_files + r.staging_files,
                        r.version_before,
                        r.version_after
                    );
                    if quiet {
                        tracing::info!("{line}");
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
            Err(e) => tracing::warn!(
                "background compaction failed (the consumer goes on): {}",
                crate::report::chain(&e)
            ),
        }
    }
}

impl Background {
    /// Asks the background compaction to stop, and waits a little for a run in progress (one
    /// cut short leaves only uncommitted files, which a later vacuum deletes).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.done.recv_timeout(Duration::from_secs(2)).is_err() {
            tracing::info!("background compaction still running; leaving it");
        }
    }
}
