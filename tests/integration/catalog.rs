//! `catalog` and `catalog --ddl` for the lake's Delta tables, checked through the Glue API of a
//! moto server: the Glue tables Athena's Delta Lake support reads (`table_type=DELTA`, the
//! table folder as location, the log's columns), no partitions, the old Hive table converted,
//! and a lake written by `consume` into S3 with its rejects table.

use std::path::Path;
use std::process::Output;

use aws_sdk_glue::types::{Column, PartitionInput, SerDeInfo, StorageDescriptor, TableInput};
use stocklake::catalog::{self, TableAction};
use stocklake::lake::TableLayout;

use crate::harness::delta::{Chunk, commit, open, upload_dir};
use crate::harness::moto::{Moto, glue_partitions, glue_table};
use crate::harness::{cmd, rt, stderr, stdout};

/// `stocklake <args>` against moto; fails the test unless it succeeds.
fn stocklake(moto: &Moto, args: &[&str]) -> Output {
    cmd(args).envs(moto.env()).output_ok()
}

/// A local lake with a ticks table of two commits (partitioned by symbol) and, when
/// `with_rejects`, a rejects Delta table.
fn local_lake(lake: &Path, with_rejects: bool) {
    let layout = TableLayout::default();
    rt().block_on(async {
        let mut t = open(lake, &layout).await;
        let chunk = |symbol, partition, first, rows| Chunk {
            symbol,
            partition,
            first,
            rows,
        };
        commit(&mut t, lake, &layout, "ticks", &[chunk("AAPL", 0, 0, 5)]).await;
        commit(
            &mut t,
            lake,
            &layout,
            "ticks",
            &[chunk("IBM", 1, 0, 3), chunk("AAPL", 0, 5, 2)],
        )
        .await;
        if with_rejects {
            rejects_table(&lake.join("rejects")).await;
        }
    });
}

/// A rejects Delta table with a few of the real table's columns (the consumer creates the real
/// one; the catalog takes whatever the log says).
async fn rejects_table(dir: &Path) {
    use deltalake::kernel::{DataType, PrimitiveType, StructField};
    std::fs::create_dir_all(dir).unwrap();
    let url = url::Url::from_directory_path(dir).unwrap();
    let cols = vec![
        StructField::new("topic", DataType::Primitive(PrimitiveType::String), false),
        StructField::new(
            "partition",
            DataType::Primitive(PrimitiveType::Integer),
            false,
        ),
        StructField::new("offset", DataType::Primitive(PrimitiveType::Long), false),
        StructField::new("reason", DataType::Primitive(PrimitiveType::String), false),
    ];
    deltalake::DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .create()
        .with_columns(cols)
        .await
        .unwrap();
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn catalog_registers_the_delta_tables_as_athena_reads_them_idempotently() {
    let moto = Moto::start();
    moto.create_bucket("lakebucket");
    let dir = tempfile::tempdir().unwrap();
    local_lake(dir.path(), true);
    rt().block_on(async {
        let n = upload_dir(
            &moto.sdk_config().await,
            "lakebucket",
            "stocklake",
            dir.path(),
        )
        .await;
        assert!(n >= 7, "{n} objects uploaded");
    });
    let args = [
        "catalog",
        "--lake",
        "s3://lakebucket/stocklake",
        "--database",
        "stocklake",
    ];
    let first = stocklake(&moto, &args);
    let err = stderr(&first);
    assert!(err.contains("created Glue database stocklake"), "{err}");
    assert!(
        err.contains(
            "created Glue table stocklake.ticks (Delta Lake, version 2) at \
             s3://lakebucket/stocklake/ticks/"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "created Glue table stocklake.rejects (Delta Lake, version 0) at \
             s3://lakebucket/stocklake/rejects/"
        ),
        "{err}"
    );

    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        let (cols, keys, t) = glue_table(&glue, "stocklake", "ticks").await;
        assert_eq!(
            cols,
            pairs(&[
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
            ]),
            "the Delta log's data columns"
        );
        assert_eq!(keys, pairs(&[("symbol", "string")]));
        assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));
        let params = t.parameters().unwrap();
        let param = |k: &str| params.get(k).map(String::as_str);
        assert_eq!(param("table_type"), Some("DELTA"));
        assert_eq!(param("spark.sql.sources.provider"), Some("delta"));
        assert_eq!(param("EXTERNAL"), Some("TRUE"));
        assert_eq!(param("classification"), None, "not a plain Parquet table");
        let sd = t.storage_descriptor().unwrap();
        assert_eq!(sd.location(), Some("s3://lakebucket/stocklake/ticks/"));
        assert_eq!(
            sd.serde_info()
                .and_then(|s| s.parameters())
                .and_then(|p| p.get("path"))
                .map(String::as_str),
            Some("s3://lakebucket/stocklake/ticks/")
        );
        assert_eq!(sd.input_format(), None, "no Hive input format");
        assert!(
            glue_partitions(&glue, "stocklake", "ticks")
                .await
                .is_empty(),
            "Athena reads partitions from the log: none in Glue"
        );

        let (cols, keys, t) = glue_table(&glue, "stocklake", "rejects").await;
        assert_eq!(
            cols,
            pairs(&[
                ("topic", "string"),
                ("partition", "int"),
                ("offset", "bigint"),
                ("reason", "string"),
            ])
        );
        assert!(keys.is_empty());
        assert_eq!(
            t.storage_descriptor().unwrap().location(),
            Some("s3://lakebucket/stocklake/rejects/")
        );
        assert_eq!(
            t.parameters()
                .unwrap()
                .get("table_type")
                .map(String::as_str),
            Some("DELTA")
        );
    });

    let second = stocklake(&moto, &args);
    let err = stderr(&second);
    assert!(
        err.contains("up to date: Glue table stocklake.ticks (Delta Lake, version 2)"),
        "{err}"
    );
    assert!(
        err.contains("up to date: Glue table stocklake.rejects"),
        "{err}"
    );
    assert!(!err.contains("created"), "{err}");

    // --repair is kept for old scripts: it says why it does nothing.
    let repair = stocklake(&moto, &[&args[..], &["--repair"]].concat());
    let err = stderr(&repair);
    assert!(err.contains("--repair does nothing"), "{err}");
    assert!(
        err.contains("up to date: Glue table stocklake.ticks"),
        "{err}"
    );
    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        assert!(
            glue_partitions(&glue, "stocklake", "ticks")
                .await
                .is_empty()
        );
    });
}

