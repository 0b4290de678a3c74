//! `stocklake consume` into S3 on a moto server, with partitions registered in Glue as they are
//! first written; and the clear error for a missing bucket.


use std::process::Command;

use crate::harness::lake::{Row, assert_exactly_once, read_parquet};
use crate::harness::*;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use stocklake::source::{CsvOptions, load_csv_files};
use stocklake::tick::Tick;

fn consume_s3(
    moto: &moto::Moto,
    bootstrap: &str,
    topic: &str,
    lake: &str,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stocklake"))
        .args([
            "consume",
            "--brokers",
            bootstrap,
            "--topic",
            topic,
            "--group",
            &unique("g"),
            "--lake",
            lake,
        ])
        .args([
            "--exit-when-idle",
            "1500ms",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=1000",
        ])
        .args(extra)
        .envs(moto.env())
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn the_sample_file_lands_in_s3_once_and_its_partitions_in_glue() {
    let moto = moto::Moto::start();
    let (status, body) = moto.request("PUT", "/market-lake", "");
    assert_eq!(status, 200, "create bucket: {body}");
    let (broker, topic) = broker_with_topic(3);
    let out = stocklake(&[
        "produce",
        "data/stocks.csv",
        "--brokers",
        broker.bootstrap_servers(),
        "--topic",
        &topic,
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = consume_s3(
        &moto,
        broker.bootstrap_servers(),
        &topic,
        "s3://market-lake/stocklake",
        &["--register-partitions", "--database", "marketdata"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("committed 12154 rows in 5 files"),
        "{}",
        stderr(&out)
    );

    // The local engine reads the S3 lake through the same client (no AWS_ALLOW_HTTP needed
    // for the http endpoint, as for consume).
    let sql = Command::new(env!("CARGO_BIN_EXE_stocklake"))
        .args([
            "sql",
            "--lake",
            "s3://market-lake/stocklake",
            "--format",
            "csv",
            "-q",
        ])
        .args([
            "-c",
            "SELECT symbol, count(*) AS n FROM stocklake.ticks GROUP BY symbol ORDER BY symbol",
        ])
        .envs(moto.env())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(sql.status.success(), "{}", stderr(&sql));
    assert_eq!(
        String::from_utf8_lossy(&sql.stdout),
        "symbol,n\nAAPL,3270\nFB,196\nGOOG,2148\nIBM,3270\nMSFT,3270\n"
    );

    // Read every object back through S3.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rows, mut keys) = rt.block_on(async {
        let config = moto.sdk_config().await;
        let store = stocklake::aws::s3_store(&config, "market-lake").unwrap();
        let prefix = object_store::path::Path::from("stocklake/ticks");
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
        let mut rows: Vec<Row> = Vec::new();
        let mut keys = Vec::new();
        for o in objects {
            let key = o.location.to_string();
            let bytes = store.get(&o.location).await.unwrap().bytes().await.unwrap();
            let rel = key.strip_prefix("stocklake/ticks/").unwrap().to_string();
            rows.extend(read_parquet(bytes, &rel, std::path::Path::new(&key)));
            keys.push(key);
        }
        (rows, keys)
    });
    keys.sort();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert!(
        keys[0].starts_with("stocklake/ticks/symbol=AAPL/part-"),
        "{keys:?}"
    );
    assert_exactly_once(
        &rows,
        &partition_sizes(broker.bootstrap_servers(), &topic, 3),
    );
    let (mut want, _) = load_csv_files(&[sample_csv()], &CsvOptions::default()).unwrap();
    let mut got: Vec<Tick> = rows.into_iter().map(|r| r.tick).collect();
    let key = |t: &Tick| (t.symbol.clone(), t.event_time);
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert!(got == want, "the S3 lake's values differ from the CSV's");

    // Glue knows the table and each partition, with unescaped values and the escaped location.
    let partitions = rt.block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        let table = glue
            .get_table()
            .database_name("marketdata")
            .name("ticks")
            .send()
            .await
            .unwrap();
        let t = table.table().unwrap();
        assert_eq!(
            t.partition_keys()
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>(),
            ["symbol"]
        );
        assert_eq!(
            t.storage_descriptor().unwrap().location(),
            Some("s3://market-lake/stocklake/ticks/")
        );
        let parts = glue
            .get_partitions()
            .database_name("marketdata")
            .table_name("ticks")
            .send()
            .await
            .unwrap();
        let mut out: Vec<(Vec<String>, String)> = parts
            .partitions()
            .iter()
            .map(|p| {
                (
                    p.values().to_vec(),
                    p.storage_descriptor()
                        .and_then(|s| s.location())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        out.sort();
        out
    });
    assert_eq!(partitions.len(), 5);
    assert_eq!(partitions[0].0, vec!["AAPL".to_string()]);
    assert_eq!(
        partitions[0].1,
        "s3://market-lake/stocklake/ticks/symbol=AAPL/"
    );
}

#[test]
fn a_missing_bucket_is_a_clear_error() {
    let moto = moto::Moto::start();
    let (broker, topic) = broker_with_topic(1);
    for (lake, says) in [
        (
            "s3://no-such-bucket/lake",
            "bucket no-such-bucket does not exist",
        ),
        // A lake is a prefix inside a bucket, never the bucket root.
        ("s3://no-such-bucket", "not the bucket root"),
    ] {
        let out = consume_s3(&moto, broker.bootstrap_servers(), &topic, lake, &[]);
        assert_eq!(out.status.code(), Some(1), "{lake}");
        let err = stderr(&out);
        assert!(err.contains(says), "{lake}: {err}");
    }
}
