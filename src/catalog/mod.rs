//! The lake's Delta tables in the Glue Data Catalog, the way Athena's native Delta Lake support
//! reads them: `<lake>/ticks/` (and `<lake>/rejects/` when the lake has one) as Glue tables of
//! type `EXTERNAL_TABLE` with the parameter `table_type=DELTA` and the table's folder as their
//! location. Athena takes the schema, the partitions and the files from the Delta log at query
//! time, so no partition is ever registered: a new partition is visible as soon as its commit is.
//!
//! What the Glue table holds (`glue.rs`, [`TableSpec::table_input`]):
//! - `TableType` `EXTERNAL_TABLE`; `Parameters`: `table_type=DELTA` (what Athena's
//!   `CREATE EXTERNAL TABLE … TBLPROPERTIES ('table_type'='DELTA')` records and what its Delta
//!   reader looks for), `EXTERNAL=TRUE`, and `spark.sql.sources.provider=delta` with the SerDe
//!   parameter `path` = the location (how Spark engines on Glue — EMR, Glue jobs — recognise a
//!   Delta table);
//! - the location `<lake>/<table>/` (trailing slash);
//! - the columns as the Delta log has them, mapped to Hive types, the partition columns as
//!   partition keys: what Athena itself syncs to Glue when it creates a Delta table, so the Glue
//!   console, Lake Formation and views see the real schema. Athena's Delta reader does not need
//!   them (the DDL has none); `catalog` refreshes them when the log's schema changed.
//!
//! `ddl.rs` prints the equivalent Athena DDL (`catalog --ddl`).

mod ddl;
mod glue;

use crate::aws::AwsError;
use crate::lake::LakeError;
use crate::lake::delta::read::table_url;
use crate::lake::delta::{TableDescription, describe_table};
use crate::lake::layout::{REJECTS_TABLE_DIR, TABLE_DIR};

pub use ddl::ddl;
pub use glue::{TableAction, ensure_database, ensure_table};

/// The Glue table parameter and value that make Athena read a table as Delta Lake.
pub const TABLE_TYPE_PARAM: &str = "table_type";
pub const TABLE_TYPE_DELTA: &str = "DELTA";
/// The table parameter by which Spark engines recognise a Delta table.
pub const SPARK_PROVIDER_PARAM: &str = "spark.sql.sources.provider";

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
    Delta(#[from] LakeError),
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

/// A Glue column: name, Hive/Athena type, comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueColumn {
    pub name: String,
    pub hive_type: String,
    pub comment: Option<String>,
}

/// What the Glue table of one of the lake's Delta tables must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub database: String,
    /// `ticks` or `rejects`: the table's folder name.
    pub table: String,
    /// `<lake>/<table>/`, with the trailing slash.
    pub location: String,
    /// Data columns (not the partition columns), in the log's order.
    pub columns: Vec<GlueColumn>,
    /// Partition columns, in the log's order.
    pub partition_keys: Vec<GlueColumn>,
    /// The Delta version the columns were read at.
    pub version: u64,
}

impl TableSpec {
    /// The spec of the Glue table `table` for the Delta table `d`.
    pub fn from_delta(database: &str, table: &str, d: &TableDescription) -> TableSpec {
        let column = |(name, delta_type): &(String, String)| GlueColumn {
            name: name.clone(),
            hive_type: hive_type(delta_type),
            comment: crate::tick::all_columns()
                .find(|c| c.name == name)
                .map(|c| c.comment.to_string()),
        };
        let (keys, cols): (Vec<_>, Vec<_>) = d
            .columns
            .iter()
            .partition(|(n, _)| d.partition_columns.contains(n));
        // Partition keys in the log's partition order, not the schema's.
        let partition_keys = d
            .partition_columns
            .iter()
            .filter_map(|k| keys.iter().find(|(n, _)| n == k).map(|c| column(c)))
            .collect();
        TableSpec {
            database: database.to_string(),
            table: table.to_string(),
            location: d.url.to_string(),
            columns: cols.into_iter().map(column).collect(),
            partition_keys,
            version: d.version,
        }
    }
}

/// The Hive (Glue, Athena DDL) type of a Delta type.
pub fn hive_type(delta_type: &str) -> String {
    match delta_type {
        "long" => "bigint".into(),
        "integer" => "int".into(),
        "short" => "smallint".into(),
        "byte" => "tinyint".into(),
        "timestamp" | "timestamp_ntz" => "timestamp".into(),
        // string, double, float, boolean, binary, date, decimal(p,s) are spelled alike.
        other => other.to_string(),
    }
}

/// The Glue table names and folders of a lake's Delta tables.
pub const TABLES: [&str; 2] = [TABLE_DIR, REJECTS_TABLE_DIR];

/// The specs of the lake's Delta tables: `ticks` (an error when the lake has no ticks table
/// yet) and `rejects` when the lake has one.
pub async fn lake_tables(database: &str, lake: &str) -> Result<Vec<TableSpec>, CatalogError> {
    let mut out = Vec::new();
    for table in TABLES {
        let url = table_url(lake, table)?;
        match describe_table(&url).await? {
            Some(d) => out.push(TableSpec::from_delta(database, table, &d)),
            None if table == TABLE_DIR => {
                return Err(CatalogError::Lake {
                    url: url.to_string(),
                    message: "no Delta table here (no _delta_log/): consume into the lake first, \
                              or convert a lake written by stocklake 0.1 with `stocklake lake \
                              upgrade`"
                        .into(),
                });
            }
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_types_map_to_hive_types_and_partition_columns_become_keys() {
        let d = TableDescription {
            url: url::Url::parse("s3://b/lake/ticks/").unwrap(),
            version: 7,
            columns: [
                ("event_time", "timestamp"),
                ("volume", "long"),
                ("kafka_partition", "integer"),
                ("close", "double"),
                ("year", "integer"),
                ("symbol", "string"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            partition_columns: vec!["symbol".into(), "year".into()],
        };
        let spec = TableSpec::from_delta("db", "ticks", &d);
        assert_eq!(spec.location, "s3://b/lake/ticks/");
        let cols: Vec<(&str, &str)> = spec
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.hive_type.as_str()))
            .collect();
        assert_eq!(
            cols,
            [
                ("event_time", "timestamp"),
                ("volume", "bigint"),
                ("kafka_partition", "int"),
                ("close", "double")
            ]
        );
        let keys: Vec<(&str, &str)> = spec
            .partition_keys
            .iter()
            .map(|c| (c.name.as_str(), c.hive_type.as_str()))
            .collect();
        assert_eq!(keys, [("symbol", "string"), ("year", "int")]);
        assert!(spec.columns[0].comment.is_some());
        assert_eq!(hive_type("decimal(9,2)"), "decimal(9,2)");
    }
}
