//! `stocklake audit` and `stocklake status`: a lake written by a real consume run passes the
//! audit with every partition's offsets counted once; a duplicate, a gap and uncommitted rows
//! planted into the Delta log are each found and named (exit status 1); `status` reports the
//! table's version, rows and offsets, and with `--brokers` the lag of events not consumed yet;
//! both read an S3 lake (moto).

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use serde_json::Value;
use stocklake::lake::TableLayout;
use stocklake::lake::delta::{DataFile, TicksTable, partition_values};

use crate::harness::delta::{Chunk, commit, open, tick_at, upload_dir};
use crate::harness::kafka::{
    broker_with_topic, idle_consumer, partition_sizes, produce_raw, produce_ticks,
};
use crate::harness::lake::{delta_log, lake_offsets};
use crate::harness::moto::Moto;
use crate::harness::{cmd, rt, sample_ticks, stderr, stdout, unique};

/// `stocklake <command> --lake LAKE <extra>`.
fn run(command: &str, lake: &str, extra: &[&str]) -> Output {
    cmd(&[command, "--lake", lake]).args(extra).output()
}

/// `stocklake <command> --format json …`: the output and the report.
fn json(command: &str, lake: &str, extra: &[&str]) -> (Output, Value) {
    let out = run(command, lake, &[&["--format", "json"], extra].concat());
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out, report)
}

fn partition(report: &Value, p: i64) -> &Value {
    report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["partition"] == p)
        .unwrap_or_else(|| panic!("no partition {p} in {report:#}"))
}

/// The findings of a partition as (kind, first, last, in ticks, in rejects).
fn findings(report: &Value, p: i64) -> Vec<(String, i64, i64, i64, i64)> {
    partition(report, p)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["first"].as_i64().unwrap(),
                f["last"].as_i64().unwrap(),
                f["in_ticks"].as_i64().unwrap(),
                f["in_rejects"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Events the consumer rejects (not JSON), spread over the partitions by their keys.
fn poison(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("k{i}").into_bytes(),
                format!("not json {i}").into_bytes(),
            )
        })
        .collect()
}

/// The sample ticks and 6 poison events in a 3-partition topic, consumed by group `group`
/// into a new lake. Returns the per-partition sizes of the topic.
fn consumed(bootstrap: &str, topic: &str, group: &str, lake: &Path) -> HashMap<i32, i64> {
    produce_ticks(bootstrap, topic, sample_ticks());
    produce_raw(bootstrap, topic, &poison(6));
    let out = idle_consumer(bootstrap, topic, group, lake).output();
    assert!(out.status.success(), "{}", stderr(&out));
    partition_sizes(bootstrap, topic, 3)
}

