//! A lake of many small files, written as a live consumer writes one (a file per symbol per
//! flush with its statistics, one Delta commit per flush with a `txn` per Kafka partition), but
//! without Kafka: for the compaction test and `bench compact`.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};

use crate::lake::delta::stats::file_stats;
use crate::lake::delta::{AppTxn, DataFile, TicksTable, app_id, partition_values, ticks_url};
use crate::lake::layout::TABLE_DIR;
use crate::lake::writer::encode;
use crate::lake::{Lake, LakeError, TableLayout};
use crate::tick::{MS_PER_DAY, Tick, TickBatchBuilder, days_from_civil};

/// Files written at once.
const PUTS_AT_ONCE: usize = 16;

/// The writer of a small-file lake. Symbol `i` is `S<i>`, sent to Kafka partition
/// `i % partitions`; each symbol is a daily series starting 2000-01-03.
pub struct SmallFileLake {
    lake: Lake,
    table: TicksTable,
    layout: TableLayout,
    topic: String,
    partitions: i32,
    /// Next Kafka offset of each partition.
    next: HashMap<i32, i64>,
    /// Next bar (day number) of each symbol.
    day: Vec<i64>,
    files: u64,
    rows: u64,
}

/// The name of symbol `i`.
pub fn symbol(i: usize) -> String {
    format!("S{i:04}")
}

impl SmallFileLake {
    /// Opens (or creates) the ticks table of `lake` for `symbols` symbols over `partitions`
    /// Kafka partitions of `topic`.
    pub async fn create(
        lake: &str,
        layout: TableLayout,
        topic: &str,
        symbols: usize,
        partitions: i32,
    ) -> Result<SmallFileLake, LakeError> {
        let table = TicksTable::open_or_create(&ticks_url(lake)?, &layout).await?;
        Ok(SmallFileLake {
            lake: Lake::open(lake).await?,
            table,
            layout,
            topic: topic.to_string(),
            partitions: partitions.max(1),
            next: HashMap::new(),
            day: vec![0; symbols],
            files: 0,
            rows: 0,
        })
    }

    /// One flush: `rows` bars of each symbol of `which`, a file each, then one commit. Returns
    /// the version committed.
    pub async fn flush(&mut self, which: &[usize], rows: usize) -> Result<u64, LakeError> {
        let start = days_from_civil(2000, 1, 3);
        let mut pending = Vec::new();
        let mut last: HashMap<i32, i64> = HashMap::new();
        for &i in which {
            let name = symbol(i);
            let partition = (i as i32) % self.partitions;
            let first = *self.next.get(&partition).unwrap_or(&0);
            let mut b = TickBatchBuilder::new(self.layout.symbol_in_file(), rows);
            let first_day = self.day[i];
            for k in 0..rows as i64 {
                let d = first_day + k;
                let price = 50.0 + (i % 50) as f64 + 10.0 * ((d as f64) / 17.0 + i as f64).sin();
                let t = Tick {
                    symbol: name.clone(),
                    event_time: (start + d) * MS_PER_DAY,
                    open: Some(price),
                    high: Some(price * 1.01),
                    low: Some(price * 0.99),
                    close: Some(price * (1.0 + 0.002 * ((d * 7 + i as i64) % 5 - 2) as f64)),
                    adj_close: Some(price),
                    volume: Some(1_000 + (d * 31 + i as i64 * 7) % 5_000),
                };
                b.push(&t, partition, first + k);
            }
            self.day[i] += rows as i64;
            self.next.insert(partition, first + rows as i64);
            last.insert(partition, first + rows as i64 - 1);
            let t0 = (start + first_day) * MS_PER_DAY;
            let batch = b.finish();
            let stats = file_stats(std::slice::from_ref(&batch));
            let bytes = encode(&[batch]).map_err(|e| LakeError::Parquet {
                key: name.clone(),
                message: e.to_string(),
            })?;
            self.files += 1;
            let path = format!(
                "{}/part-{}-{partition}-{first:020}-{}.parquet",
                self.layout.partition_dir(&name, t0),
                self.topic,
                self.files
            );
            pending.push((
                DataFile {
                    path,
                    size: bytes.len() as u64,
                    partition_values: partition_values(&self.layout, &name, t0),
                    rows: rows as u64,
                    stats: Some(stats),
                },
                bytes,
            ));
        }
        let lake = &self.lake;
        futures::stream::iter(pending.iter().map(|(f, bytes)| async move {
            lake.put(&format!("{TABLE_DIR}/{}", f.path), bytes.clone())
                .await
        }))
        .buffer_unordered(PUTS_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
        let files: Vec<DataFile> = pending.into_iter().map(|(f, _)| f).collect();
        let mut txns: Vec<AppTxn> = last
            .into_iter()
            .map(|(p, v)| AppTxn {
                app_id: app_id(&self.topic, p),
                version: v,
            })
            .collect();
        txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        self.rows += (files.len() * rows) as u64;
        self.table.commit(&files, &txns).await
    }

    /// The next offset of each Kafka partition (what the table holds: `0..next`).
    pub fn next_offsets(&self) -> &HashMap<i32, i64> {
        &self.next
    }

    /// Files and rows written so far.
    pub fn files(&self) -> u64 {
        self.files
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }
}
