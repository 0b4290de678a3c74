//! The ticks table as a Delta Lake table (issue 12): created once with its partition layout
//! (put-if-absent, so racing creators cannot mix layouts), and written one flush per commit: the
//! flush's data files plus one `txn` action per Kafka partition, against the snapshot the writer
//! last validated. A writer whose partition was committed by someone else since then is refused.
//!
//! The files themselves are written by the caller (the writer profile of `writer.rs`, Hive-style
//! directories of `layout.rs`); this module only records them in `_delta_log/`.

use std::sync::Arc;

use deltalake::kernel::StructField;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use super::error::LakeError;
use super::layout::{PartitionKey, TABLE_DIR, TableLayout};
use crate::tick::{MS_PER_DAY, civil_from_days, file_schema};

/// Table properties set at creation. A year of one commit per second must stay workable:
/// no expired-log clean-up after every commit (it lists the whole `_delta_log` each time; the
/// compactor runs it), a checkpoint every 100 commits. `delta.setTransactionRetentionDuration`
/// is never set: it would make idle partitions lose their offsets at the next checkpoint.
const TABLE_PROPERTIES: &[(&str, &str)] = &[
    ("delta.enableExpiredLogCleanup", "false"),
    ("delta.checkpointInterval", "100"),
    ("delta.logRetentionDuration", "interval 30 days"),
];

/// Attempts of a flush commit when other writers (other Kafka partitions) committed meanwhile:
/// each retry first checks their commits for a `txn` of ours (then the flush is refused).
const COMMIT_RETRIES: usize = 15;

/// The Delta `txn` application id of a Kafka partition: `stocklake:<topic>:<partition>`. Kafka
/// topic names hold only `[A-Za-z0-9._-]`, so the id is unambiguous.
pub fn app_id(topic: &str, partition: i32) -> String {
    format!("stocklake:{topic}:{partition}")
}

/// Who commits, recorded in each commit's `commitInfo` as `stocklakeWriter`
/// (`<host>:<pid>`), so the log tells which process wrote what.
pub fn writer_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}:{}", std::process::id())
    })
    .clone()
}

/// The ticks table's URL under a lake (`<lake>/ticks/`), from a folder, `file://` or `s3://` URL.
pub fn ticks_url(lake: &str) -> Result<Url, LakeError> {
    let (_, root) = super::lake_location(lake)?;
    root.join(&format!("{TABLE_DIR}/"))
        .map_err(|e| LakeError::Url {
            url: lake.to_string(),
            message: e.to_string(),
        })
}

/// The partition values of a tick in Delta's canonical form (`month` is `3`, not `03`, even
/// where the directory says `month=03`). Delta reads an empty string as NULL: callers must not
/// write empty symbols.
pub fn partition_values(
    layout: &TableLayout,
    symbol: &str,
    event_time: i64,
) -> Vec<(String, String)> {
    let (_, m, _) = civil_from_days(event_time.div_euclid(MS_PER_DAY));
    layout
        .partition_by
        .iter()
        .map(|key| {
            let value = match key {
                PartitionKey::Month => m.to_string(),
                other => other.value(symbol, event_time),
            };
            (key.column().to_string(), value)
        })
        .collect()
}

/// A data file already written under the table folder, to be recorded in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Path relative to the table folder, as the object is named in the store
    /// (`symbol=AAPL/part-….parquet`, Hive-escaped directory values).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Each partition column and its value (see [`partition_values`]).
    pub partition_values: Vec<(String, String)>,
    /// Rows in the file.
    pub rows: u64,
    /// Delta per-file statistics JSON (`numRecords`, `minValues`, …); None writes only
    /// `{"numRecords":rows}`.
    pub stats: Option<String>,
}

/// One Kafka partition's progress in a commit: the last offset the commit holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTxn {
    /// See [`app_id`].
    pub app_id: String,
    /// The last Kafka offset written (inclusive).
    pub version: i64,
}

