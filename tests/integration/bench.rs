//! `bench query` end to end on a small synthetic lake: every saved query timed on the local
//! engine and with DuckDB (the venv's Python, scripts/bench_duckdb.py) on the same files, each
//! ratio and their geometric mean printed. DuckDB is an independent reader here: the bench fails
//! when a query's result has a different number of rows on the two engines.

use std::path::Path;
use std::process::Output;

use crate::harness::cmd::{cmd, venv};
use crate::harness::repo;

/// `stocklake bench query` with one timed run on a synthetic lake of `rows` rows and `symbols`
/// symbols kept in `lake`/synthetic, DuckDB from `venv`, 2 threads, and `extra` arguments.
fn bench_query(lake: &Path, rows: &str, symbols: &str, venv: &Path, extra: &[&str]) -> Output {
    cmd(&[
        "bench",
        "query",
        "--rows",
        rows,
        "--symbols",
        symbols,
        "--runs",
        "1",
    ])
    .arg("--lake")
    .arg(lake.join("synthetic"))
    .arg("--venv")
    .arg(venv)
    .args(["--threads", "2"])
    .args(extra)
    .current_dir(repo())
    .output()
}

/// The lines of the printed local/DuckDB table, one a query.
fn ratio_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("query") || !l.contains("local/duckdb"))
        .skip(1)
        .take_while(|l| !l.starts_with("geometric mean"))
        .collect()
}

#[test]
fn bench_query_times_every_saved_query_on_both_engines_with_the_same_row_counts() {
    let lake = tempfile::tempdir().unwrap();
    let out = bench_query(lake.path(), "20000", "20", &venv(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let table = ratio_lines(&stdout);
    let names: Vec<&str> = table
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let saved: Vec<String> = stocklake::engine::queries::builtin()
        .iter()
        .map(|q| q.name.clone())
        .collect();
    assert_eq!(names, saved, "one line a saved query:\n{stdout}");
    for line in &table {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let rows: u64 = cols[1].parse().unwrap();
        assert!(rows > 0, "{line}");
        let local: f64 = cols[2].parse().unwrap();
        let duck: f64 = cols[3].parse().unwrap();
        let ratio: f64 = cols[4].trim_end_matches('x').parse().unwrap();
        assert!(local > 0.0 && duck > 0.0, "{line}");
        assert!(
            (ratio - local / duck).abs() <= 0.01 + ratio * 0.01,
            "the ratio is local / DuckDB: {line}"
        );
    }
    let mean = stdout
        .lines()
        .find(|l| l.starts_with("geometric mean of local/duckdb: "))
        .unwrap_or_else(|| panic!("no geometric mean:\n{stdout}"));
    assert!(mean.contains("over 8 queries"), "{mean}");
    assert!(
        stdout.contains("DuckDB 2.0.0 (2 threads, 20 files)"),
        "{stdout}"
    );
}

#[test]
fn bench_query_names_the_missing_venv() {
    let lake = tempfile::tempdir().unwrap();
    let out = bench_query(lake.path(), "200", "2", &lake.path().join("no-venv"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-venv/bin/python is missing: run `bash scripts/python-env.sh`"),
        "{stderr}"
    );
}

#[test]
fn bench_query_only_times_the_queries_it_names() {
    let lake = tempfile::tempdir().unwrap();
    let run = |only: &[&str]| {
        let extra: Vec<&str> = only.iter().flat_map(|n| ["--only", n]).collect();
        bench_query(lake.path(), "2000", "4", &venv(), &extra)
    };
    let out = run(&["volatility", "daily_summary"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let timed: Vec<&str> = ratio_lines(&stdout)
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(timed, ["daily_summary", "volatility"], "{stdout}");
    assert!(stdout.contains("over 2 queries"), "{stdout}");

    let out = run(&["volatility", "no_such_query"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--only no_such_query: no saved query of that name (there are daily_returns,"
        ),
        "{stderr}"
    );
}
