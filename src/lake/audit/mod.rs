//! `stocklake audit`: proves that every Kafka offset from the first one the lake holds to the
//! committed offset (the ticks table's `txn`) is in the lake exactly once, across the ticks and
//! the rejects tables, reading only `(kafka_partition, kafka_offset)` and `(partition, offset)`
//! from the files of their current Delta versions; and, given the brokers' watermarks, which
//! offsets Kafka still holds that the lake does not have yet.

mod check;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use deltalake::DeltaTable;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use serde::Serialize;

pub use check::{Coverage, Finding, FindingKind, check};

use super::delta::read::{self, table_url};
use super::error::LakeError;
use super::layout::{REJECTS_TABLE_DIR, TABLE_DIR};
use super::status::partition_txns;

/// Files read at the same time (object store latency is hidden behind the others).
const READERS: usize = 16;
/// Rows per decoded batch.
const BATCH_ROWS: usize = 64 * 1024;

/// What Kafka holds of a partition next to what the lake holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KafkaCoverage {
    /// Kafka holds `low..high` (`high` is the next offset to be written).
    pub low: i64,
    pub high: i64,
    /// Offsets Kafka holds above the lake's committed offset: `first..=last` and how many.
    pub not_in_lake: Option<(i64, i64)>,
    pub not_in_lake_count: u64,
    /// Offsets Kafka holds below the first offset the lake holds (the lake started after
    /// them): reported, not counted as a problem.
    pub before_lake: Option<(i64, i64)>,
    /// The lake's committed offset is at or past the topic's end (a re-created topic, or another
    /// cluster): a problem.
    pub lake_ahead: bool,
}

/// One Kafka partition of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionAudit {
    pub partition: i32,
    /// The ticks table's `txn` version: the last offset committed (-1: claimed, never written).
    pub committed: Option<i64>,
    /// The rejects table's `txn` version.
    pub rejects_committed: Option<i64>,
    #[serde(flatten)]
    pub coverage: Coverage,
    pub kafka: Option<KafkaCoverage>,
}

impl PartitionAudit {
    /// The findings that make the audit fail, and whether the lake is ahead of Kafka.
    pub fn problems(&self) -> usize {
        self.coverage
            .findings
            .iter()
            .filter(|f| f.kind.is_problem())
            .count()
            + usize::from(self.kafka.as_ref().is_some_and(|k| k.lake_ahead))
    }
}

/// The audit of a lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub lake: String,
    /// The topic of the partitions' `txn`s (`stocklake:<topic>:<partition>`).
    pub topic: Option<String>,
    pub ticks_version: u64,
    pub rejects_version: Option<u64>,
    /// Data files read, and rows read from them (both tables).
    pub files: usize,
    pub rows: u64,
    /// Rows with no Kafka partition or offset (a problem each).
    pub rows_without_offset: u64,
    pub partitions: Vec<PartitionAudit>,
}

impl AuditReport {
    /// How many problems the audit found (0: the lake holds every committed offset once).
    pub fn problems(&self) -> usize {
        self.partitions
            .iter()
            .map(PartitionAudit::problems)
            .sum::<usize>()
            + usize::from(self.rows_without_offset > 0)
    }

    /// Adds what Kafka holds of each partition (`partition -> (low, high)` watermarks); a
    /// partition the lake has never seen is added with nothing held.
    pub fn add_kafka(&mut self, watermarks: &BTreeMap<i32, (i64, i64)>) {
        for (&partition, &(low, high)) in watermarks {
            let p = match self
                .partitions
                .iter_mut()
                .position(|p| p.partition == partition)
            {
                Some(i) => &mut self.partitions[i],
                None => {
                    self.partitions.push(PartitionAudit {
                        partition,
                        committed: None,
                        rejects_committed: None,
                        coverage: Coverage::default(),
                        kafka: None,
                    });
                    let last = self.partitions.len() - 1;
                    &mut self.partitions[last]
                }
            };
            p.kafka = Some(kafka_coverage(p, low, high));
        }
        self.partitions.sort_by_key(|p| p.partition);
    }
}

fn kafka_coverage(p: &PartitionAudit, low: i64, high: i64) -> KafkaCoverage {
    let lake_next = p.committed.map(|c| c.saturating_add(1));
    let from = lake_next.unwrap_or(low).max(low);
    let not_in_lake = (from < high).then(|| (from, high - 1));
    let before_lake = p
        .coverage
        .first
        .filter(|&first| first > low && high > low)
        .map(|first| (low, (first - 1).min(high - 1)));
    KafkaCoverage {
        low,
        high,
        not_in_lake,
        not_in_lake_count: not_in_lake.map_or(0, |(a, b)| (b - a + 1) as u64),
        before_lake,
        lake_ahead: p.committed.is_some_and(|c| c >= high),
    }
}

