//! The consumer: a consumer-group member that batches events into Parquet files in the lake,
//! exactly once (see `lake::commit` and docs/exactly-once.md), quarantining bad events.
//!
//! Threads: the consumer loop runs on the calling thread (librdkafka's rebalance callbacks run
//! on it too, inside `poll`); lake I/O and Parquet encoding run on a tokio runtime that the loop
//! blocks on during a flush, so no callback can interleave with a half-done flush.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::config::{KafkaSettings, client_err};
use crate::error::{Error, LakeError};
use crate::lake::commit::{self, PartitionState, PendingBatch};
use crate::lake::layout::PartitionKey;
use crate::lake::layout::{TABLE_DIR, file_name};
use crate::lake::rejects::{Reject, rejects_key};
use crate::lake::{Lake, TableLayout, writer};
use crate::tick::{MS_PER_DAY, TickBatchBuilder, TickRef};

#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    pub topic: String,
    pub group: String,
    /// Flush when this many events are buffered (all partitions together).
    pub flush_rows: usize,
    /// Flush when the buffered events' payloads reach this many bytes.
    pub flush_bytes: usize,
    /// Flush when the oldest buffered event has waited this long.
    pub flush_interval: Duration,
    /// Events larger than this are rejected as oversized.
    pub max_event_bytes: usize,
    /// Stop (after a last flush) when no event arrived for this long and every assigned
    /// partition has been read to its end.
    pub exit_when_idle: Option<Duration>,
    /// Stop once this many events were read: committed as rows or rejects, or found already
    /// in the lake.
    pub max_events: Option<u64>,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            topic: "ticks".into(),
            group: "stocklake".into(),
            flush_rows: 500_000,
            flush_bytes: 64 << 20,
            flush_interval: Duration::from_secs(5),
            max_event_bytes: 64 << 10,
            exit_when_idle: None,
            max_events: None,
        }
    }
}

/// Running totals, for the status line and the summary.
#[derive(Debug, Clone, Default)]
pub struct ConsumeStats {
    /// Events taken from Kafka into a batch (good and bad).
    pub events: u64,
    /// Rows committed to the lake.
    pub rows: u64,
    /// Bad events committed to `_rejects/`.
    pub rejects: u64,
    /// Data files committed.
    pub files: u64,
    pub bytes: u64,
    pub flushes: u64,
    /// Events skipped because the lake already held them (replays after a crash).
    pub already_in_lake: u64,
    /// Sum over assigned partitions of (high watermark - next offset to read).
    pub lag: i64,
    /// Reasons of the rejects, counted by their first words.
    pub reject_reasons: HashMap<String, u64>,
}

/// Events of one Kafka partition waiting for the next flush.
struct Batch {
    first_offset: i64,
    last_offset: i64,
    /// One file per partition directory: (directory, rows).
    files: Vec<(String, TickBatchBuilder)>,
    /// File index by directory.
    by_dir: HashMap<String, usize>,
    /// File index by symbol and day, so that most events find their file without building the
    /// directory name: the last day seen and its file, then every day seen.
    by_symbol: HashMap<String, SymbolFiles>,
    rejects: Vec<Reject>,
    events: usize,
}

struct SymbolFiles {
    day: i64,
    file: usize,
    days: HashMap<i64, usize>,
}

impl Batch {
    fn new(offset: i64) -> Self {
        Batch {
            first_offset: offset,
            last_offset: offset,
            files: Vec::new(),
            by_dir: HashMap::new(),
            by_symbol: HashMap::new(),
            rejects: Vec::new(),
            events: 0,
        }
    }

    /// The builder of the tick's partition directory. `day` is the tick's UTC day, or 0 when
    /// the layout has no time key (then the symbol alone decides).
    fn builder(
        &mut self,
        layout: &TableLayout,
        tick: &TickRef<'_>,
        day: i64,
    ) -> &mut TickBatchBuilder {
        let cached = match self.by_symbol.get_mut(tick.symbol.as_ref()) {
            Some(s) if s.day == day => Some(s.file),
            Some(s) => s.days.get(&day).copied().inspect(|&f| {
                s.day = day;
                s.file = f;
            }),
            None => None,
        };
        let file = match cached {
            Some(f) => f,
            None => {
                let dir = layout.partition_dir(&tick.symbol, tick.event_time);
                let file = match self.by_dir.get(&dir) {
                    Some(&f) => f,
                    None => {
                        let f = self.files.len();
                        self.by_dir.insert(dir.clone(), f);
                        self.files
                            .push((dir, TickBatchBuilder::new(layout.symbol_in_file(), 1024)));
                        f
                    }
                };
                let s = self
                    .by_symbol
                    .entry(tick.symbol.to_string())
                    .or_insert_with(|| SymbolFiles {
                        day,
                        file,
                        days: HashMap::new(),
                    });
                s.day = day;
                s.file = file;
                s.days.insert(day, file);
                file
            }
        };
        &mut self.files[file].1
    }
}