/// The ticks Delta table, at the version this handle last loaded or committed. Nothing here
/// refreshes it silently: [`TicksTable::commit`] commits against that version, and only
/// [`TicksTable::refresh`] moves it forward.
///
/// A writer never holds the table's file list: commits are written as log entries directly
/// (`delta/commit.rs`), `txn` versions come from the kernel's log replay of that one action,
/// and checkpoints are streamed (`delta/checkpoint.rs`). Only [`TicksTable::loaded`] loads the
/// file list, for readers of the handle.
#[derive(Clone)]
pub struct TicksTable {
    table: DeltaTable,
    name: String,
    spec: Spec,
    /// The version this handle holds (the loaded state of `table` may be older).
    version: u64,
    /// Commits between checkpoints (`delta.checkpointInterval`).
    checkpoint_interval: u64,
    /// How long `remove` tombstones stay in checkpoints (`delta.deletedFileRetentionDuration`).
    tombstone_retention: std::time::Duration,
    /// The kernel's snapshot last used for `txn` versions, advanced from there.
    kernel: Arc<std::sync::Mutex<Option<delta_kernel::snapshot::SnapshotRef>>>,
}

/// What a table must look like: its columns and partition columns.
#[derive(Clone, Debug)]
struct Spec {
    columns: Vec<StructField>,
    partition_columns: Vec<String>,
}

impl Spec {
    fn ticks(layout: &TableLayout) -> Result<Spec, String> {
        Ok(Spec {
            columns: columns(layout)?,
            partition_columns: layout
                .partition_by
                .iter()
                .map(|k| k.column().to_string())
                .collect(),
        })
    }

    fn rejects() -> Result<Spec, String> {
        let schema = super::rejects::rejects_schema();
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .try_into_kernel()
                    .map_err(|e| format!("{}: {e}", f.name()))
            })
            .collect::<Result<Vec<StructField>, String>>()?;
        Ok(Spec {
            columns,
            partition_columns: Vec::new(),
        })
    }
}

/// The rejects table's URL under a lake (`<lake>/rejects/`).
pub fn rejects_url(lake: &str) -> Result<Url, LakeError> {
    let (_, root) = super::lake_location(lake)?;
    root.join(&format!("{}/", super::layout::REJECTS_TABLE_DIR))
        .map_err(|e| LakeError::Url {
            url: lake.to_string(),
            message: e.to_string(),
        })
}

/// The layout of an existing ticks table from its partition columns.
fn layout_of(partition_columns: &[String]) -> Option<TableLayout> {
    partition_columns
        .iter()
        .map(|c| {
            [
                PartitionKey::Symbol,
                PartitionKey::Year,
                PartitionKey::Month,
                PartitionKey::Date,
            ]
            .into_iter()
            .find(|k| k.column() == c)
        })
        .collect::<Option<Vec<_>>>()
        .map(|partition_by| TableLayout { partition_by })
}

impl std::fmt::Debug for TicksTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicksTable")
            .field("table", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

pub(crate) fn delta_err(table: &str) -> impl Fn(DeltaTableError) -> LakeError + '_ {
    move |e| LakeError::Delta {
        table: table.to_string(),
        source: Box::new(e),
    }
}

/// A table handle for `url` (not loaded). S3 tables use stocklake's own S3 client (aws-config's
/// chain and endpoint) for the log and the data; local folders are created when missing.
pub(crate) async fn table_at(url: &Url) -> Result<DeltaTable, LakeError> {
    let name = url.to_string();
    let url_err = |message: String| LakeError::Url {
        url: name.clone(),
        message,
    };
    let builder = DeltaTableBuilder::from_url(url.clone()).map_err(delta_err(&name))?;
    let builder = match url.scheme() {
        "file" => {
            let dir = url
                .to_file_path()
                .map_err(|()| url_err("not a local path".into()))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| url_err(format!("cannot create the folder: {e}")))?;
            builder
        }
        "s3" | "s3a" => {
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| url_err("no bucket name".into()))?;
            let store = crate::aws::s3_store(&crate::aws::sdk_config().await, bucket)
                .map_err(|e| url_err(e.to_string()))?;
            builder.with_storage_backend(store, url.clone())
        }
        other => return Err(url_err(format!("unsupported scheme {other}://"))),
    };
    builder.build().map_err(delta_err(&name))
}

