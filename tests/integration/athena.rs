//! The Athena client against moto: hand-written results queued in the server (never computed by
//! our own engine) for every Athena type, NULLs, empty results, the header row, several polls,
//! the result CSV of a >1,000-row result, the pages when that CSV cannot be read, cancel,
//! Athena's submission time and bill saved with a result; paging against a recorded page
//! sequence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::*;
use arrow::datatypes::{DataType, TimeUnit};
use serde_json::{Value, json};
use stocklake::engine::EngineError;
use stocklake::engine::athena::{
    AthenaEngine, AthenaSettings, ColumnMeta, Fetch, Page, PageSource, read_pages, read_rest,
};
use stocklake::engine::saved::SavedStore;

use crate::harness::moto::{Moto, athena_column as col, athena_row as row};
use crate::harness::{cmd as stocklake_cmd, rt};

fn settings(save: &std::path::Path) -> AthenaSettings {
    AthenaSettings {
        save_dir: Some(save.to_path_buf()),
        first_poll: Duration::from_millis(50),
        max_poll: Duration::from_millis(200),
        ..AthenaSettings::default()
    }
}

const TYPES: &[(&str, &str, i64, i64, &str)] = &[
    ("b", "boolean", 0, 0, "true"),
    ("i8", "tinyint", 3, 0, "-128"),
    ("i16", "smallint", 5, 0, "32767"),
    ("i32", "integer", 10, 0, "-2147483648"),
    ("i64", "bigint", 19, 0, "9223372036854775807"),
    ("f32", "float", 17, 0, "1.5"),
    ("f64", "double", 17, 0, "-0.125"),
    ("dec", "decimal", 10, 2, "-12345.67"),
    ("vc", "varchar", 2147483647, 0, "AAPL"),
    ("ch", "char", 4, 0, "IBM "),
    ("d", "date", 0, 0, "2013-03-01"),
    ("ts", "timestamp", 3, 0, "2013-03-01 15:30:00.123"),
    ("t", "time", 3, 0, "15:30:00.250"),
    ("bin", "varbinary", 0, 0, "68 65 6c 6c 6f"),
    ("arr", "array", 0, 0, "[1, 2, 3]"),
    ("m", "map", 0, 0, "{a=1}"),
    ("r", "row", 0, 0, "{x=1, y=foo}"),
];