struct Slot {
    /// First offset the lake does not hold (None: the lake never saw this partition).
    lake_next: Option<i64>,
    /// Next offset expected from Kafka (for the lag).
    position: i64,
    batch: Option<Batch>,
}

/// State shared between the loop and the rebalance callbacks (same thread, never contended).
struct Shared {
    slots: Mutex<HashMap<i32, Slot>>,
    error: Mutex<Option<LakeError>>,
    assigned_at: Mutex<Instant>,
}

struct Context {
    lake: Lake,
    topic: String,
    rt: tokio::runtime::Handle,
    shared: Arc<Shared>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut slots = lock(&self.shared.slots);
            for e in tpl.elements_for_topic(&self.topic) {
                // Nothing of an unflushed batch is in the lake: abandon it, the next owner
                // reads those events again from the committed offset.
                if let Some(slot) = slots.remove(&e.partition())
                    && let Some(b) = slot.batch
                {
                    tracing::info!(
                        "partition {} revoked: abandoning {} unflushed events ({}..={})",
                        e.partition(),
                        b.events,
                        b.first_offset,
                        b.last_offset
                    );
                }
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::debug!("rebalance: {rebalance:?}");
        if let Rebalance::Assign(tpl) = rebalance {
            for e in tpl.elements_for_topic(&self.topic) {
                let p = e.partition();
                match self
                    .rt
                    .block_on(commit::recover(&self.lake, &self.topic, p))
                {
                    Ok(lake_next) => {
                        tracing::info!(
                            "partition {p} assigned; the lake holds offsets before {lake_next:?}"
                        );
                        lock(&self.shared.slots).insert(
                            p,
                            Slot {
                                lake_next,
                                position: lake_next.unwrap_or(0),
                                batch: None,
                            },
                        );
                    }
                    Err(err) => {
                        lock(&self.shared.error).get_or_insert(err);
                    }
                }
            }
            // Only a real change restarts the idle clock: a cooperative rebalance that hands
            // this member nothing new calls this with an empty list.
            if !tpl.elements_for_topic(&self.topic).is_empty() {
                *lock(&self.shared.assigned_at) = Instant::now();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Called after a flush with the partition directories written for the first time.
pub type PartitionHook = Box<dyn FnMut(&[String]) -> Result<(), Error>>;

/// A running consumer.
pub struct LakeConsumer {
    consumer: BaseConsumer<Context>,
    inner: Inner,
    on_new_partitions: Option<PartitionHook>,
}

/// Everything but the Kafka handle, so that a polled message (which borrows the handle) can be
/// taken into a batch.
struct Inner {
    shared: Arc<Shared>,
    lake: Lake,
    layout: TableLayout,
    /// Whether a time key is in the layout (then the day of an event matters for its file).
    time_partitioned: bool,
    opts: ConsumeOptions,
    rt: tokio::runtime::Handle,
    stats: ConsumeStats,
    buffered_events: usize,
    buffered_bytes: usize,
    oldest: Option<Instant>,
    /// Partition directories this process has written into (for partition registration).
    known_dirs: HashSet<String>,
    new_dirs: Vec<String>,
}

impl LakeConsumer {
    pub fn new(
        kafka: &KafkaSettings,
        lake: Lake,
        layout: TableLayout,
        opts: ConsumeOptions,
        rt: tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            slots: Mutex::new(HashMap::new()),
            error: Mutex::new(None),
            assigned_at: Mutex::new(Instant::now()),
        });
        let context = Context {
            lake: lake.clone(),
            topic: opts.topic.clone(),
            rt: rt.clone(),
            shared: shared.clone(),
        };
        let config = kafka.consumer_config(&opts.group);
        tracing::debug!("consumer settings: {}", KafkaSettings::describe(&config));
        let consumer: BaseConsumer<Context> = config
            .create_with_context(context)
            .map_err(client_err("creating the consumer"))?;
        consumer
            .subscribe(&[&opts.topic])
            .map_err(client_err(format!("subscribing to {}", opts.topic)))?;
        Ok(LakeConsumer {
            consumer,
            on_new_partitions: None,
            inner: Inner {
                shared,
                lake,
                time_partitioned: layout
                    .partition_by
                    .iter()
                    .any(|k| *k != PartitionKey::Symbol),
                layout,
                opts,
                rt,
                stats: ConsumeStats::default(),
                buffered_events: 0,
                buffered_bytes: 0,
                oldest: None,
                known_dirs: HashSet::new(),
                new_dirs: Vec::new(),
            },
        })
    }

    pub fn stats(&self) -> &ConsumeStats {
        &self.inner.stats
    }

    /// Calls `hook` after each flush that wrote into partition directories this process had
    /// not written before (e.g. to register them in Glue). An error stops the consumer; the
    /// batch is already committed, so a restart registers the partition again.
    pub fn on_new_partitions(&mut self, hook: PartitionHook) {
        self.on_new_partitions = Some(hook);
    }

    /// Consumes until `stop` is set or the idle limit passes, then flushes and commits.
    /// `on_status` is called about four times a second.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_status: impl FnMut(&ConsumeStats),
    ) -> Result<(), Error> {
        let mut last_status = Instant::now();
        let mut last_event = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(err) = lock(&self.inner.shared.error).take() {
                return Err(err.into());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last_event = Instant::now();
                    self.inner.take(
                        m.partition(),
                        m.offset(),
                        m.key(),
                        m.payload().unwrap_or_default(),
                    );
                    // Drain what is already fetched without waiting.
                    while self.inner.buffered_events < self.inner.opts.flush_rows
                        && self.inner.opts.max_events.is_none_or(|m| {
                            self.inner.stats.events + self.inner.stats.already_in_lake < m
                        })
                    {
                        match self.consumer.poll(Duration::ZERO) {
                            Some(Ok(m)) => self.inner.take(
                                m.partition(),
                                m.offset(),
                                m.key(),
                                m.payload().unwrap_or_default(),
                            ),
                            Some(Err(e)) => {
                                tracing::warn!("Kafka: {e}");
                                break;
                            }
                            None => break,
                        }
                    }
                }
                Some(Err(e)) => tracing::warn!("Kafka: {e}"),
                None => {}
            }
            if self.inner.should_flush() {
                self.flush()?;
            }
            if let Some(max) = self.inner.opts.max_events
                && self.inner.stats.events + self.inner.stats.already_in_lake >= max
            {
                break;
            }
            if let Some(idle) = self.inner.opts.exit_when_idle {
                // Idle: nothing new for `idle`, and every assigned partition read to its end.
                let since = last_event.max(*lock(&self.inner.shared.assigned_at));
                if since.elapsed() >= idle && self.caught_up() {
                    break;
                }
            }
            if last_status.elapsed() >= Duration::from_millis(250) {
                last_status = Instant::now();
                self.update_lag();
                on_status(&self.inner.stats);
            }
        }
        self.flush()?;
        if let Some(err) = lock(&self.inner.shared.error).take() {
            return Err(err.into());
        }
        self.update_lag();
        on_status(&self.inner.stats);
        Ok(())
    }

    /// Writes every buffered batch with the commit protocol, then commits the offsets to Kafka.
    pub fn flush(&mut self) -> Result<(), Error> {
        let Some(offsets) = self.inner.flush()? else {
            return Ok(());
        };
        // The lake already holds these offsets; Kafka's copy only saves re-reading after a
        // restart, so a failed commit is a warning, not an error.
        if let Err(e) = self.consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!(
                "committing offsets to Kafka: {e} (the lake is committed; a restart re-reads and skips)"
            );
        }
        let new_dirs = std::mem::take(&mut self.inner.new_dirs);
        if let Some(hook) = self.on_new_partitions.as_mut()
            && !new_dirs.is_empty()
        {
            hook(&new_dirs)?;
        }
        Ok(())
    }

    /// Lag per assigned partition: cached high watermark minus librdkafka's fetch position
    /// (None while either is unknown, e.g. before the first fetch response).
    fn partition_lags(&self) -> Vec<Option<i64>> {
        let positions = self.consumer.position().ok();
        let slots = lock(&self.inner.shared.slots);
        let topic = std::ffi::CString::new(self.inner.opts.topic.as_str()).unwrap_or_default();
        slots
            .iter()
            .map(|(p, s)| {
                let (mut low, mut high) = (-1i64, -1i64);
                // SAFETY: valid handle and C string; librdkafka answers from its cached
                // watermarks without a network round trip.
                let err = unsafe {
                    rdkafka_sys::rd_kafka_get_watermark_offsets(
                        self.consumer.client().native_ptr(),
                        topic.as_ptr(),
                        *p,
                        &mut low,
                        &mut high,
                    )
                };
                let fetched = positions
                    .as_ref()
                    .and_then(|tpl| tpl.find_partition(&self.inner.opts.topic, *p))
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
                let position = fetched.unwrap_or(s.position).max(s.position);
                (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
                    .then(|| (high - position).max(0))
            })
            .collect()
    }

    fn update_lag(&mut self) {
        self.inner.stats.lag = self.partition_lags().into_iter().flatten().sum();
    }

    /// Every assigned partition read to its end (as far as librdkafka's cached watermarks say).
    fn caught_up(&self) -> bool {
        let lags = self.partition_lags();
        !lags.is_empty() && lags.iter().all(|l| *l == Some(0))
    }

    /// Leaves the group (after `run` has flushed).
    pub fn close(self) {
        self.consumer.unsubscribe();
    }
}

