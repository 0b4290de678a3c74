//! `stocklake lake upgrade`: converts, in place, a lake written by stocklake 0.1 (Parquet files
//! under `ticks/`, one commit record per Kafka partition in `_stocklake/offsets/`, the layout in
//! `_stocklake/table.json`, quarantined events as JSON lines in `_rejects/`) into the Delta
//! tables `ticks/` and `rejects/`. The data files stay where they are; only the logs are new.
//!
//! deltalake's convert-to-Delta is not used (docs/delta-design.md, decision 7): it decodes our
//! Hive escapes into wrong paths and would add rolled-back leftovers. The steps, each of which is
//! safe to repeat, so that a run that died anywhere is finished by running it again:
//!
//! 0. Read and check everything first, changing nothing: the commit records, every data file
//!    (folders, name, and the file read whole: columns, rows, Kafka offsets) and the rejects
//!    files. A lake that cannot be converted faithfully is refused here. When the ticks table
//!    already carries the upgrade's own `txn` ([`UPGRADE_APP_ID`]), an earlier run committed
//!    it: only step 4 is left.
//! 1. Roll back every pending batch as 0.1's recovery does: delete the objects its record names
//!    (and, on a local disk, the `#<n>` staging files of an interrupted write beside them).
//! 2. The rejects table: the committed rejects as one Parquet file, in one commit with the
//!    upgrade's `txn` (skipped when the rejects table already has it).
//! 3. The ticks table (created with the layout of `table.json`): ONE commit with an `add` per
//!    committed data file (where it lies; partition values in Delta's canonical form, size,
//!    statistics computed from its rows as the consumer does), a `txn` per Kafka partition
//!    (`stocklake:<topic>:<partition>`, version = the record's `next_offset - 1`) and the
//!    upgrade's `txn`. Consumers then continue after those versions.
//! 4. Remove the 0.1 bookkeeping: `_rejects/`, staging leftovers, the offset records, and
//!    `table.json` last: while it exists, the lake counts as not (completely) upgraded.
//!
//! A data file counts as committed when its name (`part-<topic>-<partition>-<first>.parquet`)
//! starts below its partition's `next_offset`. Files that do not are left where they are, out
//! of the table (`compact`'s vacuum removes them). Nothing here can tell whether a consumer is
//! running: stop every consumer first.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::ObjectStoreExt as _;
use serde::{Deserialize, Serialize};

use super::delta::stats::file_stats;
use super::delta::{AppTxn, DataFile, TicksTable, app_id, rejects_url, ticks_url};
use super::layout::{
    LAYOUT_FILE, PartitionKey, REJECTS_DIR, REJECTS_TABLE_DIR, STATE_DIR, TABLE_DIR, TableLayout,
    unescape_value,
};
use super::rejects::{Reject, to_record_batch};
use super::{Lake, LakeError};

/// The `txn` application id that marks a table as written by the upgrade (its version is
/// [`UPGRADE_VERSION`]). Kafka topics hold no `:`, so no partition's id can be this.
pub const UPGRADE_APP_ID: &str = "stocklake:upgrade";
/// The version of [`UPGRADE_APP_ID`]: the 0.1 format upgraded.
pub const UPGRADE_VERSION: i64 = 1;
/// The one data file of the rejects table the upgrade writes (a rewrite after a crash before
/// its commit replaces it).
pub const REJECTS_FILE: &str = "part-upgrade-0.1.parquet";

/// Where a run stops (the whole upgrade: [`Phase::Done`]; the others let tests stop it as a
/// crash would, then run it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// After step 1 (pending batches rolled back).
    RolledBack,
    /// After step 2 (the rejects table committed).
    Rejects,
    /// After step 3 (the ticks table committed), before the clean-up.
    Ticks,
    /// Everything.
    Done,
}

/// What an upgrade did.
#[derive(Debug, Default, Clone)]
pub struct UpgradeReport {
    /// The lake was a Delta lake already: nothing was done.
    pub already_delta: bool,
    /// The commits were made by an earlier run; this one finished its clean-up.
    pub committed_earlier: bool,
    /// Pending batches rolled back.
    pub rolled_back: Vec<RolledBack>,
    /// Every Kafka partition of the lake and the first offset the lake did not hold.
    pub partitions: Vec<PartitionOffsets>,
    /// Data files, rows and bytes recorded in the ticks table.
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// The ticks table's version holding the upgrade.
    pub ticks_version: Option<u64>,
    /// Rejects recorded in the rejects table (None: by an earlier run), and its version.
    pub rejects: Option<u64>,
    pub rejects_version: Option<u64>,
    /// Data files no commit record covers (left in place, not in the table).
    pub left_out: Vec<String>,
    /// 0.1 bookkeeping objects removed.
    pub removed: u64,
}