#[test]
fn every_athena_type_is_typed_from_column_info_after_several_polls() {
    let moto = Moto::start();
    let save = tempfile::tempdir().unwrap();
    let columns: Vec<Value> = TYPES.iter().map(|t| col(t.0, t.1, t.2, t.3)).collect();
    let header: Vec<Option<&str>> = TYPES.iter().map(|t| Some(t.0)).collect();
    let values: Vec<Option<&str>> = TYPES.iter().map(|t| Some(t.4)).collect();
    let nulls: Vec<Option<&str>> = TYPES.iter().map(|_| None).collect();
    let mut empty_string = nulls.clone();
    empty_string[8] = Some("");
    moto.queue_athena_results(&json!([{
        "rows": [row(&header), row(&values), row(&nulls), row(&empty_string)],
        "column_info": columns,
    }]));
    // QUEUED → RUNNING → SUCCEEDED, one step every 2 GetQueryExecution calls.
    moto.athena_manual_transitions(2);

    let out = rt().block_on(async {
        let engine = AthenaEngine::with_config(&moto.sdk_config().await, settings(save.path()));
        engine
            .query("SELECT * FROM every_type", &AtomicBool::new(false))
            .await
            .unwrap()
    });
    // At least 4 polls with waits of 50, 75, 112 ms between them.
    assert!(
        out.info.elapsed >= Duration::from_millis(200),
        "{:?}",
        out.info
    );
    assert_eq!(out.num_rows(), 3, "the header row is not data");
    let b = &out.batches[0];
    let types: Vec<DataType> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Utf8,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Millisecond, None),
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Binary,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    macro_rules! at {
        ($i:expr, $t:ty) => {
            b.column($i).as_any().downcast_ref::<$t>().unwrap()
        };
    }
    assert!(at!(0, BooleanArray).value(0));
    assert_eq!(at!(1, Int8Array).value(0), -128);
    assert_eq!(at!(2, Int16Array).value(0), 32767);
    assert_eq!(at!(3, Int32Array).value(0), i32::MIN);
    assert_eq!(at!(4, Int64Array).value(0), i64::MAX);
    assert_eq!(at!(5, Float32Array).value(0), 1.5);
    assert_eq!(at!(6, Float64Array).value(0), -0.125);
    assert_eq!(at!(7, Decimal128Array).value(0), -1234567);
    assert_eq!(at!(8, StringArray).value(0), "AAPL");
    assert_eq!(at!(9, StringArray).value(0), "IBM ");
    assert_eq!(at!(10, Date32Array).value(0), 15765);
    assert_eq!(
        at!(11, TimestampMillisecondArray).value(0),
        1_362_151_800_123
    );
    assert_eq!(at!(12, Time64MicrosecondArray).value(0), 55_800_250_000);
    assert_eq!(at!(13, BinaryArray).value(0), b"hello");
    assert_eq!(at!(14, StringArray).value(0), "[1, 2, 3]");
    assert_eq!(at!(16, StringArray).value(0), "{x=1, y=foo}");
    for c in 0..TYPES.len() {
        assert!(b.column(c).is_null(1), "column {c} row 2 is NULL");
    }
    let vc = at!(8, StringArray);
    assert!(vc.is_valid(2) && vc.value(2).is_empty(), "'' is not NULL");
    assert!(b.column(0).is_null(2));

    // Saved locally, and reloads to the same Arrow values.
    let id = out.info.query_id.clone().unwrap();
    let store = SavedStore::new(save.path());
    let (meta, again) = store.load(&id).unwrap();
    assert_eq!(meta.sql, "SELECT * FROM every_type");
    assert_eq!(meta.workgroup, "primary");
    assert_eq!(meta.rows, 3);
    assert_eq!(meta.columns[7].scale, 2);
    assert_eq!(again.batches[0], out.batches[0]);
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn empty_results_keep_their_schema() {
    let moto = Moto::start();
    let save = tempfile::tempdir().unwrap();
    moto.queue_athena_results(&json!([
        {"rows": [row(&[Some("symbol"), Some("n")])],
         "column_info": [col("symbol", "varchar", 2147483647, 0), col("n", "bigint", 19, 0)]},
        {"rows": []},
    ]));
    rt().block_on(async {
        let engine = AthenaEngine::with_config(&moto.sdk_config().await, settings(save.path()));
        let none = AtomicBool::new(false);
        let out = engine.query("SELECT symbol, n FROM t WHERE false", &none);
        let out = out.await.unwrap();
        assert_eq!(out.num_rows(), 0);
        assert_eq!(out.schema.field(1).data_type(), &DataType::Int64);
        let out = engine.query("SELECT 1 WHERE false", &none).await.unwrap();
        assert_eq!(out.num_rows(), 0);
        assert_eq!(out.schema.fields().len(), 0);
        // A DDL result has no header row: its only row is data.
        moto.queue_athena_results(&json!([{"rows": [row(&[Some("ticks")])],
            "column_info": [col("tab_name", "string", 0, 0)]}]));
        let out = engine.query("SHOW TABLES", &none).await.unwrap();
        assert_eq!(out.num_rows(), 1);
    });
}

fn big_rows(n: usize) -> Vec<Value> {
    let mut rows = vec![row(&[Some("i"), Some("s"), Some("x")])];
    for i in 0..n {
        let i_s = i.to_string();
        let s = match i % 3 {
            0 => None,
            1 => Some(""),
            _ => Some(i_s.as_str()),
        };
        rows.push(row(&[Some(i_s.as_str()), s, Some("1.25")]));
    }
    rows
}

fn check_big(out: &stocklake::engine::QueryOutput, n: usize) {
    assert_eq!(out.num_rows(), n);
    let b = arrow::compute::concat_batches(&out.schema, &out.batches).unwrap();
    let i = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    for r in 0..n {
        assert_eq!(i.value(r), r as i64);
        match r % 3 {
            0 => assert!(s.is_null(r), "row {r}"),
            1 => assert!(s.is_valid(r) && s.value(r).is_empty(), "row {r}"),
            _ => assert_eq!(s.value(r), r.to_string()),
        }
    }
}