/// One table's offsets by partition.
#[derive(Default)]
struct Offsets {
    by_partition: BTreeMap<i32, Vec<i64>>,
    files: usize,
    rows: u64,
    without_offset: u64,
}

impl Offsets {
    fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        let (Some(parts), Some(offsets)) = (
            batch.column(0).as_primitive_opt::<Int32Type>(),
            batch.column(1).as_primitive_opt::<Int64Type>(),
        ) else {
            self.without_offset += batch.num_rows() as u64;
            return;
        };
        let (pv, ov) = (parts.values(), offsets.values());
        let clean = parts.null_count() == 0 && offsets.null_count() == 0;
        // A file of the consumer holds one Kafka partition: copy its offsets in one go.
        if clean
            && let Some(&first) = pv.first()
            && pv.iter().all(|p| *p == first)
        {
            self.by_partition
                .entry(first)
                .or_default()
                .extend_from_slice(ov);
            return;
        }
        for i in 0..batch.num_rows() {
            if parts.is_null(i) || offsets.is_null(i) {
                self.without_offset += 1;
            } else {
                self.by_partition.entry(pv[i]).or_default().push(ov[i]);
            }
        }
    }
}

/// A data file read by byte ranges (its footer, then the projected column chunks), its size
/// known from the Delta log.
pub(crate) struct RangeReader {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: Path,
    pub(crate) size: u64,
}

