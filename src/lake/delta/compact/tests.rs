//! Compaction and vacuum on temporary local tables written as the consumer writes them (lake
//! files through `Lake::put`, one commit per flush with `txn`s): rows stay exactly once, files
//! keep the lake's Parquet profile, two compactors cannot both commit, leftovers go.

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::SessionContext;

use super::*;
use crate::lake::delta::{AppTxn, DataFile, TicksTable, app_id, partition_values, ticks_url};
use crate::lake::layout::TABLE_DIR;
use crate::lake::writer::encode;
use crate::lake::{PartitionKey, TableLayout};
use crate::tick::{MS_PER_DAY, Tick, TickBatchBuilder, parse_iso_millis};

fn opts() -> CompactOptions {
    CompactOptions {
        target_size: 128 << 20,
        retain: Duration::ZERO,
        min_age: Duration::ZERO,
        commit_every: Duration::from_secs(3600),
        vacuum: true,
        dry_run: false,
    }
}

fn quiet(_: &str) {}

static NEVER: AtomicBool = AtomicBool::new(false);

/// A table being written: the lake, the table handle, and the next offset of each Kafka
/// partition.
struct Writer {
    lake: Lake,
    table: TicksTable,
    layout: TableLayout,
    next: HashMap<i32, i64>,
    files: usize,
}

impl Writer {
    async fn new(dir: &Path, layout: TableLayout) -> Writer {
        let lake = Lake::open(dir.to_str().unwrap()).await.unwrap();
        let table = TicksTable::open_or_create(&ticks_url(dir.to_str().unwrap()).unwrap(), &layout)
            .await
            .unwrap();
        Writer {
            lake,
            table,
            layout,
            next: HashMap::new(),
            files: 0,
        }
    }

    /// One flush: `rows` ticks of each symbol (Kafka partition = symbol index % 2), a file per
    /// symbol, one commit with a `txn` per Kafka partition.
    async fn flush(&mut self, symbols: &[&str], rows: i64, day: i64) {
        let mut files = Vec::new();
        let mut txns: HashMap<i32, i64> = HashMap::new();
        for (i, symbol) in symbols.iter().enumerate() {
            let partition = (i % 2) as i32;
            let first = *self.next.get(&partition).unwrap_or(&0);
            let mut b = TickBatchBuilder::new(self.layout.symbol_in_file(), rows as usize);
            let t0 = parse_iso_millis("2020-01-01").unwrap() + day * MS_PER_DAY;
            for k in 0..rows {
                let t = Tick {
                    symbol: symbol.to_string(),
                    event_time: t0 + k * 60_000,
                    open: Some(1.0 + k as f64),
                    high: Some(2.0),
                    low: Some(0.5),
                    close: Some(1.5),
                    adj_close: None,
                    volume: Some(100 + k),
                };
                b.push(&t, partition, first + k);
            }
            self.next.insert(partition, first + rows);
            txns.insert(partition, first + rows - 1);
            let bytes = encode(&[b.finish()]).unwrap();
            self.files += 1;
            let path = format!(
                "{}/part-ticks-{partition}-{first:020}-{}.parquet",
                self.layout.partition_dir(symbol, t0),
                self.files
            );
            self.lake
                .put(&format!("{TABLE_DIR}/{path}"), bytes.clone())
                .await
                .unwrap();
            files.push(DataFile {
                path,
                size: bytes.len() as u64,
                partition_values: partition_values(&self.layout, symbol, t0),
                rows: rows as u64,
                stats: None,
            });
        }
        let mut txns: Vec<AppTxn> = txns
            .into_iter()
            .map(|(p, v)| AppTxn {
                app_id: app_id("ticks", p),
                version: v,
            })
            .collect();
        txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        self.table.commit(&files, &txns).await.unwrap();
    }

    fn committed(&self) -> i64 {
        self.next.values().sum()
    }
}

