//! `stocklake bench compact`: every saved query's warm time on a lake of many small files (a
//! file per symbol per flush, as a live feed leaves it), then `compact`'s time, then the same
//! queries on the compacted table, and on a lake of the same rows written in large files (one
//! flush, a file per symbol); the results must be the same on all three.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::BenchCompactArgs;
use crate::engine::{LocalEngine, QueryOutput, queries};
use crate::error::Error;
use crate::lake::TableLayout;
use crate::lake::delta::compact::smallfiles::SmallFileLake;
use crate::lake::delta::compact::{CompactOptions, compact_table};
use crate::lake::delta::ticks_url;

pub fn run(args: &BenchCompactArgs) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench compact`");
    }
    let scratch =
        std::env::temp_dir().join(format!("stocklake-bench-compact-{}", std::process::id()));
    let lake = args.lake.clone().unwrap_or_else(|| scratch.join("small"));
    let result = bench(args, &lake, &scratch.join("large"));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// A lake of `flushes` flushes of a file per symbol, each of `rows_per_file` rows.
fn write_lake(
    rt: &tokio::runtime::Runtime,
    url: &str,
    symbols: usize,
    flushes: usize,
    rows_per_file: usize,
) -> Result<(u64, u64), Error> {
    rt.block_on(async {
        let mut w =
            SmallFileLake::create(url, TableLayout::default(), "ticks", symbols, 12).await?;
        let all: Vec<usize> = (0..symbols).collect();
        for _ in 0..flushes {
            w.flush(&all, rows_per_file).await?;
        }
        Ok::<_, Error>((w.files(), w.rows()))
    })
}

fn bench(args: &BenchCompactArgs, lake: &Path, large: &Path) -> Result<(), Error> {
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
    let (files, rows) = write_lake(&rt, &url, symbols, args.flushes, args.rows_per_file)?;
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

    let large_url = large.display().to_string();
    let started = Instant::now();
    let (large_files, _) = write_lake(
        &rt,
        &large_url,
        symbols,
        1,
        args.flushes * args.rows_per_file,
    )?;
    println!(
        "large-file lake: the same rows in {large_files} files (one flush), written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let written_large = rt.block_on(time_queries(&large_url, args.runs))?;

    println!(
        "{:<18} {:>8} {:>12} {:>12} {:>9} {:>12} {:>14}",
        "query", "rows", "before ms", "after ms", "speed-up", "large ms", "after/large"
    );
    let mut total = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut worst: f64 = 0.0;
    for (((name, out_b, t_b), (_, out_a, t_a)), (_, out_l, t_l)) in
        before.iter().zip(&after).zip(&written_large)
    {
        if !same(name, out_b, out_a) {
            return Err(Error::Bench(format!(
                "{name}: the result after compaction differs from the one before"
            )));
        }
        if !same(name, out_l, out_a) {
            return Err(Error::Bench(format!(
                "{name}: the result on the large-file lake differs from the compacted lake's"
            )));
        }
        total.0 += *t_b;
        total.1 += *t_a;
        total.2 += *t_l;
        let vs_large = t_a.as_secs_f64() / t_l.as_secs_f64().max(1e-9);
        worst = worst.max(vs_large);
        println!(
            "{:<18} {:>8} {:>12.1} {:>12.1} {:>8.1}x {:>12.1} {:>13.2}x",
            name,
            out_b.num_rows(),
            ms(*t_b),
            ms(*t_a),
            t_b.as_secs_f64() / t_a.as_secs_f64().max(1e-9),
            ms(*t_l),
            vs_large
        );
    }
    println!(
        "{:<18} {:>8} {:>12.1} {:>12.1} {:>8.1}x {:>12.1} {:>13.2}x",
        "all",
        "",
        ms(total.0),
        ms(total.1),
        total.0.as_secs_f64() / total.1.as_secs_f64().max(1e-9),
        ms(total.2),
        total.1.as_secs_f64() / total.2.as_secs_f64().max(1e-9),
    );
    println!(
        "median of {} warm runs each; targets: compaction >= 5x faster, the compacted lake within \
         1.2x of the large-file lake on every query (highest here {worst:.2}x)",
        args.runs.max(1)
    );
    Ok(())
}

/// Each saved query's result and median warm time, on the local engine at the lake's latest
/// version.
async fn time_queries(
    lake: &str,
    runs: usize,
) -> Result<Vec<(String, QueryOutput, Duration)>, Error> {
    let engine = LocalEngine::open(lake).await?;
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
