//! The rdkafka context of the consumer: librdkafka's log lines, and the rebalance callbacks
//! that ready newly assigned partitions (fetch-queue routing, the claim commit in the lake's
//! tables, start offsets) and release revoked ones (land the flush in flight, abandon
//! unflushed batches).
//!
//! The callbacks run on the consumer thread, inside `poll`; see `state` for the locking rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::flush::SharedTables;
use super::state::{Shared, Slot};
use crate::kafka::error::ConsumeError;
use crate::lake::LakeError;
use crate::lake::delta::{AppTxn, app_id};

/// How long an assignment waits for offset lookups, in all, before leaving them to librdkafka.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Claim commits tried before an assignment gives up (each loses only to a writer that
/// committed one of the same partitions in between).
const CLAIM_ATTEMPTS: usize = 20;

/// Where the lake's two tables stand for one Kafka partition.
#[derive(Debug, Clone, Copy)]
struct Position {
    partition: i32,
    /// First offset the ticks table does not hold (None: it holds none).
    ticks_next: Option<i64>,
    /// First offset whose reject the rejects table does not hold.
    rejects_next: Option<i64>,
}

pub(super) struct Context {
    pub(super) tables: SharedTables,
    /// `--reset-lake-offsets`: a partition whose lake offsets are ahead of the topic starts
    /// from the topic's beginning instead of being refused.
    pub(super) reset_lake_offsets: bool,
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
        // Lake I/O, so not under the state lock.
        let claimed = self
            .rt
            .block_on(claim(&self.tables, &self.topic, &partitions));
        let positions = match claimed {
            Ok(positions) => positions,
            Err((partition, source)) => {
                self.shared
                    .lock()
                    .error
                    .get_or_insert(ConsumeError::Recover {
                        topic: self.topic.clone(),
                        partition,
                        source: Box::new(source),
                    });
                return;
            }
        };
        let positions = match self.check_ahead(consumer, positions) {
            Ok(p) => p,
            Err(e) => {
                self.shared.lock().error.get_or_insert(e);
                return;
            }
        };
        {
            let mut state = self.shared.lock();
            for p in &positions {
                tracing::info!(
                    "partition {} assigned; the lake holds offsets before {:?}",
                    p.partition,
                    p.ticks_next
                );
                state
                    .slots
                    .insert(p.partition, Slot::new(p.ticks_next, p.rejects_next));
            }
        }
        let recovered: Vec<(i32, Option<i64>)> = positions
            .iter()
            .map(|p| (p.partition, p.ticks_next))
            .collect();
        for (p, offset) in self.start_offsets(consumer, &recovered) {
            if let Err(e) = tpl.set_partition_offset(&self.topic, p, offset) {
                tracing::warn!("Kafka: partition {p}: {e}");
            }
        }
    }

    /// Refuses partitions whose lake offsets are past the topic's end (a re-created topic), or
    /// with `--reset-lake-offsets` starts them over from the topic's beginning.
    fn check_ahead(
        &self,
        consumer: &BaseConsumer<Self>,
        mut positions: Vec<Position>,
    ) -> Result<Vec<Position>, ConsumeError> {
        let deadline = Instant::now() + LOOKUP_TIMEOUT;
        for pos in &mut positions {
            let Some(next) = pos.ticks_next else { continue };
            let left = deadline.saturating_duration_since(Instant::now());
            let high = match consumer.fetch_watermarks(&self.topic, pos.partition, left) {
                Ok((_, high)) => high,
                Err(e) => {
                    tracing::warn!(
                        "Kafka: partition {}: cannot check the lake's offsets against the topic's end: {e}",
                        pos.partition
                    );
                    continue;
                }
            };
            if next <= high {
                continue;
            }
            if !self.reset_lake_offsets {
                return Err(ConsumeError::OffsetsAhead {
                    topic: self.topic.clone(),
                    partition: pos.partition,
                    lake_last: next - 1,
                    topic_end: high,
                });
            }
            tracing::warn!(
                "partition {}: the lake holds offsets up to {} but the topic ends at {high}; --reset-lake-offsets: reading the topic from its beginning (the lake's rows stay)",
                pos.partition,
                next - 1
            );
            pos.ticks_next = None;
            pos.rejects_next = None;
        }
        Ok(positions)
    }

    /// Where each partition starts: after what the lake holds; for a partition the lake has
    /// never seen (or that `--reset-lake-offsets` starts over), the group's committed offset, else (with `auto.offset.reset=earliest`) the
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

/// Claims `partitions` in both tables: reads where each stands, then commits a `txn` per
/// partition with the versions just read (nothing else). From then on, an older owner's commit
/// of one of them conflicts and is refused (`LakeError::TakenOver`): the claim fences zombies
/// and other groups. A claim that loses to a commit of the same partitions reads again.
/// On failure, names the first partition.
async fn claim(
    tables: &SharedTables,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<Position>, (i32, LakeError)> {
    let first = partitions.first().copied().unwrap_or_default();
    let mut tables = tables.lock().await;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut positions = Vec::with_capacity(partitions.len());
        let (mut ticks_txns, mut rejects_txns) = (Vec::new(), Vec::new());
        tables.ticks.refresh().await.map_err(|e| (first, e))?;
        tables.rejects.refresh().await.map_err(|e| (first, e))?;
        for &p in partitions {
            let id = app_id(topic, p);
            let ticks = tables.ticks.txn_version(&id).await.map_err(|e| (p, e))?;
            let rejects = tables.rejects.txn_version(&id).await.map_err(|e| (p, e))?;
            // -1 claims a partition the table has never seen: "nothing written yet".
            ticks_txns.push(AppTxn {
                app_id: id.clone(),
                version: ticks.unwrap_or(-1),
            });
            rejects_txns.push(AppTxn {
                app_id: id,
                version: rejects.unwrap_or(-1),
            });
            let next = |v: Option<i64>| v.filter(|v| *v >= 0).map(|v| v + 1);
            positions.push(Position {
                partition: p,
                ticks_next: next(ticks),
                rejects_next: next(rejects),
            });
        }
        if partitions.is_empty() {
            return Ok(positions);
        }
        let claimed = match tables.rejects.commit(&[], &rejects_txns).await {
            Ok(_) => tables.ticks.commit(&[], &ticks_txns).await,
            Err(e) => Err(e),
        };
        match claimed {
            Ok(version) => {
                tracing::debug!("claimed partitions {partitions:?} at version {version}");
                return Ok(positions);
            }
            Err(LakeError::TakenOver { .. }) if attempt < CLAIM_ATTEMPTS => {
                tracing::info!("claim of partitions {partitions:?} lost a race; reading again");
            }
            Err(e) => return Err((first, e)),
        }
    }
}
