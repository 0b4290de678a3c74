//! `stocklake lake upgrade` on the lake written by stocklake 0.1 in tests/fixtures/lake-0.1
//! (two Kafka partitions, the hostile symbol `A/B x`, a reject, partition 1 left mid-batch with
//! a leftover data file, rejects file and staging file): rows, offsets and rejects read back
//! through the Delta log, re-runs after every point a run can die at, and a consumer that
//! continues after the carried-over offsets.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;
use stocklake::kafka::{BrokerOptions, EmbeddedBroker};
use stocklake::lake::delta::{TicksTable, app_id, rejects_url, ticks_url};
use stocklake::lake::upgrade::{Phase, UPGRADE_APP_ID, upgrade_until};
use stocklake::lake::{PartitionKey, TableLayout};
use stocklake::tick::{Tick, parse_iso_millis};

use crate::harness::kafka::{consume_until_idle, produce_file, produce_ticks};
use crate::harness::lake::read_parquet;
use crate::harness::{cmd, fixture, rt, stderr};

/// The fixture's layout (its `_stocklake/table.json`).
fn layout() -> TableLayout {
    TableLayout {
        partition_by: vec![
            PartitionKey::Symbol,
            PartitionKey::Year,
            PartitionKey::Month,
        ],
    }
}

/// Every file below `dir` (none when it does not exist), sorted: `#` staging files too.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A copy of the fixture lake in a temporary folder (file names with `%` and `#` included).
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("lake-0.1/lake");
    let lake = dir.path().join("lake");
    for file in files_under(&src) {
        let to = lake.join(file.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    (dir, lake)
}

/// Per symbol: rows, sum(close) as text, sum(volume); and every (partition, offset).
#[derive(Debug, Default, PartialEq)]
struct Expected {
    per_symbol: BTreeMap<String, (u64, String, i64)>,
    offsets: Vec<(i32, i64)>,
}

/// What the fixture's committed files hold, read from the Parquet files themselves: every data
/// file under ticks/ but those of the pending batch its record names.
fn expected_from_fixture() -> Expected {
    let lake = fixture("lake-0.1/lake");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lake.join("_stocklake/offsets/ticks/1.json")).unwrap(),
    )
    .unwrap();
    let pending: Vec<String> = record["pending"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    let mut sums: BTreeMap<String, (u64, f64, i64)> = BTreeMap::new();
    let mut offsets = Vec::new();
    let table = lake.join("ticks");
    for file in files_under(&table) {
        let rel = file
            .strip_prefix(&lake)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if !rel.ends_with(".parquet") || pending.contains(&rel) {
            continue;
        }
        let in_table = file.strip_prefix(&table).unwrap().to_str().unwrap();
        let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
        for row in read_parquet(bytes, in_table, &file) {
            let s = sums.entry(row.tick.symbol.clone()).or_default();
            s.0 += 1;
            s.1 += row.tick.close.unwrap();
            s.2 += row.tick.volume.unwrap();
            offsets.push((row.partition, row.offset));
        }
    }
    offsets.sort_unstable();
    Expected {
        per_symbol: sums
            .into_iter()
            .map(|(k, (n, c, v))| (k, (n, format!("{c:.1}"), v)))
            .collect(),
        offsets,
    }
}

/// The rows of `sql` over a DataFusion table `t` registered from a Delta table, cells joined
/// with `|`.
async fn query(
    provider: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    sql: &str,
) -> Vec<String> {
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    stocklake::print::rows_as_text(&batches).unwrap()
}

/// The ticks table of `lake` as its Delta log says (latest version).
async fn ticks(lake: &Path) -> TicksTable {
    TicksTable::open_or_create(&ticks_url(lake.to_str().unwrap()).unwrap(), &layout())
        .await
        .unwrap()
}

async fn ticks_query(lake: &Path, sql: &str) -> Vec<String> {
    let t = ticks(lake).await;
    query(stocklake::lake::delta::provider(&t).await.unwrap(), sql).await
}

async fn rejects_query(lake: &Path, sql: &str) -> Vec<String> {
    let t = TicksTable::open_or_create_rejects(&rejects_url(lake.to_str().unwrap()).unwrap())
        .await
        .unwrap();
    query(t.table().table_provider().await.unwrap(), sql).await
}

