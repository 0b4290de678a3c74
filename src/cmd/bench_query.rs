//! `stocklake bench query`: each saved query's warm time on a synthetic Delta table of ≥ 10M
//! rows (and what refreshing the unchanged table costs each query), beside DuckDB's time for the
//! same SQL on the same files (scripts/bench_duckdb.py in the project's venv) with the ratio and
//! its geometric mean, and the process start-to-first-row time of `stocklake sql -c` on the
//! sample lake.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::BenchQueryArgs;
use crate::engine::lakegen::{LakeGen, write_sample_lake};
use crate::engine::statements;
use crate::engine::{LocalEngine, queries};
use crate::error::Error;
use crate::lake::TableLayout;
use crate::source::{Synthetic, SyntheticOptions};
use crate::tick::{MS_PER_DAY, days_from_civil};

pub fn run(args: &BenchQueryArgs) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run `cargo run --release -- bench query`");
    }
    let scratch = std::env::temp_dir().join(format!("stocklake-bench-{}", std::process::id()));
    let lake = args
        .lake
        .clone()
        .unwrap_or_else(|| scratch.join("synthetic"));
    let result = bench(args, &lake, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn bench(args: &BenchQueryArgs, lake: &Path, scratch: &Path) -> Result<(), Error> {
    if !args.no_duckdb {
        duckdb_python(args)?;
    }
    if lake.join("ticks/_delta_log").is_dir() {
        println!("synthetic lake: reusing {}", lake.display());
    } else {
        let start = Instant::now();
        let (files, rows) = build_synthetic(lake, args.rows, args.symbols)?;
        println!(
            "synthetic lake: {rows} rows, {} symbols, {files} files, written in {:.1} s ({})",
            args.symbols,
            start.elapsed().as_secs_f64(),
            lake.display()
        );
    }

    let rt = super::runtime(args.threads)?;
    let url = lake.display().to_string();
    let local = rt.block_on(async {
        let engine = LocalEngine::open(&url).await?;
        // What every query pays first: refreshing the table to its latest version.
        let mut refresh = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            engine.refresh().await?;
            refresh.push(start.elapsed());
        }
        let (rmin, rmedian) = min_median(&mut refresh);
        println!(
            "refresh of the unchanged table before each query: min {:.2} ms, median {:.2} ms",
            ms(rmin),
            ms(rmedian)
        );
        println!(
            "{:<18} {:>10} {:>10} {:>10}",
            "query", "rows", "min ms", "median ms"
        );
        let mut local = Vec::new();
        for q in selected(args)? {
            let (warm, mut times) = time_saved_query(&engine, &q.sql, args.runs).await?;
            let (min, median) = min_median(&mut times);
            println!(
                "{:<18} {:>10} {:>10.1} {:>10.1}",
                q.name,
                warm.num_rows(),
                ms(min),
                ms(median)
            );
            local.push(LocalTime {
                name: q.name.to_string(),
                rows: warm.num_rows() as u64,
                median,
            });
        }
        Ok::<_, Error>(local)
    })?;
    if !args.no_duckdb {
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let duck = duckdb_times(args, lake, scratch, threads)?;
        print_ratios(&local, &duck)?;
    }

    let sample = scratch.join("sample");
    write_sample_lake(&args.file, &sample)
        .map_err(|e| Error::Bench(format!("writing the sample lake: {e}")))?;
    let mut times = Vec::new();
    for _ in 0..5 {
        times.push(start_to_first_row(&sample)?);
    }
    let (min, median) = min_median(&mut times);
    println!(
        "start-to-first-row of `stocklake -q sql -c … --lake <sample lake>`: min {:.1} ms, median {:.1} ms (target ≤ 200 ms)",
        ms(min),
        ms(median)
    );
    Ok(())
}

/// A saved query's local result size and median time.
struct LocalTime {
    name: String,
    rows: u64,
    median: Duration,
}

/// What scripts/bench_duckdb.py prints.
#[derive(serde::Deserialize)]
struct DuckTimes {
    duckdb: String,
    threads: usize,
    files: u64,
    queries: std::collections::BTreeMap<String, DuckQuery>,
}

#[derive(serde::Deserialize)]
struct DuckQuery {
    rows: u64,
    ms: Vec<f64>,
}

/// The venv's Python and the DuckDB script, or an error saying how to get them.
fn duckdb_python(args: &BenchQueryArgs) -> Result<(PathBuf, &'static Path), Error> {
    let python = args.venv.join("bin/python");
    if !python.is_file() {
        return Err(Error::Bench(format!(
            "{} is missing: run `bash scripts/python-env.sh` (or pass --venv, or --no-duckdb)",
            python.display()
        )));
    }
    let script = Path::new("scripts/bench_duckdb.py");
    if !script.is_file() {
        return Err(Error::Bench(
            "scripts/bench_duckdb.py not found: run `bench query` from the stocklake checkout"
                .into(),
        ));
    }
    Ok((python, script))
}

/// The saved queries `--only` names (all of them without it); an unknown name is an error.
fn selected(args: &BenchQueryArgs) -> Result<Vec<queries::SavedQuery>, Error> {
    let all = queries::builtin();
    if let Some(unknown) = args
        .only
        .iter()
        .find(|n| !all.iter().any(|q| &q.name == *n))
    {
        let names: Vec<&str> = all.iter().map(|q| q.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "--only {unknown}: no saved query of that name (there are {})",
            names.join(", ")
        )));
    }
    Ok(all
        .into_iter()
        .filter(|q| args.only.is_empty() || args.only.contains(&q.name))
        .collect())
}

