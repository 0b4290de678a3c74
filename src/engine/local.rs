//! The local engine: the lake's Delta tables registered as `ticks` (and `rejects` when the lake
//! has that table) in an embedded DataFusion context, through deltalake's provider, under the
//! configured Glue database (DataFusion's default schema, so `FROM ticks` means what it means on
//! Athena) and under `stocklake` as well. Each query reads one committed version: the latest at its start (the
//! table is refreshed first, which costs one log listing when nothing changed), or the version
//! the session or the caller pins (`--as-of`); files not in that version's log are never read.
//! NULLs are ordered as Athena (Trino) orders them.

use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;
use deltalake::delta_datafusion::{DeltaScanConfig, DeltaScanNext};
use futures::TryStreamExt;
use url::Url;

use super::{EngineError, QueryInfo, QueryOutput, TableVersions};
use crate::lake::TableLayout;
use crate::lake::delta::read::{self, AsOf};
use crate::lake::delta::{rejects_url, ticks_url};

/// The database (DataFusion schema) the tables are always registered under, and the default
/// Glue database; the table names are the Glue catalog's.
pub const DATABASE: &str = "stocklake";
pub const TABLE: &str = "ticks";
/// The quarantined events' table.
pub const REJECTS_TABLE: &str = "rejects";

const ENGINE: &str = "local";

/// The tables behind the registered names, and which versions are registered.
struct Tables {
    /// The latest version, refreshed before each query that is not pinned.
    latest: DeltaTable,
    latest_rejects: Option<DeltaTable>,
    /// The session's pin (`--as-of`, `\as-of`).
    pin: Option<AsOf>,
    /// The tables loaded for the last pin asked for.
    pinned: Option<(AsOf, DeltaTable, Option<DeltaTable>)>,
    /// The (ticks, rejects) versions whose providers are registered.
    registered: Option<(u64, Option<u64>)>,
    /// The ticks table the last query read, and the pin it was read under.
    last: Option<(DeltaTable, Option<AsOf>)>,
}

/// A DataFusion session over one lake.
pub struct LocalEngine {
    ctx: SessionContext,
    /// The configured database: the default schema, and a name for the tables besides
    /// [`DATABASE`].
    database: String,
    lake: Url,
    ticks_url: Url,
    rejects_url: Url,
    layout: TableLayout,
    schema: SchemaRef,
    tables: tokio::sync::Mutex<Tables>,
}

fn setup(message: impl std::fmt::Display) -> EngineError {
    EngineError::Setup {
        engine: ENGINE,
        message: message.to_string(),
    }
}

/// A lake error, with its causes.
fn lake_err(e: crate::lake::LakeError) -> EngineError {
    setup(crate::report::chain(&e))
}

fn query_err(e: datafusion::error::DataFusionError) -> EngineError {
    EngineError::Query {
        engine: ENGINE,
        message: e.to_string(),
    }
}

/// deltalake's provider for the version `table` holds, over its loaded file list (no log
/// replay per query), partition values as plain columns (not dictionaries), the session's
/// Parquet settings; the table's object store registered in `ctx` for its scans.
fn provider(
    ctx: &SessionContext,
    table: &DeltaTable,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, EngineError> {
    let failed = |e: &dyn std::fmt::Display| setup(format!("{}: {e}", table.table_url()));
    let state = table.snapshot().map_err(|e| failed(&e))?;
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| failed(&e))?;
    let config = DeltaScanConfig::new_from_session(&ctx.state()).with_wrap_partition_values(false);
    let scan = DeltaScanNext::new(state.snapshot().clone(), config).map_err(|e| failed(&e))?;
    // Our own scan of the same files, with the lake's partitioning and order declared, for
    // every table it reads exactly as deltalake does (the schema is deltalake's).
    let schema = datafusion::catalog::TableProvider::schema(&scan);
    match super::scan::LakeScan::try_new(table, &schema) {
        Some(lake_scan) => Ok(Arc::new(lake_scan)),
        None => Ok(Arc::new(scan)),
    }
}

impl LocalEngine {
    /// Opens the lake at `lake_url` (folder, `file://` or `s3://`) and registers its tables, at
    /// their latest versions. A lake without a ticks Delta table is an error naming the place.
    pub async fn open(lake_url: &str) -> Result<Self, EngineError> {
        Self::open_at(lake_url, None).await
    }

