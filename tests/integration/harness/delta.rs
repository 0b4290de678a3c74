//! Delta tables built for tests the way the consumer writes them: real lake files (the tick
//! batch builder and the lake's Parquet writer) under Hive directories, recorded by
//! `stocklake::lake::delta::TicksTable::commit` with one `txn` per Kafka partition; plus upload
//! of a local lake folder to a moto bucket.

use std::path::Path;

use stocklake::lake::TableLayout;
use stocklake::lake::delta::{AppTxn, DataFile, TicksTable, app_id, partition_values, ticks_url};
use stocklake::lake::writer::encode;
use stocklake::tick::{Tick, TickBatchBuilder, parse_iso_millis};

/// One file of a commit: `rows` ticks of `symbol` from Kafka partition `partition`, offsets
/// `first..first + rows`.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub symbol: &'a str,
    pub partition: i32,
    pub first: i64,
    pub rows: i64,
}

/// The tick at a Kafka offset: its values follow from the offset, so sums are predictable
/// (`close` = offset / 2, `volume` = offset, one minute apart from 2000-03-01).
pub fn tick_at(symbol: &str, offset: i64) -> Tick {
    let t0 = parse_iso_millis("2000-03-01").unwrap();
    let close = offset as f64 / 2.0;
    Tick {
        symbol: symbol.into(),
        event_time: t0 + offset * 60_000,
        open: Some(close),
        high: Some(close + 1.0),
        low: Some(close - 1.0),
        close: Some(close),
        adj_close: None,
        volume: Some(offset),
    }
}

/// Opens (or creates) the ticks table of the lake folder `lake`.
pub async fn open(lake: &Path, layout: &TableLayout) -> TicksTable {
    let url = ticks_url(lake.to_str().unwrap()).unwrap();
    TicksTable::open_or_create(&url, layout).await.unwrap()
}

/// Writes the chunks' files under `<lake>/ticks/` and records them as ONE commit, with a `txn`
/// per partition (topic `topic`, version = the partition's last offset in the commit). Returns
/// the new version.
pub async fn commit(
    table: &mut TicksTable,
    lake: &Path,
    layout: &TableLayout,
    topic: &str,
    chunks: &[Chunk<'_>],
) -> u64 {
    let table_dir = lake.join("ticks");
    let mut files = Vec::new();
    let mut last: std::collections::BTreeMap<i32, i64> = Default::default();
    for c in chunks {
        let mut b = TickBatchBuilder::new(layout.symbol_in_file(), c.rows as usize);
        let first_tick = tick_at(c.symbol, c.first);
        for offset in c.first..c.first + c.rows {
            b.push(&tick_at(c.symbol, offset), c.partition, offset);
        }
        let bytes = encode(&[b.finish()]).unwrap();
        // Partitioned by symbol: every tick of the chunk is in the first tick's directory.
        let dir = layout.partition_dir(c.symbol, first_tick.event_time);
        let path = format!(
            "{dir}/part-{topic}-{}-{:020}-{}.parquet",
            c.partition,
            c.first,
            crate::harness::unique("t")
        );
        std::fs::create_dir_all(table_dir.join(&dir)).unwrap();
        std::fs::write(table_dir.join(&path), &bytes).unwrap();
        files.push(DataFile {
            path,
            size: bytes.len() as u64,
            partition_values: partition_values(layout, c.symbol, first_tick.event_time),
            rows: c.rows as u64,
            stats: None,
        });
        let l = last.entry(c.partition).or_insert(i64::MIN);
        *l = (*l).max(c.first + c.rows - 1);
    }
    let txns: Vec<AppTxn> = last
        .iter()
        .map(|(p, v)| AppTxn {
            app_id: app_id(topic, *p),
            version: *v,
        })
        .collect();
    table.commit(&files, &txns).await.unwrap()
}

/// Copies every file below `dir` to `s3://<bucket>/<prefix>/<relative path>`.
pub async fn upload_dir(
    config: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
    dir: &Path,
) -> usize {
    use object_store::ObjectStoreExt;
    let store = stocklake::aws::s3_store(config, bucket).unwrap();
    let files = files_below(dir);
    for rel in &files {
        let key = object_store::path::Path::parse(format!("{prefix}/{rel}")).unwrap();
        store
            .put(&key, std::fs::read(dir.join(rel)).unwrap().into())
            .await
            .unwrap();
    }
    files.len()
}

/// Every file below `dir`, relative, `/`-separated, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// `SELECT <expr> FROM ticks` on the table at the version it holds, each row as `a|b|…`.
pub async fn query(table: &TicksTable, sql: &str) -> Vec<String> {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table(
        "ticks",
        stocklake::lake::delta::provider(table).await.unwrap(),
    )
    .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    stocklake::print::rows_as_text(&batches).unwrap()
}
