//! `stocklake catalog`: create or update the Glue database and a Glue table per Delta table of
//! the lake (`ticks`, and `rejects` when present) in the form Athena's Delta Lake support reads,
//! or print the equivalent Athena DDL (`--ddl`). `--repair` is a no-op kept for old scripts:
//! Athena reads partitions from the Delta log.

use crate::Error;
use crate::catalog::{self, TableAction};
use crate::cli::CatalogArgs;
use crate::lake::delta::describe_table;
use crate::lake::delta::read::table_url;
use crate::lake::layout::{REJECTS_TABLE_DIR, TABLE_DIR};
use crate::settings::Settings;

/// Why `--repair` and `consume --register-partitions` do nothing any more.
pub const NO_PARTITIONS: &str = "Athena reads a Delta table's partitions from its _delta_log, \
                                 so there are no Glue partitions to register";

pub fn run(settings: &Settings, args: &CatalogArgs, quiet: bool) -> Result<(), Error> {
    let lake_url = settings.lake_url(args.lake.as_ref());
    let database = settings.database(args.database.as_ref());
    if args.repair {
        tracing::warn!("--repair does nothing: {NO_PARTITIONS}");
    }
    super::runtime(None)?.block_on(async {
        if args.ddl {
            // The DDL needs only the locations; the rejects table only when the lake has one.
            let ticks = table_url(&lake_url, TABLE_DIR)?.to_string();
            let rejects_url = table_url(&lake_url, REJECTS_TABLE_DIR)?;
            let rejects = match describe_table(&rejects_url).await {
                Ok(found) => found.map(|_| rejects_url.to_string()),
                Err(e) => {
                    tracing::warn!(
                        "{}; leaving the rejects table out",
                        crate::report::chain(&e)
                    );
                    None
                }
            };
            let mut tables = vec![(TABLE_DIR, ticks.as_str())];
            if let Some(r) = &rejects {
                tables.push((REJECTS_TABLE_DIR, r.as_str()));
            }
            print!("{}", catalog::ddl(&database, &tables));
            return Ok(());
        }
        let specs = catalog::lake_tables(&database, &lake_url).await?;
        let config = crate::aws::sdk_config().await;
        let glue = aws_sdk_glue::Client::new(&config);
        if catalog::ensure_database(&glue, &database).await? && !quiet {
            eprintln!("created Glue database {database}");
        }
        for spec in &specs {
            let action = catalog::ensure_table(&glue, spec).await?;
            if quiet {
                continue;
            }
            let what = match action {
                TableAction::Created => "created".to_string(),
                TableAction::Updated => "updated".to_string(),
                TableAction::Converted { removed_partitions } => format!(
                    "converted to Delta ({removed_partitions} Glue partitions of the old table \
                     deleted):"
                ),
                TableAction::Unchanged => "up to date:".to_string(),
            };
            eprintln!(
                "{what} Glue table {database}.{} (Delta Lake, version {}) at {}",
                spec.table, spec.version, spec.location
            );
        }
        Ok(())
    })
}
