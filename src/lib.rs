//! stocklake: stock ticks from CSV files through Kafka into a Parquet lake on a local folder or
//! S3, queried with the same SQL by an embedded DataFusion engine or by Amazon Athena.

pub mod aws;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod engine;
pub mod error;
pub mod kafka;
pub mod lake;
pub mod print;
pub mod repl;
pub mod report;
pub mod script;
pub mod settings;
pub mod signal;
pub mod source;
pub mod sync;
pub mod tick;

pub use error::Error;
