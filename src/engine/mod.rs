//! One query interface, two engines: `local` (DataFusion over the lake) and `athena`; plus the
//! store of saved Athena results. Both return the same [`QueryOutput`], so printing and
//! comparing never care where a result came from.

pub mod athena;
pub mod saved;

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// Which engine runs a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Local,
    Athena,
    /// Both, then compare the results.
    Both,
}

/// A finished query's rows and facts.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub info: QueryInfo,
}

impl QueryOutput {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Facts about one run of a statement.
#[derive(Debug, Clone, Default)]
pub struct QueryInfo {
    /// "local" or "athena".
    pub engine: &'static str,
    pub elapsed: Duration,
    /// Athena's query execution id.
    pub query_id: Option<String>,
    /// Bytes the engine scanned (Athena bills by this).
    pub bytes_scanned: Option<u64>,
}

/// Why a statement did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The statement is wrong (syntax, unknown table or column, types).
    #[error("{engine}: {message}")]
    Query {
        engine: &'static str,
        message: String,
    },
    /// The engine could not be reached or set up (lake, credentials, network).
    #[error("{engine}: {message}")]
    Setup {
        engine: &'static str,
        message: String,
    },
    /// Ctrl-C stopped the statement.
    #[error("{engine}: cancelled")]
    Cancelled { engine: &'static str },
}

pub mod lakegen;
pub mod local;
pub mod queries;
pub mod statements;

pub use local::LocalEngine;

/// Where statements run: the engine chosen with `--engine` (or `\engine` in the REPL).
pub enum Engine {
    Local(LocalEngine),
}

impl Engine {
    /// Opens the engine `kind` over the lake at `lake_url`.
    pub async fn connect(kind: EngineKind, lake_url: &str) -> Result<Engine, EngineError> {
        match kind {
            EngineKind::Local => Ok(Engine::Local(LocalEngine::open(lake_url).await?)),
            EngineKind::Athena | EngineKind::Both => Err(remote_engine_unavailable(kind)),
        }
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Engine::Local(_) => EngineKind::Local,
        }
    }

    /// Runs one statement.
    pub async fn query(&self, sql: &str) -> Result<QueryOutput, EngineError> {
        match self {
            Engine::Local(e) => e.query(sql).await,
        }
    }

    /// The local engine, when there is one (table and column names for completion, `\d`).
    pub fn local(&self) -> Option<&LocalEngine> {
        match self {
            Engine::Local(e) => Some(e),
        }
    }
}

/// The one place that says Athena is not wired in yet; the Athena engine replaces it.
pub fn remote_engine_unavailable(kind: EngineKind) -> EngineError {
    let engine = match kind {
        EngineKind::Local => "local",
        EngineKind::Athena => "athena",
        EngineKind::Both => "both",
    };
    EngineError::Setup {
        engine,
        message: "engine not available yet in this build (only --engine local works)".into(),
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Local => "local",
            EngineKind::Athena => "athena",
            EngineKind::Both => "both",
        })
    }
}
