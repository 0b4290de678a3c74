//! The consumer: a consumer-group member that batches events into Parquet files in the lake,
//! exactly once (see `lake::commit` and docs/exactly-once.md), quarantining bad events.
//!
//! Threads: the consumer loop runs on the calling thread, and librdkafka's rebalance callbacks
//! run on it too, inside `poll`. Messages come in batches from a queue of their own
//! (`fetch_queue`). A flush is handed to the tokio runtime (Parquet encoding, lake I/O) while
//! the loop reads on; at most one is in flight, and a revocation waits for it before the
//! partitions go, so no other owner can see a half-done flush of a live member.
//!
//! Files: this one holds the public API and the loop; `options` what it is asked and reports,
//! `state` what the loop and the callbacks share (and its locking rules), `batch` how events
//! are routed into batches and when to flush, `flush` the commit protocol's steps, `rebalance`
//! the rdkafka context and its callbacks, `lag` the lag from librdkafka's watermarks.

mod batch;
mod flush;
mod lag;
mod options;
mod rebalance;
mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::config::{KafkaSettings, client_err};
use super::error::ConsumeError;
use super::fetch_queue::FetchQueue;
use crate::lake::delta::{TicksTable, rejects_url, ticks_url};
use crate::lake::layout::PartitionKey;
use crate::lake::{Lake, TableLayout};
use flush::{SharedTables, Tables};
pub use options::{ConsumeOptions, ConsumeStats};
use rebalance::Context;
use state::Shared;

/// How long `close` serves the consumer queue before leaving the rest to the drop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages taken from the fetch queue per call.
const FETCH_BATCH: usize = 4096;
/// How long the fetch queue waits when empty (and so how long a rebalance waits at most).
const FETCH_WAIT: Duration = Duration::from_millis(100);
/// Empty answers from the consumer queue before the loop turns to the fetch queue.
const MAIN_QUEUE_POLLS: u32 = 32;
/// How often `run` reports its statistics.
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// A running consumer.
pub struct LakeConsumer {
    consumer: BaseConsumer<Context>,
    fetch: Option<Arc<FetchQueue>>,
    fetch_buf: Vec<*mut rdkafka_sys::rd_kafka_message_t>,
    inner: Inner,
}

/// Everything but the Kafka handle, so that a polled message (which borrows the handle) can be
/// taken into a batch.
struct Inner {
    shared: Arc<Shared>,
    lake: Lake,
    /// The ticks and rejects tables this member commits to.
    tables: SharedTables,
    layout: TableLayout,
    /// Whether a time key is in the layout (then the day of an event matters for its file).
    time_partitioned: bool,
    opts: ConsumeOptions,
    rt: tokio::runtime::Handle,
    stats: ConsumeStats,
    buffered_events: usize,
    buffered_bytes: usize,
    oldest: Option<Instant>,
    /// Prometheus instruments, when `--metrics` serves them.
    metrics: Option<Arc<crate::metrics::ConsumerMetrics>>,
}

impl LakeConsumer {
    /// A consumer of `opts.topic` into the lake's Delta tables, which are created when missing
    /// (the ticks table with `layout`, else the default layout). An existing ticks table keeps
    /// its layout; `layout`, when given, must be it.
    pub fn new(
        kafka: &KafkaSettings,
        lake: Lake,
        layout: Option<TableLayout>,
        opts: ConsumeOptions,
        rt: tokio::runtime::Handle,
    ) -> Result<Self, ConsumeError> {
        let url = lake.url.as_str();
        let (ticks, layout) = rt.block_on(async {
            TicksTable::open_for_writing(&ticks_url(url)?, layout.as_ref()).await
        })?;
        let rejects =
            rt.block_on(async { TicksTable::open_or_create_rejects(&rejects_url(url)?).await })?;
        let tables: SharedTables = Arc::new(tokio::sync::Mutex::new(Tables { ticks, rejects }));
        let shared = Arc::new(Shared::new());
        let config = kafka.consumer_config(&opts.group);
        let context = Context {
            tables: tables.clone(),
            reset_lake_offsets: opts.reset_lake_offsets,
            topic: opts.topic.clone(),
            rt: rt.clone(),
            shared: shared.clone(),
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
        shared.lock().fetch = fetch.clone();
        consumer
            .subscribe(&[&opts.topic])
            .map_err(client_err(format!("subscribing to topic {}", opts.topic)))?;
        Ok(LakeConsumer {
            consumer,
            fetch,
            fetch_buf: Vec::new(),
            inner: Inner {
                shared,
                lake,
                tables,
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
                metrics: None,
            },
        })
    }

    /// Keeps `metrics` up to date: totals and partitions about four times a second, each
    /// commit as it lands.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::ConsumerMetrics>) -> Self {
        self.inner.metrics = Some(metrics);
        self
    }

