//! `stocklake demo` runs the whole path and prints every saved query's result; a second run on
//! the same lake writes nothing twice.

use crate::harness::lake::read_lake;
use crate::harness::{cmd, stderr, stdout};

#[test]
fn the_demo_runs_end_to_end_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = cmd(&["demo", "--lake"]).arg(&lake).output();
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(err.contains("produced 12154 events"), "{err}");
    assert!(
        err.contains("12154 rows in 5 Parquet files, 0 rejects"),
        "{err}"
    );
    // Every saved query ran: the built-in ones, which are the repository's queries/*.sql.
    let shipped = std::fs::read_dir(crate::harness::repo().join("queries"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count();
    let builtin = stocklake::engine::queries::builtin();
    assert_eq!(builtin.len(), shipped);
    for q in &builtin {
        let name = &q.name;
        assert!(
            err.contains(&format!("== {name}: ")),
            "{name} did not run: {err}"
        );
    }
    // The daily summary's rows, as computed from the CSV: trading days per symbol.
    for (symbol, days) in [
        ("AAPL", 3270),
        ("FB", 196),
        ("GOOG", 2148),
        ("IBM", 3270),
        ("MSFT", 3270),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("| {symbol} ")) && l.contains(&format!("| {days} ")))
            .unwrap_or_else(|| {
                panic!("no daily_summary row for {symbol} with {days} days in:\n{text}")
            });
        assert!(line.contains("2013-03-01"), "{line}");
    }
    assert!(
        text.contains("| AAPL   | 2000-03-22 | 4.6326061674584"),
        "max drawdown peak of AAPL:\n{text}"
    );
    assert_eq!(read_lake(&lake).len(), 12_154);

    let again = cmd(&["demo", "--lake"]).arg(&lake).arg("-q").output();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        read_lake(&lake).len(),
        12_154,
        "a second demo on the same lake adds nothing"
    );
}
