//! `stocklake compare`: each query of the given files and folders on the local engine, against
//! its saved Athena result; one report per query, exit 0 (all agree) or 1 (a mismatch, or a side
//! that could not run).

use crate::Error;
use crate::cli::CompareArgs;
use crate::compare::offline::Against;
use crate::compare::{CompareError, run};
use crate::engine::statements;
use crate::script;
use crate::settings::{self, Settings};

pub fn run(settings: &Settings, args: &CompareArgs) -> Result<(), Error> {
    let saved = script::queries_from_paths(&args.paths)?;
    let against = Against::open(&args.against).map_err(CompareError::from)?;
    let lake = settings.lake_url(args.lake.as_ref());
    let database = settings.database(args.database.as_ref());
    let tol = settings::tolerance(&args.tolerance);
    let cancel = crate::signal::stop_flag();
    let rt = super::runtime(None)?;
    let mut comparisons = Vec::new();
    let mut failures = 0;
    rt.block_on(async {
        for q in &saved {
            // The query's last statement is the one whose result was saved.
            let Some(stmt) = statements::split(&q.sql).pop() else {
                continue;
            };
            let local = run::Offline {
                lake: &lake,
                database: &database,
                as_of: args.as_of,
            };
            let c = run::against_saved_in(&local, &against, &q.name, &stmt.text, tol, cancel);
            match c.await {
                Ok(c) => comparisons.push(c),
                Err(e) => {
                    eprintln!("error: {}", crate::report::chain(&e));
                    failures += 1;
                }
            }
        }
    });
    let stdout = std::io::stdout();
    let written = script::write_comparisons(&mut stdout.lock(), &comparisons, args.format);
    if failures > 0 {
        return Err(CompareError::Incomplete {
            failed: failures,
            total: saved.len(),
        }
        .into());
    }
    written
}
