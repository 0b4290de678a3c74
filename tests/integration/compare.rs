//! Comparing the local engine with Athena: hand-written Athena result fixtures
//! (tests/fixtures/athena, never produced by our engine) agree with the local engine on the
//! sample lake; planted defects are reported by row and column; `sql --engine both` runs end to
//! end against moto and saves the table versions around the Athena query (pinning: `pinned.rs`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stocklake::compare::offline::Against;
use stocklake::compare::run::{AsOf as CompareAsOf, against_saved};
use stocklake::compare::{Comparison, RowDiffKind, Tolerance, report};
use stocklake::engine::queries::SavedQuery;
use stocklake::engine::statements;

use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::moto::{Moto, athena_column, athena_row};
use crate::harness::{cmd, fixture, repo, text};

fn fixtures() -> PathBuf {
    fixture("athena")
}

fn query(path: &Path) -> (String, String) {
    let q = SavedQuery::from_file(path).unwrap();
    let sql = statements::split(&q.sql).pop().unwrap().text;
    (q.name, sql)
}

fn saved_query(name: &str) -> (String, String) {
    let p = repo().join("queries").join(format!("{name}.sql"));
    if p.exists() {
        query(&p)
    } else {
        query(&fixtures().join("queries").join(format!("{name}.sql")))
    }
}

