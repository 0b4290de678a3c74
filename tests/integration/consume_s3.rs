//! `stocklake consume` into S3 on a moto server (`--register-partitions` is a no-op that says
//! why: Athena reads a Delta table's partitions from its log); and the clear error for a
//! missing bucket.

use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::harness::kafka::{broker_with_topic, idle_consumer, partition_sizes, produce_file};
use crate::harness::lake::{Row, assert_exactly_once, assert_same_ticks, read_parquet};
use crate::harness::moto::Moto;
use crate::harness::{cmd, rt, sample_csv, sample_ticks, stderr, stdout, unique};

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
fn the_sample_file_lands_in_s3_once_and_register_partitions_is_a_no_op() {
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

    // Read every object back through S3.
    let rt = rt();
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
    // The S3 lake's values are the CSV's.
    assert_same_ticks(rows.into_iter().map(|r| r.tick).collect(), sample_ticks());

    // --register-partitions is a no-op now: it says so, and Glue holds nothing.
    assert!(
        stderr(&out).contains("--register-partitions does nothing"),
        "{}",
        stderr(&out)
    );
    let tables = rt.block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        glue.get_tables().database_name("marketdata").send().await
    });
    assert!(tables.is_err(), "no Glue database was created: {tables:?}");
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
