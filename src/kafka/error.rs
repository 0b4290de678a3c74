//! Errors from talking to Kafka (placeholder until the consumer branch lands: it owns this file).

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
