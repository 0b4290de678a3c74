//! Reading the lake through its Delta log: data files that no commit records are never read, a
//! folder without a Delta table is an error naming it, `sql --as-of` and the REPL's `\as-of`
//! read older versions, `\d` shows the version read with its files, rows and size, and the
//! rejects table is registered when the lake has one.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use stocklake::engine::LocalEngine;
use stocklake::lake::layout::TABLE_DIR;
use stocklake::tick::{Tick, TickBatchBuilder, parse_iso_millis};

use crate::harness::golden::golden_csv;
use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::{cmd, text};

const COUNT: &str = "SELECT count(*) AS n FROM stocklake.ticks";

fn tick(symbol: &str) -> Tick {
    crate::harness::flat_tick(symbol, "2013-03-04", 1.0, 1)
}

/// Writes a lake data file of `rows` ticks of `symbol` into the table folder, as a writer does
/// before its commit, without committing it.
fn write_uncommitted(lake: &Path, symbol: &str, rows: i64) {
    let mut b = TickBatchBuilder::new(false, rows as usize);
    for offset in 0..rows {
        b.push(&tick(symbol), 0, 9_000_000 + offset);
    }
    let bytes = stocklake::lake::writer::encode(&[b.finish()]).unwrap();
    let dir = lake.join(TABLE_DIR).join(format!("symbol={symbol}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("part-ticks-0-uncommitted.parquet"), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_no_commit_records_are_never_read() {
    let lake = sample_lake();
    let engine = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    assert_eq!(
        golden_csv(&engine.query(COUNT).await.unwrap()),
        "n\n12154\n"
    );
    // A writer's files, written but not committed: in an existing partition and a new one.
    write_uncommitted(lake.path(), "AAPL", 7);
    write_uncommitted(lake.path(), "ZZZ", 3);
    for e in [
        &engine,
        &LocalEngine::open(&lake_arg(lake.path())).await.unwrap(),
    ] {
        let out = e
            .query("SELECT symbol, count(*) AS n FROM ticks GROUP BY 1 ORDER BY 1")
            .await
            .unwrap();
        assert_eq!(
            golden_csv(&out),
            "symbol,n\nAAPL,3270\nFB,196\nGOOG,2148\nIBM,3270\nMSFT,3270\n"
        );
        let state = e.lake_state().await.unwrap();
        assert_eq!((state.version, state.files, state.rows), (5, 5, 12154));
    }
    // The same files count once a commit records them (here: a sixth version from the lake
    // generator, which commits what it writes).
    let mut more =
        stocklake::engine::lakegen::LakeGen::new(lake.path(), Default::default(), 8_000_000, 10)
            .unwrap();
    more.push(&tick("NEW")).unwrap();
    more.finish().unwrap();
    let out = engine.query(COUNT).await.unwrap();
    assert_eq!(golden_csv(&out), "n\n12155\n");
    assert_eq!(out.info.table_versions.map(|v| v.after), Some(6));
}

#[test]
fn a_lake_folder_without_a_delta_table_is_an_error_naming_it() {
    // A lake as stocklake 0.1 wrote it: Parquet files, no _delta_log.
    let lake = tempfile::tempdir().unwrap();
    write_uncommitted(lake.path(), "AAPL", 5);
    let out = cmd(&["sql", "--lake", &lake_arg(lake.path()), "-c", COUNT]).output();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let table = lake.path().join("ticks");
    assert!(
        stderr.contains(&format!("{}", table.display()))
            && stderr.contains("no Delta table")
            && stderr.contains("stocklake lake upgrade"),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).is_empty(),
        "no rows: {}",
        text(&out.stdout)
    );
}

#[test]
fn sql_as_of_reads_an_older_version_and_refuses_bad_ones() {
    let lake = sample_lake();
    let l = lake_arg(lake.path());
    let run = |args: &[&str]| {
        let mut all = vec!["-q", "sql", "--lake", &l, "--format", "csv"];
        all.extend_from_slice(args);
        cmd(&all).output()
    };
    // Version 1 holds AAPL's file only, version 2 adds FB's.
    let out = run(&["--as-of", "1", "-c", COUNT]);
    assert_eq!(text(&out.stdout), "n\n3270\n", "{}", text(&out.stderr));
    let out = run(&["--as-of", "2", "-c", COUNT]);
    assert_eq!(text(&out.stdout), "n\n3466\n", "{}", text(&out.stderr));
    let out = run(&["-c", COUNT]);
    assert_eq!(text(&out.stdout), "n\n12154\n");

    let out = run(&["--as-of", "6", "-c", COUNT]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no version 6: its latest version is 5"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--as-of", "1999-01-01", "-c", COUNT]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did not exist yet at 1999-01-01T00:00:00Z"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--as-of", "last week", "-c", COUNT]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(&["--as-of", "1", "--engine", "athena", "-c", COUNT]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--as-of works with the local engine only"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn repl_describes_the_version_read_and_as_of_moves_it() {
    let lake = sample_lake();
    let work = tempfile::tempdir().unwrap();
    let input = "\\format csv\n\\d\n\\as-of 2\nSELECT count(*) AS n FROM ticks;\n\\d\n\
                 \\d ticks\n\\as-of 99\nSELECT count(*) AS n FROM ticks;\n\\as-of\n\
                 SELECT count(*) AS n FROM ticks;\n\\q\n";
    let out = cmd(&["repl", "--lake", &lake_arg(lake.path()), "--history"])
        .arg(work.path().join("history"))
        .current_dir(work.path())
        .output_with_stdin(input.as_bytes());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let sizes = |v: &str| {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("version {v} ")))
            .unwrap_or_else(|| panic!("no line for version {v}:\n{stdout}"));
        line.to_string()
    };
    // \d at the latest version: 5 files, every row; the size is the files' bytes.
    let bytes: u64 = crate::harness::lake::parquet_files(&lake.path().join("ticks"))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let latest = sizes("5");
    assert!(latest.contains("5 files, 12154 rows, "), "{latest}");
    let kib = format!("{:.1} KiB", bytes as f64 / 1024.0);
    assert!(latest.contains(&kib), "{latest} vs {kib}");
    // Pinned at 2: AAPL's and FB's files.
    assert!(
        stdout.contains("as of version 2: table version 2"),
        "{stdout}"
    );
    let two = sizes("2");
    assert!(
        two.contains("pinned --as-of 2") && two.contains("2 files, 3466 rows"),
        "{two}"
    );
    assert!(stdout.contains("n\n3466\n"), "{stdout}");
    assert!(
        stdout.contains("last committed offsets ticks/0=12153"),
        "{stdout}"
    );
    // A version that does not exist changes nothing; \as-of alone goes back to the latest.
    assert!(stderr.contains("no version 99"), "{stderr}");
    assert_eq!(stdout.matches("n\n3466\n").count(), 2, "{stdout}");
    assert!(stdout.contains("as of now"), "{stdout}");
    assert!(stdout.ends_with("n\n12154\n"), "{stdout}");
}

