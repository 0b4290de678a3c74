//! One query interface, two engines: `local` (DataFusion over the lake) and `athena`; plus the
//! store of saved Athena results. Both return the same [`QueryOutput`], so printing and
//! comparing never care where a result came from.

pub mod athena;
pub mod saved;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// Where a running query reports how it is doing (Athena: state, seconds, data scanned). The
/// command line draws it as a spinner on stderr; the core never draws anything itself.
pub trait Progress: Send + Sync {
    /// The query's status line changed.
    fn status(&self, line: &str);
    /// The query is over (whatever the outcome): clear the status line.
    fn done(&self);
}

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
    /// What Athena bills for the query (see [`athena::Bill`]); None for the local engine.
    pub bill: Option<athena::Bill>,
    /// When the query was submitted, and whose clock says so (Athena's, when it gave one).
    pub submitted: Option<Submitted>,
    /// The ticks table's versions the query saw (see [`TableVersions`]); None when unknown.
    pub table_versions: Option<TableVersions>,
}

/// Whose clock a submission time was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// Athena's `SubmissionDateTime`.
    Athena,
    /// This machine's clock just before the query was submitted (Athena gave no time; and every
    /// result saved before stocklake recorded Athena's).
    #[default]
    Client,
}

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Clock::Athena => "Athena's clock",
            Clock::Client => "this machine's clock",
        })
    }
}

/// When a query was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    pub at: chrono::DateTime<chrono::Utc>,
    pub clock: Clock,
}

impl Submitted {
    /// RFC 3339 with milliseconds, UTC (`2026-01-15T09:30:00.250Z`).
    pub fn rfc3339(&self) -> String {
        self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// Which versions of the ticks table a query saw. The local engine reads one version (`before`
/// and `after` are equal); Athena cannot be pinned, so its engine records the latest version
/// just before the query started and just after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableVersions {
    pub before: u64,
    pub after: u64,
}

impl TableVersions {
    /// One version (what the local engine read).
    pub fn at(version: u64) -> TableVersions {
        TableVersions {
            before: version,
            after: version,
        }
    }

    /// Whether the table moved while the query ran.
    pub fn moved(&self) -> bool {
        self.before != self.after
    }
}

impl std::fmt::Display for TableVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.moved() {
            write!(f, "versions {} to {}", self.before, self.after)
        } else {
            write!(f, "version {}", self.before)
        }
    }
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

pub mod cast;
pub mod datetrunc;
pub mod grouping;
pub mod lakegen;
pub mod lakestate;
pub mod lexer;
pub mod local;
pub mod queries;
pub mod scan;
pub mod statements;
pub mod window;

pub use local::LocalEngine;

/// Where statements run: the engine chosen with `--engine` (or `\engine` in the REPL).
pub enum Engine {
    Local(LocalEngine),
    Athena(Box<athena::AthenaEngine>),
    /// Both engines: statements run on each and the results are compared.
    Both(LocalEngine, Box<athena::AthenaEngine>),
}

impl Engine {
    /// Opens the engine `kind`: the local one over `lake_url` with the tables under
    /// `settings.database` too, Athena with `settings`, reporting to `progress`.
    pub async fn connect(
        kind: EngineKind,
        lake_url: &str,
        settings: athena::AthenaSettings,
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<Engine, EngineError> {
        let athena = || async {
            Box::new(
                athena::AthenaEngine::new(settings.clone())
                    .await
                    .with_progress(progress.clone())
                    .with_lake(lake_url),
            )
        };
        // The local engine names the tables after the database Athena runs in.
        let local = || LocalEngine::open_in(lake_url, &settings.database, None);
        Ok(match kind {
            EngineKind::Local => Engine::Local(local().await?),
            EngineKind::Athena => Engine::Athena(athena().await),
            EngineKind::Both => Engine::Both(local().await?, athena().await),
        })
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Engine::Local(_) => EngineKind::Local,
            Engine::Athena(_) => EngineKind::Athena,
            Engine::Both(..) => EngineKind::Both,
        }
    }

    /// Runs one statement until it finishes or `cancel` is set (with `Both`, on the local
    /// engine only: comparing is the caller's job).
    pub async fn query(&self, sql: &str, cancel: &AtomicBool) -> Result<QueryOutput, EngineError> {
        match self {
            Engine::Local(e) | Engine::Both(e, _) => {
                cancellable(e.query(sql), cancel, "local").await
            }
            Engine::Athena(e) => e.query(sql, cancel).await,
        }
    }

    /// Pins the local engine's later statements to `as_of` (None: back to the latest version);
    /// returns the version pinned. Athena cannot time travel: an error when there is no local
    /// engine alone.
    pub async fn set_as_of(
        &self,
        as_of: Option<crate::lake::delta::read::AsOf>,
    ) -> Result<Option<u64>, EngineError> {
        match self {
            Engine::Local(e) => e.set_as_of(as_of).await,
            _ if as_of.is_none() => Ok(None),
            _ => Err(EngineError::Setup {
                engine: "athena",
                message: "Athena cannot read an older table version; use the local engine for \
                          --as-of (\\engine local)"
                    .into(),
            }),
        }
    }

    /// The local engine, when there is one (table and column names for completion, `\d`).
    pub fn local(&self) -> Option<&LocalEngine> {
        match self {
            Engine::Local(e) | Engine::Both(e, _) => Some(e),
            Engine::Athena(_) => None,
        }
    }

    /// The Athena engine, when there is one.
    pub fn athena(&self) -> Option<&athena::AthenaEngine> {
        match self {
            Engine::Athena(e) | Engine::Both(_, e) => Some(e.as_ref()),
            Engine::Local(_) => None,
        }
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

/// Runs `work` until it finishes or `cancel` is set; dropping the future stops a local query.
pub async fn cancellable<T>(
    work: impl Future<Output = Result<T, EngineError>>,
    cancel: &AtomicBool,
    engine: &'static str,
) -> Result<T, EngineError> {
    let stop = async {
        while !cancel.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::select! {
        result = work => result,
        () = stop => Err(EngineError::Cancelled { engine }),
    }
}