impl Inner {
    fn take(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: &[u8]) {
        let mut slots = lock(&self.shared.slots);
        let Some(slot) = slots.get_mut(&partition) else {
            return; // not ours (any more): the owner reads it
        };
        slot.position = offset + 1;
        if slot.lake_next.is_some_and(|next| offset < next) {
            self.stats.already_in_lake += 1;
            return;
        }
        let batch = slot.batch.get_or_insert_with(|| Batch::new(offset));
        batch.last_offset = offset;
        batch.events += 1;
        self.stats.events += 1;
        self.buffered_events += 1;
        self.buffered_bytes += value.len();
        self.oldest.get_or_insert_with(Instant::now);
        let decoded = if value.len() > self.opts.max_event_bytes {
            Err(format!(
                "oversized: {} bytes, the limit is {}",
                value.len(),
                self.opts.max_event_bytes
            ))
        } else {
            TickRef::decode_json(value).map_err(|e| e.to_string())
        };
        match decoded {
            Ok(tick) => {
                let day = if self.time_partitioned {
                    tick.event_time.div_euclid(MS_PER_DAY)
                } else {
                    0
                };
                batch
                    .builder(&self.layout, &tick, day)
                    .push_ref(&tick, partition, offset);
            }
            Err(reason) => {
                batch.rejects.push(Reject::new(
                    &self.opts.topic,
                    partition,
                    offset,
                    reason,
                    key,
                    value,
                ));
            }
        }
    }

