//! Errors from reading tick sources, with the file, line and column of a bad row.

use std::path::PathBuf;

/// Where in an input file a problem is: 1-based line and column, with the column's header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePos {
    pub file: PathBuf,
    pub line: u64,
    /// 1-based column number, 0 when the problem concerns the whole line.
    pub column: usize,
    /// Header name of the column, when known.
    pub column_name: Option<String>,
}

impl std::fmt::Display for FilePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if self.column > 0 {
            write!(f, ":{}", self.column)?;
            if let Some(name) = &self.column_name {
                write!(f, " ({name})")?;
            }
        }
        Ok(())
    }
}

/// Errors from reading tick sources (CSV files, the synthetic generator).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{pos}: {message}")]
    Row { pos: FilePos, message: String },
    #[error("{path}: {message}")]
    Header { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    /// Ctrl-C or SIGTERM while the files were read or sorted, before anything was sent.
    #[error("interrupted while reading the files: nothing was sent")]
    Interrupted,
}