async fn compare_with(lake: &Path, against: &Path, name: &str, tol: Tolerance) -> Comparison {
    let (name, sql) = saved_query(name);
    let against = Against::open(against).unwrap();
    against_saved(
        &lake_arg(lake),
        &against,
        &name,
        &sql,
        CompareAsOf::Now,
        tol,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A copy of the fixture folder with `edit` applied to the text of one file.
fn planted(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let p = dir.path().join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit of {file} changed nothing");
    std::fs::write(&p, edited).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_athena_results_agree_with_the_local_engine() {
    let lake = sample_lake();
    let tol = Tolerance::default();
    for name in [
        "daily_summary",
        "volatility",
        "max_drawdown",
        "monthly_vwap",
        "first_day",
    ] {
        let c = compare_with(lake.path(), &fixtures(), name, tol).await;
        assert!(c.agree, "{}", report::text(&c));
        assert!(c.ordered, "{name} ends with ORDER BY");
        assert!(c.left.rows > 0 && c.left.rows == c.right.rows, "{name}");
        let lake_state = c
            .left
            .facts
            .lake
            .as_ref()
            .expect("the local side's lake state");
        assert_eq!(lake_state.files, 5);
        assert!(report::text(&c).contains(": match"), "{}", report::text(&c));
    }
    // volatility's saved result is found by its SQL text: the file is named by query id.
    let c = compare_with(lake.path(), &fixtures(), "volatility", tol).await;
    assert!(
        c.right
            .facts
            .source
            .as_deref()
            .unwrap()
            .contains("5d2f3c9e-"),
        "{:?}",
        c.right.facts
    );
    assert_eq!(c.right.rows, 54);
    // The fixtures ran (2026-01-15) before this lake's files were written: the report says so
    // and offers to pin the local engine.
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("--as-of 2026-01-15T09:30:00Z")),
        "{:?}",
        c.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_value_and_row_defects_are_reported_by_row_and_column() {
    let lake = sample_lake();
    let tol = Tolerance::default();
    let fb_min_low = r#""FB","196","2012-05-18","2013-03-01","17.55""#;

    // One value changed beyond tolerance.
    let dir = planted("daily_summary.csv", |t| {
        t.replace(fb_min_low, &fb_min_low.replace("17.55", "17.56"))
    });
    let c = compare_with(lake.path(), dir.path(), "daily_summary", tol).await;
    assert!(!c.agree);
    assert_eq!(
        (c.changed_rows, c.only_left_rows, c.only_right_rows),
        (1, 0, 0)
    );
    let d = &c.rows[0];
    assert_eq!((d.left_row, d.right_row), (Some(2), Some(2)));
    assert_eq!(d.differing, vec!["min_low"]);
    assert_eq!(c.column_mismatches[0].column, "min_low");
    let t = report::text(&c);
    assert!(
        t.contains("local row 2 / athena row 2: differs in min_low"),
        "{t}"
    );
    assert!(t.contains("* min_low"), "{t}");
    assert!(t.contains("17.55") && t.contains("17.56"), "{t}");

    // A value within tolerance agrees (relative 1.7e-13), and is reported with a tighter one
    // (1e-14: still above the 1e-15 that another summation order makes).
    let dir = planted("daily_summary.csv", |t| {
        t.replace("151.10824070336392", "151.10824070339")
    });
    let c = compare_with(lake.path(), dir.path(), "daily_summary", tol).await;
    assert!(c.agree, "{}", report::text(&c));
    let tight = Tolerance {
        rel: 1e-14,
        abs: 0.0,
    };
    let c = compare_with(lake.path(), dir.path(), "daily_summary", tight).await;
    assert_eq!(c.changed_rows, 1, "{}", report::text(&c));
    assert_eq!(
        c.rows[0].differing,
        vec!["avg_close"],
        "{}",
        report::text(&c)
    );
    assert_eq!(c.rows[0].reasons, vec!["value beyond tolerance"]);

    // A missing row.
    let dir = planted("daily_summary.csv", |t| {
        t.lines()
            .filter(|l| !l.starts_with("\"GOOG\""))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let c = compare_with(lake.path(), dir.path(), "daily_summary", tol).await;
    assert_eq!(
        (c.changed_rows, c.only_left_rows, c.only_right_rows),
        (0, 1, 0)
    );
    assert_eq!(c.rows[0].kind, RowDiffKind::OnlyLeft);
    assert_eq!(c.rows[0].left_row, Some(3));
    assert!(report::text(&c).contains("local row 3 / no row on athena: only on local"));

    // An extra row.
    let dir = planted("max_drawdown.csv", |t| {
        t + "\"ZZZZ\",\"2001-01-02\",\"1.0\",\"2001-01-03\",\"0.5\",\"-0.5\"\n"
    });
    let c = compare_with(lake.path(), dir.path(), "max_drawdown", tol).await;
    assert_eq!(
        (c.changed_rows, c.only_left_rows, c.only_right_rows),
        (0, 0, 1)
    );
    assert_eq!(c.rows[0].right_row, Some(6));
    assert!(report::text(&c).contains("no row on local / athena row 6: only on athena"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_order_and_schema_defects_are_reported() {
    let lake = sample_lake();
    let tol = Tolerance::default();

    // Two rows swapped under ORDER BY: the same rows, another order.
    let dir = planted("daily_summary.csv", |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.swap(1, 2);
        lines.join("\n") + "\n"
    });
    let c = compare_with(lake.path(), dir.path(), "daily_summary", tol).await;
    assert!(!c.agree);
    assert_eq!(c.order_differs_at, Some(1));
    assert_eq!(c.changed_rows, 2);
    assert!(c.rows[0].differing.contains(&"symbol".to_string()));
    assert!(report::text(&c).contains("same rows in a different order, first at row 1"));

    // Another column name (as Athena's `_colN` for an unaliased column) is a note, not a
    // disagreement: the columns are compared by position. A wrong column count is a defect.
    let dir = planted("monthly_vwap.csv", |t| {
        t.replacen("\"vwap\"", "\"vwap_usd\"", 1)
    });
    let dir2 = planted("monthly_vwap.json", |t| {
        t.replacen("\"vwap\"", "\"vwap_usd\"", 1)
    });
    std::fs::copy(
        dir.path().join("monthly_vwap.csv"),
        dir2.path().join("monthly_vwap.csv"),
    )
    .unwrap();
    let c = compare_with(lake.path(), dir2.path(), "monthly_vwap", tol).await;
    assert!(c.agree, "{}", report::text(&c));
    assert!(c.schema.is_empty(), "{:?}", c.schema);
    assert!(
        c.notes.contains(
            &"column 4: named vwap on local, vwap_usd on athena (compared by position)".to_string()
        ),
        "{:?}",
        c.notes
    );
    assert_eq!(c.changed_rows, 0, "the values still agree");
    let dir = planted("max_drawdown.json", |t| {
        let mut v: Value = serde_json::from_str(&t).unwrap();
        v["columns"].as_array_mut().unwrap().pop();
        v.to_string()
    });
    let csv = dir.path().join("max_drawdown.csv");
    let cut: String = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", &l[..l.rfind(',').unwrap()]))
        .collect();
    std::fs::write(&csv, cut).unwrap();
    let c = compare_with(lake.path(), dir.path(), "max_drawdown", tol).await;
    assert!(!c.agree);
    assert!(
        c.schema[0].starts_with("column count: local has 6")
            && c.schema[0].contains("athena has 5"),
        "{:?}",
        c.schema
    );
    assert_eq!(c.columns.len(), 5, "the five common columns are compared");
    assert_eq!(c.changed_rows, 0);
}

/// A one-file saved result for a one-off query.
fn one_off(dir: &Path, sql: &str, columns: Value, csv: &str) -> PathBuf {
    let meta = json!({"query_id": "one-off", "sql": sql, "workgroup": "primary",
        "database": "stocklake", "catalog": "AwsDataCatalog", "output_location": null,
        "submitted_at": "2026-01-15T09:30:00+00:00", "elapsed_ms": 1, "bytes_scanned": 0,
        "rows": 1, "fetched_from": "pages", "columns": columns});
    std::fs::write(dir.join("one-off.json"), meta.to_string()).unwrap();
    std::fs::write(dir.join("one-off.csv"), csv).unwrap();
    dir.join("one-off.csv")
}

fn column(name: &str, ty: &str) -> Value {
    json!({"name": name, "athena_type": ty, "precision": 0, "scale": 0, "nullable": true})
}

async fn compare_one_off(lake: &Path, sql: &str, file: &Path) -> Comparison {
    let against = Against::open(file).unwrap();
    against_saved(
        &lake_arg(lake),
        &against,
        "one-off",
        sql,
        CompareAsOf::Now,
        Tolerance::default(),
        &std::sync::atomic::AtomicBool::new(false),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_empty_string_and_text_number_are_real_differences() {
    let lake = sample_lake();
    let dir = tempfile::tempdir().unwrap();
    let sql = "SELECT symbol, CASE WHEN symbol = 'FB' THEN NULL ELSE '' END AS note \
               FROM stocklake.ticks GROUP BY symbol ORDER BY symbol";
    let cols = json!([column("symbol", "varchar"), column("note", "varchar")]);
    let right =
        "\"symbol\",\"note\"\n\"AAPL\",\"\"\n\"FB\",\n\"GOOG\",\"\"\n\"IBM\",\"\"\n\"MSFT\",\"\"\n";
    let f = one_off(dir.path(), sql, cols.clone(), right);
    let c = compare_one_off(lake.path(), sql, &f).await;
    assert!(c.agree, "{}", report::text(&c));
    // NULL planted as "" (and "" as NULL).
    let wrong = right
        .replace("\"FB\",\n", "\"FB\",\"\"\n")
        .replace("\"IBM\",\"\"", "\"IBM\",");
    let f = one_off(dir.path(), sql, cols, &wrong);
    let c = compare_one_off(lake.path(), sql, &f).await;
    assert_eq!(c.changed_rows, 2, "{}", report::text(&c));
    assert_eq!((c.rows[0].left_row, c.rows[1].left_row), (Some(2), Some(4)));
    assert_eq!(c.rows[0].reasons, vec!["NULL vs value"]);
    let t = report::text(&c);
    assert!(
        t.contains("* note") && t.contains("NULL") && t.contains("''"),
        "{t}"
    );

    // Text "1.0" is not the number 1; the number 1 as double is.
    let sql = "SELECT count(*) / count(*) AS one FROM stocklake.ticks";
    let f = one_off(
        dir.path(),
        sql,
        json!([column("one", "varchar")]),
        "\"one\"\n\"1.0\"\n",
    );
    let c = compare_one_off(lake.path(), sql, &f).await;
    assert!(!c.agree);
    assert_eq!(c.rows[0].reasons, vec!["type"]);
    assert!(c.schema[0].contains("(number) on local") && c.schema[0].contains("(text) on athena"));
    let f = one_off(
        dir.path(),
        sql,
        json!([column("one", "double")]),
        "\"one\"\n\"1.0\"\n",
    );
    assert!(compare_one_off(lake.path(), sql, &f).await.agree);
}

#[test]
fn sql_engine_both_against_moto_shows_the_diff_of_a_planted_mismatch() {
    let lake = sample_lake();
    let work = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    moto.wait_ready();
    // daily_summary's hand-written result with FB's min_low changed, as Athena pages.
    let csv = std::fs::read_to_string(fixtures().join("daily_summary.csv")).unwrap();
    let csv = csv.replace("\"17.55\"", "\"17.56\"");
    let rows = stocklake::engine::athena::convert::parse_csv(&csv).unwrap();
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("daily_summary.json")).unwrap(),
    )
    .unwrap();
    let column_info: Vec<Value> = meta["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].clone();
            athena_column(
                field("name"),
                field("athena_type"),
                field("precision"),
                field("scale"),
            )
        })
        .collect();
    let rows: Vec<Value> = rows.iter().map(|r| athena_row(r)).collect();
    moto.queue_athena_results(&json!([{"rows": rows, "column_info": column_info}]));

    let query_file = repo().join("queries/daily_summary.sql");
    // Run in `work`, where the Athena side is saved (./.stocklake/athena).
    let out = cmd(&["sql", "--engine", "both", "--lake"])
        .arg(lake.path())
        .arg("-f")
        .arg(&query_file)
        .current_dir(work.path())
        .envs(moto.env())
        .output();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("== daily_summary: MISMATCH"), "{stdout}");
    assert!(
        stdout.contains("local row 2 / athena row 2: differs in min_low"),
        "{stdout}"
    );
    assert!(stdout.contains("* min_low"), "{stdout}");
    assert!(stdout.contains("lake file://"), "{stdout}");
    assert!(stderr.contains("1 of 1 comparisons disagree"), "{stderr}");

    // The Athena side was saved with the table versions around the query (nothing moved).
    let saved = work.path().join(".stocklake/athena");
    let metas: Vec<Value> = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert_eq!(metas.len(), 1);
    assert_eq!(metas[0]["table_versions"], json!({"before": 5, "after": 5}));
    assert!(stdout.contains("version 5 (committed"), "{stdout}");
    // Offline, `compare` finds it by the query's text, and reads the version it recorded.
    let out = cmd(&["compare", "--format", "json", "--lake"])
        .arg(lake.path())
        .arg("--against")
        .arg(&saved)
        .arg(&query_file)
        .current_dir(work.path())
        .output();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["agree"], false);
    assert_eq!(v["rows"][0]["differing"], json!(["min_low"]));
    assert_eq!(v["rows"][0]["left_row"], 2);
    assert_eq!(v["left"]["lake"]["files"], 5);
    assert_eq!(v["left"]["lake"]["version"], 5);
    assert_eq!(v["right"]["table_versions"]["after"], 5);

    // Exit status 1 when a side cannot run (no saved result for this query), its error said once.
    let out = cmd(&["compare", "--lake"])
        .arg(lake.path())
        .arg("--against")
        .arg(&saved)
        .arg(repo().join("queries/top_movers.sql"))
        .current_dir(work.path())
        .output();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).matches("no saved result").count(), 1);
    assert!(text(&out.stderr).contains("1 of 1 queries could not be compared"));
}

#[test]
fn repl_compare_runs_the_last_statement_on_both_engines() {
    let lake = sample_lake();
    let work = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    moto.wait_ready();
    // Athena's answer, by hand: one row, and not the local engine's 12154.
    moto.queue_athena_results(&json!([{
        "rows": [athena_row(&[Some("n")]), athena_row(&[Some("12153")])],
        "column_info": [athena_column("n", "bigint", 19, 0)],
    }]));
    let out = cmd(&["repl", "--lake"])
        .arg(lake.path())
        .arg("--history")
        .arg(work.path().join("history"))
        .current_dir(work.path())
        .envs(moto.env())
        .output_with_stdin(b"\\compare\nSELECT count(*) AS n FROM ticks;\n\\compare\n\\q\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stderr.contains("no statement yet"), "{stderr}");
    assert!(
        stdout.contains("== last statement: MISMATCH"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("local row 1 / athena row 1: differs in n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("12154") && stdout.contains("12153"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 1 comparisons disagree"), "{stderr}");
    assert!(out.status.success(), "the session goes on and ends at \\q");
}