async fn load(dir: &Path) -> DeltaTable {
    open_existing(&ticks_url(dir.to_str().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// Rows of one query on the latest version, each as `a|b|c`.
async fn query(dir: &Path, sql: &str) -> Vec<String> {
    let table = load(dir).await;
    let ctx = SessionContext::new();
    ctx.register_table("ticks", table.table_provider().await.unwrap())
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    crate::print::rows_as_text(&batches).unwrap()
}

/// Asserts every Kafka (partition, offset) below what was committed is in the table once.
async fn assert_exactly_once(dir: &Path, committed: i64) {
    let got = query(
        dir,
        "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM ticks",
    )
    .await;
    assert_eq!(got, [format!("{committed}|{committed}")]);
}

fn active_paths(table: &DeltaTable) -> Vec<String> {
    let mut v: Vec<String> = table
        .snapshot()
        .unwrap()
        .log_data()
        .iter()
        .map(|f| f.path().into_owned())
        .collect();
    v.sort();
    v
}

/// Every file under the table folder except the log, as paths relative to it.
fn files_on_disk(table_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![table_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("_delta_log") {
                    stack.push(p);
                }
            } else {
                out.push(
                    p.strip_prefix(table_dir)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
    }
    out.sort();
    out
}

/// The active files by replaying the JSON commits as an independent reader would: adds minus
/// removes, matched by the path text in the log (then URI-decoded).
fn replayed_paths(table_dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(table_dir.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut active = std::collections::BTreeSet::new();
    for n in names {
        let text = std::fs::read_to_string(table_dir.join("_delta_log").join(n)).unwrap();
        for line in text.lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                active.insert(add["path"].as_str().unwrap().to_string());
            } else if let Some(rm) = action.get("remove") {
                assert!(
                    active.remove(rm["path"].as_str().unwrap()),
                    "a remove of a path that is not active: {rm}"
                );
            }
        }
    }
    let mut out: Vec<String> = active
        .into_iter()
        .map(|p| crate::lake::layout::percent_decode(&p).unwrap())
        .collect();
    out.sort();
    out
}

const HOSTILE: &[&str] = &["AAPL", "A/B", "x y", "ünï", "%2F", "a=b#?", "BRK.B"];

#[tokio::test]
async fn compaction_packs_each_partition_into_one_file_and_keeps_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    for day in 0..6 {
        w.flush(HOSTILE, 3, day).await;
    }
    let before = query(
        dir.path(),
        "SELECT symbol, count(*), sum(kafka_offset), min(event_time), max(volume) FROM ticks GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert_eq!(
        load(dir.path())
            .await
            .snapshot()
            .unwrap()
            .log_data()
            .num_files(),
        42
    );

    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let report = compact_table(&url, &opts(), &quiet, &NEVER).await.unwrap();
    assert_eq!(report.files_before, 42);
    assert_eq!(report.files_removed, 42);
    assert_eq!(report.files_added, 7);
    assert_eq!(report.files_after, 7);
    assert_eq!(report.partitions, 7);
    assert_eq!(report.partitions_compacted, 7);
    assert_eq!(report.rows_rewritten, 126);
    assert_eq!(report.commits, 1);
    assert_eq!(report.refused, 0);
    // The old files are gone from the disk, and only the table's files are left.
    assert_eq!(report.vacuumed_files, 42);
    let table = load(dir.path()).await;
    assert_eq!(
        active_paths(&table),
        files_on_disk(&dir.path().join("ticks"))
    );
    // The log's removes name the files as its adds do (hostile names too).
    assert_eq!(
        replayed_paths(&dir.path().join("ticks")),
        active_paths(&table)
    );

    let after = query(
        dir.path(),
        "SELECT symbol, count(*), sum(kafka_offset), min(event_time), max(volume) FROM ticks GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert_eq!(after, before);
    assert_exactly_once(dir.path(), w.committed()).await;
    // The commit carries the compactor's txn, and the consumers' offsets are still there.
    assert_eq!(
        table
            .snapshot()
            .unwrap()
            .transaction_version(table.log_store().as_ref(), COMPACT_APP_ID)
            .await
            .unwrap(),
        Some(0)
    );
    w.table.refresh().await.unwrap();
    assert_eq!(
        w.table.txn_version(&app_id("ticks", 0)).await.unwrap(),
        Some(w.next[&0] - 1)
    );

    // A second run finds nothing to do.
    let again = compact_table(&url, &opts(), &quiet, &NEVER).await.unwrap();
    assert_eq!((again.commits, again.files_removed), (0, 0));
    assert_eq!(again.version_after, again.version_before);
}

#[tokio::test]
async fn compacted_files_keep_the_lake_parquet_profile() {
    let dir = tempfile::tempdir().unwrap();
    // Partitioned by date, so the symbol column is in the files.
    let layout = TableLayout {
        partition_by: vec![PartitionKey::Date],
    };
    let mut w = Writer::new(dir.path(), layout).await;
    for _ in 0..4 {
        w.flush(&["AAPL", "MSFT", "IBM"], 5, 0).await;
    }
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let report = compact_table(&url, &opts(), &quiet, &NEVER).await.unwrap();
    assert_eq!((report.files_removed, report.files_added), (12, 1));
    let table = load(dir.path()).await;
    let paths = active_paths(&table);
    assert_eq!(paths.len(), 1);
    assert!(
        paths[0].starts_with("dt=2020-01-01/part-compact-"),
        "{paths:?}"
    );
    let bytes = Bytes::from(std::fs::read(dir.path().join("ticks").join(&paths[0])).unwrap());
    // Its Delta statistics are those of all its rows (min/max/nullCount for file skipping).
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let logged: serde_json::Value = serde_json::from_str(
        &table
            .snapshot()
            .unwrap()
            .log_data()
            .iter()
            .next()
            .unwrap()
            .stats()
            .unwrap(),
    )
    .unwrap();
    let whole: serde_json::Value =
        serde_json::from_str(&super::super::stats::file_stats(&batches)).unwrap();
    assert_eq!(logged, whole);
    assert_eq!(logged["numRecords"], 60);
    assert!(logged["minValues"]["event_time"].is_string(), "{logged}");
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let meta = reader.metadata().clone();
    let schema = meta.file_metadata().schema_descr();
    let col = |name: &str| {
        (0..schema.num_columns())
            .find(|i| schema.column(*i).name() == name)
            .unwrap()
    };
    assert_eq!(meta.num_row_groups(), 1);
    assert_eq!(meta.file_metadata().num_rows(), 60);
    let rg = meta.row_group(0);
    let et = rg.column(col("event_time"));
    assert_eq!(
        format!("{:?}", schema.column(col("event_time")).logical_type_ref()),
        "Some(Timestamp(TimestampType { is_adjusted_to_u_t_c: true, unit: MILLIS }))"
    );
    assert_eq!(et.column_type(), parquet::basic::Type::INT64);
    assert!(et.statistics().is_some_and(|s| s.min_bytes_opt().is_some()));
    for i in 0..schema.num_columns() {
        assert_eq!(
            rg.column(i).compression(),
            parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::try_new(1).unwrap()),
            "{}",
            schema.column(i).name()
        );
    }
    let dictionary = |i: usize| rg.column(i).dictionary_page_offset().is_some();
    assert!(dictionary(col("symbol")));
    assert!(!dictionary(col("close")));
    assert!(
        meta.file_metadata()
            .created_by()
            .is_some_and(|c| c.starts_with("stocklake"))
    );
    assert_exactly_once(dir.path(), w.committed()).await;
}

#[tokio::test]
async fn vacuum_deletes_leftovers_and_staging_files_but_never_an_active_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    w.flush(HOSTILE, 2, 0).await;
    let table_dir = dir.path().join("ticks");
    // A killed writer's leftovers: a data file never committed, and a staging file.
    std::fs::write(
        table_dir.join("symbol=AAPL/part-ticks-0-orphan.parquet"),
        b"x",
    )
    .unwrap();
    std::fs::write(table_dir.join("symbol=AAPL/part-ticks-0-9.parquet#1"), b"").unwrap();
    std::fs::write(
        table_dir.join("_delta_log/00000000000000000009.json#3"),
        b"",
    )
    .unwrap();
    let active = active_paths(&load(dir.path()).await);
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let keep = CompactOptions {
        retain: Duration::from_secs(3600),
        ..opts()
    };
    // Younger than --retain: kept (a writer may be about to commit it).
    let r = compact_table(&url, &keep, &quiet, &NEVER).await.unwrap();
    assert_eq!((r.vacuumed_files, r.staging_files), (0, 0));
    assert_eq!(files_on_disk(&table_dir).len(), active.len() + 2);
    // A dry run only counts.
    let dry = CompactOptions {
        dry_run: true,
        ..opts()
    };
    let r = compact_table(&url, &dry, &quiet, &NEVER).await.unwrap();
    assert_eq!((r.vacuumed_files, r.staging_files), (1, 2));
    assert_eq!(files_on_disk(&table_dir).len(), active.len() + 2);
    // Older than --retain: deleted; every active file (hostile names included) stays.
    let r = compact_table(&url, &opts(), &quiet, &NEVER).await.unwrap();
    assert_eq!((r.vacuumed_files, r.staging_files), (1, 2));
    assert_eq!(files_on_disk(&table_dir), active);
    assert!(
        !table_dir
            .join("_delta_log/00000000000000000009.json#3")
            .exists()
    );
    assert_exactly_once(dir.path(), w.committed()).await;
    let symbols = query(dir.path(), "SELECT DISTINCT symbol FROM ticks ORDER BY 1").await;
    let mut want: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(symbols, want);
}

#[tokio::test]
async fn partitions_still_changing_wait_for_min_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    for day in 0..3 {
        w.flush(&["OLD", "LIVE"], 2, day).await;
    }
    let table = load(dir.path()).await;
    let settled = CompactOptions {
        min_age: Duration::from_secs(3600),
        ..opts()
    };
    let now = chrono::Utc::now().timestamp_millis();
    let p = plan(&table, &settled, now).unwrap();
    assert_eq!((p.partitions, p.live, p.bins.len()), (2, 2, 0));
    let p = plan(&table, &settled, now + 2 * 3_600_000).unwrap();
    assert_eq!((p.live, p.bins.len()), (0, 2));
    // OLD stops; LIVE goes on: only OLD is compacted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.flush(&["LIVE"], 2, 5).await;
    w.flush(&["LIVE"], 2, 6).await;
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let settled = CompactOptions {
        min_age: Duration::from_secs(1),
        ..opts()
    };
    let r = compact_table(&url, &settled, &quiet, &NEVER).await.unwrap();
    assert_eq!((r.partitions_live, r.partitions_compacted), (1, 1));
    assert_eq!((r.files_removed, r.files_after), (3, 6));
    let r = compact_table(&url, &opts(), &quiet, &NEVER).await.unwrap();
    assert_eq!((r.partitions_live, r.partitions_compacted), (0, 1));
    assert_eq!(r.files_after, 2);
    assert_exactly_once(dir.path(), w.committed()).await;
}