#[test]
fn a_large_result_is_read_from_the_result_csv() {
    let moto = Moto::start();
    moto.create_bucket("athena-results");
    let save = tempfile::tempdir().unwrap();
    let columns = json!([
        col("i", "bigint", 19, 0),
        col("s", "varchar", 2147483647, 0),
        col("x", "double", 17, 0)
    ]);
    let n = 2_500;
    moto.queue_athena_results(&json!([
        {"rows": big_rows(n), "column_info": columns},
        {"rows": big_rows(n), "column_info": columns},
    ]));
    rt().block_on(async {
        let config = moto.sdk_config().await;
        let mut s = settings(save.path());
        s.output = Some("s3://athena-results/q/".into());
        s.fetch = Fetch::Csv;
        let engine = AthenaEngine::with_config(&config, s.clone());
        let none = AtomicBool::new(false);
        let out = engine.query("SELECT i, s, x FROM big", &none);
        let out = out.await.unwrap();
        check_big(&out, n);
        let id = out.info.query_id.clone().unwrap();
        let (meta, _) = SavedStore::new(save.path()).load(&id).unwrap();
        assert_eq!(meta.fetched_from, "csv");
        assert_eq!(
            meta.output_location,
            Some(format!("s3://athena-results/q/{id}.csv"))
        );
        // The same result through GetQueryResults (moto sends it as one page).
        s.fetch = Fetch::Auto;
        let engine = AthenaEngine::with_config(&config, s);
        let out = engine.query("SELECT i, s, x FROM big", &none);
        check_big(&out.await.unwrap(), n);
    });
}

/// A recorded multi-page GetQueryResults sequence (moto never pages).
struct Recorded {
    pages: Vec<Page>,
    tokens_seen: Vec<Option<String>>,
}

impl PageSource for Recorded {
    async fn page(&mut self, token: Option<String>) -> Result<Page, EngineError> {
        let i = match &token {
            None => 0,
            Some(t) => t.strip_prefix("tok-").unwrap().parse().unwrap(),
        };
        self.tokens_seen.push(token);
        Ok(self.pages[i].clone())
    }
}

#[test]
fn paging_reads_every_page_and_drops_only_the_first_header() {
    let cols = vec![ColumnMeta {
        name: "n".into(),
        athena_type: "integer".into(),
        precision: 10,
        scale: 0,
        nullable: true,
    }];
    let mut next = 0;
    let mut page = |index: usize, count: usize, header: bool, last: bool| {
        let mut rows = Vec::new();
        if header {
            rows.push(vec![Some("n".to_string())]);
        }
        for _ in 0..count {
            rows.push(vec![Some(next.to_string())]);
            next += 1;
        }
        Page {
            columns: cols.clone(),
            rows,
            next_token: (!last).then(|| format!("tok-{}", index + 1)),
        }
    };
    let pages = vec![
        page(0, 999, true, false),
        page(1, 1000, false, false),
        page(2, 1000, false, false),
        page(3, 7, false, true),
    ];
    let none = AtomicBool::new(false);
    let mut src = Recorded {
        pages,
        tokens_seen: vec![],
    };
    let all = rt()
        .block_on(read_pages(&mut src, true, false, &none))
        .unwrap();
    assert_eq!(all.pages, 4);
    assert_eq!(all.rows.len(), 3006);
    assert!(
        all.rows
            .iter()
            .enumerate()
            .all(|(i, r)| r[0] == Some(i.to_string()))
    );
    assert_eq!(src.tokens_seen[0], None);
    assert_eq!(src.tokens_seen[3].as_deref(), Some("tok-3"));
    let batch = stocklake::engine::athena::convert::build_batch(&all.columns, &all.rows).unwrap();
    assert_eq!(batch.num_rows(), 3006);

    // `auto` reads the first page, then leaves the rest to the result CSV.
    src.tokens_seen.clear();
    let first = rt()
        .block_on(read_pages(&mut src, true, true, &none))
        .unwrap();
    assert_eq!((first.pages, first.rows.len()), (1, 999));
    assert_eq!(first.remaining.as_deref(), Some("tok-1"));
    // When that CSV cannot be read, the rest of the pages follow the first.
    let mut rest = first.clone();
    rt().block_on(read_rest(&mut src, &mut rest, &none))
        .unwrap();
    assert_eq!(
        (rest.pages, rest.rows, rest.remaining),
        (4, all.rows.clone(), None)
    );

    // Cancel between pages.
    let stop = AtomicBool::new(true);
    let err = rt()
        .block_on(read_pages(&mut src, true, false, &stop))
        .unwrap_err();
    assert!(matches!(err, EngineError::Cancelled { .. }));
}

