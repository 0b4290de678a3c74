//! Kafka: client settings, the producer, the embedded broker (librdkafka's mock cluster).

pub mod broker;
pub mod config;
pub mod consumer;
pub mod error;
pub mod fetch_queue;
pub mod producer;

pub use broker::{BrokerOptions, EmbeddedBroker};
pub use config::{KafkaSettings, parse_property};
pub use error::KafkaError;
pub use producer::{ProduceSummary, Producer};