#[tokio::test]
async fn a_second_compactor_of_the_same_files_is_refused_and_its_rows_never_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    for day in 0..4 {
        w.flush(&["AAPL", "MSFT"], 3, day).await;
    }
    let committed = w.committed();
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let lake = Lake::open(url.as_str()).await.unwrap();
    let name = url.to_string();
    let now = chrono::Utc::now().timestamp_millis();
    // Two compactors plan from the same version and rewrite the same files.
    let mut a = load(dir.path()).await;
    let mut b = load(dir.path()).await;
    let mut c = load(dir.path()).await;
    let mut rewritten = Vec::new();
    for t in [&a, &b, &c] {
        let p = plan(t, &opts(), now).unwrap();
        assert_eq!(p.bins.len(), 2);
        let mut done = Vec::new();
        for bin in &p.bins {
            done.push(rewrite(&lake, bin).await.unwrap().unwrap());
        }
        rewritten.push(done);
    }
    // A consumer appends meanwhile: no conflict with either.
    w.flush(&["AAPL", "MSFT"], 3, 9).await;
    let first = commit(&mut a, &name, &rewritten[0], 1 << 20, true)
        .await
        .unwrap();
    assert!(matches!(first, Outcome::Committed(_)), "{first:?}");
    let second = commit(&mut b, &name, &rewritten[1], 1 << 20, true)
        .await
        .unwrap();
    assert_eq!(second, Outcome::Refused);
    assert_exactly_once(dir.path(), w.committed()).await;
    assert_eq!(w.committed(), committed + 6);

    // Without the txn, deltalake lets the second commit through and the rows are doubled:
    // the reason the txn is there.
    let third = commit(&mut c, &name, &rewritten[2], 1 << 20, false)
        .await
        .unwrap();
    assert!(matches!(third, Outcome::Committed(_)), "{third:?}");
    let got = query(dir.path(), "SELECT count(*) FROM ticks").await;
    assert_eq!(got, [(w.committed() + committed).to_string()]);
}

