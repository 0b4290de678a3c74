//! Compaction and vacuum of a lake's Delta tables (`<lake>/ticks/`, and `<lake>/rejects/` when
//! there is one): each partition's small files are bin-packed into files of a target size, then
//! files no longer referenced are deleted after a retention period, and expired log entries too.
//!
//! Safe while consumers append: a compaction commit removes (with `dataChange=false`) only files
//! it read at the version it planned from and adds the files it wrote from them, so every reader
//! of any version sees each row once, and appends committed meanwhile are kept (deltalake's
//! conflict checker lets appends and such removes pass each other). Two compactors must not both
//! commit the same files: the conflict checker ignores `dataChange=false` removes, so each
//! compaction commit also carries a `txn` of its own ([`COMPACT_APP_ID`], version = previous + 1)
//! and of two compactors racing from one version the second is refused, re-reads the table and
//! plans again from what the first left.
//!
//! The files are rewritten by stocklake, not by deltalake's OPTIMIZE: OPTIMIZE writes the
//! table's Delta types (timestamps in microseconds, not the lake's milliseconds) and drops the
//! application transactions of its commit properties, which the `txn` above needs. Rewritten
//! files keep the lake's Parquet profile (`writer.rs`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Add, Remove, Transaction};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTableError, checkpoints};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use url::Url;

use super::{delta_err, table_at};
use crate::lake::LakeError;
use crate::lake::store::Lake;
use crate::lake::writer::writer_properties;

/// The `txn` application id of compaction commits: two compactors that read the same version
/// cannot both commit.
pub const COMPACT_APP_ID: &str = "stocklake:compact";

/// Attempts of a compaction when other compactors keep committing first.
const MAX_REFUSALS: usize = 5;

/// Retries of one compaction commit over consumers' commits (which never conflict with it), and
/// rounds of those after reading the table again.
const COMMIT_RETRIES: usize = 15;
const COMMIT_ROUNDS: usize = 20;

/// Bytes of input files read ahead while rewriting a bin.
const READ_AHEAD_BYTES: u64 = 64 << 20;

/// What a compaction does; defaults in `settings::defaults`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactOptions {
    /// Size of the files written (bytes). Files under half of it are "small" and get packed.
    pub target_size: u64,
    /// Files removed from the table (or never committed) are deleted once they are this old.
    pub retain: Duration,
    /// Only partitions with no file committed in this long are compacted (zero: all).
    pub min_age: Duration,
    /// Commit the files rewritten so far at least this often.
    pub commit_every: Duration,
    /// Delete unreferenced files and expired log entries after compacting.
    pub vacuum: bool,
    /// Plan and report only; nothing is written or deleted.
    pub dry_run: bool,
}

/// What a compaction of one table did (or would do, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The table's URL.
    pub table: String,
    pub dry_run: bool,
    pub version_before: u64,
    pub version_after: u64,
    /// Active files and their bytes before and after.
    pub files_before: u64,
    pub bytes_before: u64,
    pub files_after: u64,
    pub bytes_after: u64,
    /// Partitions of the table, those compacted, and those skipped as still changing.
    pub partitions: u64,
    pub partitions_compacted: u64,
    pub partitions_live: u64,
    /// Small files replaced, and the files that replaced them (in a dry run: planned).
    pub files_removed: u64,
    pub bytes_removed: u64,
    pub files_added: u64,
    pub bytes_added: u64,
    pub rows_rewritten: u64,
    /// Compaction commits made, and commits refused because another compactor came first.
    pub commits: u64,
    pub refused: u64,
    /// Bins left alone because their files do not share one schema.
    pub bins_skipped: u64,
    /// Unreferenced data files deleted by the vacuum (in a dry run: that would be).
    pub vacuumed_files: u64,
    /// Staging files of killed writes (`<name>#<n>`) deleted.
    pub staging_files: u64,
    /// Expired `_delta_log` entries deleted.
    pub log_entries_removed: u64,
    /// Stopped early (Ctrl-C): what was rewritten so far is committed; no vacuum.
    pub stopped: bool,
}

/// The tables of a lake: `<lake>/ticks/`, and `<lake>/rejects/` when it exists.
pub async fn lake_tables(lake: &str) -> Result<Vec<Url>, LakeError> {
    let rejects = super::rejects_url(lake)?;
    let mut out = vec![super::ticks_url(lake)?];
    if open_existing(&rejects).await?.is_some() {
        out.push(rejects);
    }
    Ok(out)
}

