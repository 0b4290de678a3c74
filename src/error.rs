//! The error a command ends with, and its exit status. Each module of the core has its own error
//! type carrying the context a user needs (file:line:column, topic/partition/offset, object key,
//! URL, statement); this enum only gathers them. A message never repeats its `#[source]`:
//! [`crate::report::chain`] prints the causes.

use std::path::PathBuf;

pub use crate::kafka::KafkaError;
pub use crate::lake::LakeError;
pub use crate::settings::SettingsError;
pub use crate::source::{FilePos, SourceError};

/// Exit statuses, as `--help` and the README list them.
pub mod exit {
    /// Success; `compare` and `sql --engine both`: the results agree.
    pub const OK: i32 = 0;
    /// Failure; `compare` and `sql --engine both`: the results disagree or a side failed.
    pub const FAILURE: i32 = 1;
    /// Usage error: a bad flag or value, a bad settings file, nothing to run.
    pub const USAGE: i32 = 2;
}

/// Any error a command can end with; `main` prints it and exits with [`Error::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Consume(#[from] crate::kafka::ConsumeError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// Results disagree, or a side of a comparison could not run.
    #[error(transparent)]
    Compare(#[from] crate::compare::CompareError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[error(transparent)]
    Print(#[from] crate::print::PrintError),
    /// A statement of a query file, `-c` text or stdin failed.
    #[error("{origin}: statement {index} at line {line} ({snippet})")]
    Statement {
        origin: String,
        index: usize,
        line: usize,
        snippet: String,
        #[source]
        source: crate::engine::EngineError,
    },
    /// Reading or writing something that is not the lake: stdin, stdout, the terminal, a file.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A file given on the command line.
    #[error("{}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The command line or its values are wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A benchmark's own check failed (its figures would mean nothing).
    #[error("benchmark: {0}")]
    Bench(String),
}

impl Error {
    /// What the process exits with: see [`exit`].
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Settings(_) => exit::USAGE,
            Error::Sync(e) if e.is_usage() => exit::USAGE,
            _ => exit::FAILURE,
        }
    }

    /// An I/O error while doing `what` (e.g. "reading stdin").
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