    pub fn stats(&self) -> &ConsumeStats {
        &self.inner.stats
    }

    /// The ticks table's layout (the table's own when it existed).
    pub fn layout(&self) -> &TableLayout {
        &self.inner.layout
    }

    /// Consumes until `stop` is set or the idle limit passes, then flushes and commits.
    /// `on_status` is called about four times a second.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_status: impl FnMut(&ConsumeStats),
    ) -> Result<(), ConsumeError> {
        let mut last_status = Instant::now();
        let mut last_event = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (error, assigned) = {
                let mut state = self.inner.shared.lock();
                (state.error.take(), !state.slots.is_empty())
            };
            if let Some(err) = error {
                return Err(err);
            }
            if self.read_consumer_queue(assigned) {
                last_event = Instant::now();
            }
            if assigned && self.read_fetch_queue() > 0 {
                last_event = Instant::now();
            }
            self.seek_rewound();
            self.reap(false)?;
            if self.inner.should_flush() {
                self.reap(true)?;
                self.inner.start_flush();
            }
            if self.inner.read_enough() {
                break;
            }
            if let Some(idle) = self.inner.opts.exit_when_idle {
                // Idle: nothing new for `idle`, and every assigned partition read to its end.
                let since = last_event.max(self.inner.shared.lock().assigned_at);
                if since.elapsed() >= idle && self.caught_up() {
                    break;
                }
            }
            if last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                self.update_lag();
                on_status(&self.inner.stats);
            }
        }
        self.flush()?;
        let error = self.inner.shared.lock().error.take();
        if let Some(err) = error {
            return Err(err);
        }
        self.update_lag();
        on_status(&self.inner.stats);
        Ok(())
    }

    /// Serves the consumer queue: rebalances (their callbacks run in here), errors, commit
    /// results, log lines, and the messages of any partition that could not be routed to the
    /// fetch queue. It only waits while nothing is `assigned`. `poll` answers None both when
    /// the queue is empty and after serving an event that is not a message, so it is asked a
    /// few times: an empty queue costs a lock each. True when a message was taken.
    fn read_consumer_queue(&mut self, assigned: bool) -> bool {
        let mut wait = if assigned {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        };
        let mut took = false;
        let mut quiet = 0;
        while quiet < MAIN_QUEUE_POLLS && self.inner.room() > 0 {
            match self.consumer.poll(wait) {
                Some(Ok(m)) => {
                    took = true;
                    self.inner
                        .take(m.partition(), m.offset(), m.key(), m.payload());
                }
                Some(Err(e)) => tracing::warn!("Kafka: {e}"),
                None => quiet += 1,
            }
            wait = Duration::ZERO;
        }
        took
    }

    /// Serves the fetch queue, many messages a call; it waits up to `FETCH_WAIT` when empty
    /// (rebalances wait at most that long). Returns how many messages were taken.
    fn read_fetch_queue(&mut self) -> usize {
        let Some(fetch) = &self.fetch else {
            return 0;
        };
        let inner = &mut self.inner;
        let shared = inner.shared.clone();
        // Serving this queue runs no callbacks (rebalances stay on the consumer queue), so the
        // state stays locked for the whole batch: one lock per batch, not per event.
        let mut state = shared.lock();
        fetch.consume(
            FETCH_WAIT,
            inner.room().min(FETCH_BATCH),
            &mut self.fetch_buf,
            |m| inner.take_into(&mut state, m.partition, m.offset, m.key, m.payload),
            |partition, e| tracing::warn!("Kafka, partition {partition}: {e}"),
        )
    }

    /// Seeks partitions whose offsets went backwards (see `take_into`) back to what the lake
    /// holds, so their events are read again in order.
    fn seek_rewound(&mut self) {
        let rewound: Vec<(i32, Option<i64>)> = {
            let mut state = self.inner.shared.lock();
            state
                .slots
                .iter_mut()
                .filter(|(_, s)| s.rewind)
                .map(|(p, s)| {
                    s.rewind = false;
                    (*p, s.lake_next)
                })
                .collect()
        };
        for (p, next) in rewound {
            let offset = next.map_or(rdkafka::Offset::Beginning, rdkafka::Offset::Offset);
            if let Err(e) =
                self.consumer
                    .seek(&self.inner.opts.topic, p, offset, Duration::from_secs(10))
            {
                tracing::warn!("Kafka: seeking partition {p} back to {offset:?}: {e}");
            }
        }
    }

    /// Writes every buffered batch with the commit protocol and waits until it is in the lake,
    /// then commits the offsets to Kafka.
    pub fn flush(&mut self) -> Result<(), ConsumeError> {
        self.reap(true)?;
        self.inner.start_flush();
        self.reap(true)
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
        self.consumer.context().shared.lock().fetch.take();
        self.fetch.take();
    }
}
