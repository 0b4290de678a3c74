//! Running SQL text the way `sql`, `repl` and `demo` do: split into statements, each run on the
//! chosen engine (or on both and compared), its result written to a writer in the chosen format
//! and its row count and time to stderr. Every statement can be cancelled through a flag.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::compare::{CompareError, Comparison, Tolerance, report, run};
use crate::engine::athena::AthenaEngine;
use crate::engine::queries::{self, SavedQuery};
use crate::engine::statements::{self, Statement};
use crate::engine::{Engine, LocalEngine, QueryOutput};
use crate::error::Error;
use crate::print::{OutputFormat, write_result};

/// How statements run and how their results are shown.
#[derive(Debug, Clone, Copy)]
pub struct Show<'a> {
    pub format: OutputFormat,
    pub max_rows: Option<usize>,
    /// Row counts and timings on stderr.
    pub timing: bool,
    /// Float tolerance when a statement runs on both engines.
    pub tolerance: Tolerance,
    /// Set (by Ctrl-C) to stop the running statement.
    pub cancel: &'a AtomicBool,
}

/// Runs one statement of `origin` and prints its result. Errors name the origin and statement.
pub async fn run_statement(
    engine: &Engine,
    origin: &str,
    stmt: &Statement,
    show: Show<'_>,
    out: &mut dyn Write,
) -> Result<QueryOutput, Error> {
    if let Engine::Both(local, athena) = engine {
        let what = format!("{origin} statement {}", stmt.index);
        return compare_statement(local, athena, &what, &stmt.text, show, out)
            .await
            .map(|(_, local)| local);
    }
    let result = engine
        .query(&stmt.text, show.cancel)
        .await
        .map_err(|source| Error::Statement {
            origin: origin.to_string(),
            index: stmt.index,
            line: stmt.line,
            snippet: stmt.snippet(),
            source,
        })?;
    show_result(&result, show, out)?;
    Ok(result)
}

/// Runs one statement on both engines, prints the comparison, and fails with
/// [`CompareError::Mismatch`] when the results disagree.
pub async fn compare_statement(
    local: &LocalEngine,
    athena: &AthenaEngine,
    what: &str,
    sql: &str,
    show: Show<'_>,
    out: &mut dyn Write,
) -> Result<(Comparison, QueryOutput), Error> {
    let (c, local_out) =
        run::run_both(local, athena, what, sql, show.tolerance, show.cancel).await?;
    write_comparisons(out, std::slice::from_ref(&c), show.format)?;
    Ok((c, local_out))
}

/// Writes comparison reports; fails with [`CompareError::Mismatch`] when any disagrees.
pub fn write_comparisons(
    out: &mut dyn Write,
    comparisons: &[Comparison],
    format: OutputFormat,
) -> Result<(), Error> {
    report::write(out, comparisons, format).map_err(Error::io("writing the comparison"))?;
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

/// Prints a result to `out`, and its row count and time to stderr when `show.timing`.
pub fn show_result(result: &QueryOutput, show: Show<'_>, out: &mut dyn Write) -> Result<(), Error> {
    let shown = write_result(
        out,
        &result.schema,
        &result.batches,
        show.format,
        show.max_rows,
    )?;
    if show.timing {
        let total = result.num_rows();
        let rows = if shown < total {
            format!("{shown} of {total} rows shown")
        } else {
            format!("{total} row{}", if total == 1 { "" } else { "s" })
        };
        let extra = match (result.info.bill, result.info.bytes_scanned) {
            (Some(bill), _) => format!(", {}", bill.summary()),
            (None, Some(bytes)) => format!(", {bytes} bytes scanned"),
            (None, None) => String::new(),
        };
        eprintln!(
            "({rows}, {:.1} ms, {}{extra})",
            result.info.elapsed.as_secs_f64() * 1000.0,
            result.info.engine
        );
    }
    Ok(())
}

/// Runs every statement of `text` (from `origin`), stopping at the first error; with the
/// `both` engine, each statement is compared and the first disagreement stops the run.
pub async fn run_text(
    engine: &Engine,
    origin: &str,
    text: &str,
    show: Show<'_>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    for stmt in statements::split(text) {
        run_statement(engine, origin, &stmt, show, out).await?;
    }
    Ok(())
}

/// Runs saved queries in order, each under a title line on stderr (unless `quiet`): what
/// `stocklake sql queries/` and `demo` do.
pub async fn run_saved_queries(
    engine: &Engine,
    saved: &[SavedQuery],
    show: Show<'_>,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    for q in saved {
        if !quiet {
            out.flush().ok();
            eprintln!("== {}: {}", q.name, q.description);
        }
        run_text(engine, &q.origin, &q.sql, show, out).await?;
    }
    Ok(())
}

/// `sql --engine both`: every statement on both engines, one report for all; then a mismatch
/// error when any disagree (a side that fails stops the run).
pub async fn compare_all(
    local: &LocalEngine,
    athena: &AthenaEngine,
    sources: &[SavedQuery],
    show: Show<'_>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut comparisons = Vec::new();
    for q in sources {
        let stmts = statements::split(&q.sql);
        for stmt in &stmts {
            let what = if stmts.len() == 1 {
                q.name.clone()
            } else {
                format!("{} statement {}", q.name, stmt.index)
            };
            let (c, _) = run::run_both(
                local,
                athena,
                &what,
                &stmt.text,
                show.tolerance,
                show.cancel,
            )
            .await?;
            comparisons.push(c);
        }
    }
    write_comparisons(out, &comparisons, show.format)
}

/// The saved queries that paths name: a `.sql` file each, or a folder's `.sql` files in file-name
/// order (an empty folder is a usage error). Shared by `sql` and `compare`.
pub fn queries_from_paths(paths: &[PathBuf]) -> Result<Vec<SavedQuery>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found = queries::from_dir(p)?;
            if found.is_empty() {
                return Err(Error::Usage(format!("{}: no .sql files", p.display())));
            }
            out.extend(found);
        } else {
            out.push(SavedQuery::from_file(Path::new(p))?);
        }
    }
    Ok(out)
}
