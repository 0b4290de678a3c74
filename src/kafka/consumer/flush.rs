//! Flushing: buffered batches handed to a background task that writes their data files and
//! records them in ONE Delta commit with a `txn` per Kafka partition (docs/exactly-once.md),
//! and the accounting when it has landed (statistics, the lake's next offsets, the Kafka
//! commit).
//!
//! Ordering: at most one flush is in flight. The loop reaps the previous one before it starts
//! the next, and a revocation lands it before the partitions go, so a partition's batches
//! reach the table in offset order. A flush that lands after its partitions moved to another
//! member is refused by the table (the new owner's claim commit fences it): nothing of it
//! counts, and the consumer stops with an error saying so.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::batch::Batch;
use super::{Inner, LakeConsumer};
use crate::kafka::error::{ConsumeError, KafkaError};
use crate::lake::delta::stats::file_stats;
use crate::lake::delta::{AppTxn, DataFile, TicksTable, app_id};
use crate::lake::layout::{REJECTS_TABLE_DIR, TABLE_DIR, attempt_file_name, escape_value};
use crate::lake::rejects::{self, Reject};
use crate::lake::{Lake, LakeError, writer};

/// The lake's two Delta tables, as one writer holds them. Locked by the flush task while it
/// commits and by an assignment while it claims partitions; never by the loop.
pub(super) struct Tables {
    pub(super) ticks: TicksTable,
    pub(super) rejects: TicksTable,
}

pub(super) type SharedTables = Arc<tokio::sync::Mutex<Tables>>;

/// A flush on its way into the lake.
pub(super) struct InFlight {
    pub(super) task: tokio::task::JoinHandle<Result<Vec<Written>, ConsumeError>>,
    started: Instant,
    events: usize,
}

/// A flush that is in the lake (or failed).
pub(super) struct Landed {
    result: Result<Vec<Written>, ConsumeError>,
    started: Instant,
    events: usize,
}

impl InFlight {
    /// Waits for the flush to end. Call it without the state locked.
    pub(super) fn land(self, rt: &tokio::runtime::Handle) -> Landed {
        let result = rt
            .block_on(self.task)
            .unwrap_or_else(|e| Err(ConsumeError::FlushTask(e)));
        Landed {
            result,
            started: self.started,
            events: self.events,
        }
    }
}

/// What one batch put into the lake.
pub(super) struct Written {
    partition: i32,
    /// The first offset after the batch: what the lake now holds up to.
    next_offset: i64,
    rows: u64,
    files: u64,
    bytes: u64,
    rejects: Vec<Reject>,
}

/// One partition's batch as the flush task takes it.
struct Job {
    partition: i32,
    batch: Batch,
    /// Rejects below this offset are already in the rejects table (an earlier attempt of
    /// these offsets committed its rejects, then died before its ticks).
    rejects_next: Option<i64>,
}

impl Inner {
    /// Hands every buffered batch to a background task that writes them and commits them as
    /// one Delta commit. The caller has reaped the previous flush, so at most one is in flight
    /// and a partition's batches land in offset order.
    pub(super) fn start_flush(&mut self) {
        let mut state = self.shared.lock();
        let jobs: Vec<Job> = state
            .slots
            .iter_mut()
            .filter_map(|(p, s)| {
                let b = s.batch.take()?;
                s.sizes = b.files.iter().map(|(d, f)| (d.clone(), f.len())).collect();
                Some(Job {
                    partition: *p,
                    batch: b,
                    rejects_next: s.rejects_next,
                })
            })
            .collect();
        self.buffered_events = 0;
        self.buffered_bytes = 0;
        self.oldest = None;
        if jobs.is_empty() {
            return;
        }
        let events = jobs.iter().map(|j| j.batch.events).sum();
        tracing::debug!("flushing {events} events of {} partitions", jobs.len());
        let lake = self.lake.clone();
        let tables = self.tables.clone();
        let topic = self.opts.topic.clone();
        let task = self
            .rt
            .spawn(async move { write_flush(&lake, &tables, &topic, jobs).await });
        let previous = state.in_flight.replace(InFlight {
            task,
            started: Instant::now(),
            events,
        });
        debug_assert!(previous.is_none(), "one flush in flight at a time");
    }