/// Compacts every table of the lake (see [`lake_tables`]). When `stop` is set, the compaction
/// commits what it rewrote so far and ends without vacuuming.
pub async fn compact_lake(
    lake: &str,
    opts: &CompactOptions,
    progress: &(dyn Fn(&str) + Sync),
    stop: &AtomicBool,
) -> Result<Vec<CompactReport>, LakeError> {
    let mut out = Vec::new();
    for url in lake_tables(lake).await? {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        out.push(compact_table(&url, opts, progress, stop).await?);
    }
    Ok(out)
}

/// The Delta table at `url`, loaded; None when there is no table there.
async fn open_existing(url: &Url) -> Result<Option<DeltaTable>, LakeError> {
    if url.scheme() == "file"
        && let Ok(dir) = url.to_file_path()
        && !dir.join("_delta_log").is_dir()
    {
        return Ok(None);
    }
    let name = url.to_string();
    let mut table = table_at(url).await?;
    if !table
        .verify_deltatable_existence()
        .await
        .map_err(delta_err(&name))?
    {
        return Ok(None);
    }
    super::read::load(&mut table, &name).await?;
    Ok(Some(table))
}

/// One active file of the table.
#[derive(Debug, Clone)]
struct Entry {
    /// Path relative to the table folder, as the object is named in the store.
    path: String,
    size: u64,
    /// Commit time (ms since the epoch).
    modified: i64,
    remove: Remove,
}

/// A partition's values, sorted by column: the key files are grouped by.
type PartitionKey = Vec<(String, Option<String>)>;

/// Files to rewrite as one, all of one partition.
#[derive(Debug, Clone)]
struct Bin {
    /// The partition's folder (`symbol=AAPL`), empty for an unpartitioned table.
    dir: String,
    partition_values: HashMap<String, Option<String>>,
    files: Vec<Entry>,
}

impl Bin {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[derive(Debug, Default)]
struct Plan {
    bins: Vec<Bin>,
    partitions: u64,
    live: u64,
    files: u64,
    bytes: u64,
}

/// Groups the active files by partition and packs each settled partition's small files (under
/// half the target size) into bins of at most the target size, oldest first. Bins of one file
/// are left alone.
fn plan(table: &DeltaTable, opts: &CompactOptions, now_ms: i64) -> Result<Plan, DeltaTableError> {
    let state = table.snapshot()?;
    let mut partitions: BTreeMap<PartitionKey, Vec<Entry>> = BTreeMap::new();
    let mut values: HashMap<PartitionKey, HashMap<String, Option<String>>> = HashMap::new();
    let mut out = Plan::default();
    for view in state.log_data().iter() {
        let map = view.partition_values_map();
        let mut key: PartitionKey = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        key.sort();
        let size = view.size().max(0) as u64;
        out.files += 1;
        out.bytes += size;
        values.entry(key.clone()).or_insert(map);
        partitions.entry(key).or_default().push(Entry {
            path: view.path().into_owned(),
            size,
            modified: view.modification_time(),
            remove: view.remove_action(false),
        });
    }
    let min_age_ms = i64::try_from(opts.min_age.as_millis()).unwrap_or(i64::MAX);
    let small = opts.target_size / 2;
    for (key, mut files) in partitions {
        out.partitions += 1;
        let newest = files.iter().map(|f| f.modified).max().unwrap_or(0);
        if now_ms.saturating_sub(newest) < min_age_ms {
            out.live += 1;
            continue;
        }
        files.retain(|f| f.size < small);
        files.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        let partition_values = values.remove(&key).unwrap_or_default();
        let mut bin: Vec<Entry> = Vec::new();
        let mut bytes = 0u64;
        let close = |bin: &mut Vec<Entry>, out: &mut Plan| {
            if bin.len() > 1 {
                let dir = bin[0]
                    .path
                    .rsplit_once('/')
                    .map_or(String::new(), |(d, _)| d.to_string());
                out.bins.push(Bin {
                    dir,
                    partition_values: partition_values.clone(),
                    files: std::mem::take(bin),
                });
            } else {
                bin.clear();
            }
        };
        for f in files {
            if !bin.is_empty() && bytes + f.size > opts.target_size {
                close(&mut bin, &mut out);
                bytes = 0;
            }
            bytes += f.size;
            bin.push(f);
        }
        close(&mut bin, &mut out);
    }
    Ok(out)
}

/// A bin rewritten as one file, not yet committed.
#[derive(Debug)]
struct Rewritten {
    add: Add,
    removes: Vec<Remove>,
    rows: u64,
    bytes_removed: u64,
}

/// A name no other writer picks: time, process and a random number.
fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(
        "part-compact-{nanos:x}-{}-{random:016x}.parquet",
        std::process::id()
    )
}

