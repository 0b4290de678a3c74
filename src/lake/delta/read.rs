//! Reading the lake's Delta tables: opening one at its latest version or at `--as-of` a version
//! or a moment (with clear errors for a folder that holds no table, a version that does not
//! exist and a moment before the table), and what a version holds: its commit time, files, rows,
//! bytes, partition layout and the Kafka offsets of its `txn` actions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use url::Url;

use super::{delta_err, table_at};
use crate::lake::error::LakeError;
use crate::lake::{PartitionKey, TableLayout};

/// Which version of a table to read: a version number, or the last version committed at or
/// before a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    Time(DateTime<Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    /// `42` (a version), an RFC 3339 time (`2026-01-15T09:30:00Z`), or a date (`2026-01-15`,
    /// midnight UTC).
    fn from_str(s: &str) -> Result<AsOf, String> {
        let s = s.trim();
        if let Ok(v) = s.parse::<u64>() {
            return Ok(AsOf::Version(v));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Time(t.with_timezone(&Utc)));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            && let Some(t) = d.and_hms_opt(0, 0, 0)
        {
            return Ok(AsOf::Time(t.and_utc()));
        }
        Err(format!(
            "{s:?} is neither a table version (a number) nor a time (RFC 3339, e.g. \
             2026-01-15T09:30:00Z, or a date 2026-01-15)"
        ))
    }
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsOf::Version(v) => write!(f, "version {v}"),
            AsOf::Time(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        }
    }
}

/// The URL of the table in folder `dir` under a lake (`<lake>/<dir>/`).
pub fn table_url(lake: &str, dir: &str) -> Result<Url, LakeError> {
    let (_, root) = crate::lake::lake_location(lake)?;
    root.join(&format!("{dir}/")).map_err(|e| LakeError::Url {
        url: lake.to_string(),
        message: e.to_string(),
    })
}

fn no_table(url: &Url, why: &str) -> LakeError {
    let place = url
        .to_file_path()
        .map_or_else(|()| url.to_string(), |p| p.display().to_string());
    LakeError::Data {
        location: place,
        message: format!(
            "{why} (write it with `stocklake consume`; a lake written by stocklake 0.1 is \
             converted with `stocklake lake upgrade`)"
        ),
    }
}

/// Whether `url` holds a Delta table. A local folder is only looked at, never created.
pub async fn exists(url: &Url) -> Result<bool, LakeError> {
    if let Ok(dir) = url.to_file_path() {
        return Ok(dir.join("_delta_log").is_dir());
    }
    let table = table_at(url).await?;
    table
        .verify_deltatable_existence()
        .await
        .map_err(delta_err(url.as_str()))
}

/// An unloaded handle of the Delta table at `url`; an error naming the place when there is none.
async fn handle(url: &Url) -> Result<DeltaTable, LakeError> {
    if let Ok(dir) = url.to_file_path() {
        let lake = dir.parent().unwrap_or(&dir);
        if !lake.is_dir() {
            return Err(LakeError::Data {
                location: lake.display().to_string(),
                message: "the lake folder does not exist (run `stocklake consume` first, or pass \
                          --lake)"
                    .into(),
            });
        }
        if !dir.join("_delta_log").is_dir() {
            return Err(no_table(url, "no Delta table here (no _delta_log)"));
        }
        return table_at(url).await;
    }
    let table = table_at(url).await?;
    if !table
        .verify_deltatable_existence()
        .await
        .map_err(delta_err(url.as_str()))?
    {
        return Err(no_table(url, "no Delta table here (no _delta_log)"));
    }
    Ok(table)
}

/// The latest version of the table at `url`, from a listing of its log (no snapshot loaded).
pub async fn latest_version(url: &Url) -> Result<u64, LakeError> {
    let table = handle(url).await?;
    table
        .get_latest_version()
        .await
        .map_err(delta_err(url.as_str()))
}

/// Opens the table at `url` at its latest version, or at `as_of`. A version that does not exist
/// and a moment before the table's first commit are errors that say what exists.
pub async fn open(url: &Url, as_of: Option<AsOf>) -> Result<DeltaTable, LakeError> {
    let name = url.as_str();
    let mut table = handle(url).await?;
    match as_of {
        None => load(&mut table, name).await?,
        Some(AsOf::Version(v)) => {
            let latest = table.get_latest_version().await.map_err(delta_err(name))?;
            if v > latest {
                return Err(LakeError::Data {
                    location: name.to_string(),
                    message: format!(
                        "the table has no version {v}: its latest version is {latest}"
                    ),
                });
            }
            table.load_version(v).await.map_err(|e| LakeError::Data {
                location: name.to_string(),
                message: format!(
                    "cannot load version {v} (the log may no longer reach back that far): {e}"
                ),
            })?;
        }
        Some(AsOf::Time(t)) => {
            if let Err((version, committed)) = load_at_time(&mut table, t).await? {
                return Err(LakeError::Data {
                    location: name.to_string(),
                    message: format!(
                        "the table did not exist yet at {}: its first version ({version}) was \
                         committed at {}",
                        AsOf::Time(t),
                        AsOf::Time(committed)
                    ),
                });
            }
        }
    }
    Ok(table)
}

