//! The rejects table `<lake>/rejects/`: a Delta table, unpartitioned, one row per
//! [`Reject`] with the same fields. Written here by `lake upgrade` (the rejects of a 0.1 lake);
//! the consumer's own rejects writer may replace this module.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, StructField, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use url::Url;

use super::{AppTxn, DataFile, TABLE_PROPERTIES, delta_err, table_at};
use crate::lake::LakeError;
use crate::lake::rejects::Reject;

/// The rejects table's folder under the lake root.
pub const REJECTS_TABLE_DIR: &str = "rejects";

/// The rejects table's URL under a lake (`<lake>/rejects/`).
pub fn rejects_url(lake: &str) -> Result<Url, LakeError> {
    let (_, root) = crate::lake::lake_location(lake)?;
    root.join(&format!("{REJECTS_TABLE_DIR}/"))
        .map_err(|e| LakeError::Url {
            url: lake.to_string(),
            message: e.to_string(),
        })
}

/// The rejects table's columns: the fields of [`Reject`].
pub fn rejects_schema() -> SchemaRef {
    static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("topic", DataType::Utf8, false),
                Field::new("partition", DataType::Int32, false),
                Field::new("offset", DataType::Int64, false),
                Field::new("reason", DataType::Utf8, false),
                Field::new("key_base64", DataType::Utf8, true),
                Field::new("value_text", DataType::Utf8, true),
                Field::new("value_base64", DataType::Utf8, true),
                Field::new("value_bytes", DataType::Int64, false),
                Field::new("value_sha256", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Rejects as rows of the rejects table.
pub fn rejects_batch(rejects: &[Reject]) -> RecordBatch {
    let text = |f: fn(&Reject) -> Option<&str>| -> ArrayRef {
        Arc::new(rejects.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| Some(&r.topic)),
        Arc::new(rejects.iter().map(|r| r.partition).collect::<Int32Array>()),
        Arc::new(rejects.iter().map(|r| r.offset).collect::<Int64Array>()),
        text(|r| Some(&r.reason)),
        text(|r| r.key_base64.as_deref()),
        text(|r| r.value_text.as_deref()),
        text(|r| r.value_base64.as_deref()),
        Arc::new(
            rejects
                .iter()
                .map(|r| i64::try_from(r.value_bytes).unwrap_or(i64::MAX))
                .collect::<Int64Array>(),
        ),
        text(|r| r.value_sha256.as_deref()),
    ];
    RecordBatch::try_new(rejects_schema(), columns).expect("the columns match the rejects schema")
}

/// The rejects Delta table at the version this handle last loaded or committed.
pub struct RejectsTable {
    table: DeltaTable,
    name: String,
}

impl RejectsTable {
    /// Opens the rejects table at `url`, creating it (put-if-absent) when there is none. A table
    /// there with other columns is refused.
    pub async fn open_or_create(url: &Url) -> Result<Self, LakeError> {
        let name = url.to_string();
        let mut table = table_at(url).await?;
        if table
            .verify_deltatable_existence()
            .await
            .map_err(delta_err(&name))?
        {
            table.load().await.map_err(delta_err(&name))?;
        } else {
            let columns = rejects_schema()
                .fields()
                .iter()
                .map(|f| {
                    f.as_ref()
                        .try_into_kernel()
                        .map_err(|e| format!("{}: {e}", f.name()))
                })
                .collect::<Result<Vec<StructField>, String>>()
                .map_err(|message| LakeError::Format {
                    key: name.clone(),
                    message,
                })?;
            let created = table
                .create()
                .with_columns(columns)
                .with_configuration(TABLE_PROPERTIES.iter().map(|(k, v)| (*k, Some(*v))))
                .with_save_mode(SaveMode::ErrorIfExists)
                .with_commit_properties(CommitProperties::default().with_max_retries(0))
                .await;
            match created {
                Ok(t) => table = t,
                Err(e) => {
                    if !table
                        .verify_deltatable_existence()
                        .await
                        .map_err(delta_err(&name))?
                    {
                        return Err(delta_err(&name)(e));
                    }
                    table.load().await.map_err(delta_err(&name))?;
                }
            }
        }
        let have: Vec<String> = table
            .snapshot()
            .map_err(delta_err(&name))?
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        let want: Vec<String> = rejects_schema()
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        if have != want {
            return Err(LakeError::TableMismatch {
                table: name,
                found: format!("columns ({})", have.join(", ")),
                wanted: format!("the rejects columns ({})", want.join(", ")),
            });
        }
        Ok(RejectsTable { table, name })
    }

    /// The table's URL, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version this handle holds.
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or_default()
    }

    /// The underlying table at the version this handle holds.
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// The `txn` version of `app_id` at the version this handle holds.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>, LakeError> {
        self.table
            .snapshot()
            .map_err(delta_err(&self.name))?
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(delta_err(&self.name))
    }

    /// One commit: an `add` per file (unpartitioned) and the `txn`s. No retry: nothing else
    /// writes this table while `lake upgrade` runs.
    pub async fn commit(&mut self, files: &[DataFile], txns: &[AppTxn]) -> Result<u64, LakeError> {
        let now = chrono::Utc::now().timestamp_millis();
        let actions = files
            .iter()
            .map(|f| {
                Action::Add(Add {
                    path: f.path.clone(),
                    partition_values: HashMap::new(),
                    size: f.size as i64,
                    modification_time: now,
                    data_change: true,
                    stats: Some(format!("{{\"numRecords\":{}}}", f.rows)),
                    ..Default::default()
                })
            })
            .collect();
        let properties = CommitProperties::default()
            .with_application_transactions(
                txns.iter()
                    .map(|t| Transaction::new_with_last_update(&t.app_id, t.version, Some(now)))
                    .collect(),
            )
            .with_max_retries(0)
            .with_cleanup_expired_logs(Some(false));
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let state = self.table.snapshot().map_err(delta_err(&self.name))?;
        let done = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(state), self.table.log_store(), operation)
            .await
            .map_err(delta_err(&self.name))?;
        self.table.state = Some(done.snapshot());
        Ok(done.version())
    }
}