#[tokio::test]
async fn a_refused_compaction_reads_the_table_again_and_leaves_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    for day in 0..4 {
        w.flush(&["AAPL", "MSFT", "IBM"], 2, day).await;
    }
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let no_vacuum = CompactOptions {
        vacuum: false,
        ..opts()
    };
    // Both start at once on their own handles: exactly one set of files wins.
    let (one, two) = tokio::join!(
        compact_table(&url, &no_vacuum, &quiet, &NEVER),
        compact_table(&url, &no_vacuum, &quiet, &NEVER)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.files_removed + two.files_removed, 12, "{one:?} {two:?}");
    assert_exactly_once(dir.path(), w.committed()).await;
    let table = load(dir.path()).await;
    assert_eq!(table.snapshot().unwrap().log_data().num_files(), 3);

    // A compactor whose handle is behind: its plan's files were compacted by another one
    // since, so its commit is refused; it reads the table again and finds them done.
    for day in 4..8 {
        w.flush(&["AAPL", "MSFT", "IBM"], 2, day).await;
    }
    let stale = load(dir.path()).await;
    let first = compact_table(&url, &no_vacuum, &quiet, &NEVER)
        .await
        .unwrap();
    assert_eq!((first.commits, first.files_removed), (1, 15));
    let late = compact_handle(stale, &url, &no_vacuum, &quiet, &NEVER)
        .await
        .unwrap();
    assert_eq!((late.refused, late.commits, late.files_removed), (1, 0, 0));
    assert_eq!(late.files_after, 3);
    assert_exactly_once(dir.path(), w.committed()).await;
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    for day in 0..3 {
        w.flush(&["AAPL", "MSFT"], 2, day).await;
    }
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let before = files_on_disk(&dir.path().join("ticks"));
    let dry = CompactOptions {
        dry_run: true,
        ..opts()
    };
    let r = compact_table(&url, &dry, &quiet, &NEVER).await.unwrap();
    assert!(r.dry_run);
    assert_eq!((r.files_removed, r.files_added, r.commits), (6, 2, 0));
    assert_eq!(r.version_after, r.version_before);
    assert_eq!(files_on_disk(&dir.path().join("ticks")), before);
}

