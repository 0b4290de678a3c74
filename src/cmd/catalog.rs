//! `stocklake catalog`: create or update the Glue database and table for the lake, add missing
//! partitions (`--repair`), or print the equivalent Athena DDL (`--ddl`).

use crate::Error;
use crate::aws::{open_lake, sdk_config};
use crate::catalog::{self, TableAction, TableSpec};
use crate::cli::CatalogArgs;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &CatalogArgs, quiet: bool) -> Result<(), Error> {
    let lake_url = settings.lake_url(args.lake.as_ref());
    let database = settings.database(args.database.as_ref());
    super::runtime(None)?.block_on(async {
        let is_s3 = lake_url.starts_with("s3://") || lake_url.starts_with("s3a://");
        let config = if is_s3 || !args.ddl {
            Some(sdk_config().await)
        } else {
            None
        };
        let lake = open_lake(&lake_url, config.as_ref())?;
        let layout = match catalog::read_layout(&lake).await {
            Ok(l) => l,
            Err(e) if args.ddl => {
                tracing::warn!(
                    "{}; using the default layout (partitioned by symbol)",
                    crate::report::chain(&e)
                );
                Default::default()
            }
            Err(e) => return Err(e.into()),
        };
        let spec = TableSpec::new(&database, &lake.url, layout);
        if args.ddl {
            print!("{}", spec.ddl());
            return Ok(());
        }
        let Some(config) = config else {
            unreachable!("the AWS configuration is loaded unless --ddl");
        };
        let glue = aws_sdk_glue::Client::new(&config);
        if catalog::ensure_database(&glue, &database).await? && !quiet {
            eprintln!("created Glue database {database}");
        }
        let action = catalog::ensure_table(&glue, &spec).await?;
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
            let r = catalog::repair(&glue, &spec, &lake).await?;
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
