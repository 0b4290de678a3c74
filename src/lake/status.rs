//! What a lake holds right now, for `stocklake status`: each Delta table's version, files, rows,
//! bytes, small files and last commit time, and each Kafka partition's committed offset (the
//! `txn` versions of docs/exactly-once.md). Read only; nothing is created.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::delta::read::{self, commit_time, file_stats, table_url};
use super::error::LakeError;
use super::layout::{REJECTS_TABLE_DIR, TABLE_DIR};

/// One table of the lake at its latest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableStatus {
    /// `ticks` or `rejects`.
    pub table: String,
    /// The table's URL.
    pub url: String,
    pub version: u64,
    /// Active data files, their rows (`numRecords` of their `add`) and bytes.
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    /// Files whose `add` records no row count (not in `rows`).
    pub files_without_row_count: usize,
    /// Active files smaller than `small_below` bytes.
    pub small_files: usize,
    pub small_below: u64,
    /// When the latest version was committed.
    pub last_commit: DateTime<Utc>,
}

/// A Kafka partition's position in the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionPosition {
    pub topic: String,
    pub partition: i32,
    /// The ticks table's `txn` version: the last offset the lake holds (committed), -1 for a
    /// partition claimed and never written.
    pub lake_offset: Option<i64>,
    /// The rejects table's `txn` version (it runs ahead of the ticks table between a flush's
    /// two commits).
    pub rejects_offset: Option<i64>,
}

/// The lake: its tables and its partitions' positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeStatus {
    pub lake: String,
    pub tables: Vec<TableStatus>,
    pub partitions: Vec<PartitionPosition>,
}

/// The Kafka partitions of a table's `txn` versions (application ids
/// `stocklake:<topic>:<partition>`; other ids such as `stocklake:compact` are left out), by
/// (topic, partition).
pub fn partition_txns(txns: &BTreeMap<String, i64>) -> BTreeMap<(String, i32), i64> {
    txns.iter()
        .filter_map(|(id, v)| {
            let (topic, partition) = id.strip_prefix("stocklake:")?.rsplit_once(':')?;
            let partition = partition.parse::<i32>().ok()?;
            (!topic.is_empty()).then(|| ((topic.to_string(), partition), *v))
        })
        .collect()
}

/// One table at its latest version, and its `txn` versions; None when the lake has no such
/// table.
async fn table_status(
    lake: &str,
    dir: &str,
    small_below: u64,
) -> Result<Option<(TableStatus, BTreeMap<String, i64>)>, LakeError> {
    let url = table_url(lake, dir)?;
    if !read::exists(&url).await? {
        return Ok(None);
    }
    let table = read::open(&url, None).await?;
    let version = table.version().unwrap_or_default();
    let stats = file_stats(&table)?;
    let state = table
        .snapshot()
        .map_err(super::delta::delta_err(url.as_str()))?;
    let small_files = state
        .log_data()
        .iter()
        .filter(|f| u64::try_from(f.size()).unwrap_or_default() < small_below)
        .count();
    let status = TableStatus {
        table: dir.to_string(),
        url: url.to_string(),
        version,
        files: stats.files,
        rows: stats.rows,
        bytes: stats.bytes,
        files_without_row_count: stats.unknown_rows,
        small_files,
        small_below,
        last_commit: commit_time(&table, version).await?,
    };
    Ok(Some((status, read::txns(&table).await?)))
}

/// The lake at `lake` (folder or URL): its ticks table (an error when there is none), its
/// rejects table when there is one, and every Kafka partition either table has a `txn` of.
/// Files under `small_below` bytes count as small.
pub async fn lake_status(lake: &str, small_below: u64) -> Result<LakeStatus, LakeError> {
    let Some((ticks, ticks_txns)) = table_status(lake, TABLE_DIR, small_below).await? else {
        // Opening it gives the error that names the place and what to do.
        read::open(&table_url(lake, TABLE_DIR)?, None).await?;
        return Err(LakeError::Data {
            location: lake.to_string(),
            message: "no ticks table".into(),
        });
    };
    let rejects = table_status(lake, REJECTS_TABLE_DIR, small_below).await?;
    let mut positions: BTreeMap<(String, i32), PartitionPosition> = BTreeMap::new();
    let rejects_txns = rejects.as_ref().map(|(_, t)| partition_txns(t));
    for (of_rejects, txns) in [
        (false, Some(partition_txns(&ticks_txns))),
        (true, rejects_txns),
    ] {
        for ((topic, partition), v) in txns.into_iter().flatten() {
            let p = positions
                .entry((topic.clone(), partition))
                .or_insert_with(|| PartitionPosition {
                    topic,
                    partition,
                    lake_offset: None,
                    rejects_offset: None,
                });
            if of_rejects {
                p.rejects_offset = Some(v);
            } else {
                p.lake_offset = Some(v);
            }
        }
    }
    let mut tables = vec![ticks];
    tables.extend(rejects.map(|(t, _)| t));
    Ok(LakeStatus {
        lake: lake.to_string(),
        tables,
        partitions: positions.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_txns_keep_kafka_partitions_only() {
        let txns: BTreeMap<String, i64> = [
            ("stocklake:ticks:0", 41),
            ("stocklake:my.topic-1:12", -1),
            ("stocklake:compact", 3),
            ("stocklake:upgrade", 1),
            ("stocklake:t:x", 5),
            ("other:t:1", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let got = partition_txns(&txns);
        let want: BTreeMap<(String, i32), i64> = [
            (("ticks".to_string(), 0), 41),
            (("my.topic-1".to_string(), 12), -1),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }
}
