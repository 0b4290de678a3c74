//! Flushing: buffered batches handed to a background task that runs steps 1-3 of the commit
//! protocol (`lake::commit`, docs/exactly-once.md), and the accounting when it has landed
//! (statistics, the lake's next offsets, the Kafka commit, partition registration).
//!
//! Ordering: at most one flush is in flight. The loop reaps the previous one before it starts
//! the next, and a revocation lands it before the partitions go, so a partition's batches
//! reach the lake in offset order and no other owner sees a half-done flush of a live member.

use std::time::Instant;

use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::batch::Batch;
use super::{Inner, LakeConsumer};
use crate::kafka::error::{ConsumeError, KafkaError};
use crate::lake::commit::{self, PartitionState, PendingBatch};
use crate::lake::layout::{TABLE_DIR, file_name};
use crate::lake::rejects::{Reject, rejects_key};
use crate::lake::{Lake, LakeError, writer};

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
    dirs: Vec<String>,
}

impl Inner {
    /// Hands every buffered batch to a background task that writes them with the commit
    /// protocol. The caller has reaped the previous flush, so at most one is in flight and a
    /// partition's batches land in offset order.
    pub(super) fn start_flush(&mut self) {
        let mut state = self.shared.lock();
        let batches: Vec<(i32, Batch)> = state
            .slots
            .iter_mut()
            .filter_map(|(p, s)| {
                let b = s.batch.take()?;
                s.sizes = b.files.iter().map(|(d, f)| (d.clone(), f.len())).collect();
                Some((*p, b))
            })
            .collect();
        self.buffered_events = 0;
        self.buffered_bytes = 0;
        self.oldest = None;
        if batches.is_empty() {
            return;
        }
        let events = batches.iter().map(|(_, b)| b.events).sum();
        tracing::debug!("flushing {events} events of {} partitions", batches.len());
        let lake = self.lake.clone();
        let topic = self.opts.topic.clone();
        let task = self.rt.spawn(async move {
            futures::stream::iter(
                batches
                    .into_iter()
                    .map(|(partition, batch)| write_batch(&lake, &topic, partition, batch)),
            )
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<Written>, ConsumeError>>()
        });
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
            for r in w.rejects {
                *self
                    .stats
                    .reject_reasons
                    .entry(reason_kind(&r))
                    .or_default() += 1;
            }
            for dir in w.dirs {
                if self.known_dirs.insert(dir.clone()) {
                    self.new_dirs.push(dir);
                }
            }
            // Still ours: the lake now holds everything before `next`.
            if let Some(slot) = state.slots.get_mut(&w.partition) {
                slot.lake_next = Some(w.next_offset);
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
        tracing::info!("flushed {events} events in {:.0?}", started.elapsed());
        Ok(offsets)
    }
}

impl LakeConsumer {
    /// Accounts for flushes that have landed: statistics, the lake's next offsets, the Kafka
    /// commit and partition registration. With `wait`, first waits for the one in flight.
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
        for l in landed {
            let written = l.result?;
            let offsets = self.inner.account(written, l.events, l.started)?;
            // The lake already holds these offsets and is where the next owner starts; Kafka's
            // copy serves lag monitors and lookups that time out, so a failed commit is a
            // warning, not an error.
            if offsets.count() > 0
                && let Err(e) = self.consumer.commit(&offsets, CommitMode::Async)
            {
                tracing::warn!(
                    "committing offsets to Kafka: {e} (the lake is committed; a restart starts after what it holds)"
                );
            }
        }
        let new_dirs = std::mem::take(&mut self.inner.new_dirs);
        if let Some(hook) = self.on_new_partitions.as_mut()
            && !new_dirs.is_empty()
        {
            hook(&new_dirs).map_err(|source| ConsumeError::Hook {
                dirs: new_dirs,
                source,
            })?;
        }
        Ok(())
    }
}

