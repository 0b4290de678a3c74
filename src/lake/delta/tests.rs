//! Tests of the Delta table on a temporary local folder: real lake files (the writer profile and
//! the tick batch builder), commits with `txn`s, fencing of a stale writer, and layout races.

use std::path::Path;

use datafusion::prelude::SessionContext;

use super::*;
use crate::lake::writer::encode;
use crate::tick::{Tick, TickBatchBuilder, parse_iso_millis};

fn by_symbol() -> TableLayout {
    TableLayout {
        partition_by: vec![PartitionKey::Symbol],
    }
}

fn tick(symbol: &str, day: &str) -> Tick {
    Tick {
        symbol: symbol.into(),
        event_time: parse_iso_millis(day).unwrap(),
        open: Some(1.0),
        high: Some(2.0),
        low: Some(0.5),
        close: Some(1.5),
        adj_close: None,
        volume: Some(100),
    }
}

/// Writes `rows` ticks of `symbol` (Kafka offsets `first..`) as a lake file under the table
/// folder, as the consumer does; returns it as a [`DataFile`].
fn write_file(
    table_dir: &Path,
    layout: &TableLayout,
    symbol: &str,
    partition: i32,
    first: i64,
    rows: i64,
    name: &str,
) -> DataFile {
    let mut b = TickBatchBuilder::new(layout.symbol_in_file(), rows as usize);
    let t = tick(symbol, "2000-03-01");
    for offset in first..first + rows {
        b.push(&t, partition, offset);
    }
    let bytes = encode(&[b.finish()]).unwrap();
    let dir = layout.partition_dir(symbol, t.event_time);
    let path = format!("{dir}/{name}");
    std::fs::create_dir_all(table_dir.join(&dir)).unwrap();
    std::fs::write(table_dir.join(&path), &bytes).unwrap();
    DataFile {
        path,
        size: bytes.len() as u64,
        partition_values: partition_values(layout, symbol, t.event_time),
        rows: rows as u64,
        stats: None,
    }
}

fn table_url(dir: &tempfile::TempDir) -> Url {
    ticks_url(dir.path().to_str().unwrap()).unwrap()
}

/// One column of one row of a query, as text.
async fn query(table: &TicksTable, sql: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    ctx.register_table("ticks", provider(table).await.unwrap())
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    crate::print::rows_as_text(&batches).unwrap()
}

#[tokio::test]
async fn a_commit_records_files_and_offsets_and_readers_see_only_committed_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = table_url(&dir);
    let layout = by_symbol();
    let mut table = TicksTable::open_or_create(&url, &layout).await.unwrap();
    let created = table.version();
    let table_dir = dir.path().join("ticks");
    let x = app_id("ticks", 0);
    let y = app_id("ticks", 1);
    assert_eq!(x, "stocklake:ticks:0");
    assert_eq!(table.txn_version(&x).await.unwrap(), None);

    let files = [
        write_file(&table_dir, &layout, "AAPL", 0, 0, 3, "part-a.parquet"),
        write_file(&table_dir, &layout, "MSFT", 1, 10, 2, "part-b.parquet"),
    ];
    let txns = [
        AppTxn {
            app_id: x.clone(),
            version: 2,
        },
        AppTxn {
            app_id: y.clone(),
            version: 11,
        },
    ];
    let v = table.commit(&files, &txns).await.unwrap();
    assert_eq!(v, created + 1);
    assert_eq!(table.version(), v);
    assert_eq!(table.txn_version(&x).await.unwrap(), Some(2));
    assert_eq!(table.txn_version(&y).await.unwrap(), Some(11));
    assert_eq!(table.txn_version(&app_id("ticks", 2)).await.unwrap(), None);

    // A file in the same partition folder that no commit records is no part of the table.
    write_file(&table_dir, &layout, "AAPL", 0, 3, 4, "part-orphan.parquet");
    // A fresh reader too, from the log alone.
    let reader = TicksTable::open_or_create(&url, &layout).await.unwrap();
    assert_eq!(reader.version(), v);
    assert_eq!(reader.txn_version(&y).await.unwrap(), Some(11));
    for t in [&table, &reader] {
        assert_eq!(query(t, "SELECT count(*) FROM ticks").await, ["5"]);
        assert_eq!(
            query(
                t,
                "SELECT symbol, count(*), min(kafka_offset), max(kafka_offset) \
                 FROM ticks GROUP BY symbol ORDER BY symbol"
            )
            .await,
            ["AAPL|3|0|2", "MSFT|2|10|11"]
        );
    }
    // Millisecond timestamps in our files read back as Delta's (microsecond, UTC) timestamp.
    let times = query(
        &table,
        "SELECT min(event_time), max(trade_date), arrow_typeof(min(event_time)) FROM ticks",
    )
    .await;
    assert_eq!(times.len(), 1);
    assert!(
        times[0].starts_with("2000-03-01T00:00:00") && times[0].contains("|2000-03-01|"),
        "{times:?}"
    );
    assert!(times[0].contains("Timestamp("), "{times:?}");
}

