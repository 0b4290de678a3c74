//! The Athena engine: StartQueryExecution (workgroup, database, catalog, output location),
//! polling with backoff and a status line, Arrow results typed from `ColumnInfo` (all
//! GetQueryResults pages, or the result CSV for large results, falling back to the pages when
//! the CSV cannot be read), Athena's reason for a failure, StopQueryExecution on cancel, data
//! scanned and cost. Every fetched result is saved locally (see [`super::saved`]) with Athena's
//! submission time and engine version.

pub mod convert;
pub mod cost;
mod execution;
pub mod pages;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, QueryExecutionStatus, ResultConfiguration,
    StatementType,
};
use object_store::ObjectStoreExt;

pub use convert::{ColumnMeta, Row};
pub use cost::{Bill, USD_PER_TB, cost_usd, scanned_summary};
pub use pages::{Page, PageSource, PagedRows, read_pages, read_rest};

use super::saved::{SavedMeta, SavedStore};
use super::{EngineError, Progress, QueryInfo, QueryOutput};
use execution::Finished;
use pages::AthenaPages;

pub(crate) const ENGINE: &str = "athena";
/// GetQueryResults' page size limit.
pub const PAGE_ROWS: i32 = 1000;

/// How results are fetched.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Fetch {
    /// The first page; the result CSV instead of further pages when there are more.
    #[default]
    Auto,
    /// GetQueryResults pages only.
    Pages,
    /// The result CSV in the output location (the pages when it cannot be read).
    Csv,
}

/// Where and how queries run (defaults in `crate::settings::defaults`).
#[derive(Debug, Clone)]
pub struct AthenaSettings {
    pub workgroup: String,
    pub database: String,
    pub catalog: String,
    /// `s3://…/` for result files; None: the workgroup's output location.
    pub output: Option<String>,
    pub fetch: Fetch,
    /// Where fetched results are saved; None: not saved.
    pub save_dir: Option<PathBuf>,
    /// First wait between two polls; it grows ×1.5 up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

pub(crate) fn setup(message: impl Into<String>) -> EngineError {
    EngineError::Setup {
        engine: ENGINE,
        message: message.into(),
    }
}

/// An Athena API call that failed (`call`: the operation and its query id).
pub(crate) fn call_failed<E: std::error::Error + 'static>(
    call: String,
) -> impl FnOnce(E) -> EngineError {
    move |e| setup(format!("{call}: {}", crate::aws::describe(&e)))
}

fn query_err(message: impl Into<String>) -> EngineError {
    EngineError::Query {
        engine: ENGINE,
        message: message.into(),
    }
}

/// The lake's tables that `sql` names in a database other than `database` (`stocklake.ticks`
/// while the configured database is `other`): Athena reads those from Glue under that name,
/// which may not be the lake's table, while the local engine reads the lake under both names.
pub fn other_database_tables(sql: &str, database: &str) -> Vec<String> {
    use crate::engine::lexer::{Kind, tokens};
    let code: Vec<_> = tokens(sql).filter(|t| !t.is_trivia()).collect();
    let mut out = Vec::new();
    for w in code.windows(4) {
        let [before, db, dot, table] = w else {
            continue;
        };
        // A table name follows FROM or JOIN (`alias.ticks` elsewhere is a column).
        if !(before.is_word("from") || before.is_word("join")) {
            continue;
        }
        let name = match db.kind {
            Kind::Word => db.text.to_ascii_lowercase(),
            Kind::QuotedIdent => db.text.trim_matches('"').replace("\"\"", "\""),
            _ => continue,
        };
        let lake_table = [super::local::TABLE, super::local::REJECTS_TABLE]
            .iter()
            .any(|t| table.is_word(t));
        let qualified = format!("{name}.{}", table.text.to_ascii_lowercase());
        if dot.is_punct('.')
            && lake_table
            && !name.eq_ignore_ascii_case(database)
            && !out.contains(&qualified)
        {
            out.push(qualified);
        }
    }
    out
}

/// A FAILED execution as a query error carrying Athena's reason.
fn failure(id: &str, status: Option<&QueryExecutionStatus>) -> EngineError {
    let error = status.and_then(|s| s.athena_error());
    let reason = error
        .and_then(|e| e.error_message())
        .or_else(|| status.and_then(|s| s.state_change_reason()))
        .unwrap_or("no reason given");
    let kind = error
        .and_then(|e| e.error_type())
        .map_or(String::new(), |t| format!(" (error type {t})"));
    query_err(format!("query {id} failed: {reason}{kind}"))
}

/// Queries on Athena.
pub struct AthenaEngine {
    client: Client,
    config: SdkConfig,
    pub settings: AthenaSettings,
    progress: Option<Arc<dyn Progress>>,
    /// The ticks table whose versions each query records (Athena reads it; it cannot be pinned).
    ticks: Option<url::Url>,
}