fn store_err(lake: &Lake, rel: &str) -> impl Fn(object_store::Error) -> LakeError {
    let key = lake.display(rel);
    move |source| LakeError::Store {
        key: key.clone(),
        source,
    }
}

fn parquet_err(lake: &Lake, rel: &str) -> impl Fn(parquet::errors::ParquetError) -> LakeError {
    let key = lake.display(rel);
    move |e| LakeError::Parquet {
        key: key.clone(),
        message: e.to_string(),
    }
}

/// An input file of a bin that cannot be read as Parquet.
fn read_err(lake: &Lake, rel: &str) -> impl Fn(parquet::errors::ParquetError) -> LakeError {
    let key = lake.display(rel);
    move |e| LakeError::ParquetRead {
        key: key.clone(),
        message: e.to_string(),
    }
}

/// Reads the bin's files (a few at a time) and writes their rows, in order, as one file with
/// the lake's Parquet profile. None when the files do not share one schema (nothing is left
/// behind then).
async fn rewrite(lake: &Lake, bin: &Bin) -> Result<Option<Rewritten>, LakeError> {
    let rel = if bin.dir.is_empty() {
        unique_name()
    } else {
        format!("{}/{}", bin.dir, unique_name())
    };
    let largest = bin.files.iter().map(|f| f.size).max().unwrap_or(1).max(1);
    let ahead = usize::try_from(READ_AHEAD_BYTES / largest)
        .unwrap_or(1)
        .clamp(1, 32);
    let mut reads = futures::stream::iter(bin.files.iter().map(|f| async move {
        let bytes = lake.get_opt(&f.path).await?;
        bytes.ok_or_else(|| LakeError::Format {
            key: lake.display(&f.path),
            message: "the Delta log references this file but it does not exist".into(),
        })
    }))
    .buffered(ahead);
    let location = lake.path(&rel);
    let mut writer: Option<AsyncArrowWriter<object_store::buffered::BufWriter>> = None;
    let mut schema: Option<arrow::datatypes::SchemaRef> = None;
    let mut rows = 0u64;
    let mut stats: Option<serde_json::Value> = None;
    let mut order: Option<super::stats::OrderCheck> = None;
    let mut index = 0;
    let result: Result<bool, LakeError> = async {
        while let Some(bytes) = reads.next().await {
            let bytes: Bytes = bytes?;
            let path = &bin.files[index].path;
            index += 1;
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(read_err(lake, path))?;
            let file_schema = reader.schema().clone();
            match &schema {
                None => schema = Some(file_schema.clone()),
                Some(s) if s.fields() != file_schema.fields() => {
                    tracing::warn!(
                        "{}: its columns differ from {}'s; this group of files is not compacted",
                        lake.display(path),
                        lake.display(&bin.files[0].path)
                    );
                    return Ok(false);
                }
                Some(_) => {}
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(
                    AsyncArrowWriter::try_new(
                        object_store::buffered::BufWriter::new(
                            lake.store.clone(),
                            location.clone(),
                        ),
                        file_schema.clone(),
                        Some(writer_properties()),
                    )
                    .map_err(parquet_err(lake, &rel))?,
                ),
            };
            for batch in reader.build().map_err(read_err(lake, path))? {
                let batch = batch.map_err(|e| LakeError::ParquetRead {
                    key: lake.display(path),
                    message: e.to_string(),
                })?;
                rows += batch.num_rows() as u64;
                order
                    .get_or_insert_with(|| super::stats::OrderCheck::new(&batch.schema()))
                    .push(&batch);
                stats = Some(merge_stats(
                    stats.take(),
                    super::stats::file_stats(std::slice::from_ref(&batch)),
                ));
                w.write(&batch).await.map_err(parquet_err(lake, &rel))?;
            }
        }
        Ok(true)
    }
    .await;
    let complete = match result {
        Ok(complete) => complete,
        Err(e) => {
            if let Some(w) = writer.take() {
                drop(w);
                let _ = lake.delete(&rel).await;
            }
            return Err(e);
        }
    };
    let Some(w) = writer else {
        return Ok(None);
    };
    if !complete {
        drop(w);
        let _ = lake.delete(&rel).await;
        return Ok(None);
    }
    w.close().await.map_err(parquet_err(lake, &rel))?;
    let size = lake
        .store
        .head(&location)
        .await
        .map_err(store_err(lake, &rel))?
        .size;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Some(Rewritten {
        add: Add {
            path: rel,
            partition_values: bin.partition_values.clone(),
            size: size as i64,
            modification_time: now,
            data_change: false,
            stats: Some(stats.map_or_else(
                || format!("{{\"numRecords\":{rows}}}"),
                |mut v| {
                    // Each part's mark says only that part is in order. (Stats come with the
                    // first batch, and so does the check.)
                    if let Some(order) = &order {
                        order.mark(&mut v);
                    }
                    v.to_string()
                },
            )),
            ..Default::default()
        },
        removes: bin.files.iter().map(|f| f.remove.clone()).collect(),
        rows,
        bytes_removed: bin.bytes(),
    }))
}