/// The table's columns for a layout: the file columns, then the partition columns.
fn columns(layout: &TableLayout) -> Result<Vec<StructField>, String> {
    let file = file_schema(layout.symbol_in_file());
    file.fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .chain(layout.partition_fields())
        .map(|f| {
            (&f).try_into_kernel()
                .map_err(|e| format!("{}: {e}", f.name()))
        })
        .collect()
}

fn describe(columns: &[String]) -> String {
    if columns.is_empty() {
        "no partition columns".into()
    } else {
        format!("partition columns ({})", columns.join(", "))
    }
}

impl TicksTable {
    /// Opens the ticks table at `url`, creating it with `layout` when there is none. Creation is
    /// put-if-absent (no retry): of two racing creators one wins, and the other loads the
    /// winner's table. Either way a table whose partition columns or columns differ from
    /// `layout`'s is refused with [`LakeError::TableMismatch`].
    pub async fn open_or_create(url: &Url, layout: &TableLayout) -> Result<Self, LakeError> {
        let spec = Spec::ticks(layout).map_err(|message| LakeError::Format {
            key: url.to_string(),
            message,
        })?;
        Self::open_spec(url, spec).await
    }

    /// Opens the ticks table for a writer: an existing table keeps its layout (`wanted`, when
    /// given, must be it); a missing one is created with `wanted` or the default layout.
    /// Returns the table and its layout. The handle holds no file list, not even at the start:
    /// an existing table is opened from its metadata and protocol alone, so a writer restarted
    /// on a table of a million files starts as small as on a new one.
    pub async fn open_for_writing(
        url: &Url,
        wanted: Option<&TableLayout>,
    ) -> Result<(Self, TableLayout), LakeError> {
        let name = url.to_string();
        let table = table_at(url).await?;
        if !table
            .verify_deltatable_existence()
            .await
            .map_err(delta_err(&name))?
        {
            let layout = wanted.cloned().unwrap_or_default();
            let mut this = Self::open_or_create(url, &layout).await?;
            this.table.state = None;
            return Ok((this, layout));
        }
        let snapshot = read::load_lean(&table, &name).await?;
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        let layout = layout_of(&partition_columns).ok_or_else(|| LakeError::TableMismatch {
            table: name.clone(),
            found: describe(&partition_columns),
            wanted: "the partition columns of a ticks table (symbol, year, month, dt)".into(),
        })?;
        let spec = Spec::ticks(wanted.unwrap_or(&layout)).map_err(|message| LakeError::Format {
            key: name.clone(),
            message,
        })?;
        let version = snapshot.version();
        let this = TicksTable::new(table, name, spec, version, snapshot.table_properties());
        let columns = snapshot
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        this.check_layout_of(&partition_columns, columns)?;
        Ok((this, layout))
    }

    /// Opens the rejects table at `url` (see [`rejects_url`]), creating it when there is none.
    pub async fn open_or_create_rejects(url: &Url) -> Result<Self, LakeError> {
        let spec = Spec::rejects().map_err(|message| LakeError::Format {
            key: url.to_string(),
            message,
        })?;
        Self::open_spec(url, spec).await
    }

