//! Prometheus metrics of a long-running `consume` or `produce`: the instruments (built on the
//! `prometheus-client` crate, which also writes the exposition text), the consumer's health,
//! and a small HTTP endpoint (`server`) serving `/metrics` and `/healthz`.

mod server;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use server::{MetricsServer, serve};

/// A Kafka partition, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: i32,
}

/// A reject reason (its first words), as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// What `/healthz` answers: healthy or not, and a JSON body saying why.
pub trait Health: Send + Sync {
    fn health(&self) -> (bool, String);
}

/// Running totals the consumer reports (a copy of the fields of its statistics that metrics
/// export), so that counters can be advanced by what changed since the last report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerTotals {
    pub events: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub already_in_lake: u64,
    pub reject_reasons: Vec<(String, u64)>,
}

/// One assigned partition's position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionPosition {
    pub partition: i32,
    /// High watermark minus the next offset to read (None while unknown).
    pub lag: Option<i64>,
    /// The offset after the last one the lake holds (None while unknown).
    pub lake_next: Option<i64>,
}

/// The consumer's instruments.
pub struct ConsumerMetrics {
    events_read: Counter,
    rows_committed: Counter,
    rejects: Family<ReasonLabel, Counter>,
    already_in_lake: Counter,
    files_written: Counter,
    bytes_written: Counter,
    commits: Counter,
    commit_seconds: Histogram,
    flush_events: Histogram,
    lag: Family<PartitionLabel, Gauge>,
    lake_offset: Family<PartitionLabel, Gauge>,
    assigned: Gauge,
    last_commit: Gauge<f64, std::sync::atomic::AtomicU64>,
    state: Mutex<ConsumerState>,
    /// A member that holds partitions with events waiting and has not committed for this
    /// long is unhealthy.
    stall_after: Duration,
}

#[derive(Default)]
struct ConsumerState {
    reported: ConsumerTotals,
    partitions: Vec<PartitionPosition>,
    buffered: usize,
    last_commit: Option<Instant>,
    started: Option<Instant>,
}