    /// Like [`LocalEngine::open`], with the session pinned to `as_of` (see
    /// [`LocalEngine::set_as_of`]).
    pub async fn open_at(lake_url: &str, as_of: Option<AsOf>) -> Result<Self, EngineError> {
        Self::open_in(lake_url, DATABASE, as_of).await
    }

    /// Like [`LocalEngine::open_at`], with the tables registered under `database` too, and
    /// `database` the default schema (what a Glue database configured with `--database` is to
    /// Athena: unqualified names resolve in it).
    pub async fn open_in(
        lake_url: &str,
        database: &str,
        as_of: Option<AsOf>,
    ) -> Result<Self, EngineError> {
        // Glue keeps database names in lower case, and so does DataFusion's SQL.
        let database = database.to_ascii_lowercase();
        let database = database.as_str();
        let (_, lake) = crate::lake::lake_location(lake_url).map_err(lake_err)?;
        let ticks_url = ticks_url(lake_url).map_err(lake_err)?;
        let rejects_url = rejects_url(lake_url).map_err(lake_err)?;
        let latest = read::open(&ticks_url, None).await.map_err(lake_err)?;
        let layout = read::layout(&latest).map_err(lake_err)?;

        // DataFusion's own `DATAFUSION_*` settings apply. Without
        // DATAFUSION_EXECUTION_TARGET_PARTITIONS, two partitions a core: each partition reads
        // its files one after the other, and with one a core, a core waits whenever its
        // partition waits for a file (10M-row lake, 2 cores: every saved query faster with 4
        // partitions than with 2, `daily_summary` 660 -> 462 ms, `top_movers` 1,541 -> 1,159 ms).
        let mut config = SessionConfig::from_env().map_err(setup)?;
        if std::env::var_os("DATAFUSION_EXECUTION_TARGET_PARTITIONS").is_none() {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            config = config.with_target_partitions(2 * cores);
        }
        let mut config = config
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", database)
            .with_create_default_catalog_and_schema(true);
        // Trino puts NULLs last whatever the direction; DataFusion's default follows Postgres.
        config.options_mut().sql_parser.default_null_ordering = "nulls_last".into();
        // The lake's scan declares its order (symbol, event time) where the files hold it:
        // keep that order through repartitions rather than sorting again.
        config.options_mut().optimizer.prefer_existing_sort = true;
        // The scan's hash partitioning by symbol also places every (symbol, …) group in one
        // partition: aggregate and window by such keys without a second repartition (and the
        // order-preserving merge it needs), however few the partitions.
        config.options_mut().optimizer.subset_repartition_threshold = 1;
        // A partition's rows up to 512 MiB are sorted at once rather than batch by batch and
        // then merged: `top_movers` (10M rows by day) 4.6 s -> 2.7 s, for about a quarter
        // more peak memory. Larger inputs are merged as before.
        config.options_mut().execution.sort_in_place_threshold_bytes = 512 * 1024 * 1024;
        let ctx = super::window::session(config);
        // CAST(double AS DECIMAL(p, s)) rounds as Trino does (after type coercion).
        ctx.add_analyzer_rule(Arc::new(super::cast::TrinoFloatToDecimal));
        ctx.register_udf(super::datetrunc::FastDateTrunc::udf());
        ctx.add_analyzer_rule(Arc::new(super::datetrunc::TruncDateRule));
        if database != DATABASE
            && let Some(catalog) = ctx.catalog("datafusion")
        {
            let schema = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
            catalog.register_schema(DATABASE, schema).map_err(setup)?;
        }
        let schema = provider(&ctx, &latest)?.schema();
        let engine = LocalEngine {
            ctx,
            database: database.to_string(),
            lake,
            ticks_url,
            rejects_url,
            layout,
            schema,
            tables: tokio::sync::Mutex::new(Tables {
                latest,
                latest_rejects: None,
                pin: None,
                pinned: None,
                registered: None,
                last: None,
            }),
        };
        engine.set_as_of(as_of).await?;
        {
            let mut tables = engine.tables.lock().await;
            engine.prepare(&mut tables, None).await?;
        }
        Ok(engine)
    }