    async fn open_spec(url: &Url, spec: Spec) -> Result<Self, LakeError> {
        let name = url.to_string();
        let mut table = table_at(url).await?;
        let exists = table
            .verify_deltatable_existence()
            .await
            .map_err(delta_err(&name))?;
        if exists {
            read::load(&mut table, &name).await?;
        } else {
            let created = table
                .create()
                .with_columns(spec.columns.clone())
                .with_partition_columns(spec.partition_columns.clone())
                .with_configuration(TABLE_PROPERTIES.iter().map(|(k, v)| (*k, Some(*v))))
                .with_save_mode(SaveMode::ErrorIfExists)
                .with_commit_properties(CommitProperties::default().with_max_retries(0))
                .await;
            match created {
                Ok(t) => {
                    table = t;
                    // A checkpoint of the new table (its metadata and protocol alone): every
                    // later checkpoint is then streamed from the one before, so even the first
                    // one costs no more memory than the commits it covers.
                    let log_store = table.log_store();
                    if let Err(e) = checkpoint::kernel(&log_store, &name, 0).await {
                        tracing::warn!(
                            "{name}: the checkpoint of the new table was not written: {}",
                            crate::report::chain(&e)
                        );
                    }
                }
                // Lost the race (or failed): whoever created it decides the layout.
                Err(e) => {
                    if !table
                        .verify_deltatable_existence()
                        .await
                        .map_err(delta_err(&name))?
                    {
                        return Err(delta_err(&name)(e));
                    }
                    tracing::info!("{name}: created meanwhile by another writer ({e})");
                    read::load(&mut table, &name).await?;
                }
            }
        }
        let properties = table
            .snapshot()
            .map_err(delta_err(&name))?
            .table_config()
            .clone();
        let version = table.version().unwrap_or_default();
        let this = TicksTable::new(table, name, spec, version, &properties);
        this.check_layout()?;
        Ok(this)
    }

    /// A handle on `table` at `version`, with the checkpoint interval and tombstone retention
    /// its `properties` set.
    fn new(
        table: DeltaTable,
        name: String,
        spec: Spec,
        version: u64,
        properties: &delta_kernel::table_properties::TableProperties,
    ) -> Self {
        TicksTable {
            table,
            name,
            spec,
            version,
            checkpoint_interval: properties
                .checkpoint_interval
                .map_or(DEFAULT_CHECKPOINT_INTERVAL, |n| n.get()),
            tombstone_retention: properties
                .deleted_file_retention_duration
                .unwrap_or(checkpoint::DEFAULT_TOMBSTONE_RETENTION),
            kernel: Arc::default(),
        }
    }

    fn check_layout(&self) -> Result<(), LakeError> {
        let state = self.state()?;
        let columns = state
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        self.check_layout_of(state.metadata().partition_columns(), columns)
    }

    /// Refuses a table whose partition columns or columns (`have`) are not this handle's spec.
    fn check_layout_of(&self, found: &[String], have: Vec<String>) -> Result<(), LakeError> {
        let wanted = &self.spec.partition_columns;
        let mismatch = |found: String, wanted: String| LakeError::TableMismatch {
            table: self.name.clone(),
            found,
            wanted,
        };
        if found != wanted.as_slice() {
            return Err(mismatch(describe(found), describe(wanted)));
        }
        let want: Vec<String> = self
            .spec
            .columns
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        if have != want {
            return Err(mismatch(
                format!("columns ({})", have.join(", ")),
                format!("columns ({})", want.join(", ")),
            ));
        }
        Ok(())
    }

    fn state(&self) -> Result<&deltalake::table::state::DeltaTableState, LakeError> {
        self.table.snapshot().map_err(delta_err(&self.name))
    }

    /// The table's URL, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version this handle holds (last loaded or committed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The underlying table as it was opened or last [`loaded`](Self::loaded): after a commit
    /// through this handle it is behind [`version`](Self::version), and a writer's handle holds
    /// no state at all. Readers call `loaded` first.
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// The underlying table loaded (with its file list) at the version this handle holds:
    /// `loaded().await?.table_provider()` is the DataFusion provider of exactly that version.
    pub async fn loaded(&mut self) -> Result<&DeltaTable, LakeError> {
        if self.table.version() != Some(self.version) {
            let table = &mut self.table;
            if table.state.is_some() {
                table.update_incremental(Some(self.version)).await
            } else {
                table.load_version(self.version).await
            }
            .map_err(delta_err(&self.name))?;
        }
        Ok(&self.table)
    }

