//! The rdkafka context of the consumer: librdkafka's log lines, and the rebalance callbacks
//! that ready newly assigned partitions (fetch-queue routing, lake recovery, start offsets)
//! and release revoked ones (land the flush in flight, abandon unflushed batches).
//!
//! The callbacks run on the consumer thread, inside `poll`; see `state` for the locking rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::state::{Shared, Slot};
use crate::kafka::error::ConsumeError;
use crate::lake::{Lake, commit};

/// How long an assignment waits for offset lookups, in all, before leaving them to librdkafka.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Context {
    pub(super) lake: Lake,
    pub(super) topic: String,
    pub(super) rt: tokio::runtime::Handle,
    pub(super) shared: Arc<Shared>,
    /// `auto.offset.reset` says earliest (the default): a partition new to the group and the
    /// lake starts at its first offset.
    pub(super) reset_earliest: bool,
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        crate::kafka::config::log_librdkafka(level, facility, message);
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
                    self.shared.lock().assigned_at = Instant::now();
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
        let fetch = self.shared.lock().fetch.clone();
        if let Some(fetch) = fetch {
            for &p in &partitions {
                // SAFETY: the handle is live (we are in its callback) and made the queue.
                if !unsafe { fetch.route(consumer.client().native_ptr(), &self.topic, p) } {
                    tracing::debug!("partition {p} stays on the consumer queue");
                }
            }
        }
        let mut recovered = Vec::new();
        for &p in &partitions {
            // Lake I/O, so not under the state lock.
            let result = self
                .rt
                .block_on(commit::recover(&self.lake, &self.topic, p));
            let mut state = self.shared.lock();
            match result {
                Ok(lake_next) => {
                    tracing::info!(
                        "partition {p} assigned; the lake holds offsets before {lake_next:?}"
                    );
                    state.slots.insert(p, Slot::new(lake_next));
                    recovered.push((p, lake_next));
                }
                Err(source) => {
                    state.error.get_or_insert(ConsumeError::Recover {
                        topic: self.topic.clone(),
                        partition: p,
                        source: Box::new(source),
                    });
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
        // lake before the next owner reads the lake's state. It lands without the state lock
        // held; the loop accounts for it (`reap`).
        let flight = self.shared.lock().in_flight.take();
        let landed = flight.map(|f| f.land(&self.rt));
        let mut state = self.shared.lock();
        state.landed.extend(landed);
        for e in tpl.elements_for_topic(&self.topic) {
            // Nothing of an unflushed batch is in the lake: abandon it, the next owner reads
            // those events again from the lake's next offset.
            if let Some(slot) = state.slots.remove(&e.partition())
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
