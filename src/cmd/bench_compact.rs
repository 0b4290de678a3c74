//! `stocklake bench compact`: every saved query's warm time on a lake of many small files (a
//! file per symbol per flush, as a live feed leaves it), then `compact`'s time, then the same
//! queries on the compacted table; the results must be the same before and after.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::BenchCompactArgs;
use crate::engine::{LocalEngine, QueryOutput, queries};
use crate::error::Error;
use crate::lake::TableLayout;
use crate::lake::delta::compact::smallfiles::SmallFileLake;
use crate::lake::delta::compact::{CompactOptions, compact_table};
use crate::lake::delta::{TicksTable, provider, ticks_url};

pub fn run(args: &BenchCompactArgs) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench compact`");
    }
    let scratch =
        std::env::temp_dir().join(format!("stocklake-bench-compact-{}", std::process::id()));
    let lake = args.lake.clone().unwrap_or_else(|| scratch.clone());
    let result = bench(args, &lake);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn bench(args: &BenchCompactArgs, lake: &Path) -> Result<(), Error> {
    if lake.join("ticks/_delta_log").is_dir() {
        return Err(Error::Usage(format!(
            "{} already holds a lake: bench compact writes a new one (pass another --lake)",
            lake.display()
        )));
    }
    let rt = super::runtime(None)?;
    let url = lake.display().to_string();
    let symbols = args.symbols.max(1);
    let started = Instant::now();
    let (files, rows) = rt.block_on(async {
        let mut w =
            SmallFileLake::create(&url, TableLayout::default(), "ticks", symbols, 12).await?;
        let all: Vec<usize> = (0..symbols).collect();
        for _ in 0..args.flushes {
            w.flush(&all, args.rows_per_file).await?;
        }
        Ok::<_, Error>((w.files(), w.rows()))
    })?;
    println!(
        "small-file lake: {rows} rows, {symbols} symbols, {files} files ({} flushes of a file per symbol), written in {:.1} s ({})",
        args.flushes,
        started.elapsed().as_secs_f64(),
        lake.display()
    );

    let before = rt.block_on(time_queries(&url, args.runs))?;
    let started = Instant::now();
    let opts = CompactOptions {
        retain: Duration::ZERO,
        ..CompactOptions::default()
    };
    let table_url = ticks_url(&url)?;
    let report = rt.block_on(compact_table(
        &table_url,
        &opts,
        &|_| {},
        &std::sync::atomic::AtomicBool::new(false),
    ))?;
    let compact_secs = started.elapsed().as_secs_f64();
    println!(
        "compact: {} files -> {} in {:.1} s ({} rows rewritten, {} commits, {} files vacuumed)",
        report.files_before,
        report.files_after,
        compact_secs,
        report.rows_rewritten,
        report.commits,
        report.vacuumed_files
    );
    let after = rt.block_on(time_queries(&url, args.runs))?;

    println!(
        "{:<18} {:>8} {:>14} {:>14} {:>9}",
        "query", "rows", "before ms", "after ms", "speed-up"
    );
    let mut total = (Duration::ZERO, Duration::ZERO);
    for ((name, out_b, t_b), (_, out_a, t_a)) in before.iter().zip(&after) {
        if !same(name, out_b, out_a) {
            return Err(Error::Bench(format!(
                "{name}: the result after compaction differs from the one before"
            )));
        }
        total.0 += *t_b;
        total.1 += *t_a;
        println!(
            "{:<18} {:>8} {:>14.1} {:>14.1} {:>8.1}x",
            name,
            out_b.num_rows(),
            ms(*t_b),
            ms(*t_a),
            t_b.as_secs_f64() / t_a.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "{:<18} {:>8} {:>14.1} {:>14.1} {:>8.1}x   (median of {} warm runs each; target: >= 5x)",
        "all",
        "",
        ms(total.0),
        ms(total.1),
        total.0.as_secs_f64() / total.1.as_secs_f64().max(1e-9),
        args.runs.max(1)
    );
    Ok(())
}

/// Each saved query's result and median warm time, on the local engine with the lake's Delta
/// table (its latest version) registered as `stocklake.ticks`.
async fn time_queries(
    lake: &str,
    runs: usize,
) -> Result<Vec<(String, QueryOutput, Duration)>, Error> {
    let engine = LocalEngine::open(lake).await?;
    let table = TicksTable::open_or_create(&ticks_url(lake)?, &TableLayout::default()).await?;
    let ctx = engine.context();
    let name = "stocklake.ticks";
    ctx.deregister_table(name)
        .map_err(|e| Error::Bench(e.to_string()))?;
    ctx.register_table(name, provider(&table).await?)
        .map_err(|e| Error::Bench(e.to_string()))?;
    let mut out = Vec::new();
    for q in queries::builtin() {
        let (result, mut times) =
            super::bench_query::time_saved_query(&engine, &q.sql, runs).await?;
        times.sort();
        eprintln!(
            "  {}: {:.1} ms",
            q.name,
            times[times.len() / 2].as_secs_f64() * 1000.0
        );
        out.push((q.name.clone(), result, times[times.len() / 2]));
    }
    Ok(out)
}

/// Whether two results agree by the comparison rules of `compare` (floats summed in another
/// order may differ in their last digits).
fn same(name: &str, before: &QueryOutput, after: &QueryOutput) -> bool {
    use crate::compare::{OutputOrder, Side, SideFacts, Tolerance, compare};
    let side = |output, label: &str| Side {
        output,
        facts: SideFacts {
            label: label.into(),
            ..SideFacts::default()
        },
    };
    compare(
        name,
        &side(before, "before"),
        &side(after, "after"),
        &OutputOrder::unordered(),
        Tolerance::default(),
    )
    .agree
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