/// A pending batch the upgrade rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// Objects its record named.
    pub objects: usize,
}

/// A Kafka partition of an upgraded lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// The first offset the lake does not hold (the table's `txn` version is this minus one).
    pub next_offset: i64,
}

/// 0.1's commit record of one Kafka partition (`_stocklake/offsets/<topic>/<partition>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    next_offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    first_offset: i64,
    last_offset: i64,
    objects: Vec<String>,
}

fn offsets_dir() -> String {
    format!("{STATE_DIR}/offsets")
}

/// Upgrades the lake at `lake_url` (a folder, `file://` or `s3://` URL): see the module docs.
pub async fn upgrade(lake_url: &str) -> Result<UpgradeReport, LakeError> {
    upgrade_until(lake_url, Phase::Done).await
}

/// [`upgrade`], stopping after `stop_after` (tests use it to stop a run as a crash would).
pub async fn upgrade_until(lake_url: &str, stop_after: Phase) -> Result<UpgradeReport, LakeError> {
    refuse_missing_folder(lake_url)?;
    let lake = Lake::open(lake_url).await?;
    let mut report = UpgradeReport::default();
    let record_keys = lake.list(&offsets_dir()).await?;
    let has_delta = !lake
        .list(&format!("{TABLE_DIR}/_delta_log"))
        .await?
        .is_empty();
    let Some(layout) = read_layout(&lake).await? else {
        if !record_keys.is_empty() {
            return Err(LakeError::Format {
                key: lake.display(LAYOUT_FILE),
                message: format!(
                    "missing, but {} holds commit records: the layout of the 0.1 lake is unknown, so it cannot be upgraded (restore table.json)",
                    lake.display(&offsets_dir())
                ),
            });
        }
        if has_delta {
            report.already_delta = true;
            return Ok(report);
        }
        return Err(LakeError::Format {
            key: lake.display(""),
            message: format!(
                "no lake written by stocklake 0.1 here (no {LAYOUT_FILE}) and no Delta table (no {TABLE_DIR}/_delta_log/)"
            ),
        });
    };
    let mut records = Vec::new();
    for key in &record_keys {
        let (topic, partition) = parse_record_key(&lake, key)?;
        records.push((
            key.clone(),
            topic,
            partition,
            read_record(&lake, key).await?,
        ));
    }
    let next: BTreeMap<(String, i32), i64> = records
        .iter()
        .map(|(_, topic, partition, r)| ((topic.clone(), *partition), r.next_offset))
        .collect();
    report.partitions = next
        .iter()
        .map(|((topic, partition), n)| PartitionOffsets {
            topic: topic.clone(),
            partition: *partition,
            next_offset: *n,
        })
        .collect();
    let pending: Vec<String> = records
        .iter()
        .filter_map(|(_, _, _, r)| r.pending.as_ref())
        .flat_map(|p| p.objects.iter().cloned())
        .collect();
    let mut txns: Vec<AppTxn> = next
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|((topic, partition), n)| AppTxn {
            app_id: app_id(topic, *partition),
            version: n - 1,
        })
        .collect();
    txns.push(AppTxn {
        app_id: UPGRADE_APP_ID.into(),
        version: UPGRADE_VERSION,
    });

    // An earlier run may have committed the upgrade: then only the clean-up is left. A table
    // with other commits is refused before anything changes.
    let url = ticks_url(lake_url)?;
    if has_delta {
        let ticks = TicksTable::open_or_create(&url, &layout).await?;
        if ticks.txn_version(UPGRADE_APP_ID).await?.is_some() {
            report.committed_earlier = true;
            report.ticks_version = Some(ticks.version());
            check_records_not_ahead(&ticks, &next).await?;
            roll_back_all(&lake, &records, &mut report).await?;
            report.removed = clean_up(&lake, &record_keys).await?;
            return Ok(report);
        }
        if ticks.version() > 0 {
            return Err(LakeError::Format {
                key: ticks.name().to_string(),
                message: format!(
                    "this 0.1 lake already has a Delta table with {} commit(s) that are not the upgrade's (a consumer of a newer stocklake ran before the upgrade?); its files and the 0.1 files would overlap, so nothing was changed: stop every consumer, move {TABLE_DIR}/_delta_log/ aside and run the upgrade again (the Kafka partitions are read again after the offsets of the 0.1 records)",
                    ticks.version()
                ),
            });
        }
    }

    // Everything is read and checked before the first change.
    let (files, left_out) = committed_files(&lake, &layout, &next, &pending).await?;
    let rejects = committed_rejects(&lake, &next, &pending).await?;

    // 1. Roll back pending batches.
    roll_back_all(&lake, &records, &mut report).await?;
    if stop_after == Phase::RolledBack {
        return Ok(report);
    }
    // 2. The rejects table.
    let (count, version) = upgrade_rejects(&lake, lake_url, rejects, &txns).await?;
    report.rejects = count;
    report.rejects_version = Some(version);
    if stop_after == Phase::Rejects {
        return Ok(report);
    }
    // 3. One commit of every committed data file and the offsets.
    let mut ticks = TicksTable::open_or_create(&url, &layout).await?;
    report.left_out = left_out;
    report.files = files.len() as u64;
    report.rows = files.iter().map(|f| f.rows).sum();
    report.bytes = files.iter().map(|f| f.size).sum();
    report.ticks_version = Some(ticks.commit(&files, &txns).await?);
    // A lake of many files makes one large commit: a checkpoint spares every reader and writer
    // from parsing it on each open (best effort: without it the table is the same, only slower
    // to open until the next checkpoint).
    if let Err(e) = ticks.checkpoint().await {
        tracing::warn!(
            "{}: writing a checkpoint after the upgrade: {}",
            ticks.name(),
            crate::report::chain(&e)
        );
    }
    if stop_after == Phase::Ticks {
        return Ok(report);
    }
    // 4. Clean-up, table.json last.
    report.removed = clean_up(&lake, &record_keys).await?;
    Ok(report)
}