#[tokio::test]
async fn a_writer_whose_partition_was_taken_over_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = table_url(&dir);
    let layout = by_symbol();
    let table_dir = dir.path().join("ticks");
    let mut a = TicksTable::open_or_create(&url, &layout).await.unwrap();
    let mut b = TicksTable::open_or_create(&url, &layout).await.unwrap();
    let mut c = TicksTable::open_or_create(&url, &layout).await.unwrap();
    let v = a.version();
    assert_eq!(b.version(), v);
    let x = app_id("ticks", 0);
    let txn = |app_id: &str, version| AppTxn {
        app_id: app_id.to_string(),
        version,
    };

    // B took partition 0 over and committed first.
    let fb = write_file(&table_dir, &layout, "AAPL", 0, 0, 2, "part-b.parquet");
    let vb = b.commit(&[fb], &[txn(&x, 1)]).await.unwrap();
    assert_eq!(vb, v + 1);

    // A, still at v, commits the same partition: refused, and says why.
    let fa = write_file(&table_dir, &layout, "AAPL", 0, 0, 3, "part-a.parquet");
    let err = a.commit(&[fa], &[txn(&x, 2)]).await.unwrap_err();
    assert!(matches!(err, LakeError::TakenOver { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("stocklake:ticks:0") && message.contains("refused"),
        "{message}"
    );
    assert_eq!(a.version(), v, "a refused writer stays where it was");

    // C, also at v, commits another Kafka partition (same symbol folder): B's commit does not
    // stop it.
    let fc = write_file(&table_dir, &layout, "AAPL", 1, 0, 4, "part-c.parquet");
    let vc = c
        .commit(&[fc], &[txn(&app_id("ticks", 1), 3)])
        .await
        .unwrap();
    assert_eq!(vc, vb + 1);

    let mut reader = TicksTable::open_or_create(&url, &layout).await.unwrap();
    assert_eq!(reader.refresh().await.unwrap(), vc);
    assert_eq!(reader.txn_version(&x).await.unwrap(), Some(1));
    assert_eq!(
        query(
            &reader,
            "SELECT symbol, kafka_partition, count(*) FROM ticks \
             GROUP BY symbol, kafka_partition ORDER BY kafka_partition"
        )
        .await,
        ["AAPL|0|2", "AAPL|1|4"]
    );
    // A, refreshed, sees B's offset and may go on from there.
    assert_eq!(a.refresh().await.unwrap(), vc);
    assert_eq!(a.txn_version(&x).await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_table_keeps_the_layout_of_its_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = table_url(&dir);
    let by_date = TableLayout {
        partition_by: vec![PartitionKey::Date],
    };
    // Two creators race with different layouts: exactly one layout wins, the other is refused.
    let symbol = by_symbol();
    let (one, two) = tokio::join!(
        TicksTable::open_or_create(&url, &symbol),
        TicksTable::open_or_create(&url, &by_date)
    );
    let (winner, loser) = match (one, two) {
        (Ok(w), Err(l)) => (w, l),
        (Err(l), Ok(w)) => (w, l),
        other => panic!("expected one winner: {other:?}"),
    };
    assert_eq!(winner.version(), 0);
    assert!(
        matches!(loser, LakeError::TableMismatch { .. }),
        "{loser:?}"
    );
    assert!(
        loser.to_string().contains("one table has one layout"),
        "{loser}"
    );
    // Later opens get the same answer, and the log holds one layout only.
    let symbol_first = winner.spec.partition_columns == ["symbol"];
    let other = if symbol_first { by_date } else { by_symbol() };
    let err = TicksTable::open_or_create(&url, &other).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(if symbol_first { "(symbol)" } else { "(dt)" }),
        "{err}"
    );
    let log: Vec<_> = std::fs::read_dir(dir.path().join("ticks/_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(log, ["00000000000000000000.json"]);
}

#[test]
fn partition_values_are_canonical_and_app_ids_name_topic_and_partition() {
    let layout = TableLayout {
        partition_by: vec![
            PartitionKey::Symbol,
            PartitionKey::Year,
            PartitionKey::Month,
            PartitionKey::Date,
        ],
    };
    let t = parse_iso_millis("2013-03-01T15:30:00Z").unwrap();
    let got = partition_values(&layout, "BRK.B", t);
    let want = [
        ("symbol", "BRK.B"),
        ("year", "2013"),
        ("month", "3"),
        ("dt", "2013-03-01"),
    ];
    assert_eq!(
        got,
        want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
    );
    assert_eq!(app_id("my.topic", 7), "stocklake:my.topic:7");
}

#[tokio::test]
async fn files_written_through_the_lake_with_escaped_directories_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::lake::Lake::open(dir.path().to_str().unwrap())
        .await
        .unwrap();
    let layout = by_symbol();
    let mut table = TicksTable::open_or_create(&table_url(&dir), &layout)
        .await
        .unwrap();
    let mut symbols = vec!["A/B", "x y", "ünï", "%2F", "BRK.B", "a=b#?"];
    let mut files = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let t = tick(symbol, "2000-03-01");
        let mut b = TickBatchBuilder::new(false, 1);
        b.push(&t, 0, i as i64);
        let bytes = encode(&[b.finish()]).unwrap();
        let path = format!(
            "{}/part-{i}.parquet",
            layout.partition_dir(symbol, t.event_time)
        );
        lake.put(&format!("{TABLE_DIR}/{path}"), bytes.clone())
            .await
            .unwrap();
        files.push(DataFile {
            path,
            size: bytes.len() as u64,
            partition_values: partition_values(&layout, symbol, t.event_time),
            rows: 1,
            stats: None,
        });
    }
    table.commit(&files, &[]).await.unwrap();
    symbols.sort_unstable();
    assert_eq!(
        query(&table, "SELECT symbol FROM ticks ORDER BY symbol").await,
        symbols
    );
}

/// Every row of a table's checkpoint at `version` as JSON (null fields left out), sorted.
async fn checkpoint_rows(table_dir: &Path, version: u64) -> Vec<String> {
    let file = table_dir.join(format!("_delta_log/{version:020}.checkpoint.parquet"));
    let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
        w.write(&batch.unwrap()).unwrap();
        w.finish().unwrap();
        out.extend(
            String::from_utf8(w.into_inner())
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Symbols of [`commit_pair`], two of them with characters a log path encodes.
const SYMBOLS: [&str; 4] = ["AAPL", "x y", "A/B", "MSFT"];

/// Commit `n` of a checkpoint test: a file of one of [`SYMBOLS`] and one of IBM, partition 0's
/// offset and one of partitions 1-3's. Returns the rows added.
async fn commit_pair(
    table: &mut TicksTable,
    table_dir: &Path,
    layout: &TableLayout,
    n: i64,
) -> u64 {
    let symbol = SYMBOLS[n as usize % SYMBOLS.len()];
    let files = [
        write_file(
            table_dir,
            layout,
            symbol,
            0,
            n * 10,
            3,
            &format!("a-{n}.parquet"),
        ),
        write_file(
            table_dir,
            layout,
            "IBM",
            1,
            n * 10,
            2,
            &format!("b-{n}.parquet"),
        ),
    ];
    let txns = [
        AppTxn {
            app_id: app_id("ticks", 0),
            version: n * 10 + 2,
        },
        AppTxn {
            app_id: app_id("ticks", (n % 3) as i32 + 1),
            version: n,
        },
    ];
    table.commit(&files, &txns).await.unwrap();
    5
}

/// Commits a `remove` of every active file whose path `which` picks (as a rewrite would),
/// through deltalake; returns how many.
async fn remove_files(table: &mut TicksTable, which: impl Fn(&str) -> bool) -> usize {
    use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
    let t = table.loaded().await.unwrap().clone();
    let state = t.snapshot().unwrap();
    let removes: Vec<_> = state
        .log_data()
        .iter()
        .filter(|f| which(&f.path()))
        .map(|f| deltalake::kernel::Action::Remove(f.remove_action(true)))
        .collect();
    let n = removes.len();
    CommitBuilder::from(CommitProperties::default())
        .with_actions(removes)
        .build(
            Some(state),
            t.log_store(),
            deltalake::protocol::DeltaOperation::Delete { predicate: None },
        )
        .await
        .unwrap();
    n
}

/// A temporary folder with a lake folder `lake/` (not made yet), its ticks table's URL and the
/// symbol layout.
fn lake_dir() -> (tempfile::TempDir, Url, TableLayout) {
    let dir = tempfile::tempdir().unwrap();
    let url = ticks_url(dir.path().join("lake").to_str().unwrap()).unwrap();
    (dir, url, by_symbol())
}

/// A streamed checkpoint (the previous one plus the commits since; here the second of a chain
/// from the new table's checkpoint) holds exactly the rows the kernel's full replay writes for
/// the same version: files added, files removed (`remove`s), a path added again, `txn`s moved
/// on, symbols whose paths need encoding. A reader opening the table from it sees every row
/// once.
#[tokio::test]
async fn a_streamed_checkpoint_holds_what_the_kernels_replay_holds() {
    let (dir, url, layout) = lake_dir();
    let mut table = TicksTable::open_or_create(&url, &layout).await.unwrap();
    let table_dir = dir.path().join("lake/ticks");
    let mut rows = 0;
    for n in 0..10 {
        rows += commit_pair(&mut table, &table_dir, &layout, n).await;
    }
    // The new table's own checkpoint (version 0, by the kernel) is the first one streamed from.
    assert!(
        table_dir
            .join("_delta_log/00000000000000000000.checkpoint.parquet")
            .is_file()
    );
    let written = table.checkpoint().await.unwrap();
    assert!(
        matches!(written, checkpoint::Written::Streamed { from: 0, .. }),
        "{written:?}"
    );
    let first = table.version();
    for n in 10..20 {
        rows += commit_pair(&mut table, &table_dir, &layout, n).await;
    }
    // Three files removed (as a rewrite would; two of them in the first checkpoint), then one
    // of them added again under its path.
    let removed = ["/a-2.parquet", "/b-3.parquet", "/b-13.parquet"];
    let re_added = write_file(&table_dir, &layout, SYMBOLS[2], 0, 20, 3, "a-2.parquet");
    let n = remove_files(&mut table, |p| removed.iter().any(|r| p.ends_with(r))).await;
    assert_eq!(n, 3);
    table.refresh().await.unwrap();
    table.commit(&[re_added], &[]).await.unwrap();
    rows -= 4;
    for n in 20..30 {
        rows += commit_pair(&mut table, &table_dir, &layout, n).await;
    }
    let last = table.version();

    let reference = dir.path().join("reference");
    copy_dir(&table_dir, &reference);
    let written = table.checkpoint().await.unwrap();
    let checkpoint::Written::Streamed {
        from, add_files, ..
    } = written
    else {
        panic!("not streamed: {written:?}");
    };
    assert_eq!(from, first);
    // The hint names it with its size.
    let hint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(table_dir.join("_delta_log/_last_checkpoint")).unwrap(),
    )
    .unwrap();
    let file = table_dir.join(format!("_delta_log/{last:020}.checkpoint.parquet"));
    assert_eq!(hint["version"], last);
    assert_eq!(hint["sizeInBytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(add_files, 2 * 30 - 2);
    let copy = TicksTable::open_or_create(&Url::from_directory_path(&reference).unwrap(), &layout)
        .await
        .unwrap();
    assert_eq!(copy.version(), last);
    checkpoint::kernel(&copy.table().log_store(), "reference", last)
        .await
        .unwrap();
    let (ours, kernels) = (
        checkpoint_rows(&table_dir, last).await,
        checkpoint_rows(&reference, last).await,
    );
    assert!(ours.iter().any(|r| r.contains("\"remove\"")), "{ours:#?}");
    assert!(
        ours.iter().any(|r| r.contains("symbol=x%2520y/")),
        "{ours:#?}"
    );
    assert_eq!(ours, kernels);

    // A reader loads the table from the streamed checkpoint alone.
    for v in first + 1..=last {
        std::fs::remove_file(table_dir.join(format!("_delta_log/{v:020}.json"))).unwrap();
    }
    let reader = TicksTable::open_or_create(&url, &layout).await.unwrap();
    assert_eq!(reader.version(), last);
    assert_eq!(
        query(
            &reader,
            "SELECT count(*), count(DISTINCT symbol) FROM ticks"
        )
        .await,
        [format!("{rows}|5")]
    );
    assert_eq!(
        reader.txn_version(&app_id("ticks", 0)).await.unwrap(),
        Some(29 * 10 + 2)
    );
}

/// Tombstones past their retention are left out of a streamed checkpoint, as the kernel does;
/// the kernel writes a checkpoint when there is none to extend.
#[tokio::test]
async fn a_streamed_checkpoint_drops_expired_tombstones() {
    let (dir, url, layout) = lake_dir();
    let mut table = TicksTable::open_or_create(&url, &layout).await.unwrap();
    let table_dir = dir.path().join("lake/ticks");
    let txn = |v| {
        [AppTxn {
            app_id: app_id("ticks", 0),
            version: v,
        }]
    };
    for n in 0..4 {
        let f = write_file(
            &table_dir,
            &layout,
            "AAPL",
            0,
            n * 10,
            3,
            &format!("{n}.parquet"),
        );
        table.commit(&[f], &txn(n * 10 + 2)).await.unwrap();
    }
    // Without a checkpoint to extend (the table's own one deleted), the kernel writes it.
    std::fs::remove_file(table_dir.join("_delta_log/00000000000000000000.checkpoint.parquet"))
        .unwrap();
    std::fs::remove_file(table_dir.join("_delta_log/_last_checkpoint")).unwrap();
    let first = table.checkpoint().await.unwrap();
    assert_eq!(
        first,
        checkpoint::Written::Kernel("no checkpoint yet".into())
    );
    assert_eq!(
        table.checkpoint().await.unwrap(),
        checkpoint::Written::Present(table.version())
    );
    assert_eq!(
        remove_files(&mut table, |p| !p.ends_with("3.parquet")).await,
        3
    );
    table.refresh().await.unwrap();
    let v = table.version();
    let log_store = table.table().log_store();
    let written = checkpoint::write(&log_store, "t", v, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(
        matches!(written, checkpoint::Written::Streamed { add_files: 1, .. }),
        "{written:?}"
    );
    let rows = checkpoint_rows(&table_dir, v).await;
    assert!(!rows.iter().any(|r| r.contains("\"remove\"")), "{rows:#?}");
    assert_eq!(rows.iter().filter(|r| r.contains("\"add\"")).count(), 1);
}

/// A writer's handle holds no file list, however many commits it makes: its memory does not
/// grow with the table (issue 16's soak). Readers of the handle still get its version.
#[tokio::test]
async fn a_writer_holds_no_file_list() {
    let dir = tempfile::tempdir().unwrap();
    let url = table_url(&dir);
    let layout = by_symbol();
    let (mut table, _) = TicksTable::open_for_writing(&url, Some(&layout))
        .await
        .unwrap();
    let table_dir = dir.path().join("ticks");
    let mut rows = 0;
    for n in 0..5 {
        rows += commit_pair(&mut table, &table_dir, &layout, n).await;
        assert!(table.table().state.is_none(), "after commit {n}");
    }
    table.refresh().await.unwrap();
    assert!(table.table().state.is_none());
    assert_eq!(
        table.txn_version(&app_id("ticks", 0)).await.unwrap(),
        Some(42)
    );
    assert_eq!(
        query(&table, "SELECT count(*) FROM ticks").await,
        [rows.to_string()]
    );
    // Opened again on the existing table: from its metadata alone, at its latest version.
    let (again, found) = TicksTable::open_for_writing(&url, None).await.unwrap();
    assert!(again.table().state.is_none());
    assert_eq!((again.version(), found), (table.version(), layout));
    assert_eq!(
        again.txn_version(&app_id("ticks", 0)).await.unwrap(),
        Some(42)
    );
    let other = TableLayout {
        partition_by: vec![PartitionKey::Year, PartitionKey::Symbol],
    };
    let refused = TicksTable::open_for_writing(&url, Some(&other)).await;
    assert!(
        matches!(refused, Err(LakeError::TableMismatch { .. })),
        "{refused:?}"
    );
}