#[test]
fn a_cancelled_query_is_stopped_on_the_server() {
    let moto = Moto::start();
    let save = tempfile::tempdir().unwrap();
    // The execution stays QUEUED for a long time.
    moto.athena_manual_transitions(10_000);
    rt().block_on(async {
        let config = moto.sdk_config().await;
        let engine = AthenaEngine::with_config(&config, settings(save.path()));
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            flag.store(true, Ordering::SeqCst);
        });
        let err = engine.query("SELECT slow()", &cancel).await.unwrap_err();
        assert!(matches!(err, EngineError::Cancelled { .. }), "{err}");

        let athena = aws_sdk_athena::Client::new(&config);
        let ids = athena.list_query_executions().send().await.unwrap();
        let id = ids.query_execution_ids().first().cloned().unwrap();
        let q = athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .unwrap();
        let state = q
            .query_execution()
            .unwrap()
            .status()
            .unwrap()
            .state()
            .cloned();
        assert_eq!(
            state,
            Some(aws_sdk_athena::types::QueryExecutionState::Cancelled)
        );
        assert!(SavedStore::new(save.path()).list().unwrap().is_empty());
    });
}

#[test]
fn cost_is_five_dollars_per_terabyte_with_a_10_mb_minimum() {
    use stocklake::engine::athena::{cost_usd, scanned_summary};
    assert_eq!(cost_usd(1_000_000_000_000), 5.0);
    assert_eq!(cost_usd(0), cost_usd(10_000_000));
    assert!(scanned_summary(2_000_000_000).contains("2000.00 MB"));
}

/// Two rows and their header, as moto serves them.
fn two_rows() -> Value {
    json!([{
        "rows": [row(&[Some("n"), Some("s")]), row(&[Some("1"), None]), row(&[Some("2"), Some("")])],
        "column_info": [col("n", "bigint", 19, 0), col("s", "varchar", 2147483647, 0)],
    }])
}

/// A moto server with [`two_rows`] queued, and a folder for saved results.
fn moto_with_two_rows() -> (Moto, tempfile::TempDir) {
    let moto = Moto::start();
    moto.queue_athena_results(&two_rows());
    (moto, tempfile::tempdir().unwrap())
}

fn check_two_rows(out: &stocklake::engine::QueryOutput) {
    assert_eq!(out.num_rows(), 2);
    let b = &out.batches[0];
    let n = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((n.value(0), n.value(1)), (1, 2));
    assert!(s.is_null(0) && s.is_valid(1) && s.value(1).is_empty());
}