#[test]
fn a_consumed_lake_holds_every_offset_once_across_ticks_and_rejects() {
    let (broker, topic) = broker_with_topic(3);
    let bs = broker.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let sizes = consumed(bs, &topic, &unique("g"), dir.path());
    let lake = dir.path().to_str().unwrap();

    let (out, report) = json("audit", lake, &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(report["problems"], 0);
    assert_eq!(report["topic"], topic.as_str());
    assert_eq!(report["rows"], 12_154 + 6);
    let (mut ticks, mut rejects) = (0, 0);
    for (&p, &size) in &sizes {
        let got = partition(&report, i64::from(p));
        assert_eq!(got["distinct"], size, "partition {p}");
        assert_eq!(got["first"], 0, "partition {p}");
        assert_eq!(got["last"], size - 1, "partition {p}");
        assert_eq!(got["committed"], size - 1, "partition {p}");
        assert_eq!(
            got["ticks"].as_i64().unwrap() + got["rejects"].as_i64().unwrap(),
            size,
            "partition {p}"
        );
        assert!(findings(&report, i64::from(p)).is_empty(), "{report:#}");
        ticks += got["ticks"].as_i64().unwrap();
        rejects += got["rejects"].as_i64().unwrap();
    }
    assert_eq!((ticks, rejects), (12_154, 6));

    let out = run("audit", lake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("result: OK: every committed offset of 3 partitions is in the lake exactly once (12160 rows)"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("read 12160 rows of"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_shows_the_tables_the_offsets_and_the_lag_behind_the_topic() {
    let (broker, topic) = broker_with_topic(3);
    let bs = broker.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let group = unique("g");
    let before = consumed(bs, &topic, &group, dir.path());
    let lake = dir.path().to_str().unwrap();
    let log = delta_log(&dir.path().join("ticks"));
    let offsets = lake_offsets(dir.path(), &topic);

    let (out, report) = json("status", lake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ticks = &report["tables"][0];
    assert_eq!(ticks["table"], "ticks");
    assert_eq!(ticks["version"], log.version);
    assert_eq!(ticks["files"], log.files.len());
    assert_eq!(ticks["rows"], 12_154);
    assert_eq!(
        ticks["small_files"],
        log.files.len(),
        "sample files are small"
    );
    assert_eq!(report["tables"][1]["table"], "rejects");
    assert_eq!(report["tables"][1]["rows"], 6);
    for (&p, &next) in &offsets {
        let row = &report["partitions"][p as usize];
        assert_eq!(
            (row["topic"].as_str(), &row["partition"]),
            (Some(topic.as_str()), &p.into())
        );
        assert_eq!(row["lake_offset"], next - 1, "partition {p}");
        assert_eq!(next, before[&p], "partition {p}");
        assert!(row["lag"].is_null());
    }
    let text = stdout(&run("status", lake, &[]));
    assert!(
        text.lines().any(|l| l.starts_with("ticks")
            && l.split_whitespace().take(4).collect::<Vec<_>>()
                == [
                    "ticks",
                    &log.version.to_string(),
                    &log.files.len().to_string(),
                    "12154"
                ]),
        "{text}"
    );

    // More events than were consumed: the lag is what the lake does not have yet.
    let more: Vec<_> = (0..40)
        .map(|i| tick_at(&format!("S{}", i % 7), i))
        .collect();
    produce_ticks(bs, &topic, more);
    let after = partition_sizes(bs, &topic, 3);
    let kafka = [
        "--brokers",
        bs,
        "--topic",
        topic.as_str(),
        "--group",
        group.as_str(),
    ];
    let (out, report) = json("status", lake, &kafka);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report["kafka"]["group"], group.as_str());
    let mut lag = 0;
    for p in 0..3 {
        let row = &report["partitions"][p as usize];
        assert_eq!(row["low_watermark"], 0);
        assert_eq!(row["high_watermark"], after[&p]);
        assert_eq!(
            row["group_offset"], before[&p],
            "Kafka's copy of the lake's offset"
        );
        assert_eq!(row["lag"], after[&p] - before[&p], "partition {p}");
        lag += row["lag"].as_i64().unwrap();
    }
    assert_eq!(lag, 40);
    let text = stdout(&run("status", lake, &kafka));
    assert!(text.contains("lag = high - 1 - lake offset"), "{text}");

    // The audit with the brokers: the new events are in Kafka, not yet in the lake; no problem.
    let (out, report) = json("audit", lake, &["--brokers", bs]);
    assert!(out.status.success(), "{}", stderr(&out));
    for p in 0..3 {
        let k = &partition(&report, p)["kafka"];
        let missing = after[&(p as i32)] - before[&(p as i32)];
        assert_eq!(k["not_in_lake_count"], missing, "partition {p}");
        if missing > 0 {
            assert_eq!(
                k["not_in_lake"],
                serde_json::json!([before[&(p as i32)], after[&(p as i32)] - 1])
            );
        }
        assert!(k["before_lake"].is_null() && k["lake_ahead"] == false);
    }
}

/// A lake written by the test harness as the consumer writes it: Kafka partition 0 holds
/// offsets 0..100 (AAPL 0..40, IBM 40..100), partition 1 offsets 0..50 (AAPL), in two commits.
fn planted_lake(lake: &Path) -> TicksTable {
    let layout = TableLayout::default();
    rt().block_on(async {
        let mut t = open(lake, &layout).await;
        let c = |symbol, partition, first, rows| Chunk {
            symbol,
            partition,
            first,
            rows,
        };
        commit(
            &mut t,
            lake,
            &layout,
            "ticks",
            &[
                c("AAPL", 0, 0, 40),
                c("IBM", 0, 40, 20),
                c("AAPL", 1, 0, 30),
            ],
        )
        .await;
        commit(
            &mut t,
            lake,
            &layout,
            "ticks",
            &[c("IBM", 0, 60, 40), c("AAPL", 1, 30, 20)],
        )
        .await;
        t
    })
}

/// The active data file whose name says it starts at `first` of Kafka partition `partition`.
fn file_of(lake: &Path, partition: i32, first: i64) -> (String, std::path::PathBuf) {
    let tag = format!("-{partition}-{first:020}-");
    delta_log(&lake.join("ticks"))
        .files
        .into_iter()
        .find(|(rel, _)| rel.contains(&tag))
        .unwrap_or_else(|| panic!("no file {tag}"))
}

/// Writes `bytes` as the data file `rel` of the ticks table and adds it in a commit of its own,
/// with no `txn`: `rows` ticks of `symbol` from offset `first`.
async fn add_file(
    table: &mut TicksTable,
    lake: &Path,
    rel: String,
    bytes: Vec<u8>,
    symbol: &str,
    first: i64,
    rows: u64,
) {
    std::fs::write(lake.join("ticks").join(&rel), &bytes).unwrap();
    let layout = TableLayout::default();
    let added = DataFile {
        path: rel,
        size: bytes.len() as u64,
        partition_values: partition_values(&layout, symbol, tick_at(symbol, first).event_time),
        rows,
        stats: None,
    };
    table.commit(&[added], &[]).await.unwrap();
}

#[test]
fn a_planted_duplicate_is_named_with_its_partition_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = planted_lake(dir.path());
    let lake = dir.path().to_str().unwrap();
    let (out, report) = json("audit", lake, &[]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(partition(&report, 0)["distinct"], 100);
    assert_eq!(partition(&report, 1)["distinct"], 50);

    // A copy of IBM's first file (offsets 40..60 of partition 0), added by a commit of its own.
    let (rel, file) = file_of(dir.path(), 0, 40);
    let copy = rel.replace(".parquet", "-copy.parquet");
    let bytes = std::fs::read(&file).unwrap();
    rt().block_on(add_file(&mut table, dir.path(), copy, bytes, "IBM", 40, 20));

    let (out, report) = json("audit", lake, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(report["problems"], 1);
    assert_eq!(
        findings(&report, 0),
        vec![("duplicate".into(), 40, 59, 2, 0)]
    );
    assert!(findings(&report, 1).is_empty());
    let out = run("audit", lake, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("partition 0: FAILED"), "{text}");
    assert!(
        text.contains("DUPLICATE  offsets 40..=59 (20): 2 times in ticks"),
        "{text}"
    );
    assert!(text.contains("partition 1: OK"), "{text}");
    assert!(
        stderr(&out).contains("the audit found 1 problem (listed above)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_planted_gap_and_uncommitted_rows_are_named_with_their_partition_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = planted_lake(dir.path());
    let lake = dir.path().to_str().unwrap();

    // Partition 1's second file (offsets 30..50) rewritten without offsets 35..=39: remove + add.
    let (rel, file) = file_of(dir.path(), 1, 30);
    let batch = {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
            std::fs::read(&file).unwrap(),
        ))
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<_> = reader.map(Result::unwrap).collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    };
    let offsets = batch
        .column_by_name("kafka_offset")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    let keep: arrow::array::BooleanArray = offsets
        .iter()
        .map(|o| o.map(|o| !(35..40).contains(&o)))
        .collect();
    let kept = arrow::compute::filter_record_batch(&batch, &keep).unwrap();
    assert_eq!(kept.num_rows(), 15);
    let bytes = stocklake::lake::writer::encode(&[kept]).unwrap();
    let new_rel = rel.replace(".parquet", "-rewritten.parquet");
    std::fs::write(dir.path().join("ticks").join(&new_rel), &bytes).unwrap();
    rt().block_on(async {
        let t = table.loaded().await.unwrap().clone();
        let state = t.snapshot().unwrap();
        let old = state.log_data().iter().find(|f| f.path() == rel).unwrap();
        let add = Add {
            path: new_rel.clone(),
            partition_values: old.partition_values_map(),
            size: bytes.len() as i64,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some("{\"numRecords\":15}".into()),
            ..Default::default()
        };
        CommitBuilder::from(CommitProperties::default())
            .with_actions(vec![
                Action::Remove(old.remove_action(true)),
                Action::Add(add),
            ])
            .build(
                Some(state),
                t.log_store(),
                DeltaOperation::Delete { predicate: None },
            )
            .await
            .unwrap();
        table.refresh().await.unwrap();
        // Rows of partition 0 above its committed offset (99), added without a txn.
        let mut b = stocklake::tick::TickBatchBuilder::new(false, 5);
        for o in 100..105 {
            b.push(&tick_at("IBM", o), 0, o);
        }
        let bytes = stocklake::lake::writer::encode(&[b.finish()]).unwrap();
        let path = "symbol=IBM/part-ticks-0-00000000000000000100-late.parquet".to_string();
        add_file(&mut table, dir.path(), path, bytes.to_vec(), "IBM", 100, 5).await;
    });

    let (out, report) = json("audit", lake, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(report["problems"], 2);
    assert_eq!(findings(&report, 1), vec![("gap".into(), 35, 39, 0, 0)]);
    assert_eq!(
        findings(&report, 0),
        vec![("uncommitted".into(), 100, 104, 1, 0)]
    );
    let text = stdout(&run("audit", lake, &[]));
    assert!(text.contains("partition 1: FAILED"), "{text}");
    assert!(
        text.contains("GAP        offsets 35..=39 (5): in neither table"),
        "{text}"
    );
    assert!(
        text.contains(
            "UNCOMMITTED offsets 100..=104 (5): in ticks above the committed offset (99)"
        ),
        "{text}"
    );
}

#[test]
fn status_and_audit_read_an_s3_lake() {
    let moto = Moto::start();
    moto.create_bucket("auditbucket");
    let dir = tempfile::tempdir().unwrap();
    planted_lake(dir.path());
    rt().block_on(async {
        upload_dir(&moto.sdk_config().await, "auditbucket", "lake", dir.path()).await;
    });
    let lake = "s3://auditbucket/lake";
    let out = cmd(&["audit", "--lake", lake, "--format", "json"])
        .envs(moto.env())
        .output();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["rows"], 150);
    assert_eq!(partition(&report, 0)["committed"], 99);
    assert_eq!(partition(&report, 1)["distinct"], 50);
    let out = cmd(&["status", "--lake", lake, "--format", "json"])
        .envs(moto.env())
        .output();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["tables"][0]["version"], 2);
    assert_eq!(report["tables"][0]["rows"], 150);
    assert_eq!(report["tables"][0]["url"], "s3://auditbucket/lake/ticks/");
    assert_eq!(report["partitions"][1]["lake_offset"], 49);
}

#[test]
fn help_shows_examples() {
    for c in ["status", "audit"] {
        let out = cmd(&[c, "--help"]).output();
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(
            text.contains(&format!(
                "Examples:\n  stocklake {c} --lake s3://my-bucket/stocklake"
            )),
            "{text}"
        );
    }
}