/// Creates `<lake>/rejects/` as a Delta table holding `reasons` (one row each).
async fn write_rejects(lake: &Path, reasons: &[&str]) {
    let url = stocklake::lake::delta::read::table_url(&lake_arg(lake), "rejects").unwrap();
    std::fs::create_dir_all(url.to_file_path().unwrap()).unwrap();
    let table = deltalake::DeltaTableBuilder::from_url(url)
        .unwrap()
        .build()
        .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("offset", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
    ]));
    let columns: Vec<deltalake::kernel::StructField> = vec![
        deltalake::kernel::StructField::new("offset", deltalake::kernel::DataType::LONG, false),
        deltalake::kernel::StructField::new("reason", deltalake::kernel::DataType::STRING, false),
    ];
    let mut table = table.create().with_columns(columns).await.unwrap();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..reasons.len() as i64)),
            Arc::new(StringArray::from(reasons.to_vec())),
        ],
    )
    .unwrap();
    let mut writer = RecordBatchWriter::for_table(&table).unwrap();
    writer.write(batch).await.unwrap();
    writer.flush_and_commit(&mut table).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rejects_table_is_registered_once_the_lake_has_one() {
    let lake = sample_lake();
    let engine = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    let names = |e: &LocalEngine| -> Vec<String> {
        e.tables()
            .into_iter()
            .map(|(d, t)| format!("{d}.{t}"))
            .collect()
    };
    assert_eq!(names(&engine), ["stocklake.ticks"]);
    write_rejects(lake.path(), &["bad json", "bad json", "empty symbol"]).await;
    // The same session sees it at its next query.
    let out = engine
        .query("SELECT reason, count(*) AS n FROM stocklake.rejects GROUP BY 1 ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(golden_csv(&out), "reason,n\nbad json,2\nempty symbol,1\n");
    assert_eq!(names(&engine), ["stocklake.rejects", "stocklake.ticks"]);
    // Pinned before the rejects table existed, the engine has no rejects table.
    engine
        .set_as_of(Some(stocklake::lake::delta::read::AsOf::Version(5)))
        .await
        .unwrap();
    let err = engine
        .query("SELECT count(*) FROM stocklake.rejects")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rejects"), "{err}");
}

#[test]
fn an_s3_lake_is_read_through_its_log_at_any_version() {
    let moto = crate::harness::moto::Moto::start();
    moto.wait_ready();
    moto.create_bucket("deltaread");
    // The sample lake, log and files, copied under s3://deltaread/lake/, plus a data file no
    // commit records.
    let lake = sample_lake();
    write_uncommitted(lake.path(), "AAPL", 7);
    let config = crate::harness::rt().block_on(moto.sdk_config());
    let store = stocklake::aws::s3_store(&config, "deltaread").unwrap();
    crate::harness::rt().block_on(async {
        use object_store::ObjectStoreExt;
        for f in files_under(lake.path()) {
            let rel = f.strip_prefix(lake.path()).unwrap().to_str().unwrap();
            let key = object_store::path::Path::parse(format!("lake/{rel}")).unwrap();
            store
                .put(&key, std::fs::read(&f).unwrap().into())
                .await
                .unwrap();
        }
    });
    let sql = |extra: &[&str]| {
        let mut args = vec![
            "-q",
            "sql",
            "--lake",
            "s3://deltaread/lake",
            "--format",
            "csv",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-c",
            "SELECT symbol, count(*) AS n FROM ticks GROUP BY 1 ORDER BY 1",
        ]);
        cmd(&args).envs(moto.env()).output()
    };
    let out = sql(&[]);
    assert_eq!(
        text(&out.stdout),
        "symbol,n\nAAPL,3270\nFB,196\nGOOG,2148\nIBM,3270\nMSFT,3270\n",
        "{}",
        text(&out.stderr)
    );
    let out = sql(&["--as-of", "2"]);
    assert_eq!(
        text(&out.stdout),
        "symbol,n\nAAPL,3270\nFB,196\n",
        "{}",
        text(&out.stderr)
    );
    // A prefix with no table: an error naming it.
    let out = cmd(&["sql", "--lake", "s3://deltaread/nothing", "-c", COUNT])
        .envs(moto.env())
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("s3://deltaread/nothing/ticks/: no Delta table here"),
        "{}",
        text(&out.stderr)
    );
}

