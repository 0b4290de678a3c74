//! `catalog`, `catalog --repair`, `catalog --ddl` and `register_partition` (what `consume
//! --register-partitions` calls), checked through the Glue API of a moto server.

use std::collections::BTreeMap;
use std::process::Output;

use object_store::ObjectStoreExt;
use object_store::path::Path;
use stocklake::catalog::{self, INPUT_FORMAT, OUTPUT_FORMAT, SERDE_LIBRARY, TableSpec};
use stocklake::lake::TableLayout;

use crate::harness::moto::{Moto, glue_partitions, glue_table};
use crate::harness::{cmd, rt};

/// `stocklake <args>` against moto; fails the test unless it succeeds.
fn stocklake(moto: &Moto, args: &[&str]) -> Output {
    cmd(args).envs(moto.env()).output_ok()
}

#[test]
fn catalog_creates_the_glue_table_idempotently() {
    let moto = Moto::start();
    moto.create_bucket("lakebucket");
    let args = [
        "catalog",
        "--lake",
        "s3://lakebucket/stocklake",
        "--database",
        "stocklake",
    ];
    let first = stocklake(&moto, &args);
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("created Glue database stocklake"), "{err}");
    assert!(err.contains("created Glue table stocklake.ticks"), "{err}");

    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        glue.get_database().name("stocklake").send().await.unwrap();
        let (cols, keys, t) = glue_table(&glue, "stocklake", "ticks").await;
        let want: Vec<(String, String)> = [
            ("event_time", "timestamp"),
            ("trade_date", "date"),
            ("open", "double"),
            ("high", "double"),
            ("low", "double"),
            ("close", "double"),
            ("adj_close", "double"),
            ("volume", "bigint"),
            ("kafka_partition", "int"),
            ("kafka_offset", "bigint"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(cols, want, "symbol is a partition key, not a data column");
        assert_eq!(keys, vec![("symbol".to_string(), "string".to_string())]);
        let sd = t.storage_descriptor().unwrap();
        assert_eq!(sd.location(), Some("s3://lakebucket/stocklake/ticks/"));
        assert_eq!(sd.input_format(), Some(INPUT_FORMAT));
        assert_eq!(sd.output_format(), Some(OUTPUT_FORMAT));
        assert_eq!(
            sd.serde_info().and_then(|s| s.serialization_library()),
            Some(SERDE_LIBRARY)
        );
        assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));
        let params = t.parameters().unwrap();
        assert_eq!(
            params.get("classification").map(String::as_str),
            Some("parquet")
        );
    });

    let second = stocklake(&moto, &args);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("up to date: Glue table stocklake.ticks"),
        "{err}"
    );
    assert!(!err.contains("created"), "{err}");
}

#[test]
fn a_changed_layout_updates_the_table() {
    let moto = Moto::start();
    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        assert!(catalog::ensure_database(&glue, "db2").await.unwrap());
        assert!(!catalog::ensure_database(&glue, "db2").await.unwrap());
        let spec = TableSpec::new("db2", "s3://b/l", TableLayout::default());
        let created = catalog::ensure_table(&glue, &spec).await.unwrap();
        assert_eq!(created, catalog::TableAction::Created);
        let by_date = TableSpec::new(
            "db2",
            "s3://b/l",
            TableLayout {
                partition_by: vec![stocklake::lake::PartitionKey::Date],
            },
        );
        let updated = catalog::ensure_table(&glue, &by_date).await.unwrap();
        assert_eq!(updated, catalog::TableAction::Updated);
        let (cols, keys, _) = glue_table(&glue, "db2", "ticks").await;
        assert_eq!(keys, vec![("dt".to_string(), "date".to_string())]);
        assert_eq!(cols[0], ("symbol".to_string(), "string".to_string()));
    });
}