fn external(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for RangeReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Reads the two columns `columns` of one data file.
async fn read_file(
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    columns: [&'static str; 2],
    key: String,
) -> Result<Vec<RecordBatch>, LakeError> {
    let err = |message: String| LakeError::ParquetRead {
        key: key.clone(),
        message,
    };
    let reader = RangeReader { store, path, size };
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| err(e.to_string()))?;
    let schema = builder.parquet_schema();
    let fields = schema.root_schema().get_fields();
    let mut roots = Vec::with_capacity(2);
    for name in columns {
        let i = fields
            .iter()
            .position(|f| f.name() == name)
            .ok_or_else(|| err(format!("the file has no column {name}")))?;
        roots.push(i);
    }
    let swap = roots[0] > roots[1];
    let mask = ProjectionMask::roots(schema, roots);
    let stream = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut batches: Vec<RecordBatch> =
        stream.try_collect().await.map_err(|e| err(e.to_string()))?;
    if swap {
        for b in &mut batches {
            *b = b.project(&[1, 0]).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(batches)
}

/// Reads `columns` (partition, offset) of every data file of `table`'s loaded version.
async fn read_offsets(
    table: &DeltaTable,
    columns: [&'static str; 2],
) -> Result<Offsets, LakeError> {
    let name = table.table_url().to_string();
    let state = table.snapshot().map_err(super::delta::delta_err(&name))?;
    let files: Vec<(Path, u64)> = state
        .log_data()
        .iter()
        .map(|f| {
            (
                f.object_store_path(),
                u64::try_from(f.size()).unwrap_or_default(),
            )
        })
        .collect();
    let store = table.object_store();
    let mut out = Offsets {
        files: files.len(),
        ..Offsets::default()
    };
    let mut reads = futures::stream::iter(files.into_iter().map(|(path, size)| {
        let key = format!("{name}{path}");
        tokio::spawn(read_file(store.clone(), path, size, columns, key))
    }))
    .buffer_unordered(READERS);
    while let Some(done) = reads.next().await {
        let batches = done.map_err(|e| LakeError::Data {
            location: name.clone(),
            message: format!("a file reader stopped: {e}"),
        })??;
        for b in &batches {
            out.add(b);
        }
    }
    Ok(out)
}

/// Audits the lake at `lake` (folder or URL) at its tables' latest versions. `topic` picks the
/// `txn`s to read when the lake's name several topics (the ticks table cannot tell their rows
/// apart); without it the lake's one topic is used.
pub async fn audit_lake(lake: &str, topic: Option<&str>) -> Result<AuditReport, LakeError> {
    let ticks_url = table_url(lake, TABLE_DIR)?;
    let ticks = read::open(&ticks_url, None).await?;
    let rejects_url = table_url(lake, REJECTS_TABLE_DIR)?;
    let rejects = if read::exists(&rejects_url).await? {
        Some(read::open(&rejects_url, None).await?)
    } else {
        None
    };
    let ticks_txns = partition_txns(&read::txns(&ticks).await?);
    let rejects_txns = match &rejects {
        Some(t) => partition_txns(&read::txns(t).await?),
        None => BTreeMap::new(),
    };
    let topic = pick_topic(lake, topic, ticks_txns.keys().chain(rejects_txns.keys()))?;
    let of_topic = |txns: &BTreeMap<(String, i32), i64>| -> BTreeMap<i32, i64> {
        txns.iter()
            .filter(|((t, _), _)| Some(t) == topic.as_ref())
            .map(|((_, p), v)| (*p, *v))
            .collect()
    };
    let (committed, rejects_committed) = (of_topic(&ticks_txns), of_topic(&rejects_txns));
    let (mut t, r) = match &rejects {
        Some(rt) => {
            let (t, r) = futures::try_join!(
                read_offsets(&ticks, ["kafka_partition", "kafka_offset"]),
                read_offsets(rt, ["partition", "offset"])
            )?;
            (t, r)
        }
        None => (
            read_offsets(&ticks, ["kafka_partition", "kafka_offset"]).await?,
            Offsets::default(),
        ),
    };
    let mut rejects_by = r.by_partition;
    let mut partitions: Vec<i32> = t
        .by_partition
        .keys()
        .chain(rejects_by.keys())
        .chain(committed.keys())
        .copied()
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    let mut out = Vec::with_capacity(partitions.len());
    for p in partitions {
        let tv = t.by_partition.remove(&p).unwrap_or_default();
        let rv = rejects_by.remove(&p).unwrap_or_default();
        let (c, rc) = (
            committed.get(&p).copied(),
            rejects_committed.get(&p).copied(),
        );
        out.push(PartitionAudit {
            partition: p,
            committed: c,
            rejects_committed: rc,
            coverage: check(tv, rv, c, rc),
            kafka: None,
        });
    }
    Ok(AuditReport {
        lake: lake.to_string(),
        topic,
        ticks_version: ticks.version().unwrap_or_default(),
        rejects_version: rejects.as_ref().and_then(DeltaTable::version),
        files: t.files + r.files,
        rows: t.rows + r.rows,
        rows_without_offset: t.without_offset + r.without_offset,
        partitions: out,
    })
}

/// The topic whose `txn`s count: `wanted`, else the one topic the tables name (None when they
/// name none). Several topics without `wanted` is an error.
fn pick_topic<'a>(
    lake: &str,
    wanted: Option<&str>,
    keys: impl Iterator<Item = &'a (String, i32)>,
) -> Result<Option<String>, LakeError> {
    if let Some(w) = wanted {
        return Ok(Some(w.to_string()));
    }
    let mut topics: Vec<&str> = keys.map(|(t, _)| t.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    match topics.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        many => Err(LakeError::Data {
            location: lake.to_string(),
            message: format!(
                "the lake's tables hold committed offsets of several topics ({}); pass --topic",
                many.join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(first: Option<i64>, committed: Option<i64>) -> PartitionAudit {
        PartitionAudit {
            partition: 0,
            committed,
            rejects_committed: None,
            coverage: Coverage {
                first,
                ..Coverage::default()
            },
            kafka: None,
        }
    }

    #[test]
    fn kafka_coverage_says_what_the_lake_lacks_and_where_it_starts() {
        let k = kafka_coverage(&partition(Some(3), Some(9)), 0, 15);
        assert_eq!((k.not_in_lake, k.not_in_lake_count), (Some((10, 14)), 5));
        assert_eq!((k.before_lake, k.lake_ahead), (Some((0, 2)), false));
        // Retention deleted what the lake holds first: nothing before the lake, all consumed.
        let k = kafka_coverage(&partition(Some(0), Some(14)), 5, 15);
        assert_eq!(
            (k.not_in_lake, k.before_lake, k.lake_ahead),
            (None, None, false)
        );
        // A re-created topic behind the lake.
        assert!(kafka_coverage(&partition(Some(0), Some(20)), 0, 7).lake_ahead);
        // A partition the lake has never seen: everything Kafka holds is missing.
        let k = kafka_coverage(&partition(None, None), 4, 10);
        assert_eq!((k.not_in_lake, k.not_in_lake_count), (Some((4, 9)), 6));
        let mut report = AuditReport {
            lake: "l".into(),
            topic: Some("t".into()),
            ticks_version: 1,
            rejects_version: None,
            files: 0,
            rows: 0,
            rows_without_offset: 0,
            partitions: vec![partition(Some(0), Some(20))],
        };
        report.add_kafka(&[(0, (0, 7)), (1, (0, 3))].into_iter().collect());
        assert_eq!(report.partitions.len(), 2);
        assert_eq!(report.problems(), 1, "the lake is ahead of partition 0");
    }
}