/// Loads the last version committed at or before `t`; Err((first version, its commit time))
/// when the table's first version is younger than `t`.
async fn load_at_time(
    table: &mut DeltaTable,
    t: DateTime<Utc>,
) -> Result<Result<(), (u64, DateTime<Utc>)>, LakeError> {
    let name = table.table_url().to_string();
    table
        .load_with_datetime(t)
        .await
        .map_err(delta_err(&name))?;
    let version = table.version().unwrap_or_default();
    let committed = commit_time(table, version).await?;
    Ok(if committed > t {
        Err((version, committed))
    } else {
        Ok(())
    })
}

/// The table at `url` as it was at `t`; None when there was no table then (or is none now).
pub async fn open_if_existed(url: &Url, t: DateTime<Utc>) -> Result<Option<DeltaTable>, LakeError> {
    if !exists(url).await? {
        return Ok(None);
    }
    let mut table = table_at(url).await?;
    Ok(load_at_time(&mut table, t).await?.ok().map(|()| table))
}

/// When `version` of the table was committed (its log entry's write time, which is what
/// Delta's time travel compares).
pub async fn commit_time(table: &DeltaTable, version: u64) -> Result<DateTime<Utc>, LakeError> {
    let name = table.table_url().to_string();
    let millis = match table
        .snapshot()
        .ok()
        .and_then(|s| s.version_timestamp(version))
    {
        Some(ms) => ms,
        None => {
            let path = super::checkpoint::entry_path(version);
            let meta =
                table
                    .object_store()
                    .head(&path)
                    .await
                    .map_err(|source| LakeError::Store {
                        key: format!("{name}{path}"),
                        source,
                    })?;
            meta.last_modified.timestamp_millis()
        }
    };
    Ok(DateTime::from_timestamp_millis(millis).unwrap_or_default())
}

/// The active files of the loaded version: how many, their rows (`numRecords`) and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    /// Files whose `add` carries no `numRecords` (their rows are not counted).
    pub unknown_rows: usize,
}

/// See [`FileStats`].
pub fn file_stats(table: &DeltaTable) -> Result<FileStats, LakeError> {
    let state = table
        .snapshot()
        .map_err(delta_err(table.table_url().as_str()))?;
    let mut s = FileStats::default();
    for f in state.log_data().iter() {
        s.files += 1;
        s.bytes += u64::try_from(f.size()).unwrap_or_default();
        match f.num_records() {
            Some(n) => s.rows += n as u64,
            None => s.unknown_rows += 1,
        }
    }
    Ok(s)
}

