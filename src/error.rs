//! The crate's error types, each carrying the context a user needs to find the problem:
//! file:line:column for input files, topic/partition/offset for events, object keys for the lake.

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
    #[error("{path}: {source}")]
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
}

pub use crate::kafka::error::KafkaError;

/// Errors from the settings file and command-line values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Any error a command can end with; `main` maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Consume(#[from] crate::kafka::ConsumeError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// Results disagree (exit 1) or a side of a comparison could not run (exit 2).
    #[error(transparent)]
    Compare(#[from] crate::compare::CompareError),
    /// A statement of a query file, `-c` text or stdin failed.
    #[error("{origin}: statement {index} at line {line} ({snippet}): {source}")]
    Statement {
        origin: String,
        index: usize,
        line: usize,
        snippet: String,
        #[source]
        source: crate::engine::EngineError,
    },
    /// The command line or its values are wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            Error::Compare(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Errors from the lake: opening it, reading and writing its objects.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("lake object {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lake object {key}: {message}")]
    Format { key: String, message: String },
    #[error("writing Parquet for {key}: {message}")]
    Parquet { key: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Data { location: String, message: String },
    #[error("the background flush stopped: {0}")]
    FlushTask(String),
}