impl ConsumerMetrics {
    /// The consumer's instruments, registered in `registry`. `stall_after`: see `/healthz`.
    pub fn register(registry: &mut Registry, stall_after: Duration) -> Arc<ConsumerMetrics> {
        let m = ConsumerMetrics {
            events_read: Counter::default(),
            rows_committed: Counter::default(),
            rejects: Family::default(),
            already_in_lake: Counter::default(),
            files_written: Counter::default(),
            bytes_written: Counter::default(),
            commits: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            flush_events: Histogram::new(exponential_buckets(1.0, 4.0, 12)),
            lag: Family::default(),
            lake_offset: Family::default(),
            assigned: Gauge::default(),
            last_commit: Gauge::default(),
            state: Mutex::new(ConsumerState {
                started: Some(Instant::now()),
                ..ConsumerState::default()
            }),
            stall_after,
        };
        let r = registry.sub_registry_with_prefix("stocklake_consumer");
        r.register(
            "events_read",
            "Events taken from Kafka into a batch (good and bad)",
            m.events_read.clone(),
        );
        r.register(
            "rows_committed",
            "Rows committed to the ticks table",
            m.rows_committed.clone(),
        );
        r.register(
            "events_rejected",
            "Bad events committed to the rejects table, by reason",
            m.rejects.clone(),
        );
        r.register(
            "events_already_in_lake",
            "Events skipped because the lake already held them (replays after a crash)",
            m.already_in_lake.clone(),
        );
        r.register(
            "files_written",
            "Data files committed",
            m.files_written.clone(),
        );
        r.register(
            "bytes_written",
            "Bytes of data files committed",
            m.bytes_written.clone(),
        );
        r.register(
            "commits",
            "Flushes committed to the lake",
            m.commits.clone(),
        );
        r.register(
            "commit_duration_seconds",
            "Time from the start of a flush to its commit in the lake",
            m.commit_seconds.clone(),
        );
        r.register(
            "flush_events",
            "Events per committed flush",
            m.flush_events.clone(),
        );
        r.register(
            "partition_lag",
            "Per assigned partition: high watermark minus the next offset to read",
            m.lag.clone(),
        );
        r.register(
            "partition_lake_offset",
            "Per assigned partition: the offset after the last one the lake holds",
            m.lake_offset.clone(),
        );
        r.register(
            "assigned_partitions",
            "Partitions this member holds",
            m.assigned.clone(),
        );
        r.register(
            "last_commit_timestamp_seconds",
            "When this member last committed to the lake (Unix time)",
            m.last_commit.clone(),
        );
        Arc::new(m)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Advances the counters to `totals` (the consumer's running totals).
    pub fn report_totals(&self, totals: &ConsumerTotals) {
        let mut s = self.state();
        let last = &s.reported;
        let add = |c: &Counter, now: u64, before: u64| {
            c.inc_by(now.saturating_sub(before));
        };
        add(&self.events_read, totals.events, last.events);
        add(&self.rows_committed, totals.rows, last.rows);
        add(&self.files_written, totals.files, last.files);
        add(&self.bytes_written, totals.bytes, last.bytes);
        add(
            &self.already_in_lake,
            totals.already_in_lake,
            last.already_in_lake,
        );
        for (reason, n) in &totals.reject_reasons {
            let before = last
                .reject_reasons
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |(_, b)| *b);
            let label = ReasonLabel {
                reason: reason.clone(),
            };
            self.rejects
                .get_or_create(&label)
                .inc_by(n.saturating_sub(before));
        }
        s.reported = totals.clone();
    }

    /// A flush of `events` events committed, `took` after it started.
    pub fn committed(&self, events: usize, took: Duration) {
        self.commits.inc();
        self.commit_seconds.observe(took.as_secs_f64());
        self.flush_events.observe(events as f64);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_commit.set(now);
        self.state().last_commit = Some(Instant::now());
    }

    /// The assigned partitions' positions and the events buffered for the next flush.
    pub fn report_partitions(&self, partitions: &[PartitionPosition], buffered: usize) {
        let mut s = self.state();
        let now: HashSet<i32> = partitions.iter().map(|p| p.partition).collect();
        for gone in s.partitions.iter().filter(|p| !now.contains(&p.partition)) {
            let label = PartitionLabel {
                partition: gone.partition,
            };
            self.lag.remove(&label);
            self.lake_offset.remove(&label);
        }
        for p in partitions {
            let label = PartitionLabel {
                partition: p.partition,
            };
            if let Some(l) = p.lag {
                self.lag.get_or_create(&label).set(l);
            }
            if let Some(o) = p.lake_next {
                self.lake_offset.get_or_create(&label).set(o);
            }
        }
        self.assigned.set(partitions.len() as i64);
        s.partitions = partitions.to_vec();
        s.buffered = buffered;
    }
}

impl Health for ConsumerMetrics {
    /// Healthy: the member holds partitions, and either nothing waits (no lag, nothing
    /// buffered) or it committed within `stall_after` (counted from its start before the
    /// first commit).
    fn health(&self) -> (bool, String) {
        let s = self.state();
        let mut partitions: Vec<i32> = s.partitions.iter().map(|p| p.partition).collect();
        partitions.sort_unstable();
        let lag: i64 = s.partitions.iter().filter_map(|p| p.lag).sum();
        let since = s.last_commit.or(s.started).map(|t| t.elapsed());
        let waiting = lag > 0 || s.buffered > 0;
        let (healthy, reason) = if partitions.is_empty() {
            (false, "no partitions assigned".to_string())
        } else if waiting && since.is_some_and(|d| d > self.stall_after) {
            (
                false,
                format!(
                    "events wait (lag {lag}, {} buffered) and nothing was committed for {:.0} s",
                    s.buffered,
                    since.unwrap_or_default().as_secs_f64()
                ),
            )
        } else {
            (true, "ok".to_string())
        };
        let body = serde_json::json!({
            "healthy": healthy,
            "reason": reason,
            "assigned_partitions": partitions,
            "lag": lag,
            "buffered_events": s.buffered,
            "seconds_since_last_commit": s.last_commit.map(|t| t.elapsed().as_secs_f64()),
        });
        (healthy, body.to_string())
    }
}

/// The producer's instruments.
pub struct ProducerMetrics {
    sent: Counter,
    acknowledged: Counter,
    failed: Counter,
    reported: Mutex<(u64, u64, u64)>,
}

impl ProducerMetrics {
    pub fn register(registry: &mut Registry) -> Arc<ProducerMetrics> {
        let m = ProducerMetrics {
            sent: Counter::default(),
            acknowledged: Counter::default(),
            failed: Counter::default(),
            reported: Mutex::new((0, 0, 0)),
        };
        let r = registry.sub_registry_with_prefix("stocklake_producer");
        r.register("events_sent", "Events handed to Kafka", m.sent.clone());
        r.register(
            "events_acknowledged",
            "Events the brokers acknowledged",
            m.acknowledged.clone(),
        );
        r.register(
            "events_failed",
            "Events that could not be delivered",
            m.failed.clone(),
        );
        Arc::new(m)
    }