/// The Delta statistics of a file made of two parts: rows and null counts add up, the least of
/// the minimums and the greatest of the maximums (numbers as numbers; timestamps, dates and
/// strings as text, which orders ISO dates and times). A column without a min/max in either part
/// gets none.
fn merge_stats(acc: Option<serde_json::Value>, next: String) -> serde_json::Value {
    use serde_json::Value;
    let next: Value = serde_json::from_str(&next).unwrap_or(Value::Null);
    let Some(mut acc) = acc else {
        return next;
    };
    let less = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() < y.as_f64(),
        (Value::String(x), Value::String(y)) => x < y,
        _ => false,
    };
    let rows = acc["numRecords"].as_u64().unwrap_or(0) + next["numRecords"].as_u64().unwrap_or(0);
    acc["numRecords"] = rows.into();
    if let (Some(a), Some(b)) = (
        acc["nullCount"].as_object_mut(),
        next["nullCount"].as_object(),
    ) {
        for (k, v) in b {
            let sum = a.get(k).and_then(Value::as_u64).unwrap_or(0) + v.as_u64().unwrap_or(0);
            a.insert(k.clone(), sum.into());
        }
    }
    for (key, keep_lower) in [("minValues", true), ("maxValues", false)] {
        let empty = serde_json::Map::new();
        let b = next[key].as_object().unwrap_or(&empty).clone();
        if let Some(a) = acc[key].as_object_mut() {
            a.retain(|k, _| b.contains_key(k));
            for (k, v) in a.iter_mut() {
                let other = &b[k];
                let replace = if keep_lower {
                    less(other, v)
                } else {
                    less(v, other)
                };
                if replace {
                    *v = other.clone();
                }
            }
        }
    }
    acc
}

/// Flushes the files rewritten on a local disk, and their folders, to the disk before they are
/// committed: on Linux one `syncfs` of the lake's file system, elsewhere each file and folder.
fn sync_local(lake: &Lake, done: &[Rewritten]) -> Result<(), LakeError> {
    let Ok(root) = lake.url.to_file_path() else {
        return Ok(());
    };
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| LakeError::Io { path, source }
    };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = done;
        let dir = std::fs::File::open(&root).map_err(io(&root))?;
        // SAFETY: a valid, open file descriptor for the duration of the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(io(&root)(std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    for r in done {
        let file = root.join(&r.add.path);
        std::fs::File::open(&file)
            .and_then(|f| f.sync_all())
            .map_err(io(&file))?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(io(dir))?;
        }
    }
    Ok(())
}

/// What became of a compaction commit.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Committed(u64),
    /// Another compactor committed since the version this one planned from.
    Refused,
}

/// The version of the last compaction commit in the version `table` holds.
async fn compact_version(table: &DeltaTable, name: &str) -> Result<Option<i64>, LakeError> {
    table
        .snapshot()
        .map_err(delta_err(name))?
        .transaction_version(table.log_store().as_ref(), COMPACT_APP_ID)
        .await
        .map_err(delta_err(name))
}

/// A compaction commit that failed: its error, and whether its files may be deleted (not when
/// the commit may have landed: the log would name files that are gone).
#[derive(Debug)]
struct CommitFailed {
    error: LakeError,
    discard: bool,
}

impl From<LakeError> for CommitFailed {
    fn from(error: LakeError) -> Self {
        CommitFailed {
            error,
            discard: true,
        }
    }
}

