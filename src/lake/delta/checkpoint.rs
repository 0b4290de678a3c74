//! Checkpoints that cost the same at the thousandth as at the first: the new checkpoint is the
//! previous one, read a row group at a time with the rows later commits replaced left out, plus
//! the surviving actions of the commits since, decoded from their JSON straight into the
//! checkpoint's own Arrow schema. Memory is bounded by a row group and by the commits between
//! two checkpoints, never by the table's file count, so a consumer that runs for a year keeps
//! its footprint (issue 16's soak). The kernel writes the table's first checkpoint, and any
//! checkpoint of a shape this does not handle (multi-part or V2 checkpoints, deletion vectors,
//! struct statistics, domain metadata): its replay holds every file, but only where needed.
//!
//! Reconciliation follows the protocol: for a file path the newest `add` or `remove` wins; a
//! `remove` older than `delta.deletedFileRetentionDuration` is dropped; the newest `txn` of an
//! application id, `metaData` and `protocol` win; `commitInfo` is not kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StructArray};
use arrow::datatypes::SchemaRef;
use arrow::json::reader::Decoder;
use bytes::Bytes;
use deltalake::logstore::LogStoreRef;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::lake::LakeError;

/// Rows a batch (read, decoded, written) holds.
const BATCH_ROWS: usize = 1024;

/// Rows a written row group holds (its encoded pages stay in memory until it is complete).
const ROW_GROUP_ROWS: usize = 8192;

/// Bytes of the new checkpoint buffered before they go to the store (S3's smallest part).
const UPLOAD_PART_BYTES: usize = 5 << 20;

/// The kernel's retention of `remove` tombstones when the table sets none.
pub(super) const DEFAULT_TOMBSTONE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Streamed from the previous checkpoint (at `from`) and the commits since.
    Streamed {
        from: u64,
        actions: u64,
        add_files: u64,
    },
    /// By the kernel's full replay, for the reason given.
    Kernel(String),
    /// Not written: a checkpoint of this version or a later one is there (at the version given).
    Present(u64),
}

/// A log entry's path below the table.
pub(super) fn entry_path(version: u64) -> Path {
    Path::from(format!("_delta_log/{version:020}.json"))
}

fn checkpoint_path(version: u64) -> Path {
    Path::from(format!("_delta_log/{version:020}.checkpoint.parquet"))
}

/// The checkpoint hint below the table.
pub(super) const HINT: &str = "_delta_log/_last_checkpoint";

/// The object at `path` below the table `name`, or None when there is none; a failed request
/// is an error naming the object.
pub(super) async fn read_object(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    path: &Path,
) -> Result<Option<Bytes>, LakeError> {
    let got = match store.get(path).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    match got {
        Ok(b) => Ok(Some(b)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(LakeError::Store {
            key: format!("{name}{path}"),
            source,
        }),
    }
}

/// The version a `_last_checkpoint` hint names, when it is JSON with one.
pub(super) fn hint_version(hint: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(hint).ok()?["version"].as_u64()
}

/// The table's root URL with its trailing slash (the kernel joins paths onto it).
pub(super) fn table_root(log_store: &LogStoreRef) -> url::Url {
    let mut root = log_store.root_url().clone();
    if !root.path().ends_with('/') {
        root.set_path(&format!("{}/", root.path()));
    }
    root
}

/// Writes the checkpoint of `version` of the table behind `log_store` (named `name` in errors):
/// streamed when the previous checkpoint allows it, by the kernel otherwise. `retention` is the
/// table's tombstone retention.
pub(crate) async fn write(
    log_store: &LogStoreRef,
    name: &str,
    version: u64,
    retention: Duration,
) -> Result<Written, LakeError> {
    let store = log_store.object_store(None);
    let streamed = match previous(&store, name).await? {
        Ok(from) if from >= version => return Ok(Written::Present(from)),
        Ok(from) => {
            let cutoff = chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64;
            stream(&store, name, from, version, cutoff).await?
        }
        Err(why) => Err(why),
    };
    match streamed {
        Ok(written) => Ok(written),
        Err(why) => {
            tracing::info!("{name}: checkpoint {version} by the kernel: {why}");
            kernel(log_store, name, version).await?;
            Ok(Written::Kernel(why))
        }
    }
}

/// The version of the newest checkpoint when it is one this module can extend, else why not.
async fn previous(
    store: &Arc<dyn ObjectStore>,
    name: &str,
) -> Result<Result<u64, String>, LakeError> {
    let Some(hint) = read_object(store, name, &Path::from(HINT)).await? else {
        return Ok(Err("no checkpoint yet".into()));
    };
    let Some(from) = hint_version(&hint) else {
        return Ok(Err("_last_checkpoint names no version".into()));
    };
    let hint: serde_json::Value = serde_json::from_slice(&hint).unwrap_or_default();
    if hint.get("parts").is_some_and(|p| !p.is_null()) || hint.get("v2Checkpoint").is_some() {
        return Ok(Err(format!("checkpoint {from} is multi-part or V2")));
    }
    Ok(Ok(from))
}

/// One action of a log entry, as far as reconciliation needs it.
#[derive(Debug, PartialEq)]
enum Kind {
    Add(String),
    Remove(String, i64),
    Txn(String),
    MetaData,
    Protocol,
    /// Not kept in checkpoints (`commitInfo`, `cdc`).
    Skip,
}

fn classify(line: &str) -> Result<Kind, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("an action that is not JSON ({e})"))?;
    let object = value.as_object().ok_or("an action that is not an object")?;
    let (key, action) = object.iter().next().ok_or("an empty action")?;
    let text = |field: &str| {
        action
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("a {key} action without {field}"))
    };
    Ok(match key.as_str() {
        "add" | "remove" if action.get("deletionVector").is_some_and(|d| !d.is_null()) => {
            return Err("deletion vectors".into());
        }
        "add" => Kind::Add(text("path")?),
        "remove" => Kind::Remove(
            text("path")?,
            action
                .get("deletionTimestamp")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
        ),
        "txn" => Kind::Txn(text("appId")?),
        "metaData" => Kind::MetaData,
        "protocol" => Kind::Protocol,
        "commitInfo" | "cdc" => Kind::Skip,
        other => return Err(format!("{other} actions")),
    })
}