    /// Advances the counters to the producer's running totals.
    pub fn report(&self, sent: u64, acknowledged: u64, failed: u64) {
        let mut r = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        self.sent.inc_by(sent.saturating_sub(r.0));
        self.acknowledged.inc_by(acknowledged.saturating_sub(r.1));
        self.failed.inc_by(failed.saturating_sub(r.2));
        *r = (sent, acknowledged, failed);
    }
}

impl Health for ProducerMetrics {
    fn health(&self) -> (bool, String) {
        let r = *self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let body =
            serde_json::json!({"healthy": true, "sent": r.0, "acknowledged": r.1, "failed": r.2});
        (true, body.to_string())
    }
}

/// The exposition text of `registry` (OpenMetrics text, which Prometheus reads).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_advance_by_what_changed_and_partitions_come_and_go() {
        let mut registry = Registry::default();
        let m = ConsumerMetrics::register(&mut registry, Duration::from_secs(60));
        let mut t = ConsumerTotals {
            events: 10,
            rows: 8,
            reject_reasons: vec![("bad json".into(), 2)],
            ..ConsumerTotals::default()
        };
        m.report_totals(&t);
        t.events = 15;
        t.rows = 12;
        t.reject_reasons = vec![("bad json".into(), 2), ("oversized".into(), 1)];
        m.report_totals(&t);
        m.committed(5, Duration::from_millis(20));
        m.report_partitions(
            &[
                PartitionPosition {
                    partition: 0,
                    lag: Some(7),
                    lake_next: Some(100),
                },
                PartitionPosition {
                    partition: 1,
                    lag: None,
                    lake_next: Some(3),
                },
            ],
            4,
        );
        let text = encode(&registry);
        for line in [
            "stocklake_consumer_events_read_total 15",
            "stocklake_consumer_rows_committed_total 12",
            "stocklake_consumer_events_rejected_total{reason=\"bad json\"} 2",
            "stocklake_consumer_events_rejected_total{reason=\"oversized\"} 1",
            "stocklake_consumer_commits_total 1",
            "stocklake_consumer_flush_events_count 1",
            "stocklake_consumer_partition_lag{partition=\"0\"} 7",
            "stocklake_consumer_partition_lake_offset{partition=\"1\"} 3",
            "stocklake_consumer_assigned_partitions 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(m.health().0);
        m.report_partitions(&[], 0);
        let text = encode(&registry);
        assert!(!text.contains("partition_lag{"), "{text}");
        let (healthy, body) = m.health();
        assert!(
            !healthy && body.contains("no partitions assigned"),
            "{body}"
        );
    }

    #[test]
    fn a_member_that_stops_committing_while_events_wait_is_unhealthy() {
        let mut registry = Registry::default();
        let m = ConsumerMetrics::register(&mut registry, Duration::ZERO);
        let p = PartitionPosition {
            partition: 0,
            lag: Some(0),
            lake_next: Some(1),
        };
        m.report_partitions(&[p], 0);
        assert!(m.health().0, "nothing waits");
        m.report_partitions(&[PartitionPosition { lag: Some(5), ..p }], 0);
        std::thread::sleep(Duration::from_millis(2));
        let (healthy, body) = m.health();
        assert!(!healthy && body.contains("lag 5"), "{body}");
    }
}