/// Commits rewritten bins as one commit with the `txn` of [`COMPACT_APP_ID`], against the
/// version `table` holds (the plan's, or this compactor's last commit). On a busy table whose
/// consumers keep committing first, the handle is moved to the latest version and the commit
/// tried again, as long as no other compaction committed meanwhile. A commit that failed or
/// was refused is first looked for in the log by its id: S3 may have written it and lost the
/// answer (then a retry meets it as "another" compaction). `with_txn` is false only in the test
/// that shows why the `txn` is there.
async fn commit(
    table: &mut DeltaTable,
    name: &str,
    done: &[Rewritten],
    target_size: u64,
    with_txn: bool,
) -> Result<Outcome, CommitFailed> {
    let expected = compact_version(table, name).await?;
    let id = super::commit::commit_id();
    let mut actions = Vec::new();
    for r in done {
        actions.extend(r.removes.iter().cloned().map(Action::Remove));
        actions.push(Action::Add(r.add.clone()));
    }
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: i64::try_from(target_size).unwrap_or(i64::MAX),
    };
    for round in 0..COMMIT_ROUNDS {
        if round > 0 && with_txn && compact_version(table, name).await? != expected {
            return Ok(Outcome::Refused);
        }
        let mut properties = CommitProperties::default()
            .with_metadata([
                ("stocklakeWriter".to_string(), super::writer_id().into()),
                (super::commit::COMMIT_ID_KEY.to_string(), id.clone().into()),
            ])
            .with_max_retries(COMMIT_RETRIES)
            .with_create_checkpoint(true)
            .with_cleanup_expired_logs(Some(false));
        if with_txn {
            properties =
                properties.with_application_transactions(vec![Transaction::new_with_last_update(
                    COMPACT_APP_ID,
                    expected.map_or(0, |v| v + 1),
                    Some(chrono::Utc::now().timestamp_millis()),
                )]);
        }
        let base = table.version().unwrap_or_default();
        let state = table.snapshot().map_err(delta_err(name))?;
        let outcome = CommitBuilder::from(properties)
            .with_actions(actions.clone())
            .build(Some(state), table.log_store(), operation.clone())
            .await;
        if let Err(e) = &outcome
            && super::commit::may_have_landed(e)
        {
            match super::commit::find_commit(table, name, base, &id).await {
                Ok(Some(version)) => {
                    tracing::warn!(
                        "{name}: the compaction commit's answer was lost ({}), but the log \
                         holds it as version {version}",
                        crate::report::chain(e)
                    );
                    table
                        .update_incremental(Some(version))
                        .await
                        .map_err(delta_err(name))?;
                    return Ok(Outcome::Committed(version));
                }
                Ok(None) => {}
                Err(search) => {
                    tracing::info!(
                        "{name}: cannot tell whether the failed compaction commit landed: {}",
                        crate::report::chain(&search)
                    );
                    let error = match outcome {
                        Err(e) => delta_err(name)(e),
                        Ok(_) => search,
                    };
                    return Err(CommitFailed {
                        error,
                        discard: false,
                    });
                }
            }
        }
        match outcome {
            Ok(done) => {
                table.state = Some(done.snapshot());
                return Ok(Outcome::Committed(done.version()));
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
            }) => return Ok(Outcome::Refused),
            Err(DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(n),
            }) => {
                tracing::info!(
                    "{name}: {n} commits of other writers came first; reading the table again"
                );
                table
                    .update_incremental(None)
                    .await
                    .map_err(delta_err(name))?;
            }
            Err(e) => return Err(delta_err(name)(e).into()),
        }
    }
    Err(CommitFailed::from(LakeError::Data {
        location: name.to_string(),
        message: format!(
            "other writers kept committing first ({} attempts); the compaction was not committed",
            COMMIT_ROUNDS * COMMIT_RETRIES
        ),
    }))
}

/// Compacts the Delta table at `url`, then (unless `opts.vacuum` is off) vacuums it and deletes
/// its expired log entries. `progress` gets a line now and then.
pub async fn compact_table(
    url: &Url,
    opts: &CompactOptions,
    progress: &(dyn Fn(&str) + Sync),
    stop: &AtomicBool,
) -> Result<CompactReport, LakeError> {
    let table = open_existing(url).await?.ok_or_else(|| LakeError::Url {
        url: url.to_string(),
        message: "no Delta table here (no _delta_log/): nothing to compact".into(),
    })?;
    compact_handle(table, url, opts, progress, stop).await
}

