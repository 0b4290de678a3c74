//! `stocklake consume` into S3 on a moto server (the Delta log committed with conditional PUTs),
//! read back through the log; and the clear error for a missing bucket.

use crate::harness::kafka::{broker_with_topic, idle_consumer, partition_sizes, produce_file};
use crate::harness::lake::{assert_exactly_once, assert_same_ticks};
use crate::harness::moto::{Moto, S3Lake};
use crate::harness::{cmd, sample_csv, sample_ticks, stderr, stdout, unique};

fn consume_s3(
    moto: &Moto,
    bootstrap: &str,
    topic: &str,
    lake: &str,
    extra: &[&str],
) -> std::process::Output {
    idle_consumer(bootstrap, topic, &unique("g"), lake)
        .args(extra)
        .envs(moto.env())
        .output()
}

#[test]
fn the_sample_file_lands_in_s3_once_through_the_delta_log() {
    let moto = Moto::start();
    let (status, body) = moto.request("PUT", "/market-lake", "");
    assert_eq!(status, 200, "create bucket: {body}");
    let (broker, topic) = broker_with_topic(3);
    let out = produce_file(&sample_csv(), broker.bootstrap_servers(), &topic)
        .arg("-q")
        .output();
    assert!(out.status.success(), "{}", stderr(&out));

    let out = consume_s3(
        &moto,
        broker.bootstrap_servers(),
        &topic,
        "s3://market-lake/stocklake",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("committed 12154 rows in 5 files"),
        "{}",
        stderr(&out)
    );

    // The local engine reads the S3 lake through the same client (no AWS_ALLOW_HTTP needed
    // for the http endpoint, as for consume).
    let sql = cmd(&[
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
    .output();
    assert!(sql.status.success(), "{}", stderr(&sql));
    assert_eq!(
        stdout(&sql),
        "symbol,n\nAAPL,3270\nFB,196\nGOOG,2148\nIBM,3270\nMSFT,3270\n"
    );

    // Replay the Delta log from S3 and read every active file back through S3.
    let S3Lake { rows, keys, txns } = moto.read_lake("market-lake", "stocklake");
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert!(
        keys[0].starts_with("stocklake/ticks/symbol=AAPL/part-"),
        "{keys:?}"
    );
    let sizes = partition_sizes(broker.bootstrap_servers(), &topic, 3);
    assert_exactly_once(&rows, &sizes);
    // The log's txn versions are each partition's last offset.
    for (p, n) in &sizes {
        assert_eq!(txns[&format!("stocklake:{topic}:{p}")], n - 1);
    }
    // The S3 lake's values are the CSV's.
    assert_same_ticks(rows.into_iter().map(|r| r.tick).collect(), sample_ticks());
}

#[test]
fn a_missing_bucket_is_a_clear_error() {
    let moto = Moto::start();
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