    fn should_flush(&self) -> bool {
        self.buffered_events > 0
            && (self.buffered_events >= self.opts.flush_rows
                || self.buffered_bytes >= self.opts.flush_bytes
                || self
                    .oldest
                    .is_some_and(|t| t.elapsed() >= self.opts.flush_interval))
    }

    /// Writes every buffered batch with the commit protocol; returns the offsets to commit.
    fn flush(&mut self) -> Result<Option<TopicPartitionList>, Error> {
        let batches: Vec<(i32, Batch)> = {
            let mut slots = lock(&self.shared.slots);
            slots
                .iter_mut()
                .filter_map(|(p, s)| s.batch.take().map(|b| (*p, b)))
                .collect()
        };
        self.buffered_events = 0;
        self.buffered_bytes = 0;
        self.oldest = None;
        if batches.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        let events: usize = batches.iter().map(|(_, b)| b.events).sum();
        let mut offsets = TopicPartitionList::new();
        for (partition, batch) in batches {
            let next = batch.last_offset + 1;
            let written =
                self.rt
                    .block_on(write_batch(&self.lake, &self.opts.topic, partition, batch))?;
            self.stats.rows += written.rows;
            self.stats.files += written.files;
            self.stats.bytes += written.bytes;
            self.stats.rejects += written.rejects.len() as u64;
            for r in written.rejects {
                *self
                    .stats
                    .reject_reasons
                    .entry(reason_kind(&r))
                    .or_default() += 1;
            }
            for dir in written.dirs {
                if self.known_dirs.insert(dir.clone()) {
                    self.new_dirs.push(dir);
                }
            }
            if let Some(slot) = lock(&self.shared.slots).get_mut(&partition) {
                slot.lake_next = Some(next);
            }
            offsets
                .add_partition_offset(&self.opts.topic, partition, Offset::Offset(next))
                .map_err(client_err("recording offsets"))?;
        }
        self.stats.flushes += 1;
        tracing::info!("flushed {events} events in {:.0?}", started.elapsed());
        Ok(Some(offsets))
    }
}

/// The first words of a reject reason, for counting by kind.
fn reason_kind(r: &Reject) -> String {
    r.reason.split(':').next().unwrap_or("").trim().to_string()
}

struct Written {
    rows: u64,
    files: u64,
    bytes: u64,
    rejects: Vec<Reject>,
    dirs: Vec<String>,
}

/// Steps 1-3 of the commit protocol for one batch of one Kafka partition.
async fn write_batch(
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
        rows,
        files: file_count,
        bytes,
        rejects: std::mem::take(&mut batch.rejects),
        dirs,
    })
}
