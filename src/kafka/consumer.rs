//! The consumer: a consumer-group member that batches events into Parquet files in the lake,
//! exactly once (see `lake::commit` and docs/exactly-once.md), quarantining bad events.
//!
//! Threads: the consumer loop runs on the calling thread, and librdkafka's rebalance callbacks
//! run on it too, inside `poll`. Messages come in batches from a queue of their own
//! (`fetch_queue`). A flush is handed to the tokio runtime (Parquet encoding, lake I/O) while
//! the loop reads on; at most one is in flight, and a revocation waits for it before the
//! partitions go, so no other owner can see a half-done flush of a live member.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::config::{KafkaSettings, client_err};
use super::fetch_queue::FetchQueue;
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
    /// in the lake (rare: reading starts after what the lake holds).
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
    /// When the first event arrived.
    pub first_event_at: Option<Instant>,
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
    /// Expected rows per directory (see `Slot::sizes`).
    sizes: HashMap<String, usize>,
}

struct SymbolFiles {
    day: i64,
    file: usize,
    days: HashMap<i64, usize>,
}

impl Batch {
    fn new(offset: i64, sizes: HashMap<String, usize>) -> Self {
        Batch {
            sizes,
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
                        let rows = self.sizes.get(&dir).copied().unwrap_or(0);
                        let capacity = rows.clamp(1024, MAX_BUILDER_CAPACITY);
                        self.files.push((
                            dir,
                            TickBatchBuilder::new(layout.symbol_in_file(), capacity),
                        ));
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
    /// Rows per directory in this partition's last flushed batch: the next batch's builders
    /// start that large instead of growing (and copying) their way there.
    sizes: HashMap<String, usize>,
}

/// State shared between the loop and the rebalance callbacks (same thread, never contended).
struct Shared {
    slots: Mutex<HashMap<i32, Slot>>,
    error: Mutex<Option<LakeError>>,
    assigned_at: Mutex<Instant>,
    /// The flush being written in the background while the loop reads on.
    in_flight: Mutex<Option<InFlight>>,
    /// A flush that a revocation waited for, for the loop to account.
    landed: Mutex<Vec<Landed>>,
}

/// A flush on its way into the lake.
struct InFlight {
    task: tokio::task::JoinHandle<Result<Vec<Written>, LakeError>>,
    started: Instant,
    events: usize,
}

/// A flush that is in the lake (or failed).
struct Landed {
    result: Result<Vec<Written>, LakeError>,
    started: Instant,
    events: usize,
}

impl InFlight {
    /// Waits for the flush to end.
    fn land(self, rt: &tokio::runtime::Handle) -> Landed {
        let result = rt
            .block_on(self.task)
            .unwrap_or_else(|e| Err(LakeError::FlushTask(e.to_string())));
        Landed {
            result,
            started: self.started,
            events: self.events,
        }
    }
}

struct Context {
    lake: Lake,
    topic: String,
    rt: tokio::runtime::Handle,
    shared: Arc<Shared>,
    /// Where assigned partitions' messages go (None before it exists and after it is gone).
    fetch: Mutex<Option<Arc<FetchQueue>>>,
    /// `auto.offset.reset` says earliest (the default): a partition new to the group and the
    /// lake starts at its first offset.
    reset_earliest: bool,
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::config::log_librdkafka(level, facility, message);
    }
}

impl ConsumerContext for Context {
    // Replaces rdkafka's default, which assigns with the offsets librdkafka looks up itself:
    // here every partition starts where the lake says (see `start_offsets`).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.prepare_assignment(consumer, tpl);
                let done = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = done {
                    tracing::error!("Kafka: assigning {tpl:?}: {e}");
                }
                // Only a real change restarts the idle clock: a cooperative rebalance that
                // hands this member nothing new comes with an empty list.
                if !tpl.elements_for_topic(&self.topic).is_empty() {
                    *lock(&self.shared.assigned_at) = Instant::now();
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.release(tpl);
                let done = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = done {
                    tracing::error!("Kafka: unassigning {tpl:?}: {e}");
                }
            }
            other => tracing::error!("Kafka: rebalance failed: {}", RDKafkaErrorCode::from(other)),
        }
    }
}