    /// Moves this handle to the latest committed version, and returns it. A writer does this
    /// when it (re)validates its partitions, never on its own before a commit.
    pub async fn refresh(&mut self) -> Result<u64, LakeError> {
        let latest = self
            .table
            .log_store()
            .get_latest_version(self.version)
            .await
            .map_err(delta_err(&self.name))?;
        self.version = self.version.max(latest);
        Ok(self.version)
    }

    /// The `txn` version of `app_id` at the version this handle holds; None when the table has
    /// never seen it. Read by the kernel's replay of `txn` actions alone, not the file list.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>, LakeError> {
        let log_store = self.table.log_store();
        let engine = log_store.engine(None);
        let root = checkpoint::table_root(&log_store);
        let version = self.version;
        let cache = Arc::clone(&self.kernel);
        let app_id = app_id.to_string();
        let found = tokio::task::spawn_blocking(move || {
            let cached = cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let snapshot = match cached {
                Some(s) if s.version() == version => s,
                Some(s) if s.version() < version => {
                    delta_kernel::snapshot::Snapshot::builder_from(s)
                        .at_version(version)
                        .build(engine.as_ref())?
                }
                _ => delta_kernel::snapshot::Snapshot::builder_for(root.as_str())
                    .at_version(version)
                    .build(engine.as_ref())?,
            };
            *cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&snapshot));
            snapshot.get_app_id_version(&app_id, engine.as_ref())
        })
        .await
        .map_err(|e| LakeError::Format {
            key: self.name.clone(),
            message: format!("reading txn versions failed: {e}"),
        })?;
        found.map_err(|e| delta_err(&self.name)(e.into()))
    }

    /// After a commit (of the version this handle now holds): the checkpoint when one is due.
    /// A checkpoint that fails fails nothing (the commit stands; readers replay from the
    /// previous checkpoint).
    async fn after_commit(&self) {
        let version = self.version;
        // deltalake's rule (versions 99, 199, … for an interval of 100), so that every writer
        // of the table checkpoints the same versions.
        if !(version + 1).is_multiple_of(self.checkpoint_interval) {
            return;
        }
        match self.checkpoint().await {
            Ok(written) => tracing::debug!("{}: checkpoint {version}: {written:?}", self.name),
            Err(e) => tracing::warn!(
                "{}: the checkpoint of version {version} was not written: {}",
                self.name,
                crate::report::chain(&e)
            ),
        }
    }

    /// Writes the checkpoint of the version this handle holds (streamed from the previous one
    /// where it can be).
    pub async fn checkpoint(&self) -> Result<checkpoint::Written, LakeError> {
        checkpoint::write(
            &self.table.log_store(),
            &self.name,
            self.version,
            self.tombstone_retention,
        )
        .await
    }
}

/// deltalake's and the kernel's checkpoint interval when a table sets none.
const DEFAULT_CHECKPOINT_INTERVAL: u64 = 100;

/// The Delta table as a DataFusion table provider, at the version `table` holds (loaded into a
/// copy of the handle's table when the handle's own state is behind, see [`TicksTable::table`]).
pub async fn provider(
    table: &TicksTable,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, LakeError> {
    let mut copy = table.clone();
    copy.loaded()
        .await?
        .table_provider()
        .await
        .map_err(|e| delta_err(table.name())(e.into()))
}

/// Streamed checkpoints: `delta/checkpoint.rs`.
pub mod checkpoint;
/// Committing a flush, and resolving a commit whose answer was lost: `delta/commit.rs`.
mod commit;
mod inspect;
pub use inspect::{TableDescription, describe_table};
/// Compaction and vacuum (`stocklake compact`): `delta/compact.rs`.
pub mod compact;
/// Reading the tables (the local engine, `\d`, `--as-of`): `delta/read.rs`.
pub mod read;
pub mod stats;

/// Unit tests on a temporary local table: `delta/tests.rs`.
#[cfg(test)]
mod tests;
