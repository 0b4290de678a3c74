//! Kafka: client settings, the producer, the consumer into the lake, the embedded broker
//! (librdkafka's mock cluster), and their errors.

pub mod broker;
pub mod config;
pub mod consumer;
pub mod error;
pub mod fetch_queue;
pub mod offsets;
pub mod producer;

pub use broker::{BrokerOptions, EmbeddedBroker};
pub use config::{KafkaSettings, parse_property};
pub use error::{ConsumeError, KafkaError};
pub use producer::{ProduceSummary, Producer};
