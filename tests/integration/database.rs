//! The Glue database: the saved queries (which name `ticks` without a database) run unchanged on
//! both engines in a database other than `stocklake`. Against moto: `catalog --database other`;
//! `sql --database other` on Athena (the execution context moto records is `other`, the SQL
//! text sent is the file's), on the local engine (the lake's table under `other`, `stocklake`
//! and unqualified: the same rows), on both engines with a hand-written Athena result; offline
//! `compare` in the database a saved result ran in.

use std::path::Path;

use serde_json::{Value, json};
use stocklake::engine::athena::convert::parse_csv;
use stocklake::engine::{queries, statements};

use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::moto::{Moto, athena_column, athena_row};
use crate::harness::{cmd, fixture, repo, rt, stderr, stdout};

/// `sql` on Athena in the database `other`.
const ATHENA_IN_OTHER: [&str; 5] = ["sql", "--engine", "athena", "--database", "other"];

/// (SQL text, database, catalog) of every execution moto recorded, sorted.
fn executions(moto: &Moto) -> Vec<(String, String, String)> {
    rt().block_on(async {
        let athena = aws_sdk_athena::Client::new(&moto.sdk_config().await);
        let ids = athena.list_query_executions().send().await.unwrap();
        let mut out = Vec::new();
        for id in ids.query_execution_ids() {
            let q = athena
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .unwrap();
            let q = q.query_execution().unwrap();
            let ctx = q.query_execution_context().unwrap();
            out.push((
                q.query().unwrap_or_default().to_string(),
                ctx.database().unwrap_or_default().to_string(),
                ctx.catalog().unwrap_or_default().to_string(),
            ));
        }
        out.sort();
        out
    })
}

/// Queues the hand-written Athena result `tests/fixtures/athena/<name>.csv` (typed from its
/// saved JSON) as the answer to the next query.
fn queue_fixture(moto: &Moto, name: &str) {
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("athena/{name}.json"))).unwrap(),
    )
    .unwrap();
    let columns: Vec<Value> = meta["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            athena_column(
                c["name"].clone(),
                c["athena_type"].clone(),
                c["precision"].clone(),
                c["scale"].clone(),
            )
        })
        .collect();
    let text = std::fs::read_to_string(fixture(&format!("athena/{name}.csv"))).unwrap();
    let rows: Vec<Value> = parse_csv(&text)
        .unwrap()
        .iter()
        .map(|r| athena_row(r))
        .collect();
    moto.queue_athena_results(&json!([{"rows": rows, "column_info": columns}]));
}

/// The saved-result JSON of the one result saved in `dir`.
fn saved_json(dir: &Path) -> Value {
    let jsons: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(jsons.len(), 1, "{jsons:?}");
    serde_json::from_str(&std::fs::read_to_string(&jsons[0]).unwrap()).unwrap()
}

