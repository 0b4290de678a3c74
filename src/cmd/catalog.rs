//! `stocklake catalog`: create or update the Glue database and table for the lake, add missing
//! partitions (`--repair`), or print the equivalent Athena DDL (`--ddl`).

use crate::Error;
use crate::aws::{open_lake, sdk_config};
use crate::catalog::{self, TableAction, TableSpec};
use crate::cli::CatalogArgs;
use crate::config::Settings;

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

/// A multi-thread Tokio runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))
}

pub fn run(settings: &Settings, args: &CatalogArgs, quiet: bool) -> Result<(), Error> {
    let lake_url = args
        .lake
        .clone()
        .unwrap_or_else(|| settings.lake.url.clone());
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| settings.athena.database.clone());
    runtime()?.block_on(async {
        let is_s3 = lake_url.starts_with("s3://") || lake_url.starts_with("s3a://");
        let config = if is_s3 || !args.ddl {
            Some(sdk_config().await)
        } else {
            None
        };
        let lake = open_lake(&lake_url, config.as_ref()).map_err(other)?;
        let layout = match catalog::read_layout(&lake).await {
            Ok(l) => l,
            Err(e) if args.ddl => {
                tracing::warn!("{e}; using the default layout (partitioned by symbol)");
                Default::default()
            }
            Err(e) => return Err(other(e)),
        };
        let spec = TableSpec::new(&database, &lake.url, layout);
        if args.ddl {
            print!("{}", spec.ddl());
            return Ok(());
        }
        let Some(config) = config else {
            return Err(Error::Other("no AWS configuration".into()));
        };
        let glue = aws_sdk_glue::Client::new(&config);
        if catalog::ensure_database(&glue, &database)
            .await
            .map_err(other)?
            && !quiet
        {
            eprintln!("created Glue database {database}");
        }
        let action = catalog::ensure_table(&glue, &spec).await.map_err(other)?;
        if !quiet {
            let what = match action {
                TableAction::Created => "created",
                TableAction::Updated => "updated",
                TableAction::Unchanged => "up to date:",
            };
            eprintln!(
                "{what} Glue table {database}.{} at {}",
                spec.table, spec.location
            );
        }
        if args.repair {
            let r = catalog::repair(&glue, &spec, &lake).await.map_err(other)?;
            if !quiet {
                eprintln!(
                    "partitions: {} in the lake, {} already in Glue, {} added",
                    r.in_lake, r.in_glue, r.added
                );
            }
        }
        Ok(())
    })
}
