//! The Glue calls: the database, the table (created or updated to match its spec), partitions one
//! at a time (`consume --register-partitions`) and all missing ones (`catalog --repair`).

use std::collections::BTreeSet;

use aws_sdk_glue::Client as Glue;
use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, Table, TableInput,
};

use super::lake::lake_partitions;
use super::{CatalogError, INPUT_FORMAT, OUTPUT_FORMAT, SERDE_LIBRARY, TableSpec, glue_err};
use crate::aws::LakeRoot;

/// Glue's BatchCreatePartition limit.
const BATCH: usize = 100;

impl TableSpec {
    fn storage_descriptor(&self, location: &str) -> Result<StorageDescriptor, CatalogError> {
        let columns = self
            .data_columns()
            .into_iter()
            .map(|(n, t, c)| column(n, t, Some(c)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StorageDescriptor::builder()
            .set_columns(Some(columns))
            .location(location)
            .input_format(INPUT_FORMAT)
            .output_format(OUTPUT_FORMAT)
            .serde_info(
                SerDeInfo::builder()
                    .serialization_library(SERDE_LIBRARY)
                    .parameters("serialization.format", "1")
                    .build(),
            )
            .build())
    }

    fn table_input(&self) -> Result<TableInput, CatalogError> {
        let keys = self
            .layout
            .partition_by
            .iter()
            .map(|k| column(k.column(), k.athena_type(), None))
            .collect::<Result<Vec<_>, _>>()?;
        TableInput::builder()
            .name(&self.table)
            .description("stock ticks written by stocklake")
            .table_type("EXTERNAL_TABLE")
            .parameters("EXTERNAL", "TRUE")
            .parameters("classification", "parquet")
            .storage_descriptor(self.storage_descriptor(&self.location)?)
            .set_partition_keys(Some(keys))
            .build()
            .map_err(|e| glue_err("build TableInput", &self.table, e))
    }

    /// Whether the existing Glue table already matches this spec.
    fn matches(&self, t: &Table) -> bool {
        let sd = t.storage_descriptor();
        let cols: Vec<(String, String)> = sd
            .map(|sd| {
                sd.columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.r#type().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, String)> = self
            .data_columns()
            .iter()
            .map(|(n, t, _)| (n.to_string(), t.to_string()))
            .collect();
        let keys: Vec<(&str, &str)> = t
            .partition_keys()
            .iter()
            .map(|c| (c.name(), c.r#type().unwrap_or("")))
            .collect();
        let want_keys: Vec<(&str, &str)> = self
            .layout
            .partition_by
            .iter()
            .map(|k| (k.column(), k.athena_type()))
            .collect();
        cols == want
            && keys == want_keys
            && sd.and_then(|s| s.location()) == Some(self.location.as_str())
            && sd
                .and_then(|s| s.serde_info())
                .and_then(|s| s.serialization_library())
                == Some(SERDE_LIBRARY)
            && t.table_type() == Some("EXTERNAL_TABLE")
            && t.parameters()
                .and_then(|p| p.get("classification"))
                .map(String::as_str)
                == Some("parquet")
    }
}

fn column(name: &str, ty: &str, comment: Option<&str>) -> Result<Column, CatalogError> {
    Column::builder()
        .name(name)
        .r#type(ty)
        .set_comment(comment.map(str::to_string))
        .build()
        .map_err(|e| glue_err("build Column", name, e))
}

/// What [`ensure_table`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableAction {
    Created,
    Updated,
    Unchanged,
}

/// Creates the database when missing; true when it was created.
pub async fn ensure_database(glue: &Glue, database: &str) -> Result<bool, CatalogError> {
    let input = DatabaseInput::builder()
        .name(database)
        .description("stocklake: stock ticks lake")
        .build()
        .map_err(|e| glue_err("build DatabaseInput", database, e))?;
    match glue.create_database().database_input(input).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_already_exists_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(glue_err("CreateDatabase", database, e)),
    }
}

/// Creates the table, or updates it when it differs from `spec` (idempotent). The database must
/// exist ([`ensure_database`]).
pub async fn ensure_table(glue: &Glue, spec: &TableSpec) -> Result<TableAction, CatalogError> {
    let target = format!("{}.{}", spec.database, spec.table);
    let existing = match glue
        .get_table()
        .database_name(&spec.database)
        .name(&spec.table)
        .send()
        .await
    {
        Ok(out) => out.table().cloned(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(glue_err("GetTable", &target, e)),
    };
    match existing {
        Some(t) if spec.matches(&t) => Ok(TableAction::Unchanged),
        Some(_) => {
            glue.update_table()
                .database_name(&spec.database)
                .table_input(spec.table_input()?)
                .send()
                .await
                .map_err(|e| glue_err("UpdateTable", &target, e))?;
            Ok(TableAction::Updated)
        }
        None => {
            glue.create_table()
                .database_name(&spec.database)
                .table_input(spec.table_input()?)
                .send()
                .await
                .map_err(|e| glue_err("CreateTable", &target, e))?;
            Ok(TableAction::Created)
        }
    }
}

/// The table's storage descriptor with another location: what a partition of it needs.
async fn partition_sd(
    glue: &Glue,
    db: &str,
    table: &str,
    location: &str,
) -> Result<StorageDescriptor, CatalogError> {
    let target = format!("{db}.{table}");
    let out = glue
        .get_table()
        .database_name(db)
        .name(table)
        .send()
        .await
        .map_err(|e| glue_err("GetTable", &target, e))?;
    let mut sd = out
        .table()
        .and_then(|t| t.storage_descriptor())
        .cloned()
        .ok_or_else(|| CatalogError::Glue {
            op: "GetTable",
            target: target.clone(),
            message: "the table has no storage descriptor".into(),
        })?;
    sd.location = Some(location.to_string());
    Ok(sd)
}

/// Registers one partition (UNESCAPED `values`, in partition-key order; `location` the escaped
/// directory URL, e.g. `s3://b/lake/ticks/symbol=A%2FB/`). A partition that already exists is
/// success. The table must exist ([`ensure_table`]).
pub async fn register_partition(
    glue: &Glue,
    db: &str,
    table: &str,
    values: &[String],
    location: &str,
) -> Result<(), CatalogError> {
    let sd = partition_sd(glue, db, table, location).await?;
    let input = PartitionInput::builder()
        .set_values(Some(values.to_vec()))
        .storage_descriptor(sd)
        .build();
    match glue
        .create_partition()
        .database_name(db)
        .table_name(table)
        .partition_input(input)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(glue_err(
            "CreatePartition",
            &format!("{db}.{table} {values:?}"),
            e,
        )),
    }
}

/// Every partition's values registered in Glue (all pages).
pub async fn glue_partitions(
    glue: &Glue,
    db: &str,
    table: &str,
) -> Result<BTreeSet<Vec<String>>, CatalogError> {
    let mut out = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = glue
            .get_partitions()
            .database_name(db)
            .table_name(table)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| glue_err("GetPartitions", &format!("{db}.{table}"), e))?;
        out.extend(page.partitions().iter().map(|p| p.values().to_vec()));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

/// What `catalog --repair` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub in_lake: usize,
    pub in_glue: usize,
    pub added: usize,
}

/// Adds the partitions the lake holds and Glue lacks (BatchCreatePartition, 100 at a time).
pub async fn repair(
    glue: &Glue,
    spec: &TableSpec,
    lake: &LakeRoot,
) -> Result<RepairReport, CatalogError> {
    let in_lake = lake_partitions(lake, &spec.layout).await?;
    let in_glue = glue_partitions(glue, &spec.database, &spec.table).await?;
    let missing: Vec<(&Vec<String>, &String)> = in_lake
        .iter()
        .filter(|(v, _)| !in_glue.contains(*v))
        .collect();
    let target = format!("{}.{}", spec.database, spec.table);
    let mut added = 0;
    for chunk in missing.chunks(BATCH) {
        let mut inputs = Vec::with_capacity(chunk.len());
        for (values, dir) in chunk {
            let sd = spec.storage_descriptor(&format!("{}{dir}", spec.location))?;
            inputs.push(
                PartitionInput::builder()
                    .set_values(Some(values.to_vec()))
                    .storage_descriptor(sd)
                    .build(),
            );
        }
        let out = glue
            .batch_create_partition()
            .database_name(&spec.database)
            .table_name(&spec.table)
            .set_partition_input_list(Some(inputs))
            .send()
            .await
            .map_err(|e| glue_err("BatchCreatePartition", &target, e))?;
        let failure = out.errors().iter().find(|e| {
            e.error_detail().and_then(|d| d.error_code()) != Some("AlreadyExistsException")
        });
        if let Some(e) = failure {
            return Err(CatalogError::Glue {
                op: "BatchCreatePartition",
                target: format!("{target} {:?}", e.partition_values()),
                message: e
                    .error_detail()
                    .and_then(|d| d.error_message())
                    .unwrap_or("unknown error")
                    .to_string(),
            });
        }
        added += chunk.len();
    }
    Ok(RepairReport {
        in_lake: in_lake.len(),
        in_glue: in_glue.len(),
        added,
    })
}