impl Context {
    /// Readies newly assigned partitions before librdkafka fetches them: routes them to the
    /// fetch queue, recovers their lake state and sets where each starts reading.
    fn prepare_assignment(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        if let Some(fetch) = lock(&self.fetch).as_ref() {
            for &p in &partitions {
                // SAFETY: the handle is live (we are in its callback) and made the queue.
                if !unsafe { fetch.route(consumer.client().native_ptr(), &self.topic, p) } {
                    tracing::debug!("partition {p} stays on the consumer queue");
                }
            }
        }
        let mut recovered = Vec::new();
        for &p in &partitions {
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
                            sizes: HashMap::new(),
                        },
                    );
                    recovered.push((p, lake_next));
                }
                Err(err) => {
                    lock(&self.shared.error).get_or_insert(err);
                }
            }
        }
        for (p, offset) in self.start_offsets(consumer, &recovered) {
            if let Err(e) = tpl.set_partition_offset(&self.topic, p, offset) {
                tracing::warn!("Kafka: partition {p}: {e}");
            }
        }
    }

    /// Where each partition starts: after what the lake holds; for a partition the lake has
    /// never seen, the group's committed offset, else (with `auto.offset.reset=earliest`) the
    /// partition's first offset. That is what librdkafka would choose, but looked up here in
    /// two requests: librdkafka's own lookup takes about 0.1 s more before the first fetch
    /// (measured on the embedded broker). Anything not found here stays librdkafka's to find.
    fn start_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        recovered: &[(i32, Option<i64>)],
    ) -> Vec<(i32, Offset)> {
        let mut starts = Vec::new();
        let mut unknown = TopicPartitionList::new();
        for &(p, lake_next) in recovered {
            match lake_next {
                Some(n) => starts.push((p, Offset::Offset(n))),
                None => {
                    unknown.add_partition(&self.topic, p);
                }
            }
        }
        if unknown.count() == 0 {
            return starts;
        }
        // One time budget for every lookup of this assignment: a slow cluster delays the
        // assignment by at most that, and what is not found in time is librdkafka's to find.
        let deadline = Instant::now() + LOOKUP_TIMEOUT;
        let left = || deadline.saturating_duration_since(Instant::now());
        let committed = match consumer.committed_offsets(unknown, left()) {
            Ok(tpl) => tpl,
            Err(e) => {
                tracing::debug!("Kafka: looking up committed offsets: {e}");
                return starts;
            }
        };
        for e in committed.elements_for_topic(&self.topic) {
            let p = e.partition();
            match e.offset() {
                Offset::Offset(n) if n >= 0 => starts.push((p, Offset::Offset(n))),
                _ if self.reset_earliest && !left().is_zero() => {
                    match consumer.fetch_watermarks(&self.topic, p, left()) {
                        Ok((low, _)) if low >= 0 => starts.push((p, Offset::Offset(low))),
                        Ok(_) => {}
                        Err(e) => tracing::debug!("Kafka: partition {p} watermarks: {e}"),
                    }
                }
                _ => {}
            }
        }
        starts
    }

    /// Before partitions go: lands the flush in flight, abandons their unflushed batches.
    fn release(&self, tpl: &TopicPartitionList) {
        // A flush in the background may hold batches of these partitions: it must be in the
        // lake before the next owner reads the lake's state.
        if let Some(flight) = lock(&self.shared.in_flight).take() {
            let landed = flight.land(&self.rt);
            lock(&self.shared.landed).push(landed);
        }
        let mut slots = lock(&self.shared.slots);
        for e in tpl.elements_for_topic(&self.topic) {
            // Nothing of an unflushed batch is in the lake: abandon it, the next owner reads
            // those events again from the lake's next offset.
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

/// How long `close` serves the consumer queue before leaving the rest to the drop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an assignment waits for offset lookups, in all, before leaving them to librdkafka.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Called after a flush with the partition directories written for the first time.
pub type PartitionHook = Box<dyn FnMut(&[String]) -> Result<(), Error>>;

/// The largest row capacity a batch builder starts with.
const MAX_BUILDER_CAPACITY: usize = 1 << 20;
/// Messages taken from the fetch queue per call.
const FETCH_BATCH: usize = 4096;
/// Empty answers from the consumer queue before the loop turns to the fetch queue.
const MAIN_QUEUE_POLLS: u32 = 32;

/// A running consumer.
pub struct LakeConsumer {
    consumer: BaseConsumer<Context>,
    fetch: Option<Arc<FetchQueue>>,
    fetch_buf: Vec<*mut rdkafka_sys::rd_kafka_message_t>,
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
            in_flight: Mutex::new(None),
            landed: Mutex::new(Vec::new()),
        });
        let config = kafka.consumer_config(&opts.group);
        let context = Context {
            lake: lake.clone(),
            topic: opts.topic.clone(),
            rt: rt.clone(),
            shared: shared.clone(),
            fetch: Mutex::new(None),
            reset_earliest: matches!(
                config.get("auto.offset.reset"),
                Some("earliest" | "smallest" | "beginning")
            ),
        };
        tracing::debug!("consumer settings: {}", KafkaSettings::describe(&config));
        let consumer: BaseConsumer<Context> = config
            .create_with_context(context)
            .map_err(client_err("creating the consumer"))?;
        // SAFETY: the consumer is live; `Drop for LakeConsumer` destroys the queue before it.
        let fetch = unsafe { FetchQueue::new(consumer.client().native_ptr()) }.map(Arc::new);
        *lock(&consumer.context().fetch) = fetch.clone();
        consumer
            .subscribe(&[&opts.topic])
            .map_err(client_err(format!("subscribing to {}", opts.topic)))?;
        Ok(LakeConsumer {
            consumer,
            fetch,
            fetch_buf: Vec::new(),
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
            // The consumer queue: rebalances (their callbacks run in here), errors, commit
            // results, log lines, and the messages of any partition that could not be routed
            // to the fetch queue. It only waits while nothing is assigned. `poll` answers None
            // both when the queue is empty and after serving an event that is not a message,
            // so it is asked a few times: an empty queue costs a lock each.
            let assigned = !lock(&self.inner.shared.slots).is_empty();
            let mut wait = if assigned {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            let mut quiet = 0;
            while quiet < MAIN_QUEUE_POLLS && self.inner.room() > 0 {
                match self.consumer.poll(wait) {
                    Some(Ok(m)) => {
                        last_event = Instant::now();
                        self.inner.take(
                            m.partition(),
                            m.offset(),
                            m.key(),
                            m.payload().unwrap_or_default(),
                        );
                    }
                    Some(Err(e)) => tracing::warn!("Kafka: {e}"),
                    None => quiet += 1,
                }
                wait = Duration::ZERO;
            }
            // The fetch queue, many messages a call. It waits briefly when empty; rebalances
            // wait at most that long.
            if assigned && let Some(fetch) = &self.fetch {
                let inner = &mut self.inner;
                let shared = inner.shared.clone();
                // Serving this queue runs no callbacks (rebalances stay on the consumer
                // queue), so the slots can stay locked for the whole batch.
                let mut slots = lock(&shared.slots);
                let taken = fetch.consume(
                    Duration::from_millis(100),
                    inner.room().min(FETCH_BATCH),
                    &mut self.fetch_buf,
                    |m| inner.take_into(&mut slots, m.partition, m.offset, m.key, m.payload),
                    |partition, e| tracing::warn!("Kafka, partition {partition}: {e}"),
                );
                drop(slots);
                if taken > 0 {
                    last_event = Instant::now();
                }
            }
            self.reap(false)?;
            if self.inner.should_flush() {
                self.reap(true)?;
                self.inner.start_flush();
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

    /// Writes every buffered batch with the commit protocol and waits until it is in the lake,
    /// then commits the offsets to Kafka.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.reap(true)?;
        self.inner.start_flush();
        self.reap(true)
    }

    /// Accounts for flushes that have landed: statistics, the lake's next offsets, the Kafka
    /// commit and partition registration. With `wait`, first waits for the one in flight.
    fn reap(&mut self, wait: bool) -> Result<(), Error> {
        let flight = {
            let mut slot = lock(&self.inner.shared.in_flight);
            match slot.as_ref() {
                Some(f) if wait || f.task.is_finished() => slot.take(),
                _ => None,
            }
        };
        let mut landed = std::mem::take(&mut *lock(&self.inner.shared.landed));
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

    /// Leaves the group (after `run` has flushed), so that the others take its partitions
    /// over at once. rdkafka does this too when the consumer is dropped, but waits for the
    /// end in steps of 100 ms; this serves the consumer queue in steps of 5 ms.
    pub fn close(self) {
        if self.consumer.close_queue().is_ok() {
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            while !self.consumer.closed() && Instant::now() < deadline {
                self.consumer.poll(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for LakeConsumer {
    fn drop(&mut self) {
        // The fetch queue goes before the client it belongs to (fields drop after this).
        lock(&self.consumer.context().fetch).take();
        self.fetch.take();
    }
}

impl Inner {
    fn take(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: &[u8]) {
        let shared = self.shared.clone();
        self.take_into(&mut lock(&shared.slots), partition, offset, key, value);
    }

    /// `take` with the slots already locked (once for a whole fetched batch).
    fn take_into(
        &mut self,
        slots: &mut HashMap<i32, Slot>,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: &[u8],
    ) {
        if self.stats.first_event_at.is_none() {
            let now = Instant::now();
            self.stats.first_event_at = Some(now);
            tracing::debug!(
                "first event {:.0?} after the assignment",
                now - *lock(&self.shared.assigned_at)
            );
        }
        let Some(slot) = slots.get_mut(&partition) else {
            return; // not ours (any more): the owner reads it
        };
        slot.position = offset + 1;
        if slot.lake_next.is_some_and(|next| offset < next) {
            self.stats.already_in_lake += 1;
            return;
        }
        let batch = slot
            .batch
            .get_or_insert_with(|| Batch::new(offset, std::mem::take(&mut slot.sizes)));
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

    /// How many more events the loop may take before it must flush or stop.
    fn room(&self) -> usize {
        let to_flush = self.opts.flush_rows.saturating_sub(self.buffered_events);
        match self.opts.max_events {
            Some(max) => {
                let read = self.stats.events + self.stats.already_in_lake;
                to_flush.min(usize::try_from(max.saturating_sub(read)).unwrap_or(usize::MAX))
            }
            None => to_flush,
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

    /// Hands every buffered batch to a background task that writes them with the commit
    /// protocol. The caller has reaped the previous flush, so at most one is in flight and a
    /// partition's batches land in offset order.
    fn start_flush(&mut self) {
        let batches: Vec<(i32, Batch)> = {
            let mut slots = lock(&self.shared.slots);
            slots
                .iter_mut()
                .filter_map(|(p, s)| {
                    let b = s.batch.take()?;
                    s.sizes = b.files.iter().map(|(d, f)| (d.clone(), f.len())).collect();
                    Some((*p, b))
                })
                .collect()
        };
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
            .collect::<Result<Vec<Written>, LakeError>>()
        });
        let previous = lock(&self.shared.in_flight).replace(InFlight {
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
    ) -> Result<TopicPartitionList, Error> {
        let mut offsets = TopicPartitionList::new();
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
            if let Some(slot) = lock(&self.shared.slots).get_mut(&w.partition) {
                slot.lake_next = Some(w.next_offset);
            }
            offsets
                .add_partition_offset(&self.opts.topic, w.partition, Offset::Offset(w.next_offset))
                .map_err(client_err("recording offsets"))?;
        }
        self.stats.flushes += 1;
        tracing::info!("flushed {events} events in {:.0?}", started.elapsed());
        Ok(offsets)
    }
}

/// The first words of a reject reason, for counting by kind.
fn reason_kind(r: &Reject) -> String {
    r.reason.split(':').next().unwrap_or("").trim().to_string()
}

struct Written {
    partition: i32,
    /// The first offset after the batch: what the lake now holds up to.
    next_offset: i64,
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
        partition,
        next_offset: batch.last_offset + 1,
        rows,
        files: file_count,
        bytes,
        rejects: std::mem::take(&mut batch.rejects),
        dirs,
    })
}
