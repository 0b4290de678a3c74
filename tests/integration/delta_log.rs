//! An independent reader of the ticks table's `_delta_log` (tests/py/delta_log_replay.py: plain
//! Python and pyarrow, not the deltalake package) agrees with stocklake on a table with a
//! checkpoint (more than 100 commits, `delta.checkpointInterval=100`: version 99's), with
//! removes before and after the checkpoint (two compactions), and with the JSON commits before
//! the checkpoint deleted as log clean-up does: the same version, active rows, per-symbol counts
//! and sums, Kafka offsets counted once, and the same `txn` version per Kafka partition.
//! A second test does the same on a lake written by `stocklake consume` (with a reject), against
//! the CSV and Kafka's offsets too. stocklake's side is both the Delta provider
//! (`lake::delta::provider`) and `stocklake sql`.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde_json::Value;
use stocklake::lake::TableLayout;
use stocklake::lake::delta::{TicksTable, app_id};

use crate::harness::delta::{Chunk, commit, open, query, tick_at};
use crate::harness::{python, repo, rt, stderr, stdout};

const SYMBOLS: [&str; 3] = ["AAPL", "IBM", "MSFT"];

/// What the commits wrote, per symbol: rows, sum of volume (= offsets), sum of close, min and
/// max offset.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expected {
    rows: i64,
    sum_volume: i64,
    sum_close: f64,
    min_offset: i64,
    max_offset: i64,
}

/// Commits `n` flushes: flush i reads Kafka partition i % 3, two files (two symbols).
async fn flushes(
    t: &mut TicksTable,
    lake: &std::path::Path,
    layout: &TableLayout,
    next: &mut [i64; 3],
    want: &mut BTreeMap<&'static str, Expected>,
    n: usize,
) {
    for _ in 0..n {
        let i = t.version() as usize;
        let p = i % 3;
        let chunks = [
            Chunk {
                symbol: SYMBOLS[i % 3],
                partition: p as i32,
                first: next[p],
                rows: 3,
            },
            Chunk {
                symbol: SYMBOLS[(i + 1) % 3],
                partition: p as i32,
                first: next[p] + 3,
                rows: 2,
            },
        ];
        for c in &chunks {
            let e = want.entry(c.symbol).or_insert(Expected {
                min_offset: i64::MAX,
                max_offset: i64::MIN,
                ..Default::default()
            });
            for o in c.first..c.first + c.rows {
                e.rows += 1;
                e.sum_volume += tick_at(c.symbol, o).volume.unwrap();
                e.sum_close += tick_at(c.symbol, o).close.unwrap();
                e.min_offset = e.min_offset.min(o);
                e.max_offset = e.max_offset.max(o);
            }
        }
        next[p] += 5;
        commit(t, lake, layout, "ticks", &chunks).await;
    }
}

/// Bin-packs the table's small files with deltalake's OPTIMIZE: `remove`s of every old file.
async fn compact(t: &mut TicksTable) -> u64 {
    let (_, metrics) = t
        .loaded()
        .await
        .unwrap()
        .clone()
        .optimize()
        .with_target_size(NonZeroU64::new(64 << 20).unwrap())
        .await
        .unwrap();
    assert!(metrics.num_files_removed > 3, "{metrics:?}");
    t.refresh().await.unwrap();
    metrics.num_files_removed
}

/// `stocklake sql --format csv` on the lake: each row as `a|b|…` (no header).
fn stocklake_sql(lake: &std::path::Path, sql: &str) -> Vec<String> {
    let out = crate::harness::cmd(&["sql", "--format", "csv", "-q", "--lake"])
        .arg(lake)
        .args(["-c", sql])
        .output_ok();
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.replace(',', "|"))
        .collect()
}

