//! What the brokers say about a topic, for `status` and `audit`: each partition's low and high
//! watermarks and, for a consumer group, its committed offset. Read with a plain client that
//! never joins the group (nothing is assigned, nothing committed).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;

use super::config::{KafkaSettings, client_err};
use super::error::KafkaError;

/// One partition of a topic as the brokers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionWatermarks {
    pub partition: i32,
    /// The oldest offset the partition still holds (older ones were deleted by retention).
    pub low: i64,
    /// The offset the next event will get: the partition holds `low..high`.
    pub high: i64,
    /// The group's committed offset (the next offset the group reads), when asked for a group
    /// and it has one.
    pub group_offset: Option<i64>,
}

/// Sends librdkafka's log lines to tracing, like the other clients.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::config::log_librdkafka(level, facility, message);
    }
}

impl ConsumerContext for Quiet {}

/// The watermarks of every partition of `topic` (in partition order) and, with `group`, the
/// group's committed offsets; everything within `timeout`. A topic the cluster does not have is
/// an error.
pub fn topic_watermarks(
    settings: &KafkaSettings,
    topic: &str,
    group: Option<&str>,
    timeout: Duration,
) -> Result<Vec<PartitionWatermarks>, KafkaError> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    // A group id is needed to ask for committed offsets; the client never joins it.
    let config = settings.consumer_config(group.unwrap_or("stocklake-status"));
    let consumer: BaseConsumer<Quiet> = config
        .create_with_context(Quiet)
        .map_err(client_err(format!("connecting to {}", settings.brokers)))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), left())
        .map_err(client_err(format!(
            "reading the metadata of topic {topic} from {}",
            settings.brokers
        )))?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            ids
        }
        _ => {
            return Err(KafkaError::Config(format!(
                "topic {topic} does not exist on {} (or has no partitions)",
                settings.brokers
            )));
        }
    };
    let mut out = Vec::with_capacity(partitions.len());
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, left())
            .map_err(client_err(format!(
                "reading the watermarks of topic {topic} partition {p}"
            )))?;
        out.push(PartitionWatermarks {
            partition: *p,
            low,
            high,
            group_offset: None,
        });
    }
    if let Some(group) = group {
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = consumer
            .committed_offsets(tpl, left())
            .map_err(client_err(format!(
                "reading the committed offsets of group {group} on topic {topic}"
            )))?;
        for e in committed.elements_for_topic(topic) {
            if let (Offset::Offset(n), Some(w)) = (
                e.offset(),
                out.iter_mut().find(|w| w.partition == e.partition()),
            ) && n >= 0
            {
                w.group_offset = Some(n);
            }
        }
    }
    Ok(out)
}