/// The first words of a reject reason, for counting by kind.
fn reason_kind(r: &Reject) -> String {
    r.reason.split(':').next().unwrap_or("").trim().to_string()
}

/// Steps 1-3 of the commit protocol for one batch of one Kafka partition.
async fn write_batch(
    lake: &Lake,
    topic: &str,
    partition: i32,
    batch: Batch,
) -> Result<Written, ConsumeError> {
    let (first_offset, last_offset) = (batch.first_offset, batch.last_offset);
    commit_batch(lake, topic, partition, batch)
        .await
        .map_err(|source| ConsumeError::Flush {
            topic: topic.to_string(),
            partition,
            first_offset,
            last_offset,
            source: Box::new(source),
        })
}

async fn commit_batch(
    lake: &Lake,
    topic: &str,
    partition: i32,
    mut batch: Batch,
) -> Result<Written, LakeError> {
    let name = file_name(topic, partition, batch.first_offset);
    let mut files: Vec<(String, String, arrow::record_batch::RecordBatch)> = batch
        .files
        .iter_mut()
        .filter(|(_, b)| !b.is_empty())
        .map(|(dir, b)| (dir.clone(), format!("{TABLE_DIR}/{dir}/{name}"), b.finish()))
        .collect();
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let rejects_object =
        (!batch.rejects.is_empty()).then(|| rejects_key(topic, partition, batch.first_offset));
    let mut objects: Vec<String> = files.iter().map(|f| f.1.clone()).collect();
    objects.extend(rejects_object.clone());

    // 1. Intent: what this batch is about to write.
    let previous_next = commit::load(lake, topic, partition)
        .await?
        .map(|s| s.next_offset);
    let pending = PartitionState {
        next_offset: previous_next.unwrap_or(batch.first_offset),
        pending: Some(PendingBatch {
            first_offset: batch.first_offset,
            last_offset: batch.last_offset,
            objects,
        }),
    };
    commit::store(lake, topic, partition, &pending).await?;

    // 2. Data files (encoded on the runtime's threads, written concurrently) and rejects.
    let rows: u64 = files.iter().map(|f| f.2.num_rows() as u64).sum();
    let dirs: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    let file_count = files.len() as u64;
    let bytes = write_files(lake, files).await?;
    if let Some(key) = &rejects_object {
        let mut text = Vec::new();
        for r in &batch.rejects {
            serde_json::to_writer(&mut text, r).expect("reject serialises");
            text.push(b'\n');
        }
        lake.put(key, text.into()).await?;
    }

    // 3. Commit point.
    commit::store(
        lake,
        topic,
        partition,
        &PartitionState {
            next_offset: batch.last_offset + 1,
            pending: None,
        },
    )
    .await?;
    Ok(Written {
        partition,
        next_offset: batch.last_offset + 1,
        rows,
        files: file_count,
        bytes,
        rejects: std::mem::take(&mut batch.rejects),
        dirs,
    })
}

/// Step 2's data files, (directory, key, rows) each: encoded to Parquet on the runtime's
/// blocking threads and written concurrently. Returns the bytes written.
async fn write_files(
    lake: &Lake,
    files: Vec<(String, String, arrow::record_batch::RecordBatch)>,
) -> Result<u64, LakeError> {
    let results: Vec<Result<u64, LakeError>> =
        futures::stream::iter(files.into_iter().map(|(_, key, rb)| {
            let lake = lake.clone();
            async move {
                let encode_key = key.clone();
                let bytes = tokio::task::spawn_blocking(move || writer::encode(&[rb]))
                    .await
                    .map_err(|e| LakeError::Parquet {
                        key: encode_key.clone(),
                        message: e.to_string(),
                    })?
                    .map_err(|e| LakeError::Parquet {
                        key: encode_key,
                        message: e.to_string(),
                    })?;
                let n = bytes.len() as u64;
                lake.put(&key, bytes).await?;
                Ok(n)
            }
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    Ok(bytes)
}