/// [`compact_table`] from a loaded handle (which may be behind the latest version).
async fn compact_handle(
    mut table: DeltaTable,
    url: &Url,
    opts: &CompactOptions,
    progress: &(dyn Fn(&str) + Sync),
    stop: &AtomicBool,
) -> Result<CompactReport, LakeError> {
    let name = url.to_string();
    let lake = Lake::open(url.as_str()).await?;
    let mut report = CompactReport {
        table: name.clone(),
        dry_run: opts.dry_run,
        version_before: table.version().unwrap_or_default(),
        ..Default::default()
    };
    let mut refusals = 0;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let plan = plan(&table, opts, now).map_err(delta_err(&name))?;
        if report.files_removed == 0 && report.refused == 0 {
            report.files_before = plan.files;
            report.bytes_before = plan.bytes;
            report.partitions = plan.partitions;
            report.partitions_live = plan.live;
        }
        if opts.dry_run {
            let dirs: std::collections::HashSet<&str> =
                plan.bins.iter().map(|b| b.dir.as_str()).collect();
            report.partitions_compacted = dirs.len() as u64;
            for b in &plan.bins {
                report.files_removed += b.files.len() as u64;
                report.bytes_removed += b.bytes();
                report.files_added += 1;
            }
            break;
        }
        progress(&format!(
            "{name}: {} files in {} partitions; {} groups of small files to rewrite",
            plan.files,
            plan.partitions,
            plan.bins.len()
        ));
        match run_plan(
            &mut table,
            &lake,
            &name,
            plan,
            opts,
            &mut report,
            progress,
            stop,
        )
        .await?
        {
            Outcome::Committed(_) => break,
            Outcome::Refused => {
                report.refused += 1;
                refusals += 1;
                if refusals > MAX_REFUSALS {
                    return Err(LakeError::Data {
                        location: name,
                        message: format!(
                            "another compaction committed first {refusals} times in a row; try again later"
                        ),
                    });
                }
                progress(&format!(
                    "{name}: another compaction committed first; reading the table again"
                ));
                table
                    .update_incremental(None)
                    .await
                    .map_err(delta_err(&name))?;
            }
        }
    }
    if report.commits > 0 {
        table
            .update_incremental(None)
            .await
            .map_err(delta_err(&name))?;
        checkpoints::create_checkpoint(&table, None)
            .await
            .map_err(delta_err(&name))?;
    }
    if opts.vacuum && !stop.load(Ordering::Relaxed) {
        vacuum(&mut table, &lake, &name, opts, &mut report, progress).await?;
    }
    table
        .update_incremental(None)
        .await
        .map_err(delta_err(&name))?;
    let state = table.snapshot().map_err(delta_err(&name))?;
    report.version_after = table.version().unwrap_or_default();
    report.files_after = state.log_data().num_files() as u64;
    report.bytes_after = state
        .log_data()
        .iter()
        .map(|f| f.size().max(0) as u64)
        .sum();
    Ok(report)
}

/// Rewrites the plan's bins, committing every `opts.commit_every`; stops at the first refused
/// commit (its files are deleted again).
#[allow(clippy::too_many_arguments)]
async fn run_plan(
    table: &mut DeltaTable,
    lake: &Lake,
    name: &str,
    plan: Plan,
    opts: &CompactOptions,
    report: &mut CompactReport,
    progress: &(dyn Fn(&str) + Sync),
    stop: &AtomicBool,
) -> Result<Outcome, LakeError> {
    let mut pending: Vec<Rewritten> = Vec::new();
    let mut since = Instant::now();
    let total = plan.bins.len();
    let mut compacted_dirs = std::collections::HashSet::new();
    for (i, bin) in plan.bins.into_iter().enumerate() {
        let dir = bin.dir.clone();
        match rewrite(lake, &bin).await {
            Ok(Some(r)) => {
                compacted_dirs.insert(dir);
                pending.push(r);
            }
            Ok(None) => report.bins_skipped += 1,
            Err(e) => {
                discard(lake, &pending).await;
                return Err(e);
            }
        }
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            report.stopped = true;
        }
        let last = i + 1 == total || stopping;
        if !pending.is_empty() && (last || since.elapsed() >= opts.commit_every) {
            if lake.is_local()
                && let Err(e) = sync_local(lake, &pending)
            {
                discard(lake, &pending).await;
                return Err(e);
            }
            match commit(table, name, &pending, opts.target_size, true).await {
                Ok(Outcome::Committed(v)) => {
                    for r in &pending {
                        report.files_removed += r.removes.len() as u64;
                        report.bytes_removed += r.bytes_removed;
                        report.files_added += 1;
                        report.bytes_added += r.add.size as u64;
                        report.rows_rewritten += r.rows;
                    }
                    report.commits += 1;
                    report.partitions_compacted = compacted_dirs.len() as u64;
                    progress(&format!(
                        "{name}: version {v}: {} of {total} groups rewritten",
                        i + 1
                    ));
                    pending.clear();
                    since = Instant::now();
                    if stopping {
                        break;
                    }
                }
                Ok(Outcome::Refused) => {
                    discard(lake, &pending).await;
                    return Ok(Outcome::Refused);
                }
                Err(failed) => {
                    if failed.discard {
                        discard(lake, &pending).await;
                    }
                    return Err(failed.error);
                }
            }
        }
    }
    Ok(Outcome::Committed(table.version().unwrap_or_default()))
}