async fn roll_back_all(
    lake: &Lake,
    records: &[(String, String, i32, Record)],
    report: &mut UpgradeReport,
) -> Result<(), LakeError> {
    for (key, topic, partition, record) in records {
        if let Some(pending) = &record.pending {
            roll_back(lake, key, record, pending).await?;
            report.rolled_back.push(RolledBack {
                topic: topic.clone(),
                partition: *partition,
                first_offset: pending.first_offset,
                last_offset: pending.last_offset,
                objects: pending.objects.len(),
            });
        }
    }
    Ok(())
}

/// Whether `lake` is (still) a lake of stocklake 0.1 that `lake upgrade` must convert before a
/// consumer of this version may write it: its `_stocklake/table.json` exists.
pub async fn needs_upgrade(lake: &Lake) -> Result<bool, LakeError> {
    Ok(lake.get_opt(LAYOUT_FILE).await?.is_some())
}

/// Refuses a lake of stocklake 0.1 (see [`needs_upgrade`]) to a writer: a Delta table beside
/// its files would hide them from every reader, and the upgrade could not take them in later.
pub async fn refuse_0_1_lake(lake: &Lake) -> Result<(), LakeError> {
    if needs_upgrade(lake).await? {
        return Err(LakeError::Format {
            key: lake.display(LAYOUT_FILE),
            message: format!(
                "this lake was written by stocklake 0.1 (plain files and _stocklake/ records), not as a Delta table: stop its 0.1 consumers, run `stocklake lake upgrade --lake {}` once, then consume again; nothing was written",
                lake.url
            ),
        });
    }
    Ok(())
}

/// A local lake folder must exist (opening a lake creates a missing one).
fn refuse_missing_folder(lake_url: &str) -> Result<(), LakeError> {
    let (_, root) = super::lake_location(lake_url)?;
    if let Ok(dir) = root.to_file_path()
        && root.scheme() == "file"
        && !dir.is_dir()
    {
        return Err(LakeError::Url {
            url: lake_url.to_string(),
            message: "no such folder".into(),
        });
    }
    Ok(())
}

async fn read_layout(lake: &Lake) -> Result<Option<TableLayout>, LakeError> {
    match lake.get_opt(LAYOUT_FILE).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LakeError::Format {
                key: lake.display(LAYOUT_FILE),
                message: e.to_string(),
            }),
    }
}

/// `_stocklake/offsets/<topic>/<partition>.json` → (topic, partition).
fn parse_record_key(lake: &Lake, key: &str) -> Result<(String, i32), LakeError> {
    let parsed = key
        .strip_prefix(&format!("{}/", offsets_dir()))
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(topic, file)| {
            let partition = file.strip_suffix(".json")?.parse().ok()?;
            Some((unescape_value(topic)?, partition))
        });
    parsed.ok_or_else(|| LakeError::Format {
        key: lake.display(key),
        message: "not a 0.1 commit record (<topic>/<partition>.json); move it out of the lake and run the upgrade again".into(),
    })
}

