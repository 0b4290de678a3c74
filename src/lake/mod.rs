//! The lake: object store from a URL, partition layout and escaping, the Parquet writer profile,
//! the exactly-once commit protocol (see docs/exactly-once.md).

pub mod layout;
pub mod store;

pub use layout::{PartitionKey, TableLayout};
pub use store::{LakeError, open_lake};