/// Deletes rewritten files that will not be committed (best effort: the vacuum gets the rest).
async fn discard(lake: &Lake, done: &[Rewritten]) {
    for r in done {
        if let Err(e) = lake.delete(&r.add.path).await {
            tracing::warn!("{e}");
        }
    }
}

/// Deletes unreferenced data files older than `opts.retain` (deltalake's full vacuum), the
/// staging files of killed local writes, and expired log entries.
async fn vacuum(
    table: &mut DeltaTable,
    lake: &Lake,
    name: &str,
    opts: &CompactOptions,
    report: &mut CompactReport,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), LakeError> {
    table
        .update_incremental(None)
        .await
        .map_err(delta_err(name))?;
    let retain = chrono::Duration::from_std(opts.retain).unwrap_or(chrono::Duration::MAX);
    // deltalake's full vacuum lists what it would delete (its expired tombstones stay in the log
    // and are listed again at every run, present or not); delete those that exist, without the
    // VACUUM START/END commits it would add each time.
    let (_, metrics) = table
        .clone()
        .vacuum()
        .with_retention_period(retain)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(true)
        .await
        .map_err(delta_err(name))?;
    if !metrics.files_deleted.is_empty() {
        let store = table.log_store().object_store(None);
        let present: std::collections::HashSet<object_store::path::Path> = store
            .list(None)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|source| LakeError::Store {
                key: name.to_string(),
                source,
            })?;
        for path in metrics.files_deleted {
            let path = object_store::path::Path::parse(&path)
                .unwrap_or_else(|_| object_store::path::Path::from(path.as_str()));
            if !present.contains(&path) {
                continue;
            }
            report.vacuumed_files += 1;
            if opts.dry_run {
                continue;
            }
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(LakeError::Store {
                        key: format!("{name}{path}"),
                        source,
                    });
                }
            }
        }
    }
    if lake.is_local()
        && let Ok(root) = lake.url.to_file_path()
    {
        report.staging_files = sweep_staging(&root, opts.retain, opts.dry_run)?;
    }
    if !opts.dry_run {
        report.log_entries_removed = checkpoints::cleanup_metadata(table, None)
            .await
            .map_err(delta_err(name))? as u64;
    }
    progress(&format!(
        "{name}: vacuum: {} unreferenced files, {} staging files, {} expired log entries",
        report.vacuumed_files, report.staging_files, report.log_entries_removed
    ));
    Ok(())
}

/// Whether a file name is an object_store staging file (`<name>#<digits>`), which a local
/// write leaves behind when killed and which object_store's listing never shows.
pub fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(base, n)| {
        !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Deletes (or counts, in a dry run) the staging files under `root` last modified more than
/// `retain` ago.
fn sweep_staging(
    root: &std::path::Path,
    retain: Duration,
    dry_run: bool,
) -> Result<u64, LakeError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| LakeError::Io { path, source }
    };
    let mut found = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() || !is_staging_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(io(&path))?
                .elapsed()
                .unwrap_or_default();
            if age < retain {
                continue;
            }
            found += 1;
            if !dry_run {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path)(e)),
                }
            }
        }
    }
    Ok(found)
}

pub mod smallfiles;

/// Unit tests on temporary local tables: `compact/tests.rs`.
#[cfg(test)]
mod tests;