    /// Counts a landed flush; returns the offsets to commit to Kafka.
    fn account(
        &mut self,
        written: Vec<Written>,
        events: usize,
        started: Instant,
    ) -> Result<TopicPartitionList, KafkaError> {
        let mut offsets = TopicPartitionList::new();
        let mut state = self.shared.lock();
        for w in written {
            self.stats.rows += w.rows;
            self.stats.files += w.files;
            self.stats.bytes += w.bytes;
            self.stats.rejects += w.rejects.len() as u64;
            for r in &w.rejects {
                *self.stats.reject_reasons.entry(reason_kind(r)).or_default() += 1;
            }
            // Still ours: the lake now holds everything before `next`.
            if let Some(slot) = state.slots.get_mut(&w.partition) {
                slot.lake_next = Some(w.next_offset);
                if !w.rejects.is_empty() {
                    slot.rejects_next = Some(w.next_offset);
                }
            }
            offsets
                .add_partition_offset(&self.opts.topic, w.partition, Offset::Offset(w.next_offset))
                .map_err(|e| {
                    let context = format!(
                        "recording offset {} of topic {} partition {} for the commit",
                        w.next_offset, self.opts.topic, w.partition
                    );
                    KafkaError::client(context, e)
                })?;
        }
        self.stats.flushes += 1;
        if let Some(m) = &self.metrics {
            m.committed(events, started.elapsed());
            m.report_totals(&self.stats.totals());
        }
        tracing::info!("flushed {events} events in {:.0?}", started.elapsed());
        Ok(offsets)
    }
}

impl LakeConsumer {
    /// Accounts for flushes that have landed: statistics, the lake's next offsets and the
    /// Kafka commit. With `wait`, first waits for the one in flight.
    pub(super) fn reap(&mut self, wait: bool) -> Result<(), ConsumeError> {
        let (flight, mut landed) = {
            let mut guard = self.inner.shared.lock();
            let state = &mut *guard;
            let flight = match &state.in_flight {
                Some(f) if wait || f.task.is_finished() => state.in_flight.take(),
                _ => None,
            };
            (flight, std::mem::take(&mut state.landed))
        };
        landed.extend(flight.map(|f| f.land(&self.inner.rt)));
        let any = !landed.is_empty();
        for l in landed {
            let written = l.result?;
            let offsets = self.inner.account(written, l.events, l.started)?;
            // The table already holds these offsets and is where the next owner starts;
            // Kafka's copy serves lag monitors, so a failed commit is a warning, not an error.
            if offsets.count() > 0
                && let Err(e) = self.consumer.commit(&offsets, CommitMode::Async)
            {
                tracing::warn!(
                    "committing offsets to Kafka: {e} (the lake is committed; a restart starts after what it holds)"
                );
            }
        }
        if any {
            // The flush's batches, Parquet buffers and commit are freed: give that memory back.
            let started = Instant::now();
            crate::memory::release_free();
            tracing::debug!("malloc_trim after a flush: {:.1?}", started.elapsed());
        }
        Ok(())
    }
}

/// The first words of a reject reason, for counting by kind.
fn reason_kind(r: &Reject) -> String {
    r.reason.split(':').next().unwrap_or("").trim().to_string()
}