#[test]
fn an_independent_replay_of_the_delta_log_agrees_with_stocklake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    let layout = TableLayout::default();
    let mut want: BTreeMap<&'static str, Expected> = BTreeMap::new();
    let mut next = [0i64; 3];
    let (version, removed) = rt().block_on(async {
        let mut t = open(lake, &layout).await;
        flushes(&mut t, lake, &layout, &mut next, &mut want, 60).await;
        let mut removed = compact(&mut t).await;
        // Past 100 commits: the 100th writes a checkpoint.
        flushes(&mut t, lake, &layout, &mut next, &mut want, 50).await;
        assert!(t.version() > 100);
        removed += compact(&mut t).await;
        flushes(&mut t, lake, &layout, &mut next, &mut want, 3).await;
        (t.version(), removed)
    });
    let log = lake.join("ticks/_delta_log");
    let last: Value =
        serde_json::from_slice(&std::fs::read(log.join("_last_checkpoint")).unwrap()).unwrap();
    let checkpoint = last["version"].as_u64().unwrap();
    // The 100th commit (version 99) writes the checkpoint.
    assert_eq!(checkpoint, 99, "{last}");
    // Log clean-up removes commits a checkpoint covers: every reader must start from it.
    for v in 0..checkpoint {
        std::fs::remove_file(log.join(format!("{v:020}.json"))).unwrap();
    }

    let out = python(&[
        repo().join("tests/py/delta_log_replay.py"),
        lake.join("ticks"),
    ])
    .output();
    assert!(out.status.success(), "replay: {}", stderr(&out));
    let replay: Value = serde_json::from_str(&stdout(&out)).unwrap();

    // The replay read the checkpoint and the commits after it, removes included.
    assert_eq!(replay["version"].as_u64(), Some(version), "{replay}");
    assert_eq!(replay["checkpoint"].as_u64(), Some(checkpoint));
    let commits: Vec<u64> = replay["commits_read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(commits, (checkpoint + 1..=version).collect::<Vec<_>>());
    assert!(
        replay["removes_applied"].as_u64().unwrap() > 0,
        "the second compaction's removes are in JSON commits: {replay}"
    );
    assert_eq!(replay["partition_columns"], serde_json::json!(["symbol"]));

    // stocklake's reading of the same table: a fresh handle from the log.
    let (ours, txns) = rt().block_on(async {
        let t = open(lake, &layout).await;
        assert_eq!(t.version(), version);
        let rows = query(
            &t,
            "SELECT symbol, count(*), sum(volume), sum(close), min(kafka_offset), \
             max(kafka_offset), count(DISTINCT kafka_partition * 1000000000 + kafka_offset) \
             FROM ticks GROUP BY symbol ORDER BY symbol",
        )
        .await;
        let mut txns = BTreeMap::new();
        for p in 0..3 {
            let id = app_id("ticks", p);
            txns.insert(id.clone(), t.txn_version(&id).await.unwrap());
        }
        (rows, txns)
    });

    let total: i64 = want.values().map(|e| e.rows).sum();
    assert_eq!(replay["rows"].as_i64(), Some(total), "{replay}");
    assert_eq!(ours.len(), SYMBOLS.len(), "{ours:?}");
    // And the local engine, through the command line.
    let sql = stocklake_sql(
        lake,
        "SELECT symbol, count(*), sum(volume), sum(close), min(kafka_offset), \
         max(kafka_offset), count(DISTINCT kafka_partition * 1000000000 + kafka_offset) \
         FROM stocklake.ticks GROUP BY symbol ORDER BY symbol",
    );
    assert_eq!(sql.len(), SYMBOLS.len(), "{sql:?}");
    for line in ours.iter().chain(&sql) {
        let cells: Vec<&str> = line.split('|').collect();
        let symbol = cells[0];
        let e = &want[symbol];
        let r = &replay["by_symbol"][symbol];
        // stocklake == what was written.
        assert_eq!(cells[1].parse::<i64>().unwrap(), e.rows, "{line}");
        assert_eq!(cells[2].parse::<i64>().unwrap(), e.sum_volume, "{line}");
        assert!(
            (cells[3].parse::<f64>().unwrap() - e.sum_close).abs() < 1e-6,
            "{line}"
        );
        assert_eq!(cells[4].parse::<i64>().unwrap(), e.min_offset, "{line}");
        assert_eq!(cells[5].parse::<i64>().unwrap(), e.max_offset, "{line}");
        assert_eq!(cells[6].parse::<i64>().unwrap(), e.rows, "each offset once");
        // The independent replay == stocklake.
        assert_eq!(r["rows"].as_i64(), Some(e.rows), "{symbol}: {r}");
        assert_eq!(
            r["sum_volume"].as_i64(),
            Some(e.sum_volume),
            "{symbol}: {r}"
        );
        assert!((r["sum_close"].as_f64().unwrap() - e.sum_close).abs() < 1e-6);
        assert_eq!(r["min_offset"].as_i64(), Some(e.min_offset));
        assert_eq!(r["max_offset"].as_i64(), Some(e.max_offset));
        assert_eq!(
            r["distinct_offsets"].as_i64(),
            Some(e.rows),
            "{symbol}: {r}"
        );
    }

    // The txn version of each Kafka partition: the last offset written, in all three views.
    for (p, n) in next.iter().enumerate() {
        let id = app_id("ticks", p as i32);
        assert_eq!(txns[&id], Some(n - 1), "{id}");
        assert_eq!(replay["txn"][&id].as_i64(), Some(n - 1), "{id}: {replay}");
    }
    assert_eq!(replay["txn"].as_object().unwrap().len(), 3, "{replay}");
    eprintln!(
        "replayed version {version} from checkpoint {checkpoint}: {} active files, {removed} files \
         compacted away, {total} rows",
        replay["active_files"]
    );
}