#[test]
fn register_partition_is_idempotent_and_stores_unescaped_values() {
    let moto = Moto::start();
    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        catalog::ensure_database(&glue, "stocklake").await.unwrap();
        let spec = TableSpec::new("stocklake", "s3://b/lake", TableLayout::default());
        catalog::ensure_table(&glue, &spec).await.unwrap();
        for symbol in ["AAPL", "A/B", "../x", "with space"] {
            let dir = format!(
                "{}symbol={}/",
                spec.location,
                stocklake::lake::layout::escape_value(symbol)
            );
            let values = vec![symbol.to_string()];
            catalog::register_partition(&glue, "stocklake", "ticks", &values, &dir)
                .await
                .unwrap();
            // Already there: success, nothing changes.
            catalog::register_partition(&glue, "stocklake", "ticks", &values, &dir)
                .await
                .unwrap();
        }
        let parts = glue_partitions(&glue, "stocklake", "ticks").await;
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert_eq!(
            parts.get(&vec!["A/B".to_string()]).map(String::as_str),
            Some("s3://b/lake/ticks/symbol=A%2FB/")
        );
        assert_eq!(
            parts.get(&vec!["../x".to_string()]).map(String::as_str),
            Some("s3://b/lake/ticks/symbol=..%2Fx/")
        );
        // A partition of a table that does not exist is an error with context.
        let err = catalog::register_partition(&glue, "stocklake", "nope", &[], "s3://b/x/")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("stocklake.nope"), "{err}");
    });
}

#[test]
fn repair_adds_the_partitions_glue_lacks() {
    let moto = Moto::start();
    moto.create_bucket("repair");
    rt().block_on(async {
        let config = moto.sdk_config().await;
        let store = stocklake::aws::s3_store(&config, "repair").unwrap();
        for key in [
            "lake/ticks/symbol=AAPL/part-ticks-0-00000000000000000000.parquet",
            "lake/ticks/symbol=AAPL/part-ticks-1-00000000000000000000.parquet",
            "lake/ticks/symbol=A%2FB/part-ticks-0-00000000000000000007.parquet",
            "lake/ticks/symbol=IBM/part-ticks-2-00000000000000000003.parquet",
            "lake/ticks/symbol=IBM/_inprogress",
            "lake/ticks/stray.txt",
            "lake/_rejects/ticks/0/5.json",
        ] {
            store
                .put(&Path::parse(key).unwrap(), "x".into())
                .await
                .unwrap();
        }
        let glue = aws_sdk_glue::Client::new(&config);
        catalog::ensure_database(&glue, "stocklake").await.unwrap();
        let spec = TableSpec::new("stocklake", "s3://repair/lake", TableLayout::default());
        catalog::ensure_table(&glue, &spec).await.unwrap();
        catalog::register_partition(
            &glue,
            "stocklake",
            "ticks",
            &["IBM".to_string()],
            "s3://repair/lake/ticks/symbol=IBM/",
        )
        .await
        .unwrap();
    });

    let out = stocklake(
        &moto,
        &["catalog", "--lake", "s3://repair/lake", "--repair"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("partitions: 3 in the lake, 1 already in Glue, 2 added"),
        "{err}"
    );

    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        let parts = glue_partitions(&glue, "stocklake", "ticks").await;
        let want: BTreeMap<Vec<String>, String> = [
            ("AAPL", "s3://repair/lake/ticks/symbol=AAPL/"),
            ("A/B", "s3://repair/lake/ticks/symbol=A%2FB/"),
            ("IBM", "s3://repair/lake/ticks/symbol=IBM/"),
        ]
        .iter()
        .map(|(v, l)| (vec![v.to_string()], l.to_string()))
        .collect();
        assert_eq!(parts, want);
    });

    // Nothing left to add.
    let again = stocklake(
        &moto,
        &["catalog", "--lake", "s3://repair/lake", "--repair"],
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("3 already in Glue, 0 added"), "{err}");
}

#[test]
fn ddl_describes_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(lake.join("_stocklake")).unwrap();
    std::fs::write(
        lake.join("_stocklake/table.json"),
        r#"{"partition_by":["symbol","year"]}"#,
    )
    .unwrap();
    let out = cmd(&["catalog", "--ddl", "--lake"]).arg(&lake).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = String::from_utf8_lossy(&out.stdout);
    assert!(ddl.contains("CREATE EXTERNAL TABLE IF NOT EXISTS `stocklake`.`ticks`"));
    assert!(
        ddl.contains("PARTITIONED BY (`symbol` string, `year` int)"),
        "{ddl}"
    );
    assert!(ddl.contains(SERDE_LIBRARY));
    assert!(ddl.contains("TBLPROPERTIES ('classification'='parquet')"));
    let canon = std::fs::canonicalize(&lake).unwrap();
    assert!(
        ddl.contains(&format!("LOCATION 'file://{}/ticks/'", canon.display())),
        "{ddl}"
    );
}
