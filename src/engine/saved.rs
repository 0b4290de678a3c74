//! The store of saved Athena results, `.stocklake/athena/`: for every fetched result,
//! `<query id>.csv` (Athena's CSV format: header row, quoted values, NULL as an empty field) and
//! `<query id>.json` (query id, SQL, workgroup, database, Athena's submission time and engine
//! version, data scanned and billed, column metadata), so results can be listed, reloaded as
//! Arrow and compared offline. Fields added later have serde defaults: older files still load.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::athena::convert::{self, ColumnMeta};
use super::{QueryInfo, QueryOutput};

/// Everything known about a saved result besides its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedMeta {
    pub query_id: String,
    pub sql: String,
    pub workgroup: String,
    pub database: String,
    pub catalog: String,
    /// Athena's own result file, when it has one.
    pub output_location: Option<String>,
    /// When the query was submitted (RFC 3339, UTC): Athena's `SubmissionDateTime`, or this
    /// machine's clock when Athena gave none (see `submitted_clock`).
    pub submitted_at: String,
    /// Whose clock `submitted_at` is (`client` in results saved before this field existed).
    #[serde(default)]
    pub submitted_clock: super::Clock,
    /// The Athena engine version that ran the query (absent in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<EngineVersion>,
    /// `DML`, `DDL` or `UTILITY`, as Athena reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_type: Option<String>,
    pub elapsed_ms: u64,
    pub bytes_scanned: u64,
    /// The bytes Athena bills (rounded up to the MB, 10 MB minimum; 0 when free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_bytes: Option<u64>,
    pub rows: usize,
    /// `pages` (GetQueryResults), `csv` (the result file), or `pages (result CSV unreadable:
    /// <reason>)` when the result file could not be read.
    pub fetched_from: String,
    pub columns: Vec<ColumnMeta>,
    /// The lake's ticks table versions just before the query started and just after it ended
    /// (absent in results saved before the lake became a Delta table, or when the lake could
    /// not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_versions: Option<super::TableVersions>,
}

/// Athena's `EngineVersion` of an execution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineVersion {
    /// What the workgroup selected (`AUTO`, or a version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected: Option<String>,
    /// The version that ran the query (`Athena engine version 3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Maps an I/O error on `path` to [`SavedError::Io`].
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SavedError + '_ {
    move |source| SavedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl SavedMeta {
    /// The bill, when the result records it.
    pub fn bill(&self) -> Option<super::athena::Bill> {
        self.billed_bytes.map(|billed| super::athena::Bill {
            scanned: self.bytes_scanned,
            billed,
        })
    }

    /// The submission time, when it parses.
    pub fn submitted(&self) -> Option<super::Submitted> {
        let at = chrono::DateTime::parse_from_rfc3339(&self.submitted_at).ok()?;
        Some(super::Submitted {
            at: at.with_timezone(&chrono::Utc),
            clock: self.submitted_clock,
        })
    }
}

pub struct SavedStore {
    dir: PathBuf,
}

/// A query id is used as a file name: only `[A-Za-z0-9-_]`.
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SavedStore {
    pub fn new(dir: impl Into<PathBuf>) -> SavedStore {
        SavedStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, id: &str) -> Result<(PathBuf, PathBuf), SavedError> {
        if !safe_id(id) {
            return Err(SavedError::Invalid {
                path: self.dir.clone(),
                message: format!("{id:?} is not a query id"),
            });
        }
        Ok((
            self.dir.join(format!("{id}.csv")),
            self.dir.join(format!("{id}.json")),
        ))
    }

    /// Saves a result: the CSV first, then the metadata (its presence marks a complete entry).
    pub fn save(&self, meta: &SavedMeta, csv: &str) -> Result<PathBuf, SavedError> {
        let (csv_path, meta_path) = self.paths(&meta.query_id)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        std::fs::write(&csv_path, csv).map_err(io(&csv_path))?;
        let json = serde_json::to_vec_pretty(meta).map_err(|e| SavedError::Invalid {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        let tmp = meta_path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &meta_path).map_err(io(&meta_path))?;
        Ok(csv_path)
    }

    /// The metadata of every saved result, oldest first.
    pub fn list(&self) -> Result<Vec<SavedMeta>, SavedError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(read_meta(&path)?);
            }
        }
        out.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at));
        Ok(out)
    }

    /// Reloads a saved result as Arrow, typed from its saved column metadata.
    pub fn load(&self, id: &str) -> Result<(SavedMeta, QueryOutput), SavedError> {
        let (csv_path, meta_path) = self.paths(id)?;
        let meta = read_meta(&meta_path)?;
        let text = std::fs::read_to_string(&csv_path).map_err(io(&csv_path))?;
        let invalid = |message: String| SavedError::Invalid {
            path: csv_path.clone(),
            message,
        };
        let mut rows = convert::parse_csv(&text).map_err(invalid)?;
        if !rows.is_empty() {
            rows.remove(0);
        }
        let batch = convert::build_batch(&meta.columns, &rows).map_err(invalid)?;
        let output = QueryOutput {
            schema: batch.schema(),
            batches: vec![batch],
            info: QueryInfo {
                engine: "athena",
                elapsed: std::time::Duration::from_millis(meta.elapsed_ms),
                query_id: Some(meta.query_id.clone()),
                bytes_scanned: Some(meta.bytes_scanned),
                bill: meta.bill(),
                submitted: meta.submitted(),
                table_versions: meta.table_versions,
            },
        };
        Ok((meta, output))
    }
}

fn read_meta(path: &Path) -> Result<SavedMeta, SavedError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| SavedError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