/// The rows of a finished query and where they were read from.
struct Fetched {
    columns: Vec<ColumnMeta>,
    rows: Vec<Row>,
    /// The result CSV as Athena wrote it, when rows came from it.
    csv_text: Option<String>,
    /// `pages`, `csv`, or `pages (result CSV unreadable: <reason>)`.
    source: String,
}

impl AthenaEngine {
    /// An engine with the standard AWS configuration chain.
    pub async fn new(settings: AthenaSettings) -> AthenaEngine {
        AthenaEngine::with_config(&crate::aws::sdk_config().await, settings)
    }

    pub fn with_config(config: &SdkConfig, settings: AthenaSettings) -> AthenaEngine {
        AthenaEngine {
            client: Client::new(config),
            config: config.clone(),
            settings,
            progress: None,
            ticks: None,
        }
    }

    /// Records, for each query, the latest version of the lake's ticks table just before it
    /// starts and just after it ends (in the result's `table_versions` and the saved result).
    pub fn with_lake(mut self, lake: &str) -> AthenaEngine {
        match crate::lake::delta::read::table_url(lake, crate::lake::layout::TABLE_DIR) {
            Ok(u) => self.ticks = Some(u),
            Err(e) => tracing::warn!("table versions will not be recorded: {e}"),
        }
        self
    }

    /// The latest version of the ticks table, when it can be read.
    async fn table_version(&self) -> Option<u64> {
        let url = self.ticks.as_ref()?;
        match crate::lake::delta::read::latest_version(url).await {
            Ok(v) => Some(v),
            // Athena alone may run without the lake at hand: the result then records no version.
            Err(e) => {
                tracing::info!(
                    "cannot read the table version of {url}: {}",
                    crate::report::chain(&e)
                );
                None
            }
        }
    }

    /// Reports each running query's state, time and data scanned to `progress`.
    pub fn with_progress(mut self, progress: Option<Arc<dyn Progress>>) -> AthenaEngine {
        self.progress = progress;
        self
    }

    /// Runs `sql`; setting `cancel` stops it on Athena (StopQueryExecution) and returns
    /// [`EngineError::Cancelled`].
    pub async fn query(&self, sql: &str, cancel: &AtomicBool) -> Result<QueryOutput, EngineError> {
        let started = Instant::now();
        let client_clock = chrono::Utc::now();
        for name in other_database_tables(sql, &self.settings.database) {
            tracing::warn!(
                "the statement names {name}, outside the configured database {}: Athena reads \
                 the Glue table of that name, which may not be this lake's (the local engine \
                 reads the lake under both names); write the table name without a database",
                self.settings.database
            );
        }
        let before = self.table_version().await;
        let id = self.start(sql).await?;
        let finished = self.wait(&id, cancel, started).await;
        if let Some(p) = &self.progress {
            p.done();
        }
        let finished = finished?;
        let after = self.table_version().await;
        let table_versions = before
            .zip(after)
            .map(|(before, after)| super::TableVersions { before, after });
        let fetched = self.fetch(&id, &finished, cancel).await?;
        let batch = convert::build_batch(&fetched.columns, &fetched.rows)
            .map_err(|e| setup(format!("query {id}: {e}")))?;
        let submitted = finished.submitted_or(client_clock);
        let info = QueryInfo {
            engine: ENGINE,
            elapsed: started.elapsed(),
            query_id: Some(id.clone()),
            bytes_scanned: Some(finished.bill.scanned),
            bill: Some(finished.bill),
            submitted: Some(submitted),
            table_versions,
        };
        if let Some(dir) = &self.settings.save_dir {
            let meta = SavedMeta {
                query_id: id.clone(),
                sql: sql.to_string(),
                workgroup: self.settings.workgroup.clone(),
                database: self.settings.database.clone(),
                catalog: self.settings.catalog.clone(),
                output_location: finished.output_location.clone(),
                submitted_at: submitted.at.to_rfc3339(),
                submitted_clock: submitted.clock,
                engine_version: finished.engine_version.clone(),
                statement_type: finished
                    .statement_type
                    .as_ref()
                    .map(|t| t.as_str().to_string()),
                elapsed_ms: info.elapsed.as_millis() as u64,
                bytes_scanned: finished.bill.scanned,
                billed_bytes: Some(finished.bill.billed),
                rows: fetched.rows.len(),
                fetched_from: fetched.source.clone(),
                columns: fetched.columns.clone(),
                table_versions,
            };
            save(dir, &meta, fetched);
        }
        Ok(QueryOutput {
            schema: batch.schema(),
            batches: vec![batch],
            info,
        })
    }

