//! `stocklake sql` and the local engine: the table's names, declared partitions, NULL order,
//! new files seen by the next query, output formats, and errors that name file and statement.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use stocklake::engine::lakegen::{LakeGen, write_lake};
use stocklake::engine::{LocalEngine, QueryOutput};
use stocklake::lake::{PartitionKey, TableLayout};
use stocklake::tick::Tick;

use crate::harness::golden::golden_csv;
use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::{cmd, repo, text};

fn tick(symbol: &str, date: &str, close: f64) -> Tick {
    crate::harness::flat_tick(symbol, date, close, 100)
}

fn single_i64(out: &QueryOutput) -> i64 {
    let col = out.batches[0].column(0);
    col.as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_files_are_seen_by_the_next_query_of_the_same_session() {
    let lake = tempfile::tempdir().unwrap();
    write_lake(
        lake.path(),
        TableLayout::default(),
        vec![
            tick("AAPL", "2020-01-02", 1.0),
            tick("MSFT", "2020-01-02", 2.0),
        ],
        100,
    )
    .unwrap();
    let engine = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    let count = "SELECT count(*) FROM stocklake.ticks";
    assert_eq!(single_i64(&engine.query(count).await.unwrap()), 2);

    // Another writer appends a file to an existing partition and a new partition.
    let mut more = LakeGen::new(lake.path(), TableLayout::default(), 1000, 100).unwrap();
    for t in [
        tick("AAPL", "2020-01-03", 1.5),
        tick("NEW", "2020-01-03", 9.0),
    ] {
        more.push(&t).unwrap();
    }
    more.finish().unwrap();
    assert_eq!(single_i64(&engine.query(count).await.unwrap()), 4);
    let out = engine
        .query("SELECT count(DISTINCT symbol) FROM ticks WHERE symbol = 'NEW'")
        .await
        .unwrap();
    assert_eq!(single_i64(&out), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_columns_are_declared_from_the_layout_and_other_folders_ignored() {
    let lake = tempfile::tempdir().unwrap();
    let layout = TableLayout {
        partition_by: vec![
            PartitionKey::Symbol,
            PartitionKey::Year,
            PartitionKey::Month,
        ],
    };
    write_lake(
        lake.path(),
        layout,
        vec![
            tick("BRK/B x", "2019-12-31", 1.0),
            tick("BRK/B x", "2020-01-02", 2.0),
            tick("IBM", "2020-02-03", 3.0),
        ],
        100,
    )
    .unwrap();
    // Leftovers that are not table data.
    std::fs::create_dir_all(lake.path().join("_rejects/ticks/0")).unwrap();
    std::fs::write(lake.path().join("_rejects/ticks/0/5.json"), b"{bad").unwrap();
    std::fs::write(lake.path().join("ticks/symbol=IBM/notes.txt"), b"x").unwrap();

    let engine = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    let schema = engine.ticks_schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[names.len() - 3..], ["symbol", "year", "month"]);
    assert_eq!(
        schema.field_with_name("year").unwrap().data_type(),
        &DataType::Int32
    );
    let out = engine
        .query(
            "SELECT symbol, year, month, count(*) AS n FROM stocklake.ticks \
             WHERE year >= 2019 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        .await
        .unwrap();
    let csv = golden_csv(&out);
    assert_eq!(
        csv,
        "symbol,year,month,n\nBRK/B x,2019,12,1\nBRK/B x,2020,1,1\nIBM,2020,2,1\n"
    );
    // The symbol is not in the files, yet the table has it.
    assert!(!engine.layout().symbol_in_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nulls_sort_last_in_both_directions_as_in_trino() {
    let lake = sample_lake();
    let engine = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    for (dir, want) in [("ASC", "1,2,"), ("DESC", "2,1,")] {
        let out = engine
            .query(&format!(
                "SELECT x FROM (VALUES (1), (NULL), (2)) AS t(x) ORDER BY x {dir}"
            ))
            .await
            .unwrap();
        let got = golden_csv(&out)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(got, want.trim_end_matches(',').to_string() + ",", "{dir}");
        // Window ordering follows the same rule: NULL ranks last.
        let out = engine
            .query(&format!(
                "SELECT x, row_number() OVER (ORDER BY x {dir}) AS r \
                 FROM (VALUES (1), (NULL), (2)) AS t(x) ORDER BY r"
            ))
            .await
            .unwrap();
        let last = golden_csv(&out).lines().last().unwrap().to_string();
        assert_eq!(last, ",3", "{dir}");
    }
    // Explicit NULLS FIRST still wins.
    let out = engine
        .query("SELECT x FROM (VALUES (1), (NULL)) AS t(x) ORDER BY x NULLS FIRST")
        .await
        .unwrap();
    assert!(out.batches[0].column(0).is_null(0));
}

#[test]
fn sql_command_runs_text_files_folders_and_stdin_in_every_format() {
    let lake = sample_lake();
    let l = lake_arg(lake.path());
    let out = cmd(&[
        "sql",
        "--lake",
        &l,
        "--format",
        "csv",
        "-c",
        "SELECT symbol, count(*) AS n FROM stocklake.ticks GROUP BY 1 ORDER BY 1",
    ])
    .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "symbol,n\nAAPL,3270\nFB,196\nGOOG,2148\nIBM,3270\nMSFT,3270\n"
    );
    assert!(
        text(&out.stderr).contains("5 rows"),
        "timing: {}",
        text(&out.stderr)
    );

    let out = cmd(&[
        "-q",
        "sql",
        "--lake",
        &l,
        "--format",
        "ndjson",
        "--maxrows",
        "2",
        "-c",
        "SELECT symbol FROM ticks GROUP BY 1 ORDER BY 1",
    ])
    .output();
    assert_eq!(
        text(&out.stdout),
        "{\"symbol\":\"AAPL\"}\n{\"symbol\":\"FB\"}\n"
    );
    assert_eq!(text(&out.stderr), "", "-q hides timings");

    let out = cmd(&["-q", "sql", "--lake", &l, "--format", "json", "-f"])
        .arg(repo().join("queries/daily_summary.sql"))
        .output();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["symbol"], "AAPL");
    assert_eq!(v[0]["trading_days"], 3270);

    let out = cmd(&["sql", "--lake", &l, "--format", "csv"])
        .arg(repo().join("queries/"))
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("queries/volume_spikes.sql"), "{stderr}");
    assert!(text(&out.stdout).contains("symbol,month_start,trading_days,vwap,total_volume\n"));

    let out = cmd(&["-q", "sql", "--lake", &l, "--format", "csv"])
        .output_with_stdin(b"SELECT 1 AS a;\nSELECT max(trade_date) AS d\n  FROM ticks;\n");
    assert_eq!(text(&out.stdout), "a\n1\nd\n2013-03-01\n");
}

#[test]
fn errors_name_the_file_and_the_statement_and_exit_non_zero() {
    let lake = sample_lake();
    let l = lake_arg(lake.path());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.sql");
    std::fs::write(
        &file,
        "-- two statements\nSELECT 1;\n\nSELECT nope\nFROM ticks;\n",
    )
    .unwrap();
    let out = cmd(&["sql", "--lake", &l, "-f", file.to_str().unwrap()]).output();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("two.sql: statement 2 at line 4 (SELECT nope)") && err.contains("nope"),
        "{err}"
    );

    // Athena with nothing listening at its endpoint: the error names the engine and the call.
    let out = cmd(&["sql", "--lake", &l, "--engine", "athena", "-c", "SELECT 1"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", "/nonexistent/stocklake-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/stocklake-test")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("athena: StartQueryExecution"),
        "{}",
        text(&out.stderr)
    );

    let out = cmd(&["sql", "--lake", "/nonexistent/lake", "-c", "SELECT 1"]).output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}
