//! The lake: object store from a URL, partition layout and escaping, the Parquet writer profile,
//! the Delta tables and their exactly-once protocol (docs/exactly-once.md), quarantined events
//! and the upgrade of lakes written before the Delta table.

pub mod audit;
pub mod delta;
pub mod error;
pub mod layout;
pub mod rejects;
pub mod status;
pub mod store;
pub mod upgrade;
pub mod writer;

pub use error::LakeError;
pub use layout::{PartitionKey, TableLayout};
pub use store::{Lake, lake_location};