/// The same independent replay on a lake written by `stocklake consume` (small flushes, so more
/// than 100 commits and a checkpoint; a reject; two compactions, one between the two consume
/// runs and one after): it agrees with the CSV, with Kafka's offsets and with stocklake.
#[test]
fn the_replay_of_a_consumed_lake_agrees_with_the_csv_kafka_and_stocklake() {
    use crate::harness::kafka::{
        broker_with_topic, consume_until_idle, partition_sizes, produce_file, produce_raw,
    };
    use crate::harness::{sample_csv, sample_ticks};

    let (broker, topic) = broker_with_topic(3);
    let bootstrap = broker.bootstrap_servers();
    // One bad event, first, so each partition's last offset is a tick.
    produce_raw(
        bootstrap,
        &topic,
        &[(b"AAPL".to_vec(), b"not json".to_vec())],
    );
    let out = produce_file(&sample_csv(), bootstrap, &topic)
        .arg("-q")
        .output();
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    let layout = TableLayout::default();

    let first = consume_until_idle(
        bootstrap,
        &topic,
        lake,
        &["--flush-rows", "100", "--max-events", "6000", "-q"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let mut removed = rt().block_on(async {
        let mut t = open(lake, &layout).await;
        compact(&mut t).await
    });
    let rest = consume_until_idle(bootstrap, &topic, lake, &["--flush-rows", "100", "-q"]);
    assert!(rest.status.success(), "{}", stderr(&rest));
    let version = rt().block_on(async {
        let mut t = open(lake, &layout).await;
        removed += compact(&mut t).await;
        t.version()
    });
    assert!(version > 110, "{version} versions: too few flushes");

    let log = lake.join("ticks/_delta_log");
    let last: Value =
        serde_json::from_slice(&std::fs::read(log.join("_last_checkpoint")).unwrap()).unwrap();
    let checkpoint = last["version"].as_u64().unwrap();
    assert!((99..version).contains(&checkpoint), "{last}");
    for v in 0..checkpoint {
        let _ = std::fs::remove_file(log.join(format!("{v:020}.json")));
    }
    let replay_of = |table: &str| -> Value {
        let out = python(&[
            repo().join("tests/py/delta_log_replay.py"),
            lake.join(table),
        ])
        .output();
        assert!(out.status.success(), "replay of {table}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let replay = replay_of("ticks");
    assert_eq!(replay["version"].as_u64(), Some(version), "{replay}");
    assert_eq!(replay["checkpoint"].as_u64(), Some(checkpoint));
    assert!(replay["removes_applied"].as_u64().unwrap() > 0, "{replay}");

    // The CSV's ticks, per symbol.
    let mut want: BTreeMap<String, Expected> = BTreeMap::new();
    for t in sample_ticks() {
        let e = want.entry(t.symbol.clone()).or_default();
        e.rows += 1;
        e.sum_volume += t.volume.unwrap_or(0);
        e.sum_close += t.close.unwrap_or(0.0);
    }
    let (ours, txns) = rt().block_on(async {
        let t = open(lake, &layout).await;
        assert_eq!(t.version(), version);
        let rows = query(
            &t,
            "SELECT symbol, count(*), sum(volume), sum(close), \
             count(DISTINCT kafka_partition * 1000000000 + kafka_offset) \
             FROM ticks GROUP BY symbol ORDER BY symbol",
        )
        .await;
        let mut txns = BTreeMap::new();
        for p in 0..3 {
            let id = app_id(&topic, p);
            txns.insert(id.clone(), t.txn_version(&id).await.unwrap());
        }
        (rows, txns)
    });
    assert_eq!(ours.len(), want.len(), "{ours:?}");
    let sql = stocklake_sql(
        lake,
        "SELECT symbol, count(*), sum(volume), sum(close), \
         count(DISTINCT kafka_partition * 1000000000 + kafka_offset) \
         FROM stocklake.ticks GROUP BY symbol ORDER BY symbol",
    );
    assert_eq!(sql.len(), want.len(), "{sql:?}");
    for line in ours.iter().chain(&sql) {
        let cells: Vec<&str> = line.split('|').collect();
        let (symbol, e) = (cells[0], &want[cells[0]]);
        let r = &replay["by_symbol"][symbol];
        assert_eq!(cells[1].parse::<i64>().unwrap(), e.rows, "{line}");
        assert_eq!(cells[2].parse::<i64>().unwrap(), e.sum_volume, "{line}");
        let close = cells[3].parse::<f64>().unwrap();
        assert!(
            (close - e.sum_close).abs() <= 1e-9 * e.sum_close.abs(),
            "{line}"
        );
        assert_eq!(
            cells[4].parse::<i64>().unwrap(),
            e.rows,
            "each offset once: {line}"
        );
        assert_eq!(r["rows"].as_i64(), Some(e.rows), "{symbol}: {r}");
        assert_eq!(
            r["sum_volume"].as_i64(),
            Some(e.sum_volume),
            "{symbol}: {r}"
        );
        let rc = r["sum_close"].as_f64().unwrap();
        assert!(
            (rc - e.sum_close).abs() <= 1e-9 * e.sum_close.abs(),
            "{symbol}: {r}"
        );
        assert_eq!(
            r["distinct_offsets"].as_i64(),
            Some(e.rows),
            "{symbol}: {r}"
        );
    }
    // Each partition's txn version is its last offset in Kafka, in both readings.
    let sizes = partition_sizes(bootstrap, &topic, 3);
    for p in 0..3 {
        let id = app_id(&topic, p);
        assert_eq!(txns[&id], Some(sizes[&p] - 1), "{id}");
        assert_eq!(
            replay["txn"][&id].as_i64(),
            Some(sizes[&p] - 1),
            "{id}: {replay}"
        );
    }
    // The rejects table replays too: the one bad event.
    let rejects = replay_of("rejects");
    assert_eq!(rejects["rows"].as_i64(), Some(1), "{rejects}");
    eprintln!(
        "consumed lake: version {version}, checkpoint {checkpoint}, {} active files, {removed} \
         compacted away, {} rows",
        replay["active_files"], replay["rows"]
    );
}
