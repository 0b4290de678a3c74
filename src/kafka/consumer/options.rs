//! What the consumer is asked to do (`ConsumeOptions`) and what it has done (`ConsumeStats`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What to consume, when to flush and when to stop.
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
    /// A partition whose lake offsets are past the topic's end (the topic was re-created)
    /// starts over from the topic's beginning, keeping the lake's rows, instead of being
    /// refused.
    pub reset_lake_offsets: bool,
}

/// Running totals, for the status line and the summary.
#[derive(Debug, Clone, Default)]
pub struct ConsumeStats {
    /// Events taken from Kafka into a batch (good and bad).
    pub events: u64,
    /// Rows committed to the lake.
    pub rows: u64,
    /// Bad events committed to the rejects table.
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

impl ConsumeStats {
    /// The totals the metrics export.
    pub fn totals(&self) -> crate::metrics::ConsumerTotals {
        let mut reject_reasons: Vec<(String, u64)> = self
            .reject_reasons
            .iter()
            .map(|(r, n)| (r.clone(), *n))
            .collect();
        reject_reasons.sort();
        crate::metrics::ConsumerTotals {
            events: self.events,
            rows: self.rows,
            files: self.files,
            bytes: self.bytes,
            already_in_lake: self.already_in_lake,
            reject_reasons,
        }
    }
}