#[test]
fn an_unreadable_result_csv_falls_back_to_the_pages_and_says_so() {
    // The output location's bucket does not exist: Athena's result file cannot be read.
    let (moto, save) = moto_with_two_rows();
    rt().block_on(async {
        let mut s = settings(save.path());
        s.output = Some("s3://no-such-bucket/q/".into());
        s.fetch = Fetch::Csv;
        let engine = AthenaEngine::with_config(&moto.sdk_config().await, s);
        let none = AtomicBool::new(false);
        let out = engine.query("SELECT n, s FROM t", &none).await.unwrap();
        check_two_rows(&out);
        let id = out.info.query_id.clone().unwrap();
        let (meta, again) = SavedStore::new(save.path()).load(&id).unwrap();
        assert_eq!(
            meta.fetched_from,
            "pages (result CSV unreadable: not found)"
        );
        assert_eq!(
            again.batches[0], out.batches[0],
            "the saved CSV is written from the pages"
        );
    });

    // The bucket exists, but the result file is deleted before it is read.
    moto.create_bucket("athena-results");
    moto.queue_athena_results(&two_rows());
    moto.athena_manual_transitions(3);
    rt().block_on(async {
        let config = moto.sdk_config().await;
        let mut s = settings(save.path());
        s.output = Some("s3://athena-results/q/".into());
        s.fetch = Fetch::Csv;
        let engine = AthenaEngine::with_config(&config, s);
        let store = stocklake::aws::s3_store(&config, "athena-results").unwrap();
        let deleter = tokio::spawn(async move {
            use futures::TryStreamExt;
            use object_store::ObjectStoreExt;
            loop {
                let found: Vec<_> = store.list(None).try_collect().await.unwrap();
                if let Some(o) = found.first() {
                    store.delete(&o.location).await.unwrap();
                    return o.location.to_string();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let none = AtomicBool::new(false);
        let out = engine.query("SELECT n, s FROM t", &none).await.unwrap();
        let deleted = deleter.await.unwrap();
        check_two_rows(&out);
        let id = out.info.query_id.clone().unwrap();
        assert_eq!(deleted, format!("q/{id}.csv"));
        let (meta, _) = SavedStore::new(save.path()).load(&id).unwrap();
        assert_eq!(
            meta.fetched_from,
            "pages (result CSV unreadable: not found)"
        );
    });

    // The command line says so on stderr.
    moto.queue_athena_results(&two_rows());
    let out = stocklake_cmd(&["sql", "--engine", "athena", "--fetch", "csv"])
        .args([
            "--output",
            "s3://no-such-bucket/q/",
            "-c",
            "SELECT n, s FROM t",
        ])
        .envs(moto.env())
        .output_ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the result CSV s3://no-such-bucket/q/")
            && err.contains(".csv (not found); reading the rows from GetQueryResults pages"),
        "{err}"
    );
    assert!(err.contains("(2 rows, "), "{err}");
}

#[test]
fn athenas_submission_time_and_the_bill_are_saved_with_the_result() {
    let (moto, save) = moto_with_two_rows();
    rt().block_on(async {
        let engine = AthenaEngine::with_config(&moto.sdk_config().await, settings(save.path()));
        let before = chrono::Utc::now();
        let none = AtomicBool::new(false);
        let out = engine.query("SELECT n, s FROM t", &none).await.unwrap();
        let after = chrono::Utc::now();
        let submitted = out.info.submitted.unwrap();
        assert_eq!(submitted.clock, stocklake::engine::Clock::Athena);
        // moto's clock is this machine's (to the millisecond or better).
        let slack = chrono::Duration::seconds(1);
        assert!(before - slack <= submitted.at && submitted.at <= after + slack);
        let bill = out.info.bill.unwrap();
        assert_eq!((bill.scanned, bill.billed), (0, 10_000_000));
        let id = out.info.query_id.clone().unwrap();
        let (meta, again) = SavedStore::new(save.path()).load(&id).unwrap();
        assert_eq!(meta.submitted_clock, stocklake::engine::Clock::Athena);
        assert_eq!(again.info.submitted, Some(submitted));
        assert_eq!(meta.statement_type.as_deref(), Some("DML"));
        assert_eq!(meta.billed_bytes, Some(10_000_000));
        // moto reports no engine version; Athena's is read (see execution.rs's unit test).
        assert_eq!(meta.engine_version, None);

        // A DDL statement is not billed.
        let out = engine
            .query("SHOW TABLES", &AtomicBool::new(false))
            .await
            .unwrap();
        assert_eq!(out.info.bill.unwrap().billed, 0);
    });
}

#[test]
fn saved_results_from_before_submission_times_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let old = json!({"query_id": "old-1", "sql": "SELECT 1", "workgroup": "primary",
        "database": "stocklake", "catalog": "AwsDataCatalog", "output_location": null,
        "submitted_at": "2026-01-15T09:30:00+00:00", "elapsed_ms": 1, "bytes_scanned": 5,
        "rows": 1, "fetched_from": "pages",
        "columns": [{"name": "n", "athena_type": "integer", "precision": 10, "scale": 0,
                     "nullable": true}]});
    std::fs::write(dir.path().join("old-1.json"), old.to_string()).unwrap();
    std::fs::write(dir.path().join("old-1.csv"), "\"n\"\n\"1\"\n").unwrap();
    let (meta, out) = SavedStore::new(dir.path()).load("old-1").unwrap();
    assert_eq!(meta.submitted_clock, stocklake::engine::Clock::Client);
    assert_eq!((meta.engine_version, meta.billed_bytes), (None, None));
    assert_eq!(out.info.bill, None);
    assert_eq!(out.num_rows(), 1);
}