    /// Pins every later query of this session to `as_of` (a version, or the last version
    /// committed at or before a moment), or back to the latest version with None. Returns the
    /// version pinned.
    pub async fn set_as_of(&self, as_of: Option<AsOf>) -> Result<Option<u64>, EngineError> {
        let mut tables = self.tables.lock().await;
        let Some(pin) = as_of else {
            tables.pin = None;
            tables.pinned = None;
            return Ok(None);
        };
        self.load_pinned(&mut tables, pin).await?;
        tables.pin = Some(pin);
        Ok(tables.pinned.as_ref().and_then(|p| p.1.version()))
    }

    /// The session's pin, if any.
    pub async fn as_of(&self) -> Option<AsOf> {
        self.tables.lock().await.pin
    }

    /// Loads the tables of `pin` unless they are the ones loaded.
    async fn load_pinned(&self, tables: &mut Tables, pin: AsOf) -> Result<(), EngineError> {
        if tables.pinned.as_ref().is_some_and(|p| p.0 == pin) {
            return Ok(());
        }
        let ticks = match pin {
            // The version the latest handle holds: no need to load it again.
            AsOf::Version(v) if tables.latest.version() == Some(v) => tables.latest.clone(),
            _ => read::open(&self.ticks_url, Some(pin))
                .await
                .map_err(lake_err)?,
        };
        // The rejects table has versions of its own: take it as it was when the ticks
        // version was committed.
        let at = match pin {
            AsOf::Time(t) => t,
            AsOf::Version(v) => read::commit_time(&ticks, v).await.map_err(lake_err)?,
        };
        let rejects = read::open_if_existed(&self.rejects_url, at)
            .await
            .map_err(lake_err)?;
        tables.pinned = Some((pin, ticks, rejects));
        Ok(())
    }

    /// Brings the tables a query reads (the latest committed versions, or `at`, else the
    /// session's pin) into place and registers their providers when they changed. Returns the
    /// ticks version.
    async fn prepare(&self, tables: &mut Tables, at: Option<AsOf>) -> Result<u64, EngineError> {
        let pin = at.or(tables.pin);
        let (ticks, rejects) = match pin {
            None => {
                tables
                    .latest
                    .update_incremental(None)
                    .await
                    .map_err(|e| setup(format!("{}: {e}", self.ticks_url)))?;
                match &mut tables.latest_rejects {
                    Some(r) => r
                        .update_incremental(None)
                        .await
                        .map_err(|e| setup(format!("{}: {e}", self.rejects_url)))?,
                    None => {
                        if read::exists(&self.rejects_url).await.map_err(lake_err)? {
                            tables.latest_rejects = Some(
                                read::open(&self.rejects_url, None)
                                    .await
                                    .map_err(lake_err)?,
                            );
                        }
                    }
                }
                (tables.latest.clone(), tables.latest_rejects.clone())
            }
            Some(pin) => {
                self.load_pinned(tables, pin).await?;
                match &tables.pinned {
                    Some((_, t, r)) => (t.clone(), r.clone()),
                    None => return Err(setup("no pinned table (internal error)")),
                }
            }
        };
        let version = ticks.version().unwrap_or_default();
        let key = (version, rejects.as_ref().and_then(DeltaTable::version));
        if tables.registered != Some(key) {
            let ticks = provider(&self.ctx, &ticks)?;
            let rejects = rejects
                .as_ref()
                .map(|r| provider(&self.ctx, r))
                .transpose()?;
            for db in self.databases() {
                self.register(db, TABLE, Some(ticks.clone()))?;
                self.register(db, REJECTS_TABLE, rejects.clone())?;
            }
            tables.registered = Some(key);
        }
        tables.last = Some((ticks, pin));
        Ok(version)
    }

    /// The names the tables are registered under: [`DATABASE`], and the configured database.
    fn databases(&self) -> Vec<&str> {
        let mut out = vec![DATABASE];
        if self.database != DATABASE {
            out.push(&self.database);
        }
        out
    }