    /// The rows of a finished query: GetQueryResults pages, or the result CSV (see [`Fetch`]).
    async fn fetch(
        &self,
        id: &str,
        finished: &Finished,
        cancel: &AtomicBool,
    ) -> Result<Fetched, EngineError> {
        let header = finished.statement_type == Some(StatementType::Dml);
        let csv_location = finished
            .output_location
            .clone()
            .filter(|l| header && l.ends_with(".csv"));
        match (self.settings.fetch, csv_location) {
            (Fetch::Csv, Some(loc)) => {
                let columns = self.first_page_columns(id).await?;
                let none = PagedRows {
                    columns,
                    ..PagedRows::default()
                };
                self.csv_or_pages(id, &loc, none, header, cancel).await
            }
            (Fetch::Csv, None) => Err(setup(format!(
                "query {id}: no result CSV to read (statement type {:?}, output {:?})",
                finished.statement_type, finished.output_location
            ))),
            (fetch, loc) => {
                let first_only = fetch == Fetch::Auto && loc.is_some();
                let mut src = AthenaPages {
                    client: &self.client,
                    id,
                };
                let paged = read_pages(&mut src, header, first_only, cancel).await?;
                match loc.filter(|_| paged.remaining.is_some()) {
                    Some(loc) => self.csv_or_pages(id, &loc, paged, header, cancel).await,
                    None => Ok(Fetched {
                        columns: paged.columns,
                        rows: paged.rows,
                        csv_text: None,
                        source: "pages".into(),
                    }),
                }
            }
        }
    }

    /// The rows from the result CSV at `location` (columns from `paged`, the pages read so far);
    /// when the file cannot be read (no s3:GetObject, KMS, a deleted object, any error), the
    /// rest of the GetQueryResults pages instead, with a warning saying why.
    async fn csv_or_pages(
        &self,
        id: &str,
        location: &str,
        mut paged: PagedRows,
        header: bool,
        cancel: &AtomicBool,
    ) -> Result<Fetched, EngineError> {
        let reason = match self.read_csv(location).await {
            Ok((rows, text)) => {
                return Ok(Fetched {
                    columns: paged.columns,
                    rows,
                    csv_text: Some(text),
                    source: "csv".into(),
                });
            }
            Err(reason) => reason,
        };
        tracing::warn!(
            "query {id}: cannot read the result CSV {location} ({reason}); reading the rows \
             from GetQueryResults pages instead"
        );
        let mut src = AthenaPages {
            client: &self.client,
            id,
        };
        if paged.pages == 0 {
            paged = read_pages(&mut src, header, false, cancel).await?;
        } else {
            read_rest(&mut src, &mut paged, cancel).await?;
        }
        Ok(Fetched {
            columns: paged.columns,
            rows: paged.rows,
            csv_text: None,
            source: format!("pages (result CSV unreadable: {reason})"),
        })
    }