/// `0:10..=19, 1:5..=9`: the offsets of a flush, for messages.
fn ranges(jobs: &[Job]) -> String {
    let mut parts: Vec<(i32, i64, i64)> = jobs
        .iter()
        .map(|j| (j.partition, j.batch.first_offset, j.batch.last_offset))
        .collect();
    parts.sort_unstable();
    parts
        .iter()
        .map(|(p, a, b)| format!("{p}:{a}..={b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A data file to write: its key under the lake root, its record in the log, its rows.
struct Pending {
    key: String,
    file: DataFile,
    rows: arrow::record_batch::RecordBatch,
}

/// One flush: every batch's data files (names unique to this attempt), fsynced on a local
/// disk, then the rejects' commit (when there are new ones) and the ticks' commit, each ONE
/// Delta commit with a `txn` per Kafka partition. The rejects go first: a crash between the two
/// leaves rejects the next attempt skips (`rejects_next`), never ticks without their rejects.
async fn write_flush(
    lake: &Lake,
    tables: &SharedTables,
    topic: &str,
    mut jobs: Vec<Job>,
) -> Result<Vec<Written>, ConsumeError> {
    let ranges = ranges(&jobs);
    let flush_err = |source: LakeError| ConsumeError::Flush {
        topic: topic.to_string(),
        ranges: ranges.clone(),
        source: Box::new(source),
    };
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let mut pending = Vec::new();
    let mut written = Vec::new();
    let mut new_rejects: Vec<Reject> = Vec::new();
    let mut reject_txns = Vec::new();
    for job in &mut jobs {
        let (p, first, last) = (job.partition, job.batch.first_offset, job.batch.last_offset);
        let name = attempt_file_name(topic, p, first, &attempt[..16]);
        let mut rows = 0;
        let mut files = 0;
        for ((dir, builder), values) in job.batch.files.iter_mut().zip(&job.batch.values) {
            if builder.is_empty() {
                continue;
            }
            let batch = builder.finish();
            rows += batch.num_rows() as u64;
            files += 1;
            pending.push(Pending {
                key: format!("{TABLE_DIR}/{dir}/{name}"),
                file: DataFile {
                    path: format!("{dir}/{name}"),
                    size: 0,
                    partition_values: values.clone(),
                    rows: batch.num_rows() as u64,
                    stats: None,
                },
                rows: batch,
            });
        }
        let rejects: Vec<Reject> = std::mem::take(&mut job.batch.rejects)
            .into_iter()
            .filter(|r| job.rejects_next.is_none_or(|n| r.offset >= n))
            .collect();
        if !rejects.is_empty() {
            reject_txns.push(AppTxn {
                app_id: app_id(topic, p),
                version: last,
            });
            new_rejects.extend(rejects.iter().cloned());
        }
        written.push(Written {
            partition: p,
            next_offset: last + 1,
            rows,
            files,
            bytes: 0,
            rejects,
        });
    }
    let rejects_file = if new_rejects.is_empty() {
        None
    } else {
        let name = format!("part-{}-{attempt}.parquet", escape_value(topic));
        Some(Pending {
            key: format!("{REJECTS_TABLE_DIR}/{name}"),
            file: DataFile {
                path: name,
                size: 0,
                partition_values: Vec::new(),
                rows: new_rejects.len() as u64,
                stats: None,
            },
            rows: rejects::to_record_batch(&new_rejects),
        })
    };

    let (files, sizes) = write_files(lake, pending).await.map_err(flush_err)?;
    for (w, job) in written.iter_mut().zip(&jobs) {
        w.bytes = sizes
            .iter()
            .filter(|(p, _)| *p == job.partition)
            .map(|(_, n)| n)
            .sum();
    }
    let rejects_file = match rejects_file {
        Some(f) => Some(write_files(lake, vec![f]).await.map_err(flush_err)?.0),
        None => None,
    };
    if lake.is_local() {
        sync_local(lake, &files, rejects_file.iter().flatten())
            .await
            .map_err(flush_err)?;
    }
    let txns: Vec<AppTxn> = jobs
        .iter()
        .map(|j| AppTxn {
            app_id: app_id(topic, j.partition),
            version: j.batch.last_offset,
        })
        .collect();
    let mut tables = tables.lock().await;
    if let Some(files) = &rejects_file {
        tables
            .rejects
            .commit(files, &reject_txns)
            .await
            .map_err(flush_err)?;
    }
    let version = tables
        .ticks
        .commit(&files, &txns)
        .await
        .map_err(flush_err)?;
    tracing::debug!("committed version {version} of the ticks table ({ranges})");
    Ok(written)
}

/// Encodes each file to Parquet on the runtime's blocking threads and writes them
/// concurrently. Returns the files' records (with their sizes) and bytes per Kafka partition.
async fn write_files(
    lake: &Lake,
    files: Vec<Pending>,
) -> Result<(Vec<DataFile>, Vec<(i32, u64)>), LakeError> {
    let results: Vec<Result<(DataFile, i32, u64), LakeError>> =
        futures::stream::iter(files.into_iter().map(|f| {
            let lake = lake.clone();
            async move {
                let key = f.key.clone();
                let partition = kafka_partition(&f.rows);
                let rows = f.rows;
                // Statistics and encoding on a blocking thread: both read every value.
                let encoded = tokio::task::spawn_blocking(move || {
                    let stats = file_stats(std::slice::from_ref(&rows));
                    writer::encode(&[rows]).map(|bytes| (bytes, stats))
                });
                let (bytes, stats) = encoded
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|message| LakeError::Parquet {
                        key: key.clone(),
                        message,
                    })?;
                let n = bytes.len() as u64;
                lake.put(&key, bytes).await?;
                if lake.is_local() {
                    let path = lake.local_path(&key);
                    tokio::task::spawn_blocking(move || {
                        fsync(&path).map_err(|source| LakeError::Io { path, source })
                    })
                    .await
                    .map_err(|e| LakeError::Parquet {
                        key: key.clone(),
                        message: e.to_string(),
                    })??;
                }
                let mut file = f.file;
                file.size = n;
                file.stats = Some(stats);
                Ok((file, partition, n))
            }
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    let mut sizes = Vec::with_capacity(results.len());
    for r in results {
        let (file, partition, n) = r?;
        out.push(file);
        sizes.push((partition, n));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, sizes))
}

/// The Kafka partition of a file's rows (every row of a ticks file has the same one).
fn kafka_partition(rows: &arrow::record_batch::RecordBatch) -> i32 {
    use arrow::array::{Array, Int32Array};
    rows.column_by_name("kafka_partition")
        .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
        .filter(|a| !a.is_empty())
        .map_or(-1, |a| a.value(0))
}

/// On a local disk, makes the folders of the data files durable (every folder up to the lake
/// root: new partition folders must survive too) before the commit that names the files; the
/// files themselves are synced as they are written (`write_files`). The folders are synced
/// concurrently: the disk's journal commits concurrent syncs together.
async fn sync_local<'a>(
    lake: &Lake,
    ticks: &[DataFile],
    rejects: impl Iterator<Item = &'a DataFile>,
) -> Result<(), LakeError> {
    let mut paths: Vec<String> = ticks
        .iter()
        .map(|f| format!("{TABLE_DIR}/{}", f.path))
        .collect();
    paths.extend(rejects.map(|f| format!("{REJECTS_TABLE_DIR}/{}", f.path)));
    let root = lake.local_path("");
    let mut dirs = std::collections::BTreeSet::new();
    for rel in &paths {
        let mut dir = lake.local_path(rel).parent().map(|d| d.to_path_buf());
        while let Some(d) = dir {
            if !d.starts_with(&root) || !dirs.insert(d.clone()) {
                break;
            }
            dir = d.parent().map(|p| p.to_path_buf());
        }
    }
    let results: Vec<Result<(), LakeError>> = futures::stream::iter(dirs.into_iter().map(|d| {
        tokio::task::spawn_blocking(move || {
            fsync(&d).map_err(|source| LakeError::Io { path: d, source })
        })
    }))
    .buffer_unordered(16)
    .map(|joined| {
        joined.unwrap_or_else(|e| {
            Err(LakeError::Io {
                path: root.clone(),
                source: std::io::Error::other(e),
            })
        })
    })
    .collect()
    .await;
    results.into_iter().collect()
}

fn fsync(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}
