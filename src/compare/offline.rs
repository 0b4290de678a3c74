//! Saved Athena results for offline comparison: a folder (`.stocklake/athena/`, or files
//! downloaded from an Athena output location) or one CSV file. A query finds its result by its
//! SQL text (the saved-result JSON's `sql`) or by file name (`monthly_vwap.csv`). Column types
//! come from the saved JSON, else from Athena's `<id>.csv.metadata`, else from the values.

use std::path::{Path, PathBuf};

use crate::engine::athena::convert::{self, ColumnMeta};
use crate::engine::lexer;
use crate::engine::saved::{SavedError, SavedMeta, io};
use crate::engine::{QueryInfo, QueryOutput};

use super::SideFacts;

/// One saved result file and what is known about it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub csv: PathBuf,
    pub meta: Option<SavedMeta>,
    /// Columns from Athena's binary `.csv.metadata`, when there is no JSON.
    pub metadata_columns: Option<Vec<ColumnMeta>>,
}

/// The saved results a comparison may use.
#[derive(Debug, Clone)]
pub struct Against {
    pub location: PathBuf,
    /// A single file given on the command line: every query is compared with it.
    single: bool,
    pub entries: Vec<Entry>,
}

/// SQL text as compared: no comments, whitespace collapsed, no final `;`.
pub fn normalize_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut space = false;
    // `out`'s length up to its last token that is not a `;`.
    let mut kept = 0;
    for t in lexer::tokens(sql) {
        if t.is_trivia() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push_str(t.text);
        if !t.is_punct(';') {
            kept = out.len();
        }
    }
    out.truncate(kept);
    out
}

fn entry_for(csv: &Path) -> Result<Entry, SavedError> {
    let json = csv.with_extension("json");
    let meta = if json.is_file() {
        let bytes = std::fs::read(&json).map_err(io(&json))?;
        Some(
            serde_json::from_slice::<SavedMeta>(&bytes).map_err(|e| SavedError::Invalid {
                path: json.clone(),
                message: format!("not a saved-result description: {e}"),
            })?,
        )
    } else {
        None
    };
    let mut metadata = csv.as_os_str().to_owned();
    metadata.push(".metadata");
    let metadata = PathBuf::from(metadata);
    let metadata_columns = if meta.is_none() && metadata.is_file() {
        let bytes = std::fs::read(&metadata).map_err(io(&metadata))?;
        let cols = super::metadata::columns(&bytes);
        if cols.is_empty() {
            tracing::warn!(
                "{}: no column info recognised; types inferred from the values",
                metadata.display()
            );
            None
        } else {
            Some(cols)
        }
    } else {
        None
    };
    Ok(Entry {
        csv: csv.to_path_buf(),
        meta,
        metadata_columns,
    })
}

impl Against {
    /// Indexes a folder of saved results, or one CSV file.
    pub fn open(location: &Path) -> Result<Against, SavedError> {
        if location.is_file() {
            return Ok(Against {
                location: location.to_path_buf(),
                single: true,
                entries: vec![entry_for(location)?],
            });
        }
        let dir = std::fs::read_dir(location).map_err(io(location))?;
        let mut csvs: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv") && p.is_file())
            .collect();
        csvs.sort();
        let entries = csvs
            .iter()
            .map(|p| entry_for(p))
            .collect::<Result<_, _>>()?;
        Ok(Against {
            location: location.to_path_buf(),
            single: false,
            entries,
        })
    }

    /// The saved result for a query named `name` with text `sql`: the newest whose SQL text
    /// matches, else the file named `<name>.csv`.
    pub fn find(&self, name: &str, sql: &str) -> Option<&Entry> {
        if self.single {
            return self.entries.first();
        }
        let want = normalize_sql(sql);
        let by_text = self
            .entries
            .iter()
            .filter(|e| {
                e.meta
                    .as_ref()
                    .is_some_and(|m| normalize_sql(&m.sql) == want)
            })
            .max_by(|a, b| {
                let t = |e: &Entry| e.meta.as_ref().map(|m| m.submitted_at.clone());
                t(a).cmp(&t(b))
            });
        by_text.or_else(|| {
            self.entries
                .iter()
                .find(|e| e.csv.file_stem().is_some_and(|s| s == name))
        })
    }
}

