//! The local engine: the lake registered as `stocklake.ticks` in an embedded DataFusion context,
//! with the partition columns declared from the lake's `table.json`, NULLs ordered as Athena
//! (Trino) orders them, and no cached file listing, so new files show up in the next query.

use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use url::Url;

use super::{EngineError, QueryInfo, QueryOutput};
use crate::lake::layout::{LAYOUT_FILE, TABLE_DIR};
use crate::lake::{TableLayout, lake_location};

/// The database (DataFusion schema) and table names, the same as the Glue catalog's.
pub const DATABASE: &str = "stocklake";
pub const TABLE: &str = "ticks";

const ENGINE: &str = "local";

/// A DataFusion session over one lake.
pub struct LocalEngine {
    ctx: SessionContext,
    lake: Url,
    layout: TableLayout,
    schema: SchemaRef,
    store: Arc<dyn object_store::ObjectStore>,
    prefix: object_store::path::Path,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
}

fn setup(message: impl std::fmt::Display) -> EngineError {
    EngineError::Setup {
        engine: ENGINE,
        message: message.to_string(),
    }
}

fn query_err(e: datafusion::error::DataFusionError) -> EngineError {
    EngineError::Query {
        engine: ENGINE,
        message: e.to_string(),
    }
}

impl LocalEngine {
    /// Opens the lake at `lake_url` (folder, `file://` or `s3://`) and registers its table.
    pub async fn open(lake_url: &str) -> Result<Self, EngineError> {
        Self::open_as_of(lake_url, None).await
    }

    /// Like [`LocalEngine::open`]; with `as_of`, the table holds only the files last modified
    /// at or before that moment (to see the lake as an Athena query that ran then saw it).
    pub async fn open_as_of(
        lake_url: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Self, EngineError> {
        let (prefix, lake) = lake_location(lake_url).map_err(setup)?;
        let store: Arc<dyn object_store::ObjectStore> = match lake.host_str() {
            // The S3 client of `consume` and `catalog`: aws-config's chain (environment,
            // profiles, SSO, instance roles) and its endpoint (AWS_ENDPOINT_URL).
            Some(bucket) if lake.scheme() != "file" => {
                crate::aws::s3_store(&crate::aws::sdk_config().await, bucket).map_err(setup)?
            }
            _ => Arc::new(object_store::local::LocalFileSystem::new()),
        };
        if let Ok(dir) = lake.to_file_path()
            && !dir.is_dir()
        {
            return Err(setup(format!(
                "lake folder {} does not exist (run `stocklake consume` first, or pass --lake)",
                dir.display()
            )));
        }
        let layout_path = prefix.clone().join("_stocklake").join("table.json");
        debug_assert_eq!(LAYOUT_FILE, "_stocklake/table.json");
        let layout = match store.get(&layout_path).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(setup)?;
                serde_json::from_slice::<TableLayout>(&bytes)
                    .map_err(|e| setup(format!("{lake}{LAYOUT_FILE}: {e}")))?
            }
            Err(object_store::Error::NotFound { .. }) => TableLayout::default(),
            Err(e) => return Err(setup(format!("{lake}{LAYOUT_FILE}: {e}"))),
        };

        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", DATABASE)
            .with_create_default_catalog_and_schema(true);
        // Trino puts NULLs last whatever the direction; DataFusion's default follows Postgres.
        config.options_mut().sql_parser.default_null_ordering = "nulls_last".into();
        // No list-files cache: its entries never expire, and new files must be seen.
        let runtime = RuntimeEnvBuilder::new()
            .with_object_list_cache_limit(0)
            .build_arc()
            .map_err(setup)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let table_store: Arc<dyn object_store::ObjectStore> = match as_of {
            Some(t) => Arc::new(super::lakestate::AsOfStore::new(store.clone(), t)),
            None => store.clone(),
        };
        if lake.scheme() != "file" || as_of.is_some() {
            let base =
                Url::parse(&format!("{}://{}", lake.scheme(), lake.authority())).map_err(setup)?;
            ctx.register_object_store(&base, table_store);
        }

        let table_url = ListingTableUrl::parse(format!("{lake}{TABLE_DIR}/")).map_err(setup)?;
        let partition_cols = layout
            .partition_by
            .iter()
            .map(|k| (k.column().to_string(), k.arrow_type()))
            .collect();
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let file_schema = crate::tick::file_schema(layout.symbol_in_file());
        let table_config = ListingTableConfig::new(table_url)
            .with_listing_options(options)
            .with_schema(file_schema);
        let table = ListingTable::try_new(table_config).map_err(setup)?;
        let schema = table.schema();
        ctx.register_table(format!("{DATABASE}.{TABLE}").as_str(), Arc::new(table))
            .map_err(setup)?;
        Ok(LocalEngine {
            ctx,
            lake,
            layout,
            schema,
            store,
            prefix,
            as_of,
        })
    }

    /// Runs one statement and collects its rows.
    pub async fn query(&self, sql: &str) -> Result<QueryOutput, EngineError> {
        let start = Instant::now();
        let df = self.ctx.sql(sql).await.map_err(query_err)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await.map_err(query_err)?;
        let batches: Vec<_> = stream.try_collect().await.map_err(query_err)?;
        Ok(QueryOutput {
            schema,
            batches,
            info: QueryInfo {
                engine: ENGINE,
                elapsed: start.elapsed(),
                ..Default::default()
            },
        })
    }

    /// The data files and committed offsets the engine sees now.
    pub async fn lake_state(&self) -> Result<super::lakestate::LakeState, EngineError> {
        super::lakestate::read_state(
            self.store.as_ref(),
            &self.prefix,
            self.lake.as_str(),
            self.as_of,
        )
        .await
        .map_err(setup)
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

    /// The columns of `stocklake.ticks` (file columns, then partition columns).
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

    /// The schema of a table named `ticks`, `stocklake.ticks` or `datafusion.stocklake.ticks`.
    pub async fn table_schema(&self, name: &str) -> Result<SchemaRef, EngineError> {
        let provider = self.ctx.table_provider(name).await.map_err(query_err)?;
        Ok(provider.schema())
    }
}
