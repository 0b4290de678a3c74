//! Ties under ORDER BY, through `stocklake compare` against hand-written Athena results
//! (tests/fixtures/athena/rules/ties: CSV in Athena's text forms and its binary
//! `.csv.metadata`): rows that tie on every ORDER BY key compare as a set, a tie cut by the
//! LIMIT is its own kind of difference, and planted defects around them exit 1.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::lake::sample_lake;
use crate::harness::{cmd, fixture, text};

fn ties() -> PathBuf {
    fixture("athena/rules/ties")
}

/// A copy of the fixture `name` (CSV and `.csv.metadata`) with `edit` applied to the CSV, in
/// `dir` under `file`.
fn variant(dir: &Path, name: &str, file: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let csv = std::fs::read_to_string(ties().join(format!("{name}.csv"))).unwrap();
    let out = dir.join(format!("{file}.csv"));
    std::fs::write(&out, edit(csv)).unwrap();
    std::fs::copy(
        ties().join(format!("{name}.csv.metadata")),
        dir.join(format!("{file}.csv.metadata")),
    )
    .unwrap();
    out
}

/// `stocklake compare --format json` of the query `name` against `csv`: exit code and report.
fn compare(lake: &Path, name: &str, csv: &Path) -> (Option<i32>, Value) {
    let out = cmd(&["compare", "--format", "json", "--lake"])
        .arg(lake)
        .arg("--against")
        .arg(csv)
        .arg(ties().join(format!("{name}.sql")))
        .output();
    let stdout = text(&out.stdout);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", text(&out.stderr)));
    (out.status.code(), v)
}

/// The text report of the same comparison.
fn report(lake: &Path, name: &str, csv: &Path) -> String {
    let out = cmd(&["compare", "--lake"])
        .arg(lake)
        .arg("--against")
        .arg(csv)
        .arg(ties().join(format!("{name}.sql")))
        .output();
    text(&out.stdout)
}

#[test]
fn rows_that_tie_on_every_order_by_key_compare_as_a_set() {
    let lake = sample_lake();
    let work = tempfile::tempdir().unwrap();
    // Athena returned each day's symbols in another order than the local engine.
    let same = variant(work.path(), "by_day", "same", |t| t);
    let (code, v) = compare(lake.path(), "by_day", &same);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["agree"], true);
    assert_eq!(v["order_keys"], serde_json::json!(["trade_date"]));
    let t = report(lake.path(), "by_day", &same);
    assert!(
        t.contains("in the order of the ORDER BY keys (trade_date)"),
        "{t}"
    );

    // Planted: a row of the second day moved before the first day's rows (the key order is
    // broken, though the rows are the same).
    let moved = variant(work.path(), "by_day", "moved", |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        let row = lines.remove(5);
        lines.insert(1, row);
        lines.join("\n") + "\n"
    });
    let (code, v) = compare(lake.path(), "by_day", &moved);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["agree"], false);
    assert!(v["order_differs_at"].is_number(), "{v:#}");

    // Planted: a value changed inside a tie is a changed row, whatever the order among ties.
    let changed = variant(work.path(), "by_day", "changed", |t| {
        t.replace("\"IBM\",\"103.12\"", "\"IBM\",\"103.13\"")
    });
    let (code, v) = compare(lake.path(), "by_day", &changed);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["changed_rows"], 1, "{v:#}");
    assert_eq!(v["rows"][0]["differing"], serde_json::json!(["close"]));
}

#[test]
fn a_limit_that_cuts_a_tie_is_its_own_kind_of_difference() {
    let lake = sample_lake();
    let work = tempfile::tempdir().unwrap();
    // The LIMIT keeps one of the three rows of 2000-03-02; Athena may keep any of them. One of
    // the three is the local engine's choice (a plain match), the two others are cut ties.
    let kept = [
        ("IBM", "22385800"),
        ("AAPL", "5558200"),
        ("MSFT", "106932600"),
    ];
    let mut cut = 0;
    for (symbol, doubled) in kept {
        let csv = variant(work.path(), "limit_cut", symbol, |t| {
            t.replace(
                "\"2000-03-02\",\"IBM\",\"22385800\"",
                &format!("\"2000-03-02\",\"{symbol}\",\"{doubled}\""),
            )
        });
        let (code, v) = compare(lake.path(), "limit_cut", &csv);
        assert_eq!(code, Some(0), "{symbol}: {v:#}");
        assert_eq!(v["agree"], true);
        assert_eq!(v["changed_rows"], 0);
        // Athena names the unaliased column _col2: a note, not a difference.
        let notes = v["notes"].to_string();
        assert!(notes.contains("_col2 on athena"), "{notes}");
        let ties = v["cut_ties"].as_array().unwrap();
        if ties.is_empty() {
            continue;
        }
        cut += 1;
        assert_eq!(ties[0]["at"], "limit");
        assert_eq!(
            (ties[0]["first_row"].as_u64(), ties[0]["rows"].as_u64()),
            (Some(4), Some(1))
        );
        assert_eq!(
            ties[0]["keys"],
            serde_json::json!(["trade_date = 2000-03-02"])
        );
        assert_eq!(ties[0]["only_right"][0][1], format!("'{symbol}'"));
        // Checked: the row Athena kept is one of the tie's three rows without the LIMIT.
        assert_eq!(ties[0]["tie_rows_without_limit"], 3);
        let t = report(lake.path(), "limit_cut", &csv);
        assert!(
            t.contains("the engines kept different rows among ties at the limit (row 4 ties")
                && t.contains("3 row(s) of this tie on local; every row athena kept is one"),
            "{t}"
        );
    }
    assert_eq!(
        cut, 2,
        "two of the three choices differ from the local engine's"
    );

    // Planted: the fourth row is from the third day, which does not tie with the second.
    let wrong = variant(work.path(), "limit_cut", "wrong-day", |t| {
        t.replace(
            "\"2000-03-02\",\"IBM\",\"22385800\"",
            "\"2000-03-03\",\"IBM\",\"20325600\"",
        )
    });
    let (code, v) = compare(lake.path(), "limit_cut", &wrong);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["cut_ties"], serde_json::json!([]));
    assert_eq!(v["changed_rows"], 1, "{v:#}");
    // Planted: Athena "kept" a row that has the tie's key but is not one of its rows (AAPL's
    // volume is wrong): caught by running the query without its LIMIT.
    let bogus = variant(work.path(), "limit_cut", "bogus", |t| {
        t.replace(
            "\"2000-03-02\",\"IBM\",\"22385800\"",
            "\"2000-03-02\",\"AAPL\",\"5558201\"",
        )
    });
    let (code, v) = compare(lake.path(), "limit_cut", &bogus);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["only_right_rows"], 1, "{v:#}");
    assert_eq!(v["cut_ties"][0]["not_in_tie"], 1, "{v:#}");
    let reason = v["rows"][0]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("not a row of that tie on local"),
        "{reason}"
    );
    // Planted: a value changed before the tie: a difference, LIMIT or not.
    let before = variant(work.path(), "limit_cut", "before", |t| {
        t.replace("\"19232200\"", "\"19232201\"")
    });
    let (code, v) = compare(lake.path(), "limit_cut", &before);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["changed_rows"], 1, "{v:#}");
    assert_eq!(v["rows"][0]["right_row"], 2, "{v:#}");
    assert_eq!(v["rows"][0]["right"][1], "'AAPL'", "{v:#}");
}