/// Every file of the lake and its bytes.
fn snapshot(lake: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(lake)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

fn upgrade_cmd(lake: &Path) -> std::process::Output {
    cmd(&["lake", "upgrade", "--lake"]).arg(lake).output()
}

/// Checks an upgraded copy of the fixture: rows and sums per symbol (the leftover excluded),
/// offsets exactly once, the hostile symbol, `txn` versions, the rejects row, and that nothing
/// of the 0.1 format is left.
fn assert_upgraded(lake: &Path, want: &Expected) {
    rt().block_on(async {
        let per_symbol = ticks_query(
            lake,
            "SELECT symbol, count(*), sum(close), sum(volume) FROM t GROUP BY symbol ORDER BY symbol",
        )
        .await;
        let want_rows: Vec<String> = want
            .per_symbol
            .iter()
            .map(|(s, (n, c, v))| format!("{s}|{n}|{c}|{v}"))
            .collect();
        assert_eq!(per_symbol, want_rows);
        // The figures of the fixture's README.
        assert_eq!(per_symbol, ["A/B x|120|4245.0|247140", "MSFT|120|3045.0|127140"]);
        let offsets = ticks_query(
            lake,
            "SELECT kafka_partition, kafka_offset FROM t ORDER BY 1, 2",
        )
        .await;
        let want_offsets: Vec<String> = want.offsets.iter().map(|(p, o)| format!("{p}|{o}")).collect();
        assert_eq!(offsets, want_offsets, "every committed offset exactly once");
        // The hostile symbol reads back exactly, as a filter value too; months are canonical.
        assert_eq!(
            ticks_query(
                lake,
                "SELECT count(*), min(month), max(month) FROM t WHERE symbol = 'A/B x'"
            )
            .await,
            ["120|3|4"]
        );

        let t = ticks(lake).await;
        assert_eq!(t.version(), 1, "created, then ONE upgrade commit");
        assert_eq!(t.txn_version(&app_id("ticks", 0)).await.unwrap(), Some(119));
        assert_eq!(t.txn_version(&app_id("ticks", 1)).await.unwrap(), Some(120));
        assert_eq!(t.txn_version(UPGRADE_APP_ID).await.unwrap(), Some(1));
        assert_eq!(
            t.table().snapshot().unwrap().log_data().num_files(),
            6,
            "the six committed files, not the rolled-back copy"
        );

        let rejects = rejects_query(
            lake,
            "SELECT topic, \"partition\", \"offset\", reason, value_bytes, length(value_text) FROM t",
        )
        .await;
        assert_eq!(
            rejects,
            ["ticks|1|11|oversized: 188 bytes, the limit is 170|188|188"]
        );
    });
    let left: Vec<String> = files_under(lake)
        .iter()
        .map(|f| f.strip_prefix(lake).unwrap().display().to_string())
        .filter(|f| {
            f.starts_with("_stocklake")
                || f.starts_with("_rejects")
                || f.contains('#')
                || f.contains("00000000000000000121")
        })
        .collect();
    assert!(left.is_empty(), "left of the 0.1 format: {left:?}");
    for gone in ["_stocklake", "_rejects"] {
        assert!(!lake.join(gone).exists(), "{gone}/ is removed");
    }
}

#[test]
fn upgrade_converts_the_0_1_fixture_and_a_second_run_changes_nothing() {
    let want = expected_from_fixture();
    assert_eq!(want.offsets.len(), 240);
    let (_dir, lake) = fixture_copy();
    assert!(
        lake.join(
            "ticks/symbol=A%2FB%20x/year=2013/month=04/part-ticks-1-00000000000000000121.parquet#1"
        )
        .exists(),
        "the fixture's staging leftover was copied"
    );

    let out = upgrade_cmd(&lake);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("rolled back the uncommitted batch 121..=130 of ticks/1 (2 objects)"),
        "{err}"
    );
    assert!(
        err.contains("6 data files (240 rows") && err.contains("1 rejects"),
        "{err}"
    );
    assert_upgraded(&lake, &want);

    // A second run: a clear message, exit 0, not a byte changed.
    let before = snapshot(&lake);
    let out = upgrade_cmd(&lake);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("is a Delta lake already"), "{err}");
    assert!(snapshot(&lake) == before, "a second run changed the lake");
}