    async fn start(&self, sql: &str) -> Result<String, EngineError> {
        let s = &self.settings;
        let ctx = QueryExecutionContext::builder()
            .database(&s.database)
            .catalog(&s.catalog)
            .build();
        let result = s
            .output
            .as_ref()
            .map(|o| ResultConfiguration::builder().output_location(o).build());
        let out = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&s.workgroup)
            .query_execution_context(ctx)
            .set_result_configuration(result)
            .send()
            .await
            .map_err(|e| {
                let invalid = e
                    .as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception());
                let msg = format!("StartQueryExecution: {}", crate::aws::describe(&e));
                if invalid { query_err(msg) } else { setup(msg) }
            })?;
        out.query_execution_id()
            .map(str::to_string)
            .ok_or_else(|| setup("StartQueryExecution returned no query id"))
    }

    async fn wait(
        &self,
        id: &str,
        cancel: &AtomicBool,
        started: Instant,
    ) -> Result<Finished, EngineError> {
        let mut delay = self.settings.first_poll;
        loop {
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(call_failed(format!("GetQueryExecution {id}")))?;
            let q = out
                .query_execution()
                .ok_or_else(|| setup(format!("GetQueryExecution {id}: no execution")))?;
            let st = q.status();
            let state = st.and_then(|s| s.state()).cloned();
            if let Some(p) = &self.progress {
                p.status(&format!(
                    "{id} {} {:.1}s, {:.2} MB scanned",
                    state.as_ref().map_or("?", |s| s.as_str()),
                    started.elapsed().as_secs_f64(),
                    execution::scanned(q) as f64 / 1e6
                ));
            }
            match state {
                Some(QueryExecutionState::Succeeded) => return Ok(execution::finished(q)),
                Some(QueryExecutionState::Failed) => return Err(failure(id, st)),
                Some(QueryExecutionState::Cancelled) => {
                    return Err(EngineError::Cancelled { engine: ENGINE });
                }
                _ => {}
            }
            // Sleep in small slices so that a cancel is acted on quickly.
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if cancel.load(Ordering::SeqCst) {
                    self.stop(id).await?;
                    return Err(EngineError::Cancelled { engine: ENGINE });
                }
                tokio::time::sleep(Duration::from_millis(25).min(delay)).await;
            }
            delay = delay.mul_f64(1.5).min(self.settings.max_poll);
        }
    }

    /// StopQueryExecution.
    pub async fn stop(&self, id: &str) -> Result<(), EngineError> {
        self.client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(call_failed(format!("StopQueryExecution {id}")))?;
        tracing::info!("stopped Athena query {id}");
        Ok(())
    }

    async fn first_page_columns(&self, id: &str) -> Result<Vec<ColumnMeta>, EngineError> {
        let mut src = AthenaPages {
            client: &self.client,
            id,
        };
        Ok(src.fetch(None, 1).await?.columns)
    }

    /// Reads Athena's result CSV (header row dropped) from `s3://…/<id>.csv`; the error is the
    /// reason it could not be read.
    async fn read_csv(&self, location: &str) -> Result<(Vec<Row>, String), String> {
        let url = crate::aws::S3Url::parse(location).map_err(|e| e.to_string())?;
        let store = crate::aws::s3_store(&self.config, &url.bucket).map_err(|e| e.to_string())?;
        let path = object_store::path::Path::parse(&url.prefix).map_err(|e| e.to_string())?;
        let bytes = async { store.get(&path).await?.bytes().await }
            .await
            .map_err(|e| short_reason(&e))?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| format!("not UTF-8: {e}"))?;
        let mut rows = convert::parse_csv(&text)?;
        if !rows.is_empty() {
            rows.remove(0);
        }
        Ok((rows, text))
    }
}

/// An object store error in a few words: what S3 said for the usual cases (a missing object or
/// bucket, no s3:GetObject or KMS permission), else its first line, at most 200 characters (S3
/// answers may carry a whole XML document).
fn short_reason(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => return "not found".into(),
        object_store::Error::PermissionDenied { .. } => return "access denied".into(),
        object_store::Error::Unauthenticated { .. } => return "not authenticated".into(),
        _ => {}
    }
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Saves a fetched result for offline comparison (the CSV as Athena wrote it, or one written
/// from the pages). A failure to save is a warning: the query itself succeeded.
fn save(dir: &std::path::Path, meta: &SavedMeta, fetched: Fetched) {
    let text = fetched.csv_text.unwrap_or_else(|| {
        let header: Row = fetched
            .columns
            .iter()
            .map(|c| Some(c.name.clone()))
            .collect();
        let mut t = String::new();
        convert::write_csv(&mut t, std::slice::from_ref(&header));
        convert::write_csv(&mut t, &fetched.rows);
        t
    });
    if let Err(e) = SavedStore::new(dir.to_path_buf()).save(meta, &text) {
        tracing::warn!(
            "could not save the Athena result of {}: {}",
            meta.query_id,
            crate::report::chain(&e)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_athena::types::AthenaError;

    #[test]
    fn tables_named_in_another_database_are_found() {
        let sql = "SELECT * FROM stocklake.ticks t JOIN \"Stocklake\".rejects r ON true \
                   JOIN other.ticks o ON true JOIN stocklake.orders x ON true -- stocklake.ticks";
        assert_eq!(
            other_database_tables(sql, "other"),
            vec!["stocklake.ticks", "Stocklake.rejects"]
        );
        assert_eq!(other_database_tables(sql, "STOCKLAKE"), vec!["other.ticks"]);
        assert!(other_database_tables("SELECT * FROM ticks", "other").is_empty());
        assert!(other_database_tables("SELECT t.ticks, u.rejects FROM x t", "db").is_empty());
    }

    #[test]
    fn a_failed_query_shows_athenas_reason() {
        let st = QueryExecutionStatus::builder()
            .state(QueryExecutionState::Failed)
            .state_change_reason("generic reason")
            .athena_error(
                AthenaError::builder()
                    .error_type(1101)
                    .error_message("COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved")
                    .build(),
            )
            .build();
        let msg = failure("q1", Some(&st)).to_string();
        assert!(msg.contains("q1 failed: COLUMN_NOT_FOUND"), "{msg}");
        assert!(msg.contains("error type 1101"), "{msg}");
        let st = QueryExecutionStatus::builder()
            .state_change_reason("Access denied")
            .build();
        let e = failure("q2", Some(&st));
        assert!(matches!(e, EngineError::Query { .. }));
        assert!(e.to_string().contains("Access denied"));
    }
}