/// The ticks table's layout, from its partition columns.
pub fn layout(table: &DeltaTable) -> Result<TableLayout, LakeError> {
    let name = table.table_url().to_string();
    let state = table.snapshot().map_err(delta_err(&name))?;
    let keys = [
        PartitionKey::Symbol,
        PartitionKey::Year,
        PartitionKey::Month,
        PartitionKey::Date,
    ];
    let partition_by = state
        .metadata()
        .partition_columns()
        .iter()
        .map(|c| {
            keys.into_iter()
                .find(|k| k.column() == c)
                .ok_or_else(|| LakeError::Data {
                    location: name.clone(),
                    message: format!("unknown partition column {c:?}"),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(TableLayout { partition_by })
}

/// Loads the table's latest version. A log that fails at a checkpoint names it: the newest
/// `_delta_log/<version>.checkpoint*.parquet` when the failure is in reading Parquet (only
/// checkpoints are Parquet in a log), `_delta_log/_last_checkpoint` when its hint leads nowhere.
pub(crate) async fn load(table: &mut DeltaTable, name: &str) -> Result<(), LakeError> {
    match table.load().await {
        Ok(()) => Ok(()),
        Err(e) => Err(load_error(table, name, e).await),
    }
}

/// The latest version's metadata, protocol and properties without its file list (a writer's
/// open: what it checks does not grow with the table). Errors as [`load`]'s.
pub(crate) async fn load_lean(
    table: &DeltaTable,
    name: &str,
) -> Result<deltalake::kernel::Snapshot, LakeError> {
    match deltalake::kernel::Snapshot::try_new(table.log_store().as_ref(), None).await {
        Ok(snapshot) => Ok(snapshot),
        Err(e) => Err(load_error(table, name, e).await),
    }
}

/// A failed load as the lake's error (see [`load`]).
async fn load_error(table: &DeltaTable, name: &str, e: deltalake::DeltaTableError) -> LakeError {
    let text = e.to_string();
    let damaged = "cannot be read (a damaged checkpoint): restore it, or delete it and \
                   _delta_log/_last_checkpoint while the log still holds the JSON commits it covers";
    let newest = newest_checkpoint(table).await;
    let (object, what) = if text.contains("_last_checkpoint") {
        // The hint names a version: its checkpoint is either missing or unreadable.
        match (newest, last_checkpoint_version(table).await) {
            (Some((v, file)), Some(hint)) if v == hint => (Some(file), damaged),
            _ => (
                Some("_delta_log/_last_checkpoint".to_string()),
                "names a checkpoint that is not there: restore the checkpoint, or delete \
                 _last_checkpoint (readers then list the log)",
            ),
        }
    } else if text.contains("Parquet") || text.contains("No table metadata or protocol") {
        (newest.map(|(_, file)| file), damaged)
    } else {
        (None, "")
    };
    match object {
        Some(object) => LakeError::Checkpoint {
            table: name.to_string(),
            object,
            what,
            source: Box::new(e),
        },
        None => delta_err(name)(e),
    }
}

/// The newest checkpoint file in the table's log: its version and path relative to the table.
async fn newest_checkpoint(table: &DeltaTable) -> Option<(u64, String)> {
    let listing = table
        .object_store()
        .list_with_delimiter(Some(&Path::from("_delta_log")))
        .await
        .ok()?;
    listing
        .objects
        .iter()
        .filter_map(|o| {
            let file = o.location.filename()?;
            let (v, rest) = file.split_once('.')?;
            let v = v.parse::<u64>().ok()?;
            (rest.starts_with("checkpoint") && rest.ends_with(".parquet"))
                .then(|| (v, format!("_delta_log/{file}")))
        })
        .max()
}

/// The version `_delta_log/_last_checkpoint` names, when it can be read.
async fn last_checkpoint_version(table: &DeltaTable) -> Option<u64> {
    let got = table
        .object_store()
        .get(&Path::from(super::checkpoint::HINT))
        .await
        .ok()?;
    super::checkpoint::hint_version(&got.bytes().await.ok()?)
}

/// Every `txn` action's latest version at the loaded version (application id -> version),
/// replayed from the newest checkpoint at or before it and the commits after that.
pub async fn txns(table: &DeltaTable) -> Result<BTreeMap<String, i64>, LakeError> {
    let name = table.table_url().to_string();
    let version = table.version().unwrap_or_default();
    let store = table.object_store();
    let store_err = |key: String| {
        let name = name.clone();
        move |source| LakeError::Store {
            key: format!("{name}{key}"),
            source,
        }
    };
    let log = Path::from("_delta_log");
    let listing = store
        .list_with_delimiter(Some(&log))
        .await
        .map_err(store_err("_delta_log/".into()))?;
    let mut checkpoints: BTreeMap<u64, Vec<Path>> = BTreeMap::new();
    for o in listing.objects {
        let Some(file) = o.location.filename() else {
            continue;
        };
        let Some((v, rest)) = file.split_once('.') else {
            continue;
        };
        if v.len() == 20
            && rest.starts_with("checkpoint")
            && rest.ends_with(".parquet")
            && let Ok(v) = v.parse::<u64>()
            && v <= version
        {
            checkpoints.entry(v).or_default().push(o.location.clone());
        }
    }
    let mut out = BTreeMap::new();
    let first_commit = match checkpoints.pop_last() {
        Some((v, files)) => {
            for f in files {
                let got = store.get(&f).await.map_err(store_err(f.to_string()))?;
                let bytes = got.bytes().await.map_err(store_err(f.to_string()))?;
                checkpoint_txns(bytes, &mut out).map_err(|message| LakeError::Data {
                    location: format!("{name}{f}"),
                    message,
                })?;
            }
            v + 1
        }
        None => 0,
    };
    let commits: Vec<(u64, bytes::Bytes)> = futures::stream::iter(first_commit..=version)
        .map(|v| {
            let store = store.clone();
            async move {
                let got = store
                    .get(&super::checkpoint::entry_path(v))
                    .await?
                    .bytes()
                    .await?;
                Ok::<_, object_store::Error>((v, got))
            }
        })
        .buffered(16)
        .try_collect()
        .await
        .map_err(store_err("_delta_log/".into()))?;
    for (v, bytes) in commits {
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let txn = &action["txn"];
            if let (Some(app), Some(tv)) = (txn["appId"].as_str(), txn["version"].as_i64()) {
                out.insert(app.to_string(), tv);
            } else if !txn.is_null() {
                return Err(LakeError::Data {
                    location: format!("{name}_delta_log/{v:020}.json"),
                    message: format!("a txn action without appId and version: {txn}"),
                });
            }
        }
    }
    Ok(out)
}

/// The `txn` column of a Parquet checkpoint, into `out`.
fn checkpoint_txns(bytes: bytes::Bytes, out: &mut BTreeMap<String, i64>) -> Result<(), String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let schema = builder.parquet_schema();
    let Some(root) = (0..schema.root_schema().get_fields().len())
        .find(|i| schema.root_schema().get_fields()[*i].name() == "txn")
    else {
        return Ok(());
    };
    let mask = ProjectionMask::roots(schema, [root]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let Some(txn) = batch.column_by_name("txn").and_then(|c| c.as_struct_opt()) else {
            continue;
        };
        let (Some(app), Some(version)) =
            (txn.column_by_name("appId"), txn.column_by_name("version"))
        else {
            return Err("txn column without appId and version".into());
        };
        let app = arrow::compute::cast(app, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| e.to_string())?;
        let (app, version) = (app.as_string::<i32>(), version.as_primitive::<Int64Type>());
        for i in 0..txn.len() {
            if txn.is_valid(i) && app.is_valid(i) && version.is_valid(i) {
                out.insert(app.value(i).to_string(), version.value(i));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::delta::{AppTxn, TicksTable, app_id, ticks_url};

    #[test]
    fn as_of_parses_versions_times_and_dates() {
        assert_eq!("42".parse::<AsOf>(), Ok(AsOf::Version(42)));
        let t = DateTime::parse_from_rfc3339("2026-01-15T09:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            "2026-01-15T10:30:00+01:00".parse::<AsOf>(),
            Ok(AsOf::Time(t))
        );
        let midnight = DateTime::parse_from_rfc3339("2026-01-15T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!("2026-01-15".parse::<AsOf>(), Ok(AsOf::Time(midnight)));
        assert!("-1".parse::<AsOf>().is_err());
        assert!(
            "yesterday"
                .parse::<AsOf>()
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert_eq!(AsOf::Time(t).to_string(), "2026-01-15T09:30:00Z");
    }

    /// The replay of `txn` actions agrees with deltalake's own lookup, before and after a
    /// checkpoint, at the latest version and at older ones.
    #[tokio::test]
    async fn txns_replay_commits_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().to_str().unwrap();
        let url = ticks_url(lake).unwrap();
        let mut table = TicksTable::open_or_create(&url, &TableLayout::default())
            .await
            .unwrap();
        let (a, b, c) = (app_id("ticks", 0), app_id("ticks", 1), app_id("other", 7));
        let txn = |app: &str, version| AppTxn {
            app_id: app.to_string(),
            version,
        };
        // Versions 1..=120: partition 0 at every commit, 1 only until version 50, `other`
        // only after the checkpoint of version 99.
        for v in 1..=120i64 {
            let mut txns = vec![txn(&a, v * 10)];
            if v <= 50 {
                txns.push(txn(&b, v));
            }
            if v > 100 {
                txns.push(txn(&c, -v));
            }
            assert_eq!(table.commit(&[], &txns).await.unwrap(), v as u64);
        }
        assert!(
            dir.path()
                .join("ticks/_delta_log/00000000000000000099.checkpoint.parquet")
                .is_file()
        );
        for at in [None, Some(AsOf::Version(99)), Some(AsOf::Version(42))] {
            let t = open(&url, at).await.unwrap();
            let got = txns(&t).await.unwrap();
            let version = t.version().unwrap() as i64;
            let state = t.snapshot().unwrap();
            for app in [&a, &b, &c] {
                let want = state
                    .transaction_version(t.log_store().as_ref(), app)
                    .await
                    .unwrap();
                assert_eq!(got.get(app).copied(), want, "{app} at {at:?}");
            }
            assert_eq!(got.get(&a), Some(&(version * 10)), "{at:?}");
            assert_eq!(got.get(&b), Some(&version.min(50)), "{at:?}");
            let stats = file_stats(&t).unwrap();
            assert_eq!((stats.files, stats.rows), (0, 0));
            assert_eq!(layout(&t).unwrap(), TableLayout::default());
        }
        assert_eq!(latest_version(&url).await.unwrap(), 120);
    }
}