    /// Registers `provider` as `db.table` (None: removes the table of that name).
    fn register(
        &self,
        db: &str,
        table: &str,
        provider: Option<Arc<dyn datafusion::catalog::TableProvider>>,
    ) -> Result<(), EngineError> {
        let name = datafusion::common::TableReference::partial(db, table);
        // Registering does not replace a table of the same name.
        self.ctx.deregister_table(name.clone()).map_err(setup)?;
        if let Some(p) = provider {
            self.ctx.register_table(name, p).map_err(setup)?;
        }
        Ok(())
    }

    /// The configured database (the default schema).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement on the latest committed version (or the session's pin) and collects
    /// its rows.
    pub async fn query(&self, sql: &str) -> Result<QueryOutput, EngineError> {
        self.query_at(sql, None).await
    }

    /// Runs one statement on the tables as of `at` (None: the latest committed version, or the
    /// session's pin). The version read is in the result's `table_versions`.
    pub async fn query_at(&self, sql: &str, at: Option<AsOf>) -> Result<QueryOutput, EngineError> {
        let start = Instant::now();
        // Planning holds the lock, so the plan's files are those of the version prepared;
        // the rows stream without it.
        let (schema, stream, version) = {
            let mut tables = self.tables.lock().await;
            let version = self.prepare(&mut tables, at).await?;
            let df = self.ctx.sql(sql).await.map_err(query_err)?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let stream = df.execute_stream().await.map_err(query_err)?;
            (schema, stream, version)
        };
        let batches: Vec<_> = stream.try_collect().await.map_err(query_err)?;
        Ok(QueryOutput {
            schema,
            batches,
            info: QueryInfo {
                engine: ENGINE,
                elapsed: start.elapsed(),
                table_versions: Some(TableVersions::at(version)),
                ..Default::default()
            },
        })
    }

    /// Refreshes the tables to their latest committed versions (what every unpinned query does
    /// first) and returns the ticks version.
    pub async fn refresh(&self) -> Result<u64, EngineError> {
        let mut tables = self.tables.lock().await;
        let pin = tables.pin.take();
        let version = self.prepare(&mut tables, None).await;
        tables.pin = pin;
        version
    }

    /// The ticks table as the next query would read it now (the latest committed version, or
    /// the session's pin); see [`LocalEngine::lake_state`].
    pub async fn lake_state_now(&self) -> Result<super::lakestate::LakeState, EngineError> {
        {
            let mut tables = self.tables.lock().await;
            self.prepare(&mut tables, None).await?;
        }
        self.lake_state().await
    }

    /// The ticks table as the last query read it: version, commit time, files, rows, bytes and
    /// committed Kafka offsets.
    pub async fn lake_state(&self) -> Result<super::lakestate::LakeState, EngineError> {
        let (table, pin) = {
            let mut tables = self.tables.lock().await;
            if tables.last.is_none() {
                self.prepare(&mut tables, None).await?;
            }
            match &tables.last {
                Some(last) => last.clone(),
                None => return Err(setup("no table read yet (internal error)")),
            }
        };
        super::lakestate::read_state(self.lake.as_str(), &table, pin)
            .await
            .map_err(lake_err)
    }

    /// The DataFusion context (for registering more tables, or settings).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The lake root URL (ends with `/`).
    pub fn lake(&self) -> &Url {
        &self.lake
    }

    /// The lake's partition layout.
    pub fn layout(&self) -> &TableLayout {
        &self.layout
    }

    /// The columns of `ticks` (file columns, then partition columns).
    pub fn ticks_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Tables as (database, table) pairs, and the columns of a table.
    pub fn tables(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(catalog) = self.ctx.catalog("datafusion") else {
            return out;
        };
        for schema_name in catalog.schema_names() {
            if schema_name == "information_schema" {
                continue;
            }
            if let Some(schema) = catalog.schema(&schema_name) {
                for t in schema.table_names() {
                    out.push((schema_name.clone(), t));
                }
            }
        }
        out.sort();
        out
    }

    /// The schema of a table named `ticks`, `stocklake.ticks`, `<database>.ticks` or
    /// `datafusion.stocklake.ticks`.
    pub async fn table_schema(&self, name: &str) -> Result<SchemaRef, EngineError> {
        let provider = self.ctx.table_provider(name).await.map_err(query_err)?;
        Ok(provider.schema())
    }
}
