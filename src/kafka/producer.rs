//! The producer: ticks become JSON messages keyed by symbol, sent idempotently with `acks=all`,
//! paced or flat out, with every delivery counted so that no loss goes unreported.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};

use super::config::{KafkaSettings, client_err};
use super::error::KafkaError;
use crate::source::Pacer;
use crate::tick::Tick;

/// Delivery counters, updated by librdkafka's delivery reports.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl DeliveryStats {
    pub fn snapshot(&self) -> Progress {
        Progress {
            sent: self.sent.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|g| g.clone())
    }
}

/// Counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
}

impl Progress {
    pub fn outstanding(&self) -> u64 {
        self.sent - self.acked - self.failed
    }
}

pub struct Counting(Arc<DeliveryStats>);

impl ClientContext for Counting {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::config::log_librdkafka(level, facility, message);
    }
}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.0.first_error.lock() {
                    first.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }
}

/// What a produce run did.
#[derive(Debug, Clone)]
pub struct ProduceSummary {
    pub progress: Progress,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// True when Ctrl-C/SIGTERM ended the run before the source was exhausted.
    pub interrupted: bool,
    /// Why librdkafka refused an event (a fatal error, a topic it may not write): sending
    /// stopped there, and that event counts as sent and not acknowledged.
    pub stopped_by: Option<String>,
    /// The producer's fatal error, when it had one (then every event not yet acknowledged
    /// was purged, and this is the reason rather than the purge).
    pub fatal_error: Option<String>,
}

impl ProduceSummary {
    pub fn events_per_second(&self) -> f64 {
        self.progress.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// An error when any event was not acknowledged, naming how many and the first reason.
    pub fn check(&self) -> Result<(), KafkaError> {
        let p = self.progress;
        let refused = u64::from(self.stopped_by.is_some());
        let failed = p.failed + p.outstanding() + refused;
        if failed == 0 {
            return Ok(());
        }
        let reason = self
            .fatal_error
            .clone()
            .or_else(|| self.stopped_by.clone())
            .or_else(|| self.first_error.clone())
            .unwrap_or_else(|| "no delivery report before the flush timeout".into());
        Err(KafkaError::Undelivered {
            failed,
            total: p.sent + refused,
            stopped: if refused > 0 {
                ", and sending stopped there"
            } else {
                ""
            },
            reason,
        })
    }
}

/// A Kafka producer bound to one topic.
pub struct Producer {
    inner: ThreadedProducer<Counting>,
    topic: String,
    stats: Arc<DeliveryStats>,
}

impl Producer {
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, KafkaError> {
        let stats = Arc::new(DeliveryStats::default());
        let config = settings.producer_config();
        tracing::debug!("producer settings: {}", KafkaSettings::describe(&config));
        let inner = config
            .create_with_context(Counting(stats.clone()))
            .map_err(client_err("creating the producer"))?;
        Ok(Producer {
            inner,
            topic: topic.to_string(),
            stats,
        })
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    /// Queues one message; waits while librdkafka's queue is full. `stop` aborts the wait
    /// (false). An error is librdkafka refusing the message (a fatal error, a topic error).
    pub fn send(&self, key: &[u8], payload: &[u8], stop: &AtomicBool) -> Result<bool, KafkaError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.inner.send(record) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(true);
                }
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    record = back;
                    std::thread::sleep(Duration::from_micros(500));
                }
                Err((e, _)) => {
                    return Err(KafkaError::client(
                        format!("sending to topic {}", self.topic),
                        e,
                    ));
                }
            }
        }
    }

    /// Waits until every queued message has a delivery report, or `timeout` passes, or `abort`
    /// is set (a second Ctrl-C). Calls `tick` about ten times a second.
    pub fn flush(&self, timeout: Duration, abort: &AtomicBool, mut tick: impl FnMut(Progress)) {
        let deadline = Instant::now() + timeout;
        while self.stats.snapshot().outstanding() > 0 && Instant::now() < deadline {
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let _ = self.inner.flush(Duration::from_millis(100));
            tick(self.stats.snapshot());
        }
    }

    /// Waits for the outstanding deliveries (also after a refused event: those in flight may
    /// still be acknowledged) and sums the run up.
    fn finish(
        &self,
        start: Instant,
        interrupted: bool,
        stopped_by: Option<KafkaError>,
        abort: &AtomicBool,
        mut on_progress: impl FnMut(Progress),
    ) -> ProduceSummary {
        self.flush(Duration::from_secs(120), abort, &mut on_progress);
        let progress = self.stats.snapshot();
        on_progress(progress);
        ProduceSummary {
            progress,
            first_error: self.stats.first_error(),
            elapsed: start.elapsed(),
            interrupted,
            stopped_by: stopped_by.map(|e| crate::report::chain(&e)),
            fatal_error: self
                .inner
                .client()
                .fatal_error()
                .map(|(code, reason)| format!("fatal error: {code}: {reason}")),
        }
    }
}

/// Produces ticks until the source ends, `limit` events were sent, or `stop` is set; then waits
/// for outstanding deliveries. `on_progress` is called about ten times a second.
pub fn produce(
    producer: &Producer,
    ticks: impl Iterator<Item = Tick>,
    pacer: &mut Pacer,
    limit: Option<u64>,
    stop: &AtomicBool,
    abort: &AtomicBool,
    mut on_progress: impl FnMut(Progress),
) -> Result<ProduceSummary, KafkaError> {
    let start = Instant::now();
    let mut payload = Vec::with_capacity(256);
    let mut last_report = start;
    let mut interrupted = false;
    let mut stopped_by = None;
    let mut count = 0u64;
    for tick in ticks {
        if limit.is_some_and(|l| count >= l) {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if !pacer.is_flat_out() {
            let wait = pacer.wait_before(tick.event_time, Instant::now());
            if !sleep_unless(wait, stop) {
                interrupted = true;
                break;
            }
            on_progress(producer.stats.snapshot());
        }
        payload.clear();
        tick.encode_json(&mut payload);
        match producer.send(tick.symbol.as_bytes(), &payload, stop) {
            Ok(true) => {}
            Ok(false) => {
                interrupted = true;
                break;
            }
            Err(e) => {
                stopped_by = Some(e);
                break;
            }
        }
        count += 1;
        if count.is_multiple_of(4096) {
            let now = Instant::now();
            if now - last_report >= Duration::from_millis(100) {
                last_report = now;
                on_progress(producer.stats.snapshot());
            }
        }
    }
    Ok(producer.finish(start, interrupted, stopped_by, abort, on_progress))
}

/// Sends pre-encoded (key, payload) pairs flat out: the throughput ceiling for benchmarks.
pub fn produce_encoded(
    producer: &Producer,
    messages: &[(Vec<u8>, Vec<u8>)],
    stop: &AtomicBool,
) -> Result<ProduceSummary, KafkaError> {
    let start = Instant::now();
    let mut stopped_by = None;
    for (key, payload) in messages {
        match producer.send(key, payload, stop) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                stopped_by = Some(e);
                break;
            }
        }
    }
    let interrupted = stop.load(Ordering::Relaxed);
    Ok(producer.finish(start, interrupted, stopped_by, stop, |_| {}))
}

/// Sleeps for `d` in short steps; false when `stop` was set meanwhile.
fn sleep_unless(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