/// Every file below `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_consumed_lake_answers_for_its_ticks_and_its_rejects() {
    use crate::harness::kafka::{broker_with_topic, consume_until_idle, produce_raw};
    let (broker, topic) = broker_with_topic(2);
    let mut messages = Vec::new();
    for i in 0..300i64 {
        let t = Tick {
            event_time: parse_iso_millis("2024-01-02").unwrap() + i * 86_400_000,
            ..tick(["AAA", "BBB", "CCC"][i as usize % 3])
        };
        messages.push((t.symbol.clone().into_bytes(), t.to_json().into_bytes()));
        if i % 100 == 7 {
            messages.push((b"AAA".to_vec(), format!("not json {i}").into_bytes()));
            messages.push((
                b"AAA".to_vec(),
                format!(r#"{{"symbol":"AAA","event_time":"2024-01-02","close":-{i}}}"#)
                    .into_bytes(),
            ));
        }
    }
    produce_raw(broker.bootstrap_servers(), &topic, &messages);
    let lake = tempfile::tempdir().unwrap();
    let out = consume_until_idle(
        broker.bootstrap_servers(),
        &topic,
        lake.path(),
        &["--flush-rows", "100"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let l = lake_arg(lake.path());
    let sql = |q: &str| {
        let out = cmd(&["-q", "sql", "--lake", &l, "--format", "csv", "-c", q]).output();
        assert!(out.status.success(), "{q}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(
        sql("SELECT symbol, count(*) AS n FROM stocklake.ticks GROUP BY 1 ORDER BY 1"),
        "symbol,n\nAAA,100\nBBB,100\nCCC,100\n"
    );
    let reasons = sql(
        "SELECT CASE WHEN reason LIKE '%negative%' THEN 'negative' ELSE 'json' END AS why, \
         count(*) AS n FROM stocklake.rejects GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(reasons, "why,n\njson,3\nnegative,3\n");
    // Every offset of the topic is in exactly one of the two tables.
    let offsets = sql(
        "SELECT count(*) AS n, count(DISTINCT p * 1000000 + o) AS d FROM (\
           SELECT kafka_partition AS p, kafka_offset AS o FROM stocklake.ticks \
           UNION ALL SELECT \"partition\" AS p, \"offset\" AS o FROM stocklake.rejects)",
    );
    assert_eq!(offsets, "n,d\n306,306\n");
}