#[test]
fn an_upgrade_that_died_anywhere_is_finished_by_running_it_again() {
    let want = expected_from_fixture();
    for phase in [Phase::RolledBack, Phase::Rejects, Phase::Ticks] {
        let (_dir, lake) = fixture_copy();
        let report = rt()
            .block_on(upgrade_until(lake.to_str().unwrap(), phase))
            .unwrap();
        assert_eq!(report.rolled_back.len(), 1, "{phase:?}");
        assert!(lake.join("_stocklake/table.json").exists(), "{phase:?}");
        let out = upgrade_cmd(&lake);
        let err = stderr(&out);
        assert!(out.status.success(), "{phase:?}: {err}");
        if phase == Phase::Ticks {
            assert!(
                err.contains("an earlier run had committed the upgrade"),
                "{err}"
            );
        }
        assert_upgraded(&lake, &want);
    }

    // Died during the clean-up: the layout file (removed last) and some records are still there.
    let (_dir, lake) = fixture_copy();
    let out = upgrade_cmd(&lake);
    assert!(out.status.success(), "{}", stderr(&out));
    let src = fixture("lake-0.1/lake");
    for rel in [
        "_stocklake/table.json",
        "_stocklake/offsets/ticks/0.json",
        "_rejects/ticks/part-ticks-1-00000000000000000000.jsonl",
    ] {
        std::fs::create_dir_all(lake.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(src.join(rel), lake.join(rel)).unwrap();
    }
    let out = upgrade_cmd(&lake);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("an earlier run had committed the upgrade"),
        "{err}"
    );
    assert_upgraded(&lake, &want);
}

#[test]
fn a_record_ahead_of_the_upgraded_table_is_refused() {
    // A 0.1 consumer that wrote after the upgrade's commit (before the clean-up): its rows are
    // not in the table, and the upgrade says so instead of removing its record.
    let (_dir, lake) = fixture_copy();
    rt().block_on(upgrade_until(lake.to_str().unwrap(), Phase::Ticks))
        .unwrap();
    std::fs::write(
        lake.join("_stocklake/offsets/ticks/0.json"),
        r#"{"next_offset": 150}"#,
    )
    .unwrap();
    let out = upgrade_cmd(&lake);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("ticks/0") && err.contains("149") && err.contains("119"),
        "{err}"
    );
    assert!(lake.join("_stocklake/offsets/ticks/0.json").exists());
}

#[test]
fn upgrade_refuses_what_is_not_a_lake_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = upgrade_cmd(&dir.path().join("missing"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such folder"), "{}", stderr(&out));
    assert!(!dir.path().join("missing").exists());
    let out = upgrade_cmd(dir.path());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no lake written by stocklake 0.1 here"),
        "{}",
        stderr(&out)
    );
    assert!(files_under(dir.path()).is_empty());
}

/// Hourly ticks of `symbol` from `hour` (hours since 2013-03-29T00:00Z), as the fixture's CSV
/// files hold them.
fn more_ticks(symbol: &str, hours: std::ops::Range<i64>, si: f64) -> Vec<Tick> {
    let start = parse_iso_millis("2013-03-29T00:00:00Z").unwrap();
    hours
        .map(|h| {
            let base = 10.0 * si + h as f64 / 4.0;
            Tick {
                symbol: symbol.into(),
                event_time: start + h * 3_600_000,
                open: Some(base),
                high: Some(base + 1.0),
                low: Some(base - 1.0),
                close: Some(base + 0.5),
                adj_close: Some(base),
                volume: Some(1000 * si as i64 + h),
            }
        })
        .collect()
}