#[test]
fn the_hive_table_of_an_old_catalog_becomes_a_delta_table_without_partitions() {
    let moto = Moto::start();
    moto.create_bucket("old");
    let dir = tempfile::tempdir().unwrap();
    local_lake(dir.path(), false);
    rt().block_on(async {
        let config = moto.sdk_config().await;
        upload_dir(&config, "old", "lake", dir.path()).await;
        let glue = aws_sdk_glue::Client::new(&config);
        assert!(catalog::ensure_database(&glue, "db2").await.unwrap());
        assert!(!catalog::ensure_database(&glue, "db2").await.unwrap());
        // What stocklake 0.1's catalog made: a Hive Parquet table with a partition per symbol.
        let col = |n: &str, t: &str| Column::builder().name(n).r#type(t).build().unwrap();
        let sd = |loc: &str| {
            StorageDescriptor::builder()
                .columns(col("close", "double"))
                .location(loc)
                .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                .serde_info(
                    SerDeInfo::builder()
                        .serialization_library(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        )
                        .build(),
                )
                .build()
        };
        glue.create_table()
            .database_name("db2")
            .table_input(
                TableInput::builder()
                    .name("ticks")
                    .table_type("EXTERNAL_TABLE")
                    .parameters("classification", "parquet")
                    .storage_descriptor(sd("s3://old/lake/ticks/"))
                    .partition_keys(col("symbol", "string"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        for s in ["AAPL", "IBM"] {
            glue.create_partition()
                .database_name("db2")
                .table_name("ticks")
                .partition_input(
                    PartitionInput::builder()
                        .values(s)
                        .storage_descriptor(sd(&format!("s3://old/lake/ticks/symbol={s}/")))
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        assert_eq!(glue_partitions(&glue, "db2", "ticks").await.len(), 2);
    });
    let out = stocklake(
        &moto,
        &["catalog", "--lake", "s3://old/lake", "--database", "db2"],
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "converted to Delta (2 Glue partitions of the old table deleted): Glue table db2.ticks"
        ),
        "{err}"
    );
    assert!(
        !err.contains("rejects"),
        "no rejects table in this lake: {err}"
    );
    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        assert!(glue_partitions(&glue, "db2", "ticks").await.is_empty());
        let (cols, keys, t) = glue_table(&glue, "db2", "ticks").await;
        assert_eq!(cols.len(), 10, "{cols:?}");
        assert_eq!(keys, pairs(&[("symbol", "string")]));
        let params = t.parameters().unwrap();
        assert_eq!(params.get("table_type").map(String::as_str), Some("DELTA"));
        assert_eq!(params.get("classification"), None);
        let tables = glue.get_tables().database_name("db2").send().await.unwrap();
        assert_eq!(tables.table_list().len(), 1, "no rejects table");
        // And ensure_table directly: nothing left to change.
        let spec = catalog::TableSpec {
            database: "db2".into(),
            table: "ticks".into(),
            location: "s3://old/lake/ticks/".into(),
            columns: t
                .storage_descriptor()
                .unwrap()
                .columns()
                .iter()
                .map(|c| catalog::GlueColumn {
                    name: c.name().into(),
                    hive_type: c.r#type().unwrap().into(),
                    comment: c.comment().map(String::from),
                })
                .collect(),
            partition_keys: vec![catalog::GlueColumn {
                name: "symbol".into(),
                hive_type: "string".into(),
                comment: None,
            }],
            version: 2,
        };
        assert_eq!(
            catalog::ensure_table(&glue, &spec).await.unwrap(),
            TableAction::Unchanged
        );
    });
}

#[test]
fn a_lake_without_a_delta_table_is_refused_with_its_location() {
    let moto = Moto::start();
    moto.create_bucket("empty");
    let out = cmd(&["catalog", "--lake", "s3://empty/lake"])
        .envs(moto.env())
        .output();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("s3://empty/lake/ticks/"), "{err}");
    assert!(err.contains("no Delta table here"), "{err}");
    assert!(err.contains("stocklake lake upgrade"), "{err}");
}

#[test]
fn ddl_is_athenas_create_external_table_for_delta() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    local_lake(&lake, false);
    let canon = std::fs::canonicalize(&lake).unwrap();
    let ddl_of = |lake: &Path| {
        let out = cmd(&["catalog", "--ddl", "--lake"]).arg(lake).output_ok();
        stdout(&out)
    };
    let ddl = ddl_of(&lake);
    let ticks = format!(
        "CREATE EXTERNAL TABLE `stocklake`.`ticks`\nLOCATION 'file://{}/ticks/'\n\
         TBLPROPERTIES ('table_type'='DELTA');\n",
        canon.display()
    );
    assert!(
        ddl.starts_with("CREATE DATABASE IF NOT EXISTS `stocklake`;\n"),
        "{ddl}"
    );
    assert!(ddl.contains(&ticks), "{ddl}");
    assert!(!ddl.contains("rejects"), "{ddl}");
    assert!(
        !ddl.contains("PARTITIONED BY") && !ddl.contains("SERDE"),
        "{ddl}"
    );
    assert!(
        !lake.join("rejects").exists(),
        "--ddl created nothing in the lake"
    );

    rt().block_on(rejects_table(&lake.join("rejects")));
    let ddl = ddl_of(&lake);
    assert!(ddl.contains(&ticks), "{ddl}");
    assert!(
        ddl.contains(&format!(
            "CREATE EXTERNAL TABLE `stocklake`.`rejects`\nLOCATION 'file://{}/rejects/'\n\
             TBLPROPERTIES ('table_type'='DELTA');\n",
            canon.display()
        )),
        "{ddl}"
    );
}

