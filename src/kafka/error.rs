//! Errors of the Kafka side: the client, the embedded broker, and the consumer loop.
//!
//! Each message says what failed and on what; a cause is either in the message or a
//! `#[source]`, never both, so that printing the chain shows every cause once.

use crate::lake::LakeError;

/// Errors from talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("Kafka client configuration: {0}")]
    Config(String),
    #[error("Kafka: {context}")]
    Client {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("embedded broker: {0}")]
    Broker(String),
    /// Events sent (or refused) and not acknowledged; `stopped` says when sending stopped
    /// early, `reason` is the fatal error, the refusal or the first failed delivery.
    #[error("{failed} of {total} events were not acknowledged by the broker{stopped}: {reason}")]
    Undelivered {
        failed: u64,
        total: u64,
        stopped: &'static str,
        reason: String,
    },
}

impl KafkaError {
    pub fn client(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        KafkaError::Client {
            context: context.into(),
            source,
        }
    }
}

/// Errors that stop the consumer (`kafka::consumer::LakeConsumer`).
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// A lake error that names its object itself.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Reading a newly assigned partition's position in the table and claiming it there.
    #[error("claiming topic {topic} partition {partition} in the lake")]
    Recover {
        topic: String,
        partition: i32,
        #[source]
        source: Box<LakeError>,
    },
    /// One flush: its data files and its Delta commit.
    #[error("committing offsets {ranges} of topic {topic} into the lake")]
    Flush {
        topic: String,
        /// `partition:first..=last`, comma-separated.
        ranges: String,
        #[source]
        source: Box<LakeError>,
    },
    /// The background task writing a flush panicked or was cancelled.
    #[error("the background flush into the lake stopped")]
    FlushTask(#[source] tokio::task::JoinError),
    /// The table holds offsets of a partition that the topic does not have: the topic was
    /// deleted and re-created (or the lake belongs to another cluster).
    #[error(
        "topic {topic} partition {partition}: the lake holds offsets up to {lake_last}, but the topic ends at offset {topic_end} (was the topic re-created, or is this another cluster?); nothing was read. To keep the lake's rows and read this topic from its beginning, run once with --reset-lake-offsets"
    )]
    OffsetsAhead {
        topic: String,
        partition: i32,
        lake_last: i64,
        topic_end: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_the_place_and_leave_the_cause_to_the_source() {
        let lake = || LakeError::Format {
            key: "_commits/ticks/3.json".into(),
            message: "not JSON".into(),
        };
        let err = ConsumeError::Flush {
            topic: "ticks".into(),
            ranges: "3:10..=19".into(),
            source: Box::new(lake()),
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "committing offsets 3:10..=19 of topic ticks into the lake"
        );
        assert!(
            err.source()
                .is_some_and(|s| s.to_string().contains("not JSON"))
        );
        let err = ConsumeError::Recover {
            topic: "ticks".into(),
            partition: 3,
            source: Box::new(lake()),
        };
        assert!(!err.to_string().contains("not JSON"), "{err}");
        let err = ConsumeError::OffsetsAhead {
            topic: "ticks".into(),
            partition: 2,
            lake_last: 999,
            topic_end: 40,
        };
        let text = err.to_string();
        for part in ["partition 2", "999", "40", "--reset-lake-offsets"] {
            assert!(text.contains(part), "{text}");
        }
    }
}
