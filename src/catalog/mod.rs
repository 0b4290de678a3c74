//! The Glue table for the lake: its spec (`TableSpec`: database, table, columns from `tick`,
//! partition keys from the lake's layout, location) and the error of this module. The Athena DDL
//! (`ddl.rs`), the Glue calls (`glue.rs`: database, table, partitions one at a time for `consume
//! --register-partitions`, all missing ones for `catalog --repair`) and the reading of the lake
//! (`lake.rs`: layout, partitions present) live beside it and are re-exported here.
//! Partition values in Glue are the UNESCAPED values; locations are the escaped directories.

mod ddl;
mod glue;
mod lake;

use crate::aws::AwsError;
use crate::lake::TableLayout;
use crate::lake::layout::TABLE_DIR;

pub use glue::{
    RepairReport, TableAction, ensure_database, ensure_table, glue_partitions, register_partition,
    repair,
};
pub use lake::{lake_partitions, read_layout};

pub const SERDE_LIBRARY: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
pub const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("Glue {op} {target}: {message}")]
    Glue {
        op: &'static str,
        target: String,
        message: String,
    },
    #[error("lake {url}: {message}")]
    Lake { url: String, message: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

fn glue_err<E>(op: &'static str, target: &str, e: E) -> CatalogError
where
    E: std::error::Error + 'static,
{
    CatalogError::Glue {
        op,
        target: target.to_string(),
        message: crate::aws::describe(&e),
    }
}

/// What the Glue table for a lake must look like.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub database: String,
    pub table: String,
    /// `<lake>/ticks/`, with the trailing slash.
    pub location: String,
    pub layout: TableLayout,
}

impl TableSpec {
    /// The spec of the `ticks` table of the lake whose root URL is `lake_url`.
    pub fn new(database: &str, lake_url: &str, layout: TableLayout) -> TableSpec {
        TableSpec {
            database: database.to_string(),
            table: TABLE_DIR.to_string(),
            location: format!("{}/{TABLE_DIR}/", lake_url.trim_end_matches('/')),
            layout,
        }
    }

    /// Data columns (name, Athena type, comment): the record and lineage columns of `tick`
    /// minus the partition keys, which live in directory names.
    pub fn data_columns(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let keys: Vec<&str> = self
            .layout
            .partition_by
            .iter()
            .map(|k| k.column())
            .collect();
        crate::tick::all_columns()
            .filter(|c| !keys.contains(&c.name))
            .map(|c| (c.name, c.athena_type, c.comment))
            .collect()
    }
}