#[test]
fn saved_queries_run_unchanged_on_both_engines_in_a_non_default_database() {
    let moto = Moto::start();
    let lake = sample_lake();
    let l = lake_arg(lake.path());
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cmd(args).envs(moto.env()).current_dir(work.path());
    let queries_dir = repo().join("queries");
    let qd = queries_dir.display().to_string();

    // Glue: the lake's tables in the database `other`.
    let out = run(&["catalog", "--lake", &l, "--database", "other"]).output_ok();
    assert!(
        stderr(&out).contains("created Glue table other.ticks"),
        "{}",
        stderr(&out)
    );

    // Athena: every saved query, its text unchanged, in the execution context of `other`.
    // (In a directory of its own: these results are saved there.)
    cmd(&ATHENA_IN_OTHER)
        .args(["--lake", &l, "-q", &qd])
        .envs(moto.env())
        .output_ok();
    let mut want: Vec<(String, String, String)> = queries::from_dir(&queries_dir)
        .unwrap()
        .iter()
        .flat_map(|q| statements::split(&q.sql))
        .map(|s| (s.text, "other".into(), "AwsDataCatalog".into()))
        .collect();
    want.sort();
    assert_eq!(want.len(), 8);
    assert!(
        want.iter()
            .all(|w| w.0.contains("FROM ticks") && !w.0.contains("stocklake."))
    );
    assert_eq!(executions(&moto), want);

    // Local: the same rows in `other` as in `stocklake`; the table answers to all three names.
    let local = |db: Option<&str>, what: &[&str]| {
        let mut args = vec!["sql", "--lake", &l, "--format", "csv", "-q"];
        if let Some(db) = db {
            args.extend(["--database", db]);
        }
        args.extend(what);
        stdout(&run(&args).output_ok())
    };
    let in_other = local(Some("other"), &[&qd]);
    assert!(in_other.lines().count() > 1000, "{in_other}");
    assert_eq!(in_other, local(None, &[&qd]));
    let names = "SELECT (SELECT count(*) FROM other.ticks) AS o, \
                 (SELECT count(*) FROM stocklake.ticks) AS s, (SELECT count(*) FROM ticks) AS t";
    assert_eq!(
        local(Some("other"), &["-c", names]),
        "o,s,t\n12154,12154,12154\n"
    );
    let out = run(&[
        "sql",
        "--lake",
        &l,
        "-c",
        "SELECT count(*) FROM other.ticks",
    ])
    .output();
    assert!(
        !out.status.success(),
        "no database `other` unless configured"
    );

    // Both engines, with a hand-written Athena answer: they agree, and Athena ran in `other`.
    queue_fixture(&moto, "daily_summary");
    let summary = queries_dir.join("daily_summary.sql").display().to_string();
    let both = [
        "sql",
        "--engine",
        "both",
        "--database",
        "other",
        "--lake",
        &l,
        "-q",
    ];
    let out = run(&[&both[..], &["-f", &summary]].concat()).output_ok();
    assert!(
        stdout(&out).contains("== daily_summary: match"),
        "{}",
        stdout(&out)
    );
    assert_eq!(executions(&moto).len(), 9);
    let saved_dir = work.path().join(".stocklake/athena");
    let meta = saved_json(&saved_dir);
    assert_eq!(meta["database"], "other");
    assert_eq!(meta["submitted_clock"], "athena");
    assert_eq!(meta["statement_type"], "DML");
    assert_eq!(
        meta["billed_bytes"], 10_000_000,
        "moto scans 0 bytes: the 10 MB minimum"
    );

    // Offline, the local engine takes the database the saved result ran in.
    let out = run(&[
        "compare",
        &summary,
        "--lake",
        &l,
        "--against",
        ".stocklake/athena",
    ])
    .output_ok();
    assert!(stdout(&out).contains("match"), "{}", stdout(&out));
    let sql = "SELECT count(*) AS n FROM other.ticks";
    let hand = work.path().join("hand");
    std::fs::create_dir(&hand).unwrap();
    let m = json!({"query_id": "count", "sql": sql, "workgroup": "primary", "database": "other",
        "catalog": "AwsDataCatalog", "output_location": null,
        "submitted_at": "2026-01-15T09:30:00+00:00", "elapsed_ms": 1, "bytes_scanned": 0,
        "rows": 1, "fetched_from": "pages", "columns": [{"name": "n", "athena_type": "bigint",
        "precision": 19, "scale": 0, "nullable": true}]});
    std::fs::write(hand.join("count.json"), m.to_string()).unwrap();
    std::fs::write(hand.join("count.csv"), "\"n\"\n\"12154\"\n").unwrap();
    let q = work.path().join("count.sql");
    std::fs::write(&q, format!("{sql};\n")).unwrap();
    let q = q.display().to_string();
    let out = run(&[
        "compare",
        &q,
        "--lake",
        &l,
        "--against",
        "hand",
        "--as-of",
        "now",
    ])
    .output_ok();
    assert!(stdout(&out).contains("== count: match"), "{}", stdout(&out));
}

#[test]
fn a_table_named_in_another_database_is_warned_about() {
    let moto = Moto::start();
    let lake = sample_lake();
    let l = lake_arg(lake.path());
    // What `sql` on Athena in the database `other` says on stderr about `sql`.
    let warnings = |sql: &str| {
        let args = ["--lake", &l, "-c", sql];
        stderr(
            &cmd(&ATHENA_IN_OTHER)
                .args(args)
                .envs(moto.env())
                .output_ok(),
        )
    };
    let err = warnings("SELECT count(*) FROM stocklake.ticks");
    assert!(
        err.contains("names stocklake.ticks, outside the configured database other"),
        "{err}"
    );
    // Unqualified, or in the configured database: no warning.
    let err = warnings("SELECT count(*) FROM other.ticks JOIN ticks ON true");
    assert!(!err.contains("outside the configured"), "{err}");
}