#[test]
fn a_consumer_continues_an_upgraded_lake_after_its_offsets() {
    let (_dir, lake) = fixture_copy();
    let out = upgrade_cmd(&lake);
    assert!(out.status.success(), "{}", stderr(&out));

    // The topic the fixture was consumed from, again: the same events at the same offsets (the
    // producer keys by symbol: MSFT to partition 0, `A/B x` and the poison event to 1), then
    // 10 new events per partition; partition 1's are offsets 121..=130, the rolled-back batch's.
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![("ticks".into(), 2)],
        ..Default::default()
    })
    .unwrap();
    let boot = broker.bootstrap_servers();
    for run in ["run1.csv", "run2.csv"] {
        let out = produce_file(&fixture(&format!("lake-0.1/{run}")), boot, "ticks").output();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut new = more_ticks("MSFT", 120..130, 1.0);
    new.extend(more_ticks("A/B x", 120..130, 2.0));
    assert_eq!(produce_ticks(boot, "ticks", new), 20);
    let sizes = crate::harness::kafka::partition_sizes(boot, "ticks", 2);
    assert_eq!(
        sizes,
        HashMap::from([(0, 130), (1, 131)]),
        "topic as the fixture's"
    );

    let out = consume_until_idle(boot, "ticks", &lake, &["--max-event-bytes", "170"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("committed 20 rows"),
        "only the new events: {err}"
    );

    rt().block_on(async {
        // Every offset of the topic exactly once, but the poison event (a reject).
        let offsets = ticks_query(
            lake.as_path(),
            "SELECT kafka_partition, kafka_offset FROM t ORDER BY 1, 2",
        )
        .await;
        let want: Vec<String> = (0..130)
            .map(|o| format!("0|{o}"))
            .chain((0..131).filter(|o| *o != 11).map(|o| format!("1|{o}")))
            .collect();
        assert_eq!(offsets, want);
        assert_eq!(
            ticks_query(
                lake.as_path(),
                "SELECT symbol, count(*) FROM t GROUP BY symbol ORDER BY symbol"
            )
            .await,
            ["A/B x|130", "MSFT|130"]
        );
        let t = ticks(&lake).await;
        assert_eq!(t.txn_version(&app_id("ticks", 0)).await.unwrap(), Some(129));
        assert_eq!(t.txn_version(&app_id("ticks", 1)).await.unwrap(), Some(130));
        assert_eq!(
            rejects_query(&lake, "SELECT \"partition\", \"offset\" FROM t").await,
            ["1|11"],
            "the poison event once"
        );
    });
}

#[test]
fn a_0_1_lake_holding_offsets_twice_is_refused_before_anything_changes() {
    // As a 0.1 zombie consumer leaves a lake: a second batch file over offsets another batch of
    // the same Kafka partition holds.
    let (_dir, lake) = fixture_copy();
    let dir = lake.join("ticks/symbol=MSFT/year=2013/month=03");
    std::fs::copy(
        dir.join("part-ticks-0-00000000000000000060.parquet"),
        dir.join("part-ticks-0-00000000000000000055.parquet"),
    )
    .unwrap();
    let before = snapshot(&lake);
    let out = upgrade_cmd(&lake);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("holds these offsets twice")
            && err.contains("ticks/0")
            && err.contains("part-ticks-0-00000000000000000055.parquet"),
        "{err}"
    );
    assert!(
        snapshot(&lake) == before,
        "a refused upgrade changed the lake"
    );
}

#[test]
fn help_of_lake_and_lake_upgrade() {
    use crate::harness::snapshot::{assert_snapshot, render};
    for (name, args) in [
        ("help-lake", &["lake", "--help"][..]),
        ("help-lake-upgrade", &["lake", "upgrade", "--help"][..]),
    ] {
        let out = cmd(args).output();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_snapshot(
            name,
            &render(&format!("stocklake {}", args.join(" ")), &out, &[]),
        );
    }
}

