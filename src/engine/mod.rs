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