/// Reads a saved result as Arrow, with the facts of its run.
pub fn load(entry: &Entry) -> Result<(QueryOutput, SideFacts), SavedError> {
    let path = &entry.csv;
    let invalid = |message: String| SavedError::Invalid {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut rows = convert::parse_csv(&text).map_err(invalid)?;
    let header = if rows.is_empty() {
        Vec::new()
    } else {
        rows.remove(0)
    };
    let known = entry
        .meta
        .as_ref()
        .map(|m| m.columns.clone())
        .or_else(|| entry.metadata_columns.clone());
    let inferred = known.is_none();
    let columns = match known {
        Some(c) => c,
        None => infer_columns(&header, &rows),
    };
    if let Some(bad) = rows.iter().position(|r| r.len() != columns.len()) {
        return Err(invalid(format!(
            "row {} has {} fields, the result has {} columns",
            bad + 2,
            rows[bad].len(),
            columns.len()
        )));
    }
    let batch = convert::build_batch(&columns, &rows).map_err(invalid)?;
    let meta = entry.meta.as_ref();
    let facts = SideFacts {
        label: "athena".into(),
        engine: "athena".into(),
        query_id: meta.map(|m| m.query_id.clone()).or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| s.len() == 36 && s.matches('-').count() == 4)
        }),
        ran_at: meta.map(|m| m.submitted_at.clone()),
        clock: meta.map(|m| m.submitted_clock),
        source: Some(path.display().to_string()),
        lake: None,
        table_versions: meta.and_then(|m| m.table_versions),
        types_inferred: inferred,
    };
    let output = QueryOutput {
        schema: batch.schema(),
        batches: vec![batch],
        info: QueryInfo {
            engine: "athena",
            elapsed: std::time::Duration::from_millis(meta.map_or(0, |m| m.elapsed_ms)),
            query_id: facts.query_id.clone(),
            bytes_scanned: meta.map(|m| m.bytes_scanned),
            bill: meta.and_then(SavedMeta::bill),
            submitted: meta.and_then(SavedMeta::submitted),
            table_versions: facts.table_versions,
        },
    };
    Ok((output, facts))
}

/// Column types from the values: bigint, double, date, timestamp, else varchar.
fn infer_columns(header: &[Option<String>], rows: &[convert::Row]) -> Vec<ColumnMeta> {
    header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.get(i).and_then(Option::as_deref))
                .collect();
            let all = |f: &dyn Fn(&str) -> bool| !values.is_empty() && values.iter().all(|v| f(v));
            let (ty, precision) = if all(&|v| v.parse::<i64>().is_ok()) {
                ("bigint", 19)
            } else if all(&|v| v.parse::<f64>().is_ok()) {
                ("double", 17)
            } else if all(&|v| convert::parse_date(v).is_some()) {
                ("date", 0)
            } else if all(&|v| convert::parse_timestamp(v).is_some()) {
                ("timestamp", 3)
            } else {
                ("varchar", 2147483647)
            };
            ColumnMeta {
                name: name.clone().unwrap_or_else(|| format!("_col{i}")),
                athena_type: ty.into(),
                precision,
                scale: 0,
                nullable: true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_text_ignores_comments_whitespace_and_the_final_semicolon() {
        assert_eq!(
            normalize_sql("-- title\nSELECT  a,\n  '--x  y'\nFROM t ; "),
            "SELECT a, '--x  y' FROM t"
        );
        assert_eq!(
            normalize_sql("SELECT /* it's; */ \"a  b\" ,'x''  y';; ;\n"),
            "SELECT \"a  b\" ,'x''  y'"
        );
        assert_eq!(normalize_sql("SELECT 1; SELECT 2;"), "SELECT 1; SELECT 2");
        assert_eq!(normalize_sql(" ; -- only\n"), "");
    }
}