#[tokio::test]
async fn the_rejects_table_is_compacted_too() {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    w.flush(&["AAPL"], 2, 0).await;
    w.flush(&["AAPL"], 2, 1).await;
    // A small unpartitioned table at <lake>/rejects/ (the consumer's schema is its own).
    let schema = Arc::new(Schema::new(vec![
        Field::new("reason", DataType::Utf8, false),
        Field::new("offset", DataType::Int64, false),
    ]));
    let url = lake_tables(dir.path().to_str().unwrap()).await.unwrap();
    assert_eq!(url.len(), 1, "no rejects table yet");
    let rejects_url = Url::from_directory_path(dir.path().join("rejects")).unwrap();
    let cols: Vec<deltalake::kernel::StructField> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().try_into_kernel().unwrap())
        .collect();
    let mut table = table_at(&rejects_url)
        .await
        .unwrap()
        .create()
        .with_columns(cols)
        .await
        .unwrap();
    let lake = Lake::open(rejects_url.as_str()).await.unwrap();
    for i in 0..5i64 {
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["bad json"])),
                Arc::new(Int64Array::from(vec![i])),
            ],
        )
        .unwrap();
        let bytes = encode(&[batch]).unwrap();
        let path = format!("part-rejects-{i}.parquet");
        lake.put(&path, bytes.clone()).await.unwrap();
        let add = Add {
            path,
            size: bytes.len() as i64,
            modification_time: 0,
            data_change: true,
            ..Default::default()
        };
        let done = CommitBuilder::default()
            .with_actions(vec![Action::Add(add)])
            .build(
                Some(table.snapshot().unwrap()),
                table.log_store(),
                DeltaOperation::Write {
                    mode: deltalake::protocol::SaveMode::Append,
                    partition_by: None,
                    predicate: None,
                },
            )
            .await
            .unwrap();
        table.state = Some(done.snapshot());
    }
    let reports = compact_lake(dir.path().to_str().unwrap(), &opts(), &quiet, &NEVER)
        .await
        .unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!((reports[0].files_removed, reports[0].files_after), (2, 1));
    assert_eq!((reports[1].files_removed, reports[1].files_after), (5, 1));
    assert!(reports[1].table.ends_with("/rejects/"));
    let table = open_existing(&rejects_url).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("r", table.table_provider().await.unwrap())
        .unwrap();
    let batches = ctx
        .sql("SELECT count(*), sum(\"offset\") FROM r")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let cell =
        |i: usize| arrow::util::display::array_value_to_string(batches[0].column(i), 0).unwrap();
    assert_eq!((cell(0), cell(1)), ("5".to_string(), "10".to_string()));
}

#[test]
fn staging_names_are_recognised() {
    assert!(is_staging_name("part-1.parquet#1"));
    assert!(is_staging_name("00000000000000000009.json#12"));
    assert!(!is_staging_name("part-1.parquet"));
    assert!(!is_staging_name("a=b#?"));
    assert!(!is_staging_name("#1"));
    assert!(!is_staging_name("x#"));
}

#[tokio::test]
async fn a_stopped_compaction_commits_what_it_rewrote_and_skips_the_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path(), TableLayout::default()).await;
    for day in 0..3 {
        w.flush(&["AAPL", "MSFT", "IBM"], 2, day).await;
    }
    let url = ticks_url(dir.path().to_str().unwrap()).unwrap();
    let stop = AtomicBool::new(true);
    let r = compact_table(&url, &opts(), &quiet, &stop).await.unwrap();
    assert!(r.stopped);
    assert_eq!((r.commits, r.files_removed, r.files_added), (1, 3, 1));
    assert_eq!((r.files_after, r.vacuumed_files), (7, 0));
    // The replaced files are still on the disk (no vacuum), and no row counts twice.
    assert_eq!(files_on_disk(&dir.path().join("ticks")).len(), 10);
    assert_exactly_once(dir.path(), w.committed()).await;
}
