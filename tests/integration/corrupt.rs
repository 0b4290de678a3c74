//! Corrupt lake pieces (issue 16, a first part): a truncated data file, a damaged log entry and
//! files that are not part of the table. `sql`, `audit`, `status` and `compact` refuse the first
//! two with one error line naming the file or the table (never a panic, never a stack trace),
//! and ignore the third.

use std::path::{Path, PathBuf};

use crate::harness::lake::{lake_arg, parquet_files, sample_lake};
use crate::harness::{cmd, stderr, stdout};

/// `stocklake <args> --lake LAKE`: exit code, stdout, stderr.
fn run(lake: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cmd(args).arg("--lake").arg(lake_arg(lake)).output();
    (out.status.code(), stdout(&out), stderr(&out))
}

/// One error line, no panic, no stack trace.
fn one_clean_error(what: &str, err: &str) {
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(
        !err.contains("with_backtrace") && !err.contains("\n   0: "),
        "{what}: {err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{what}: {err}"
    );
}

fn a_data_file(lake: &Path) -> PathBuf {
    parquet_files(&lake.join("ticks"))
        .into_iter()
        .next()
        .expect("a data file")
}

#[test]
fn a_truncated_data_file_is_named() {
    let dir = sample_lake();
    let file = a_data_file(dir.path());
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(100)
        .unwrap();
    let (code, _, err) = run(dir.path(), &["sql", "-c", "SELECT sum(volume) FROM ticks"]);
    assert_eq!(code, Some(1), "{err}");
    one_clean_error("sql", &err);
    assert!(err.contains(&name), "sql names the file: {err}");
    let (code, _, err) = run(dir.path(), &["audit"]);
    assert_eq!(code, Some(1), "{err}");
    one_clean_error("audit", &err);
    assert!(
        err.contains("reading the Parquet file") && err.contains(&name),
        "audit names the file: {err}"
    );
}

#[test]
fn a_damaged_log_entry_is_one_error_naming_the_table() {
    let dir = sample_lake();
    let log = dir.path().join("ticks/_delta_log");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    std::fs::write(entries.last().unwrap(), "{\"add\": garbage\n").unwrap();
    for args in [
        &["sql", "-c", "SELECT count(*) FROM ticks"][..],
        &["audit"],
        &["status"],
        &["compact"],
    ] {
        let (code, _, err) = run(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        one_clean_error(args[0], &err);
        assert!(
            err.contains("Delta table") && err.contains("ticks") && err.contains("Json"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn files_that_are_not_part_of_the_table_are_ignored() {
    let dir = sample_lake();
    let ticks = dir.path().join("ticks");
    std::fs::write(ticks.join("notes.txt"), "not data").unwrap();
    std::fs::create_dir_all(ticks.join("symbol=ZZZ")).unwrap();
    std::fs::copy(
        a_data_file(dir.path()),
        ticks.join("symbol=ZZZ/stray.parquet"),
    )
    .unwrap();
    std::fs::write(ticks.join("symbol=AAPL/half-written.parquet"), b"PAR1").unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*), count(DISTINCT symbol) FROM ticks",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("12154,5"), "{out}");
    let (code, out, err) = run(dir.path(), &["audit"]);
    assert_eq!(code, Some(0), "{out}{err}");
}