/// Runs scripts/bench_duckdb.py on the lake's current files with the saved queries' exact text.
fn duckdb_times(
    args: &BenchQueryArgs,
    lake: &Path,
    scratch: &Path,
    threads: usize,
) -> Result<DuckTimes, Error> {
    let (python, script) = duckdb_python(args)?;
    let dir = scratch.join("queries");
    std::fs::create_dir_all(&dir).map_err(Error::io("writing the saved queries for DuckDB"))?;
    for q in selected(args)? {
        std::fs::write(dir.join(format!("{}.sql", q.name)), q.sql.as_bytes())
            .map_err(Error::io("writing the saved queries for DuckDB"))?;
    }
    println!(
        "DuckDB: the same SQL on the same files, {threads} threads ({})",
        python.display()
    );
    let out = Command::new(&python)
        .arg(script)
        .arg("--lake")
        .arg(lake)
        .arg("--queries")
        .arg(&dir)
        .args(["--runs", &args.runs.max(1).to_string()])
        .args(["--threads", &threads.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io("running scripts/bench_duckdb.py"))?;
    if !out.status.success() {
        return Err(Error::Bench(format!(
            "scripts/bench_duckdb.py failed ({})",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::Bench(format!(
            "reading what scripts/bench_duckdb.py printed: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        ))
    })
}

/// Each query's local and DuckDB median and their ratio, and the geometric mean of the ratios.
/// A query whose row counts differ is an error (after the table): the engines disagree.
fn print_ratios(local: &[LocalTime], duck: &DuckTimes) -> Result<(), Error> {
    println!(
        "DuckDB {} ({} threads, {} files)",
        duck.duckdb, duck.threads, duck.files
    );
    println!(
        "{:<18} {:>10} {:>12} {:>12} {:>14}",
        "query", "rows", "local ms", "duckdb ms", "local/duckdb"
    );
    let (mut log_sum, mut n, mut worst, mut differ) = (0.0f64, 0u32, 0.0f64, Vec::new());
    for l in local {
        let Some(d) = duck.queries.get(&l.name) else {
            differ.push(format!("{}: DuckDB did not run it", l.name));
            continue;
        };
        let mut times = d.ms.clone();
        times.sort_by(f64::total_cmp);
        let duck_ms = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        let ratio = ms(l.median) / duck_ms;
        println!(
            "{:<18} {:>10} {:>12.1} {:>12.1} {:>13.2}x",
            l.name,
            l.rows,
            ms(l.median),
            duck_ms,
            ratio
        );
        if d.rows != l.rows {
            differ.push(format!(
                "{}: {} rows locally, {} in DuckDB",
                l.name, l.rows, d.rows
            ));
        }
        if ratio.is_finite() && ratio > 0.0 {
            log_sum += ratio.ln();
            n += 1;
            worst = worst.max(ratio);
        }
    }
    if n > 0 {
        println!(
            "geometric mean of local/duckdb: {:.2}x over {n} queries (highest {:.2}x)",
            (log_sum / f64::from(n)).exp(),
            worst
        );
    }
    if differ.is_empty() {
        Ok(())
    } else {
        Err(Error::Bench(format!(
            "the engines' results differ in size: {}",
            differ.join("; ")
        )))
    }
}

/// One daily series per symbol, each from its own seeded generator, one file per symbol.
fn build_synthetic(lake: &Path, rows: u64, symbols: u64) -> Result<(u64, u64), Error> {
    let symbols = symbols.max(1);
    let per_symbol = rows.div_ceil(symbols);
    let mut lake_gen = LakeGen::new(lake, TableLayout::default(), 0, per_symbol as usize)?;
    for i in 0..symbols {
        let series = Synthetic::new(SyntheticOptions {
            symbols: 1,
            rows: per_symbol,
            seed: 1000 + i,
            interval_ms: MS_PER_DAY,
            start_ms: days_from_civil(1980, 1, 2) * MS_PER_DAY,
        });
        let name = format!("S{i:05}");
        for mut t in series {
            t.symbol.clone_from(&name);
            lake_gen.push(&t)?;
        }
    }
    let (files, rows, _) = lake_gen.finish()?;
    Ok((files, rows))
}

/// Runs this executable's `sql -c` and times until the first data row is on its stdout.
fn start_to_first_row(lake: &Path) -> Result<Duration, Error> {
    let exe: PathBuf = std::env::current_exe().map_err(Error::io("finding this executable"))?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .args(["-q", "sql", "--format", "csv", "--lake"])
        .arg(lake)
        .args([
            "-c",
            "SELECT symbol, count(*) FROM stocklake.ticks GROUP BY 1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(Error::io("starting stocklake sql"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The first row is complete at the second newline (after the header).
    while seen.iter().filter(|b| **b == b'\n').count() < 2 {
        let n = stdout
            .read(&mut buf)
            .map_err(Error::io("reading the output of stocklake sql"))?;
        if n == 0 {
            return Err(Error::Bench("stocklake sql printed no rows".into()));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let elapsed = start.elapsed();
    let _ = child.wait();
    Ok(elapsed)
}

/// A saved query's first statement run once to warm up, then `runs` times (at least once):
/// the warm-up's result and each timed run's engine time.
pub(super) async fn time_saved_query(
    engine: &LocalEngine,
    text: &str,
    runs: usize,
) -> Result<(crate::engine::QueryOutput, Vec<Duration>), Error> {
    let sql = statements::split(text)
        .into_iter()
        .next()
        .map(|s| s.text)
        .unwrap_or_default();
    let warm = engine.query(&sql).await?;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        times.push(engine.query(&sql).await?.info.elapsed);
    }
    Ok((warm, times))
}

fn min_median(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