/// Where an action sits in the log: its version and line.
type At = (u64, usize);

/// The newest action of each kind and key in the commits after the previous checkpoint.
#[derive(Default)]
struct Newest {
    files: HashMap<String, At>,
    txns: HashMap<String, At>,
    metadata: Option<At>,
    protocol: Option<At>,
}

impl Newest {
    /// Whether the action `kind` at `at` is the one the checkpoint keeps.
    fn keeps(&self, kind: &Kind, at: At, cutoff: i64) -> bool {
        match kind {
            Kind::Add(path) => self.files.get(path) == Some(&at),
            Kind::Remove(path, deleted) => *deleted > cutoff && self.files.get(path) == Some(&at),
            Kind::Txn(app) => self.txns.get(app) == Some(&at),
            Kind::MetaData => self.metadata == Some(at),
            Kind::Protocol => self.protocol == Some(at),
            Kind::Skip => false,
        }
    }
}

/// Log entry `version`, which must be there (the log keeps every entry after its newest
/// checkpoint).
async fn read_entry(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    version: u64,
) -> Result<Bytes, LakeError> {
    let path = entry_path(version);
    read_object(store, name, &path)
        .await?
        .ok_or_else(|| LakeError::Data {
            location: format!("{name}{path}"),
            message: "the log entry is missing".into(),
        })
}

