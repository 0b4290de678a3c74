//! The one value the consumer loop and librdkafka's rebalance callbacks share: the assigned
//! partitions' slots, the flush in flight, and what a rebalance leaves for the loop.
//!
//! Locking rules (one `Mutex<State>`, behind `Shared::lock`):
//! - Only the consumer thread locks it: the loop, and the rebalance callbacks that librdkafka
//!   runs on that thread inside `poll` (the tokio tasks that write flushes never see it). The
//!   mutex is there because rdkafka wants its context `Send + Sync`; it is never contended.
//! - Never hold it across `BaseConsumer::poll` (a rebalance callback in there locks it, and
//!   std's `Mutex` is not reentrant) nor across a `block_on` (lake I/O, landing a flush).
//! - Take it once per operation and hand `&mut State` down; nothing below locks again.
//! - The hot path is the one long hold, on purpose: the loop keeps it while it serves the
//!   fetch queue, once per fetched batch rather than once per event. Serving that queue runs
//!   no callbacks (rebalances stay on the consumer queue), so nothing else wants it meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::batch::Batch;
use super::flush::{InFlight, Landed};
use crate::kafka::error::ConsumeError;
use crate::kafka::fetch_queue::FetchQueue;

/// The shared state; see the module's locking rules.
pub(super) struct Shared(Mutex<State>);

impl Shared {
    pub(super) fn new() -> Self {
        Shared(Mutex::new(State {
            slots: HashMap::new(),
            error: None,
            assigned_at: Instant::now(),
            in_flight: None,
            landed: Vec::new(),
            fetch: None,
        }))
    }

    /// The state; a panic while it was locked does not lock the loop out.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct State {
    /// One slot per assigned partition: added by an assignment, removed by a revocation.
    pub(super) slots: HashMap<i32, Slot>,
    /// The first error of a rebalance callback (which cannot return one), for the loop.
    pub(super) error: Option<ConsumeError>,
    /// When this member last got partitions (the idle clock starts no earlier).
    pub(super) assigned_at: Instant,
    /// The flush being written in the background while the loop reads on.
    pub(super) in_flight: Option<InFlight>,
    /// A flush that a revocation waited for, for the loop to account.
    pub(super) landed: Vec<Landed>,
    /// Where assigned partitions' messages go (None before it exists and after it is gone).
    pub(super) fetch: Option<Arc<FetchQueue>>,
}

/// An assigned partition: where the lake and the reading stand, and its unflushed events.
pub(super) struct Slot {
    /// First offset the lake does not hold (None: the lake never saw this partition).
    pub(super) lake_next: Option<i64>,
    /// First offset whose reject the rejects table does not hold (None: it holds none).
    pub(super) rejects_next: Option<i64>,
    /// The partition's offsets went backwards: its batch was dropped and the loop seeks it
    /// back to `lake_next`; events are ignored until then.
    pub(super) rewind: bool,
    /// Next offset expected from Kafka (for the lag).
    pub(super) position: i64,
    pub(super) batch: Option<Batch>,
    /// Rows per directory in this partition's last flushed batch: the next batch's builders
    /// start that large instead of growing (and copying) their way there.
    pub(super) sizes: HashMap<String, usize>,
}

impl Slot {
    /// A newly assigned partition of which the lake holds the offsets before `lake_next` (and
    /// the rejects table those before `rejects_next`).
    pub(super) fn new(lake_next: Option<i64>, rejects_next: Option<i64>) -> Self {
        Slot {
            lake_next,
            rejects_next,
            rewind: false,
            position: lake_next.unwrap_or(0),
            batch: None,
            sizes: HashMap::new(),
        }
    }
}
