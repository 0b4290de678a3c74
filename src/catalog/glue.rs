//! The Glue calls: the database, and each Delta table (created, or updated to match its spec).
//! A table that an older stocklake registered as a partitioned Hive table is converted in place,
//! and its Glue partitions, which nothing reads any more, are deleted.

use aws_sdk_glue::Client as Glue;
use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionValueList, SerDeInfo, StorageDescriptor, Table, TableInput,
};

use super::{
    CatalogError, GlueColumn, SPARK_PROVIDER_PARAM, TABLE_TYPE_DELTA, TABLE_TYPE_PARAM, TableSpec,
    glue_err,
};

/// Glue's BatchDeletePartition limit.
const BATCH: usize = 25;

impl TableSpec {
    fn target(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// The Glue `TableInput` of this table (see the module doc of `catalog`).
    pub fn table_input(&self) -> Result<TableInput, CatalogError> {
        let columns = self
            .columns
            .iter()
            .map(column)
            .collect::<Result<Vec<_>, _>>()?;
        let keys = self
            .partition_keys
            .iter()
            .map(column)
            .collect::<Result<Vec<_>, _>>()?;
        let sd = StorageDescriptor::builder()
            .set_columns(Some(columns))
            .location(&self.location)
            .serde_info(
                SerDeInfo::builder()
                    .parameters("serialization.format", "1")
                    .parameters("path", &self.location)
                    .build(),
            )
            .build();
        TableInput::builder()
            .name(&self.table)
            .description(format!(
                "stocklake {} (Delta Lake table; Athena reads its _delta_log)",
                self.table
            ))
            .table_type("EXTERNAL_TABLE")
            .parameters("EXTERNAL", "TRUE")
            .parameters(TABLE_TYPE_PARAM, TABLE_TYPE_DELTA)
            .parameters(SPARK_PROVIDER_PARAM, "delta")
            .storage_descriptor(sd)
            .set_partition_keys(Some(keys))
            .build()
            .map_err(|e| glue_err("build TableInput", &self.table, e))
    }

    /// Whether the existing Glue table already matches this spec.
    fn matches(&self, t: &Table) -> bool {
        let pairs = |cols: &[Column]| -> Vec<(String, String)> {
            cols.iter()
                .map(|c| (c.name().to_string(), c.r#type().unwrap_or("").to_string()))
                .collect()
        };
        let want = |cols: &[GlueColumn]| -> Vec<(String, String)> {
            cols.iter()
                .map(|c| (c.name.clone(), c.hive_type.clone()))
                .collect()
        };
        let sd = t.storage_descriptor();
        let param = |k: &str| t.parameters().and_then(|p| p.get(k)).map(String::as_str);
        sd.map(|sd| pairs(sd.columns())).unwrap_or_default() == want(&self.columns)
            && pairs(t.partition_keys()) == want(&self.partition_keys)
            && sd.and_then(|s| s.location()) == Some(self.location.as_str())
            && sd
                .and_then(|s| s.serde_info())
                .and_then(|s| s.parameters())
                .and_then(|p| p.get("path"))
                .map(String::as_str)
                == Some(self.location.as_str())
            && t.table_type() == Some("EXTERNAL_TABLE")
            && param(TABLE_TYPE_PARAM) == Some(TABLE_TYPE_DELTA)
            && param(SPARK_PROVIDER_PARAM) == Some("delta")
    }
}

fn column(c: &GlueColumn) -> Result<Column, CatalogError> {
    Column::builder()
        .name(&c.name)
        .r#type(&c.hive_type)
        .set_comment(c.comment.clone())
        .build()
        .map_err(|e| glue_err("build Column", &c.name, e))
}

fn is_delta(t: &Table) -> bool {
    t.parameters()
        .and_then(|p| p.get(TABLE_TYPE_PARAM))
        .is_some_and(|v| v.eq_ignore_ascii_case(TABLE_TYPE_DELTA))
}

/// What [`ensure_table`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableAction {
    Created,
    /// The Delta table's Glue entry was refreshed (location or schema changed).
    Updated,
    /// A table that was not a Delta table (the Hive table of stocklake 0.1) became one; its
    /// Glue partitions were deleted.
    Converted {
        removed_partitions: usize,
    },
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
    let target = spec.target();
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
        Some(t) => {
            // The old table's partitions go first, while they still match its keys.
            let converted = !is_delta(&t);
            let removed_partitions = if converted {
                delete_partitions(glue, spec).await?
            } else {
                0
            };
            glue.update_table()
                .database_name(&spec.database)
                .table_input(spec.table_input()?)
                .send()
                .await
                .map_err(|e| glue_err("UpdateTable", &target, e))?;
            Ok(if converted {
                TableAction::Converted { removed_partitions }
            } else {
                TableAction::Updated
            })
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

/// Deletes every Glue partition of the table (all pages); returns how many.
async fn delete_partitions(glue: &Glue, spec: &TableSpec) -> Result<usize, CatalogError> {
    let target = spec.target();
    let mut values: Vec<Vec<String>> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = glue
            .get_partitions()
            .database_name(&spec.database)
            .table_name(&spec.table)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| glue_err("GetPartitions", &target, e))?;
        values.extend(page.partitions().iter().map(|p| p.values().to_vec()));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    for chunk in values.chunks(BATCH) {
        let list = chunk
            .iter()
            .map(|v| {
                PartitionValueList::builder()
                    .set_values(Some(v.clone()))
                    .build()
                    .map_err(|e| glue_err("build PartitionValueList", &target, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = glue
            .batch_delete_partition()
            .database_name(&spec.database)
            .table_name(&spec.table)
            .set_partitions_to_delete(Some(list))
            .send()
            .await
            .map_err(|e| glue_err("BatchDeletePartition", &target, e))?;
        if let Some(e) = out.errors().first() {
            return Err(CatalogError::Glue {
                op: "BatchDeletePartition",
                target: format!("{target} {:?}", e.partition_values()),
                message: e
                    .error_detail()
                    .and_then(|d| d.error_message())
                    .unwrap_or("unknown error")
                    .to_string(),
            });
        }
    }
    Ok(values.len())
}