fn lines(entry: &Bytes) -> impl Iterator<Item = (usize, &str)> {
    std::str::from_utf8(entry)
        .unwrap_or_default()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Streams checkpoint `version` from checkpoint `from`. The outer error is a failed request;
/// the inner one a shape this does not handle (nothing was written then).
async fn stream(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    from: u64,
    version: u64,
    cutoff: i64,
) -> Result<Result<Written, String>, LakeError> {
    // Pass 1: the newest action of every key since `from`.
    let mut newest = Newest::default();
    for v in from + 1..=version {
        let entry = read_entry(store, name, v).await?;
        if std::str::from_utf8(&entry).is_err() {
            return Ok(Err(format!("log entry {v} is not UTF-8")));
        }
        for (i, line) in lines(&entry) {
            let kind = match classify(line) {
                Ok(k) => k,
                Err(why) => return Ok(Err(format!("log entry {v} has {why}"))),
            };
            let at = (v, i);
            match kind {
                Kind::Add(path) | Kind::Remove(path, _) => {
                    newest.files.insert(path, at);
                }
                Kind::Txn(app) => {
                    newest.txns.insert(app, at);
                }
                Kind::MetaData => newest.metadata = Some(at),
                Kind::Protocol => newest.protocol = Some(at),
                Kind::Skip => {}
            }
        }
    }

    let previous = checkpoint_path(from);
    let key = |p: &Path| format!("{name}{p}");
    let parquet_err = |p: &Path, e: parquet::errors::ParquetError| LakeError::ParquetRead {
        key: key(p),
        message: e.to_string(),
    };
    let reader = reader(store, &previous)
        .await
        .map_err(|source| LakeError::Store {
            key: key(&previous),
            source,
        })?;
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| parquet_err(&previous, e))?
        .with_batch_size(BATCH_ROWS);
    let schema = Arc::clone(builder.schema());
    if let Err(why) = check_schema(&schema) {
        return Ok(Err(format!("checkpoint {from} has {why}")));
    }
    let mut old = builder.build().map_err(|e| parquet_err(&previous, e))?;

    let target = checkpoint_path(version);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = AsyncArrowWriter::try_new(
        BufWriter::with_capacity(Arc::clone(store), target.clone(), UPLOAD_PART_BYTES)
            .with_max_concurrency(2),
        Arc::clone(&schema),
        Some(props),
    )
    .map_err(|e| parquet_err(&target, e))?;
    let mut counts = Counts::default();

    // The previous checkpoint's rows that no later action replaced.
    while let Some(batch) = old
        .try_next()
        .await
        .map_err(|e| parquet_err(&previous, e))?
    {
        let kept = match keep_old(&batch, &newest, cutoff) {
            Ok(mask) => arrow::compute::filter_record_batch(&batch, &mask)
                .map_err(|e| parquet_err(&previous, e.into()))?,
            Err(why) => return Ok(give_up(writer, format!("checkpoint {from}: {why}")).await),
        };
        counts.add(&kept);
        writer
            .write(&kept)
            .await
            .map_err(|e| parquet_err(&target, e))?;
    }

    // Pass 2: the surviving actions of the commits since, decoded into the same schema. The
    // entries are read again rather than held since pass 1: between two checkpoints they can
    // be tens of MiB.
    let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(&schema))
        .with_batch_size(BATCH_ROWS)
        .build_decoder()
        .map_err(|e| parquet_err(&target, e.into()))?;
    for v in from + 1..=version {
        let entry = read_entry(store, name, v).await?;
        for (i, line) in lines(&entry) {
            let Ok(kind) = classify(line) else { continue };
            if !newest.keeps(&kind, (v, i), cutoff) {
                continue;
            }
            let mut rest = line.as_bytes();
            while !rest.is_empty() {
                let n = match decoder.decode(rest) {
                    Ok(n) => n,
                    Err(e) => {
                        let why = format!("log entry {v} line {}: {e}", i + 1);
                        return Ok(give_up(writer, why).await);
                    }
                };
                rest = &rest[n..];
                if !rest.is_empty() || decoder.len() >= BATCH_ROWS {
                    flush(&mut decoder, &mut writer, &mut counts, &target).await?;
                }
            }
        }
    }
    flush(&mut decoder, &mut writer, &mut counts, &target).await?;
    writer.finish().await.map_err(|e| parquet_err(&target, e))?;
    let size = writer.bytes_written() as u64;
    write_hint(store, name, version, counts.rows, size, counts.adds).await?;
    Ok(Ok(Written::Streamed {
        from,
        actions: counts.rows,
        add_files: counts.adds,
    }))
}

/// Drops a checkpoint begun and not finished (an S3 multipart upload would stay behind), and
/// says why.
async fn give_up(writer: AsyncArrowWriter<BufWriter>, why: String) -> Result<Written, String> {
    let mut upload = writer.into_inner();
    if let Err(e) = upload.abort().await {
        tracing::debug!("abandoning an unfinished checkpoint: {e}");
    }
    Err(why)
}

/// Rows and `add` rows written.
#[derive(Default)]
struct Counts {
    rows: u64,
    adds: u64,
}

impl Counts {
    fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        if let Some(add) = batch.column_by_name("add") {
            self.adds += (add.len() - add.null_count()) as u64;
        }
    }
}

