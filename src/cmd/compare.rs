//! `stocklake compare`: each query of the given files and folders on the local engine, against
//! its saved Athena result; one report per query, exit 0 / 1 (mismatch) / 2 (a side failed).

use crate::Error;
use crate::cli::CompareArgs;
use crate::compare::offline::Against;
use crate::compare::{CompareError, report, run};
use crate::config::Settings;
use crate::engine::statements;

pub fn run(settings: &Settings, args: &CompareArgs) -> Result<(), Error> {
    let saved = super::sql::queries_from_paths(&args.paths)?;
    let against = Against::open(&args.against).map_err(CompareError::from)?;
    let lake = args.lake.as_deref().unwrap_or(&settings.lake.url);
    let tol = args.tolerance.tolerance();
    let rt = super::sql::runtime()?;
    let mut comparisons = Vec::new();
    let mut failures = Vec::new();
    rt.block_on(async {
        for q in &saved {
            // The query's last statement is the one whose result was saved.
            let Some(stmt) = statements::split(&q.sql).pop() else {
                continue;
            };
            match run::against_saved(lake, &against, &q.name, &stmt.text, args.as_of, tol).await {
                Ok(c) => comparisons.push(c),
                Err(e) => {
                    eprintln!("error: {e}");
                    failures.push(e);
                }
            }
        }
    });
    let stdout = std::io::stdout();
    report::write(&mut stdout.lock(), &comparisons, args.format)
        .map_err(|e| Error::Other(format!("writing the report: {e}")))?;
    if let Some(e) = failures.into_iter().next() {
        return Err(e.into());
    }
    let mismatched = comparisons.iter().filter(|c| !c.agree).count();
    if mismatched > 0 {
        return Err(CompareError::Mismatch {
            mismatched,
            total: comparisons.len(),
        }
        .into());
    }
    Ok(())
}