/// A lake written by `stocklake consume` into S3, with a reject: `catalog` registers both Delta
/// tables with the schemas the consumer's log holds.
#[test]
fn catalog_registers_a_consumed_s3_lake_and_its_rejects() {
    use crate::harness::kafka::{broker_with_topic, idle_consumer, produce_file, produce_raw};
    use crate::harness::{sample_csv, unique};

    let moto = Moto::start();
    moto.create_bucket("consumed");
    let (broker, topic) = broker_with_topic(3);
    let bootstrap = broker.bootstrap_servers();
    produce_raw(bootstrap, &topic, &[(b"IBM".to_vec(), b"{oops".to_vec())]);
    let out = produce_file(&sample_csv(), bootstrap, &topic)
        .arg("-q")
        .output();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = idle_consumer(bootstrap, &topic, &unique("g"), "s3://consumed/lake")
        .arg("-q")
        .envs(moto.env())
        .output();
    assert!(out.status.success(), "{}", stderr(&out));

    let out = stocklake(
        &moto,
        &[
            "catalog",
            "--lake",
            "s3://consumed/lake",
            "--database",
            "market",
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains("created Glue table market.ticks (Delta Lake, version"),
        "{err}"
    );
    assert!(
        err.contains("created Glue table market.rejects (Delta Lake, version"),
        "{err}"
    );
    rt().block_on(async {
        let glue = aws_sdk_glue::Client::new(&moto.sdk_config().await);
        let (cols, keys, t) = glue_table(&glue, "market", "ticks").await;
        assert_eq!(keys, pairs(&[("symbol", "string")]));
        assert!(
            cols.contains(&("event_time".into(), "timestamp".into())),
            "{cols:?}"
        );
        assert!(
            cols.contains(&("kafka_offset".into(), "bigint".into())),
            "{cols:?}"
        );
        assert_eq!(
            t.storage_descriptor().unwrap().location(),
            Some("s3://consumed/lake/ticks/")
        );
        let (cols, keys, t) = glue_table(&glue, "market", "rejects").await;
        assert!(keys.is_empty());
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        for c in ["topic", "partition", "offset", "reason", "value_sha256"] {
            assert!(names.contains(&c), "rejects column {c}: {cols:?}");
        }
        assert_eq!(
            t.parameters()
                .unwrap()
                .get("table_type")
                .map(String::as_str),
            Some("DELTA")
        );
        assert_eq!(
            t.storage_descriptor().unwrap().location(),
            Some("s3://consumed/lake/rejects/")
        );
        assert!(glue_partitions(&glue, "market", "ticks").await.is_empty());
    });
}