async fn read_record(lake: &Lake, key: &str) -> Result<Record, LakeError> {
    let bytes = lake.get_opt(key).await?.ok_or_else(|| LakeError::Format {
        key: lake.display(key),
        message: "disappeared while the upgrade ran (is a consumer running? stop it first)".into(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| LakeError::Format {
        key: lake.display(key),
        message: e.to_string(),
    })
}

/// 0.1's recovery of one partition: delete what the pending batch may have written, then store
/// the record without it.
async fn roll_back(
    lake: &Lake,
    key: &str,
    record: &Record,
    pending: &Pending,
) -> Result<(), LakeError> {
    tracing::info!(
        "{}: rolling back uncommitted batch {}..={} ({} objects)",
        lake.display(key),
        pending.first_offset,
        pending.last_offset,
        pending.objects.len()
    );
    for object in &pending.objects {
        lake.delete(object).await?;
        if lake.is_local() {
            remove_staging_files(lake, object)?;
        }
    }
    let clean = Record {
        next_offset: record.next_offset,
        pending: None,
    };
    let bytes = serde_json::to_vec_pretty(&clean).expect("record serialises");
    lake.put(key, bytes.into()).await
}

fn local_file(lake: &Lake, rel: &str) -> std::path::PathBuf {
    lake.local_path(rel)
}

/// Deletes the `<name>#<digits>` staging files an interrupted local write of `rel` left (the
/// object store's listing hides them).
fn remove_staging_files(lake: &Lake, rel: &str) -> Result<u64, LakeError> {
    let path = local_file(lake, rel);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(0);
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(LakeError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if is_staging_of(file, name) {
            std::fs::remove_file(entry.path()).map_err(|source| LakeError::Io {
                path: entry.path(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn is_staging_of(file: &str, name: &str) -> bool {
    file.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// An upgraded table whose 0.1 records were not removed yet: a record ahead of the table's
/// `txn` means a 0.1 consumer wrote after the upgrade, rows the table does not have.
async fn check_records_not_ahead(
    ticks: &TicksTable,
    next: &BTreeMap<(String, i32), i64>,
) -> Result<(), LakeError> {
    for ((topic, partition), n) in next {
        let id = app_id(topic, *partition);
        let version = ticks.txn_version(&id).await?.unwrap_or(-1);
        if n - 1 > version {
            return Err(LakeError::Format {
                key: ticks.name().to_string(),
                message: format!(
                    "upgraded, but the 0.1 commit record of {topic}/{partition} says the lake holds offsets up to {} and the table's {id} only up to {version}: a stocklake 0.1 consumer wrote after the upgrade; its rows are not in the table (nothing was changed)",
                    n - 1
                ),
            });
        }
    }
    Ok(())
}

/// The objects under `prefix` with their sizes (relative names).
async fn list_meta(lake: &Lake, prefix: &str) -> Result<Vec<(String, ObjectMeta)>, LakeError> {
    let objects: Vec<ObjectMeta> = lake
        .store
        .list(Some(&lake.path(prefix)))
        .try_collect()
        .await
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(Vec::new()),
            source => Err(LakeError::Store {
                key: lake.display(prefix),
                source,
            }),
        })?;
    let mut out: Vec<(String, ObjectMeta)> = objects
        .into_iter()
        .map(|o| (raw_rel(lake, &o.location), o))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The name of `path` relative to the lake root, exactly as stored: the escaped text our
/// writers gave [`Lake::path`] (on a local disk the file name itself). Unlike [`Lake::rel`], it
/// never decodes the Hive escapes of our folder names (`symbol=A%2FB` stays that).
fn raw_rel(lake: &Lake, path: &object_store::path::Path) -> String {
    path.prefix_match(&lake.root)
        .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>())
        .unwrap_or_default()
        .join("/")
}

/// A data file's name: `part-<topic>-<partition>-<first offset>.parquet` → its parts.
fn parse_file_name(name: &str) -> Option<(String, i32, i64)> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (rest, first) = rest.rsplit_once('-')?;
    let (topic, partition) = rest.rsplit_once('-')?;
    Some((
        unescape_value(topic)?,
        partition.parse().ok()?,
        first.parse().ok()?,
    ))
}

/// The partition values of a data file's directories (`symbol=A%2FB/year=2013/month=03`) in
/// Delta's canonical form (`month` `3`), checked against the layout.
fn partition_values(layout: &TableLayout, dirs: &[&str]) -> Result<Vec<(String, String)>, String> {
    if dirs.len() != layout.partition_by.len() {
        return Err(format!(
            "its folders are not the table's partition columns ({})",
            columns(layout)
        ));
    }
    layout
        .partition_by
        .iter()
        .zip(dirs)
        .map(|(key, dir)| {
            let bad = |why: &str| format!("folder {dir:?}: {why}");
            let (column, escaped) = dir
                .split_once('=')
                .filter(|(c, _)| *c == key.column())
                .ok_or_else(|| {
                    bad(&format!(
                        "expected {}=… (partition columns {})",
                        key.column(),
                        columns(layout)
                    ))
                })?;
            let value = unescape_value(escaped).ok_or_else(|| bad("malformed escape"))?;
            let canonical = match key {
                PartitionKey::Symbol if value.is_empty() => {
                    return Err(bad(
                        "the empty symbol cannot be a Delta partition value (Delta reads it as NULL); move these files out of the lake and run the upgrade again",
                    ));
                }
                PartitionKey::Symbol => value,
                PartitionKey::Year => value
                    .parse::<i32>()
                    .map_err(|_| bad("not a year"))?
                    .to_string(),
                PartitionKey::Month => value
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(|| bad("not a month"))?
                    .to_string(),
                PartitionKey::Date => {
                    let ok = value.len() == 10
                        && crate::tick::parse_iso_millis(&format!("{value}T00:00:00Z")).is_some();
                    if !ok {
                        return Err(bad("not a date (YYYY-MM-DD)"));
                    }
                    value
                }
            };
            Ok((column.to_string(), canonical))
        })
        .collect()
}

fn columns(layout: &TableLayout) -> String {
    layout
        .partition_by
        .iter()
        .map(|k| k.column())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One committed data file and the Kafka offsets it holds.
struct Found {
    file: DataFile,
    topic: String,
    partition: i32,
    first: i64,
    offsets: Option<(i64, i64)>,
}

/// Every committed data file under `ticks/` (see the module docs), read and checked; and
/// the data files left out (relative to the lake root).
async fn committed_files(
    lake: &Lake,
    layout: &TableLayout,
    next: &BTreeMap<(String, i32), i64>,
    pending: &[String],
) -> Result<(Vec<DataFile>, Vec<String>), LakeError> {
    let mut candidates = Vec::new();
    let mut left_out = Vec::new();
    let table_prefix = format!("{TABLE_DIR}/");
    for (rel, meta) in list_meta(lake, TABLE_DIR).await? {
        let Some(in_table) = rel.strip_prefix(&table_prefix) else {
            continue;
        };
        if pending.contains(&rel) {
            continue; // rolled back in step 1
        }
        let parts: Vec<&str> = in_table.split('/').collect();
        // Hidden names (Hive's convention): `_delta_log/`, `.DS_Store`, ….
        if parts
            .iter()
            .any(|p| p.starts_with('_') || p.starts_with('.'))
        {
            continue;
        }
        let bad = |message: String| LakeError::Format {
            key: lake.display(&rel),
            message,
        };
        let (name, dirs) = parts.split_last().expect("split yields one part");
        let (topic, partition, first) = parse_file_name(name).ok_or_else(|| {
            bad("not a data file written by stocklake 0.1 (part-<topic>-<partition>-<first offset>.parquet); move it out of the lake and run the upgrade again".into())
        })?;
        let values = partition_values(layout, dirs).map_err(bad)?;
        match next.get(&(topic.clone(), partition)) {
            Some(n) if first < *n => {}
            _ => {
                tracing::warn!(
                    "{}: no commit record covers it (Kafka partition {topic}/{partition} from offset {first}); left out of the table",
                    lake.display(&rel)
                );
                left_out.push(rel);
                continue;
            }
        }
        candidates.push((rel, meta, values, topic, partition, first));
    }
    let symbol_in_file = layout.symbol_in_file();
    let table_prefix = &table_prefix;
    let found: Vec<Found> = futures::stream::iter(candidates.into_iter().map(
        |(rel, meta, values, topic, partition, first)| async move {
            let (rows, stats, offsets) = read_data_file(lake, &rel, &meta, symbol_in_file).await?;
            Ok::<_, LakeError>(Found {
                file: DataFile {
                    path: rel[table_prefix.len()..].to_string(),
                    size: meta.size,
                    partition_values: values,
                    rows,
                    stats: Some(stats),
                },
                topic,
                partition,
                first,
                offsets,
            })
        },
    ))
    .buffered(16)
    .try_collect()
    .await?;
    check_batches_disjoint(lake, &found, next)?;
    Ok((found.into_iter().map(|f| f.file).collect(), left_out))
}

/// Rows, Delta statistics JSON and the lowest and highest Kafka offset of a data file.
type FileFacts = (u64, String, Option<(i64, i64)>);

/// A data file read whole: its rows, its Delta statistics (as the consumer writes them, for
/// readers' file skipping) and the range of its `kafka_offset` column. Its columns must be the
/// tick file's.
async fn read_data_file(
    lake: &Lake,
    rel: &str,
    meta: &ObjectMeta,
    symbol_in_file: bool,
) -> Result<FileFacts, LakeError> {
    let store_err = |source| LakeError::Store {
        key: lake.display(rel),
        source,
    };
    let bytes = lake
        .store
        .get(&meta.location)
        .await
        .map_err(store_err)?
        .bytes()
        .await
        .map_err(store_err)?;
    let key = lake.display(rel);
    tokio::task::spawn_blocking(move || decode_data_file(bytes, symbol_in_file))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|message| LakeError::Format { key, message })
}

fn decode_data_file(bytes: bytes::Bytes, symbol_in_file: bool) -> Result<FileFacts, String> {
    use arrow::array::{Array, Int64Array};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let have: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let schema = crate::tick::file_schema(symbol_in_file);
    let want: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if have != want {
        return Err(format!(
            "columns ({}) are not the table's ({})",
            have.join(", "),
            want.join(", ")
        ));
    }
    let batches = reader
        .build()
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading its rows: {e}"))?;
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    let mut range: Option<(i64, i64)> = None;
    for b in &batches {
        let offsets = b
            .column_by_name("kafka_offset")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or("no kafka_offset column of type bigint")?;
        for o in offsets.iter().flatten() {
            range = Some(match range {
                None => (o, o),
                Some((lo, hi)) => (lo.min(o), hi.max(o)),
            });
        }
    }
    Ok((rows, file_stats(&batches), range))
}

/// A 0.1 lake can hold a Kafka offset twice (a zombie consumer rewrote a batch of the new
/// owner's and moved the record back): two batches of a partition whose offset ranges overlap,
/// or a batch beyond its record. The upgrade would carry that over, so it refuses.
fn check_batches_disjoint(
    lake: &Lake,
    found: &[Found],
    next: &BTreeMap<(String, i32), i64>,
) -> Result<(), LakeError> {
    // (topic, partition) → first offset → (lowest, highest, a file).
    type Batches<'a> = BTreeMap<i64, (i64, i64, &'a str)>;
    let mut batches: BTreeMap<(&str, i32), Batches<'_>> = BTreeMap::new();
    for f in found {
        let Some((lo, hi)) = f.offsets else { continue };
        let b = batches
            .entry((&f.topic, f.partition))
            .or_default()
            .entry(f.first)
            .or_insert((lo, hi, &f.file.path));
        b.0 = b.0.min(lo);
        b.1 = b.1.max(hi);
    }
    let refuse = |path: &str, message: String| LakeError::Format {
        key: lake.display(&format!("{TABLE_DIR}/{path}")),
        message,
    };
    for ((topic, partition), by_first) in &batches {
        let limit = next[&(topic.to_string(), *partition)];
        let mut previous: Option<(i64, &str)> = None;
        for (first, (lo, hi, path)) in by_first {
            if lo < first || *hi >= limit {
                return Err(refuse(
                    path,
                    format!(
                        "holds Kafka offsets {lo}..={hi} of {topic}/{partition}, outside its batch (from {first}, below the committed {limit}): the 0.1 lake is inconsistent; nothing was changed"
                    ),
                ));
            }
            if let Some((prev_hi, prev_path)) = previous
                && *lo <= prev_hi
            {
                return Err(refuse(
                    path,
                    format!(
                        "holds Kafka offsets {lo}..={hi} of {topic}/{partition}, and {prev_path} of an earlier batch holds offsets up to {prev_hi}: the 0.1 lake holds these offsets twice (a consumer that outlived its session?); remove one batch's files and run the upgrade again; nothing was changed"
                    ),
                ));
            }
            previous = Some((*hi, path));
        }
    }
    Ok(())
}

/// The committed rejects: the lines of every rejects file that starts below its partition's
/// `next_offset` (and is not a pending batch's), in offset order.
async fn committed_rejects(
    lake: &Lake,
    next: &BTreeMap<(String, i32), i64>,
    pending: &[String],
) -> Result<Vec<Reject>, LakeError> {
    let mut rejects: Vec<Reject> = Vec::new();
    for key in lake.list(REJECTS_DIR).await? {
        if pending.contains(&key) {
            continue; // rolled back in step 1
        }
        let name = key.rsplit('/').next().unwrap_or_default();
        let Some((topic, partition, first)) = name
            .strip_suffix(".jsonl")
            .and_then(|stem| parse_file_name(&format!("{stem}.parquet")))
        else {
            return Err(LakeError::Format {
                key: lake.display(&key),
                message: "not a rejects file written by stocklake 0.1 (part-<topic>-<partition>-<first offset>.jsonl); move it out of the lake and run the upgrade again".into(),
            });
        };
        let committed = next
            .get(&(topic.clone(), partition))
            .is_some_and(|n| first < *n);
        if !committed {
            tracing::warn!(
                "{}: no commit record covers it; left out of the rejects table",
                lake.display(&key)
            );
            continue;
        }
        let bytes = lake.get_opt(&key).await?.unwrap_or_default();
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let reject: Reject = serde_json::from_slice(line).map_err(|e| LakeError::Format {
                key: format!("{}:{}", lake.display(&key), i + 1),
                message: e.to_string(),
            })?;
            rejects.push(reject);
        }
    }
    rejects
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    Ok(rejects)
}

/// Step 2: `rejects` as the rejects table's rows in one commit with `txns`, unless an earlier
/// run committed them. Returns their number (None: an earlier run committed them) and the
/// rejects table's version.
async fn upgrade_rejects(
    lake: &Lake,
    lake_url: &str,
    rejects: Vec<Reject>,
    txns: &[AppTxn],
) -> Result<(Option<u64>, u64), LakeError> {
    let mut table = TicksTable::open_or_create_rejects(&rejects_url(lake_url)?).await?;
    if table.txn_version(UPGRADE_APP_ID).await?.is_some() {
        return Ok((None, table.version()));
    }
    let mut files = Vec::new();
    if !rejects.is_empty() {
        let batch = to_record_batch(&rejects);
        let stats = file_stats(std::slice::from_ref(&batch));
        let bytes = super::writer::encode(&[batch]).map_err(|e| LakeError::Parquet {
            key: table.name().to_string(),
            message: e.to_string(),
        })?;
        let rel = format!("{REJECTS_TABLE_DIR}/{REJECTS_FILE}");
        let size = bytes.len() as u64;
        lake.put(&rel, bytes).await?;
        if lake.is_local() {
            sync_local(&lake.local_path(&rel))?;
        }
        files.push(DataFile {
            path: REJECTS_FILE.into(),
            size,
            partition_values: Vec::new(),
            rows: rejects.len() as u64,
            stats: Some(stats),
        });
    }
    let version = table.commit(&files, txns).await?;
    Ok((Some(rejects.len() as u64), version))
}

/// Makes a new local file and its folder durable before the commit that names it.
fn sync_local(path: &std::path::Path) -> Result<(), LakeError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| LakeError::Io { path, source }
    };
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Step 4: `_rejects/`, staging leftovers of interrupted local writes under `ticks/`, the
/// commit records, then `table.json`. Returns how many objects went.
async fn clean_up(lake: &Lake, record_keys: &[String]) -> Result<u64, LakeError> {
    let mut removed = 0;
    for key in lake.list(REJECTS_DIR).await? {
        lake.delete(&key).await?;
        removed += 1;
    }
    if lake.is_local() {
        removed += remove_all_staging_files(&local_file(lake, TABLE_DIR))?;
        removed += remove_all_staging_files(&local_file(lake, REJECTS_DIR))?;
    }
    for key in record_keys {
        lake.delete(key).await?;
        removed += 1;
    }
    lake.delete(LAYOUT_FILE).await?;
    removed += 1;
    if lake.is_local() {
        for dir in [REJECTS_DIR, STATE_DIR] {
            remove_empty_dirs(&local_file(lake, dir));
        }
    }
    Ok(removed)
}

/// Every `*.parquet#<digits>` / `*.jsonl#<digits>` staging file under `dir` (local lakes).
fn remove_all_staging_files(dir: &std::path::Path) -> Result<u64, LakeError> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n == "_delta_log")
            {
                continue;
            }
            removed += remove_all_staging_files(&path)?;
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let staging = name.rsplit_once('#').is_some_and(|(base, n)| {
            (base.ends_with(".parquet") || base.ends_with(".jsonl"))
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        if staging {
            std::fs::remove_file(&path).map_err(|source| LakeError::Io {
                path: path.clone(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes `dir` and its sub-folders when they hold no files (best effort).
fn remove_empty_dirs(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                remove_empty_dirs(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_names_and_folders_parse() {
        assert_eq!(
            parse_file_name("part-ticks-1-00000000000000000121.parquet"),
            Some(("ticks".into(), 1, 121))
        );
        assert_eq!(
            parse_file_name("part-my-topic.v2-12-00000000000000000007.parquet"),
            Some(("my-topic.v2".into(), 12, 7))
        );
        assert_eq!(parse_file_name("part-ticks-1-x.parquet"), None);
        assert_eq!(parse_file_name("data.parquet"), None);
        let layout = TableLayout {
            partition_by: vec![
                PartitionKey::Symbol,
                PartitionKey::Year,
                PartitionKey::Month,
            ],
        };
        let v = partition_values(&layout, &["symbol=A%2FB%20x", "year=2013", "month=03"]).unwrap();
        assert_eq!(
            v,
            [
                ("symbol".to_string(), "A/B x".to_string()),
                ("year".into(), "2013".into()),
                ("month".into(), "3".into())
            ]
        );
        for bad in [
            vec!["symbol=%00", "year=2013", "month=03"],
            vec!["symbol=X", "year=2013", "month=13"],
            vec!["year=2013", "symbol=X", "month=03"],
            vec!["symbol=X", "year=2013"],
            vec!["symbol=%G0", "year=2013", "month=03"],
        ] {
            assert!(partition_values(&layout, &bad).is_err(), "{bad:?}");
        }
        let by_date = TableLayout {
            partition_by: vec![PartitionKey::Date],
        };
        assert!(partition_values(&by_date, &["dt=2013-03-01"]).is_ok());
        assert!(partition_values(&by_date, &["dt=2013-02-30"]).is_err());
        assert!(is_staging_of("a.parquet#1", "a.parquet"));
        assert!(!is_staging_of("a.parquet#", "a.parquet"));
        assert!(!is_staging_of("a.parquet#x", "a.parquet"));
    }

    /// Writes a lake as 0.1 did (its writer, its names, its records) with `layout`: ticks of
    /// two symbols over two days, Kafka partition 0, one batch per day.
    fn write_0_1_lake(dir: &std::path::Path, layout: &TableLayout) -> u64 {
        use crate::tick::{Tick, TickBatchBuilder, parse_iso_millis};
        let mut files: BTreeMap<String, TickBatchBuilder> = BTreeMap::new();
        let mut offset = 0;
        let mut batches = Vec::new();
        for day in ["2013-03-29", "2013-03-30"] {
            let first = offset;
            for (i, symbol) in ["x y", "AAPL"].iter().enumerate() {
                for h in 0..5 {
                    let t = Tick {
                        symbol: (*symbol).into(),
                        event_time: parse_iso_millis(&format!("{day}T0{h}:00:00Z")).unwrap(),
                        open: Some(1.0),
                        high: Some(2.0),
                        low: Some(0.5),
                        close: Some(i as f64 + 1.0),
                        adj_close: None,
                        volume: Some(10),
                    };
                    let name = super::super::layout::file_name("ticks", 0, first);
                    let dir = layout.partition_dir(symbol, t.event_time);
                    let key = if dir.is_empty() {
                        name
                    } else {
                        format!("{dir}/{name}")
                    };
                    files
                        .entry(key)
                        .or_insert_with(|| TickBatchBuilder::new(layout.symbol_in_file(), 8))
                        .push(&t, 0, offset);
                    offset += 1;
                }
            }
            batches.push(offset);
        }
        for (key, mut b) in files {
            let path = dir.join("ticks").join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, crate::lake::writer::encode(&[b.finish()]).unwrap()).unwrap();
        }
        std::fs::create_dir_all(dir.join("_stocklake/offsets/ticks")).unwrap();
        std::fs::write(dir.join(LAYOUT_FILE), serde_json::to_vec(layout).unwrap()).unwrap();
        std::fs::write(
            dir.join("_stocklake/offsets/ticks/0.json"),
            format!("{{\"next_offset\": {offset}}}"),
        )
        .unwrap();
        offset as u64
    }

    #[tokio::test]
    async fn lakes_of_every_layout_upgrade() {
        use datafusion::prelude::SessionContext;
        for keys in [
            vec![PartitionKey::Date],
            vec![],
            vec![
                PartitionKey::Year,
                PartitionKey::Month,
                PartitionKey::Symbol,
            ],
        ] {
            let layout = TableLayout {
                partition_by: keys.clone(),
            };
            let dir = tempfile::tempdir().unwrap();
            let rows = write_0_1_lake(dir.path(), &layout);
            let lake = dir.path().to_str().unwrap();
            let report = upgrade(lake).await.unwrap();
            assert_eq!(report.rows, rows, "{keys:?}");
            let table = TicksTable::open_or_create(&ticks_url(lake).unwrap(), &layout)
                .await
                .unwrap();
            assert_eq!(
                table.txn_version(&app_id("ticks", 0)).await.unwrap(),
                Some(19)
            );
            let ctx = SessionContext::new();
            ctx.register_table("t", super::super::delta::provider(&table).await.unwrap())
                .unwrap();
            let rows = |sql: &'static str| {
                let ctx = ctx.clone();
                async move {
                    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                    let mut out = Vec::new();
                    for b in batches {
                        for r in 0..b.num_rows() {
                            let cells: Vec<String> = b
                                .columns()
                                .iter()
                                .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap())
                                .collect();
                            out.push(cells.join("|"));
                        }
                    }
                    out
                }
            };
            assert_eq!(
                rows(
                    "SELECT symbol, count(*), sum(close), min(trade_date), max(trade_date) \
                     FROM t GROUP BY symbol ORDER BY symbol"
                )
                .await,
                [
                    "AAPL|10|20.0|2013-03-29|2013-03-30",
                    "x y|10|10.0|2013-03-29|2013-03-30"
                ],
                "{keys:?}"
            );
            if keys == [PartitionKey::Date] {
                assert_eq!(
                    rows("SELECT CAST(dt AS VARCHAR), count(*) FROM t GROUP BY 1 ORDER BY 1").await,
                    ["2013-03-29|10", "2013-03-30|10"]
                );
            }
        }
    }
}
