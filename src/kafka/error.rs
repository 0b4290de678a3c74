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
    #[error(
        "{failed} of {total} events were not acknowledged by the broker (first error: {first})"
    )]
    Undelivered {
        failed: u64,
        total: u64,
        first: String,
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
    /// Reading a newly assigned partition's commit state (and finishing its pending batch).
    #[error("recovering the lake's state of topic {topic} partition {partition}")]
    Recover {
        topic: String,
        partition: i32,
        #[source]
        source: Box<LakeError>,
    },
    /// Steps 1-3 of the commit protocol for one batch.
    #[error(
        "writing offsets {first_offset}..={last_offset} of topic {topic} partition {partition} into the lake"
    )]
    Flush {
        topic: String,
        partition: i32,
        first_offset: i64,
        last_offset: i64,
        #[source]
        source: Box<LakeError>,
    },
    /// The background task writing a flush panicked or was cancelled.
    #[error("the background flush into the lake stopped")]
    FlushTask(#[source] tokio::task::JoinError),
    /// The hook called with new partition directories (`LakeConsumer::on_new_partitions`)
    /// failed. The flush before it is committed.
    #[error("the hook for new partition directories failed on {}", .dirs.join(", "))]
    Hook {
        dirs: Vec<String>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
            partition: 3,
            first_offset: 10,
            last_offset: 19,
            source: Box::new(lake()),
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "writing offsets 10..=19 of topic ticks partition 3 into the lake"
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
        let err = ConsumeError::Hook {
            dirs: vec!["symbol=AAPL".into(), "symbol=IBM".into()],
            source: "access denied".into(),
        };
        assert_eq!(
            err.to_string(),
            "the hook for new partition directories failed on symbol=AAPL, symbol=IBM"
        );
        assert_eq!(
            err.source().map(|s| s.to_string()),
            Some("access denied".into())
        );
    }
}