async fn flush(
    decoder: &mut Decoder,
    writer: &mut AsyncArrowWriter<BufWriter>,
    counts: &mut Counts,
    target: &Path,
) -> Result<(), LakeError> {
    let err = |message: String| LakeError::Parquet {
        key: target.to_string(),
        message,
    };
    if let Some(batch) = decoder.flush().map_err(|e| err(e.to_string()))? {
        counts.add(&batch);
        writer.write(&batch).await.map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// The checkpoint columns this module reads must be there, and no struct statistics (which the
/// JSON of a commit does not carry).
fn check_schema(schema: &SchemaRef) -> Result<(), String> {
    for column in ["add", "remove", "txn", "metaData", "protocol"] {
        if schema.column_with_name(column).is_none() {
            return Err(format!("no {column} column"));
        }
    }
    if let Ok(add) = schema.field_with_name("add")
        && let arrow::datatypes::DataType::Struct(fields) = add.data_type()
        && fields.iter().any(|f| f.name().ends_with("_parsed"))
    {
        return Err("struct statistics (stats_parsed)".into());
    }
    Ok(())
}

/// The rows of a previous checkpoint's batch that stay: those no newer action replaced, and no
/// expired tombstone.
fn keep_old(batch: &RecordBatch, newest: &Newest, cutoff: i64) -> Result<BooleanArray, String> {
    let column = |name: &str| -> Result<&StructArray, String> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_struct_opt())
            .ok_or_else(|| format!("its {name} column is not a struct"))
    };
    let text = |s: &StructArray, field: &str| -> Result<Vec<Option<String>>, String> {
        let c = s
            .column_by_name(field)
            .ok_or_else(|| format!("no {field} field"))?;
        let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| format!("{field}: {e}"))?;
        Ok(c.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let (add, remove, txn) = (column("add")?, column("remove")?, column("txn")?);
    let (metadata, protocol) = (column("metaData")?, column("protocol")?);
    let add_path = text(add, "path")?;
    let remove_path = text(remove, "path")?;
    let app = text(txn, "appId")?;
    let deleted = remove
        .column_by_name("deletionTimestamp")
        .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>())
        .ok_or("remove.deletionTimestamp is not a BIGINT")?;
    let replaced =
        |path: &Option<String>| path.as_ref().is_some_and(|p| newest.files.contains_key(p));
    let mask: BooleanArray = (0..batch.num_rows())
        .map(|i| {
            Some(if add.is_valid(i) {
                !replaced(&add_path[i])
            } else if remove.is_valid(i) {
                let when = if deleted.is_valid(i) {
                    deleted.value(i)
                } else {
                    0
                };
                when > cutoff && !replaced(&remove_path[i])
            } else if txn.is_valid(i) {
                !app[i].as_ref().is_some_and(|a| newest.txns.contains_key(a))
            } else if metadata.is_valid(i) {
                newest.metadata.is_none()
            } else if protocol.is_valid(i) {
                newest.protocol.is_none()
            } else {
                true
            })
        })
        .collect();
    Ok(mask)
}

/// `_last_checkpoint` for `version`, unless a newer checkpoint's hint is already there.
async fn write_hint(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    version: u64,
    actions: u64,
    bytes: u64,
    add_files: u64,
) -> Result<(), LakeError> {
    let path = Path::from(HINT);
    if let Ok(Some(hint)) = read_object(store, name, &path).await
        && hint_version(&hint).is_some_and(|v| v > version)
    {
        return Ok(());
    }
    let hint = serde_json::json!({
        "version": version,
        "size": actions,
        "sizeInBytes": bytes,
        "numOfAddFiles": add_files,
    });
    store
        .put(&path, PutPayload::from(hint.to_string().into_bytes()))
        .await
        .map(|_| ())
        .map_err(|source| LakeError::Store {
            key: format!("{name}{path}"),
            source,
        })
}

/// The kernel's checkpoint of `version` (a full replay).
pub(super) async fn kernel(
    log_store: &LogStoreRef,
    name: &str,
    version: u64,
) -> Result<(), LakeError> {
    let engine = log_store.engine(None);
    let root = table_root(log_store);
    let done = tokio::task::spawn_blocking(move || {
        let snapshot = delta_kernel::snapshot::Snapshot::builder_for(root.as_str())
            .at_version(version)
            .build(engine.as_ref())?;
        snapshot.checkpoint(engine.as_ref(), None).map(|_| ())
    })
    .await
    .map_err(|e| LakeError::Format {
        key: name.to_string(),
        message: format!("the checkpoint task failed: {e}"),
    })?;
    done.map_err(|e| super::delta_err(name)(e.into()))
}

/// A Parquet object read by ranges.
async fn reader(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<crate::lake::audit::RangeReader, object_store::Error> {
    let size = store.head(path).await?.size;
    Ok(crate::lake::audit::RangeReader {
        store: Arc::clone(store),
        path: path.clone(),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_classified_by_their_key() {
        assert_eq!(
            classify(r#"{"add":{"path":"a=1/x.parquet","size":1}}"#),
            Ok(Kind::Add("a=1/x.parquet".into()))
        );
        assert_eq!(
            classify(r#"{"remove":{"path":"p","deletionTimestamp":7}}"#),
            Ok(Kind::Remove("p".into(), 7))
        );
        assert_eq!(
            classify(r#"{"txn":{"appId":"stocklake:t:0","version":3}}"#),
            Ok(Kind::Txn("stocklake:t:0".into()))
        );
        assert_eq!(classify(r#"{"commitInfo":{"a":1}}"#), Ok(Kind::Skip));
        assert!(classify(r#"{"domainMetadata":{"domain":"x"}}"#).is_err());
        assert!(classify(r#"{"add":{"path":"p","deletionVector":{"x":1}}}"#).is_err());
        assert!(classify("{not json").is_err());
    }
}