#[test]
fn upgrade_converts_a_0_1_lake_on_s3() {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::path::Path as Key;

    let moto = crate::harness::moto::Moto::start();
    let (status, body) = moto.request("PUT", "/old-lake", "");
    assert_eq!(status, 200, "create bucket: {body}");
    let rt = rt();
    let store = rt.block_on(async {
        stocklake::aws::s3_store(&moto.sdk_config().await, "old-lake").unwrap()
    });
    // The fixture as 0.1 wrote it to S3 (staging files are a local disk's only).
    let src = fixture("lake-0.1/lake");
    rt.block_on(async {
        for file in files_under(&src) {
            let rel = file.strip_prefix(&src).unwrap().to_str().unwrap();
            if rel.contains('#') {
                continue;
            }
            let key = Key::parse(format!("stock/lake/{rel}")).unwrap();
            store
                .put(&key, std::fs::read(&file).unwrap().into())
                .await
                .unwrap();
        }
    });

    let upgrade = |lake: &str| {
        cmd(&["lake", "upgrade", "--lake", lake])
            .envs(moto.env())
            .output()
    };
    let out = upgrade("s3://old-lake/stock/lake");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("rolled back the uncommitted batch 121..=130 of ticks/1")
            && err.contains("6 data files (240 rows"),
        "{err}"
    );

    // The log itself, read through S3: the upgrade's commit.
    let (keys, commit) = rt.block_on(async {
        let keys: Vec<String> = store
            .list(Some(&Key::from("stock/lake")))
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .unwrap();
        let commit = store
            .get(&Key::from(
                "stock/lake/ticks/_delta_log/00000000000000000001.json",
            ))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        (keys, String::from_utf8(commit.to_vec()).unwrap())
    });
    // Its checkpoint, streamed from the new table's own (version 0) through S3; readers below
    // load the table from it.
    for checkpoint in ["00000000000000000000", "00000000000000000001"] {
        let key = format!("stock/lake/ticks/_delta_log/{checkpoint}.checkpoint.parquet");
        assert!(keys.contains(&key), "{key}: {keys:?}");
    }
    let mut adds = Vec::new();
    let mut txns = BTreeMap::new();
    for line in commit.lines() {
        let action: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(add) = action.get("add") {
            // Delta paths are URI-encoded object names.
            let name =
                stocklake::lake::layout::percent_decode(add["path"].as_str().unwrap()).unwrap();
            assert!(
                keys.contains(&format!("stock/lake/ticks/{name}")),
                "{name} is an object of the lake: {keys:?}"
            );
            let stats: serde_json::Value =
                serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            // Statistics as the consumer writes them, for readers' file skipping.
            assert!(
                stats["minValues"]["event_time"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("2013-0"))
                    && stats["maxValues"]["kafka_offset"].is_i64()
                    && stats["nullCount"]["close"] == 0,
                "{stats}"
            );
            adds.push((
                name,
                add["partitionValues"]["symbol"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                add["partitionValues"]["month"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                stats["numRecords"].as_u64().unwrap(),
            ));
        }
        if let Some(txn) = action.get("txn") {
            txns.insert(
                txn["appId"].as_str().unwrap().to_string(),
                txn["version"].as_i64().unwrap(),
            );
        }
    }
    adds.sort();
    assert_eq!(adds.len(), 6, "{adds:?}");
    assert_eq!(adds.iter().map(|a| a.3).sum::<u64>(), 240);
    assert!(adds.iter().all(|a| !a.0.contains("00000000000000000121")));
    assert_eq!(
        (adds[0].0.as_str(), adds[0].1.as_str(), adds[0].2.as_str()),
        (
            "symbol=A%2FB%20x/year=2013/month=03/part-ticks-1-00000000000000000000.parquet",
            "A/B x",
            "3"
        )
    );
    assert_eq!(
        txns,
        BTreeMap::from([
            ("stocklake:ticks:0".to_string(), 119),
            ("stocklake:ticks:1".to_string(), 120),
            ("stocklake:upgrade".to_string(), 1),
        ])
    );
    let old: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("/_stocklake/") || k.contains("/_rejects/") || k.contains("121"))
        .collect();
    assert!(old.is_empty(), "left of the 0.1 format: {old:?}");
    assert!(
        keys.contains(&"stock/lake/rejects/part-upgrade-0.1.parquet".to_string()),
        "{keys:?}"
    );

    let out = upgrade("s3://old-lake/stock/lake");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a Delta lake already"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_consumer_refuses_a_0_1_lake_until_it_is_upgraded() {
    let (_dir, lake) = fixture_copy();
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![("ticks".into(), 2)],
        ..Default::default()
    })
    .unwrap();
    let boot = broker.bootstrap_servers();
    let out = produce_file(&fixture("lake-0.1/run1.csv"), boot, "ticks").output();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&lake);
    let out = consume_until_idle(boot, "ticks", &lake, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("written by stocklake 0.1") && err.contains("stocklake lake upgrade --lake"),
        "{err}"
    );
    assert!(
        snapshot(&lake) == before,
        "a refused consumer changed the lake"
    );
}
