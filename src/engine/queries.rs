//! Saved queries: the `.sql` files of a folder (default `queries/`), in file-name order, found by
//! name (`monthly_vwap`). The project's own set is built into the binary too, so `demo` and the
//! REPL have them wherever they run.

use std::path::{Path, PathBuf};

use crate::lake::LakeError;

/// One saved query file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    /// File stem, e.g. `monthly_vwap`.
    pub name: String,
    /// Where it came from (`queries/monthly_vwap.sql`, or `<built-in>/monthly_vwap.sql`).
    pub origin: String,
    /// The question it answers: the text of its leading comment lines.
    pub description: String,
    pub sql: String,
}

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../queries/", $name, ".sql")))),*]
    };
}

/// The project's saved queries, as shipped in `queries/`.
const BUILTIN: &[(&str, &str)] = builtin!(
    "daily_returns",
    "daily_summary",
    "max_drawdown",
    "monthly_vwap",
    "moving_averages",
    "top_movers",
    "volatility",
    "volume_spikes",
);

impl SavedQuery {
    fn new(name: &str, origin: String, sql: String) -> Self {
        let description = sql
            .lines()
            .map(str::trim)
            .take_while(|l| l.starts_with("--"))
            .map(|l| l.trim_start_matches('-').trim())
            .collect::<Vec<_>>()
            .join(" ");
        SavedQuery {
            name: name.to_string(),
            origin,
            description,
            sql,
        }
    }

    /// Reads one `.sql` file.
    pub fn from_file(path: &Path) -> Result<SavedQuery, LakeError> {
        let sql = std::fs::read_to_string(path).map_err(|source| LakeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(SavedQuery::new(&name, path.display().to_string(), sql))
    }
}

/// The built-in saved queries, in name order.
pub fn builtin() -> Vec<SavedQuery> {
    BUILTIN
        .iter()
        .map(|(name, sql)| SavedQuery::new(name, format!("<built-in>/{name}.sql"), sql.to_string()))
        .collect()
}

/// The `.sql` files of `dir`, in file-name order.
pub fn from_dir(dir: &Path) -> Result<Vec<SavedQuery>, LakeError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LakeError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
        .collect();
    paths.sort();
    paths.iter().map(|p| SavedQuery::from_file(p)).collect()
}

/// The saved queries of `dir` when it exists, the built-in ones otherwise.
pub fn load(dir: Option<&Path>) -> Result<Vec<SavedQuery>, LakeError> {
    match dir {
        Some(d) if d.is_dir() => from_dir(d),
        Some(d) if d.exists() => Err(LakeError::Data {
            location: d.display().to_string(),
            message: "not a folder of .sql files".into(),
        }),
        _ => Ok(builtin()),
    }
}

/// Finds a saved query by name (with or without `.sql`).
pub fn find<'a>(queries: &'a [SavedQuery], name: &str) -> Option<&'a SavedQuery> {
    let name = name.strip_suffix(".sql").unwrap_or(name);
    queries.iter().find(|q| q.name == name)
}
