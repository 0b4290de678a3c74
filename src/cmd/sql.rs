//! `stocklake sql`: run statements from -c, -f, folders of saved queries or stdin on the chosen
//! engine; results on stdout in the chosen format, timings on stderr. Also the pieces `repl` and
//! `demo` share: the runtime, cancellable statements, running every saved query.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::Error;
use crate::cli::{QueryArgs, SqlArgs};
use crate::config::Settings;
use crate::engine::athena::AthenaSettings;
use crate::engine::queries::{self, SavedQuery};
use crate::engine::statements::{self, Statement};
use crate::engine::{Engine, EngineError, QueryOutput};
use crate::print::{OutputFormat, write_result};

/// One piece of SQL text and where it came from (`-c`, a file name, `<stdin>`).
#[derive(Debug, Clone)]
pub struct SqlSource {
    pub origin: String,
    pub text: String,
}

/// How results are shown.
#[derive(Debug, Clone, Copy)]
pub struct ShowOptions {
    pub format: OutputFormat,
    pub max_rows: Option<usize>,
    /// Row counts and timings on stderr.
    pub timing: bool,
}

/// The tokio runtime the query commands run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("starting the async runtime: {e}")))
}

/// The lake URL: the flag, else the settings file.
pub fn lake_url<'a>(settings: &'a Settings, args: &'a QueryArgs) -> &'a str {
    args.lake.as_deref().unwrap_or(&settings.lake.url)
}

/// Runs a statement until it finishes or Ctrl-C (the process-wide stop flag) cancels it.
pub async fn query_cancellable(engine: &Engine, sql: &str) -> Result<QueryOutput, EngineError> {
    let engine_name = match engine.kind() {
        crate::engine::EngineKind::Local => "local",
        crate::engine::EngineKind::Athena => "athena",
        crate::engine::EngineKind::Both => "both",
    };
    let stop = async {
        while !crate::signal::stop_flag().load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::select! {
        result = engine.query(sql) => result,
        () = stop => Err(EngineError::Cancelled { engine: engine_name }),
    }
}

/// Runs one statement and prints its result. Errors carry the origin and statement.
pub async fn run_statement(
    engine: &Engine,
    origin: &str,
    stmt: &Statement,
    show: ShowOptions,
    out: &mut dyn Write,
) -> Result<QueryOutput, Error> {
    if let Engine::Both(local, athena) = engine {
        let what = format!("{origin} statement {}", stmt.index);
        let tol = crate::compare::Tolerance::default();
        return compare_statement(local, athena, &what, &stmt.text, tol, show.format, out)
            .await
            .map(|(_, local)| local);
    }
    let result = query_cancellable(engine, &stmt.text)
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
/// [`crate::compare::CompareError::Mismatch`] when the results disagree.
pub async fn compare_statement(
    local: &crate::engine::LocalEngine,
    athena: &crate::engine::athena::AthenaEngine,
    what: &str,
    sql: &str,
    tol: crate::compare::Tolerance,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(crate::compare::Comparison, QueryOutput), Error> {
    let (c, local_out) = crate::compare::run::run_both(local, athena, what, sql, tol).await?;
    crate::compare::report::write(out, std::slice::from_ref(&c), format)
        .map_err(|e| Error::Other(format!("writing the comparison: {e}")))?;
    if !c.agree {
        return Err(crate::compare::CompareError::Mismatch {
            mismatched: 1,
            total: 1,
        }
        .into());
    }
    Ok((c, local_out))
}

/// Prints a result to `out`, and its row count and time to stderr when `show.timing`.
pub fn show_result(
    result: &QueryOutput,
    show: ShowOptions,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let shown = write_result(
        out,
        &result.schema,
        &result.batches,
        show.format,
        show.max_rows,
    )
    .map_err(|e| Error::Other(e.to_string()))?;
    if show.timing {
        let total = result.num_rows();
        let rows = if shown < total {
            format!("{shown} of {total} rows shown")
        } else {
            format!("{total} row{}", if total == 1 { "" } else { "s" })
        };
        let mut extra = String::new();
        if let Some(bytes) = result.info.bytes_scanned {
            extra = format!(", {bytes} bytes scanned");
        }
        eprintln!(
            "({rows}, {:.1} ms, {}{extra})",
            result.info.elapsed.as_secs_f64() * 1000.0,
            result.info.engine
        );
    }
    Ok(())
}

/// Runs every statement of `source`, stopping at the first error.
pub async fn run_source(
    engine: &Engine,
    source: &SqlSource,
    show: ShowOptions,
    out: &mut dyn Write,
) -> Result<(), Error> {
    for stmt in statements::split(&source.text) {
        run_statement(engine, &source.origin, &stmt, show, out).await?;
    }
    Ok(())
}

/// Runs saved queries in order, each under a title line on stderr (unless `quiet`): what
/// `stocklake sql queries/` and `demo` do.
pub async fn run_saved_queries(
    engine: &Engine,
    saved: &[SavedQuery],
    show: ShowOptions,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    for q in saved {
        if !quiet {
            out.flush().ok();
            eprintln!("== {}: {}", q.name, q.description);
        }
        run_source(
            engine,
            &SqlSource {
                origin: q.origin.clone(),
                text: q.sql.clone(),
            },
            show,
            out,
        )
        .await?;
    }
    Ok(())
}

/// `sql --engine both`: every statement on both engines, one comparison each; then exit 1 when
/// any disagree (a side that fails stops the run: exit 2).
async fn compare_sources(
    local: &crate::engine::LocalEngine,
    athena: &crate::engine::athena::AthenaEngine,
    sources: &[SavedQuery],
    tol: crate::compare::Tolerance,
    format: OutputFormat,
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
            let (c, _) =
                crate::compare::run::run_both(local, athena, &what, &stmt.text, tol).await?;
            comparisons.push(c);
        }
    }
    crate::compare::report::write(out, &comparisons, format)
        .map_err(|e| Error::Other(format!("writing the comparison: {e}")))?;
    let mismatched = comparisons.iter().filter(|c| !c.agree).count();
    if mismatched > 0 {
        return Err(crate::compare::CompareError::Mismatch {
            mismatched,
            total: comparisons.len(),
        }
        .into());
    }
    Ok(())
}

/// Reads the statements the arguments name, in order: -c texts, -f files, then paths.
fn gather(args: &SqlArgs) -> Result<Vec<SavedQuery>, Error> {
    let mut out = Vec::new();
    for (i, c) in args.commands.iter().enumerate() {
        let origin = if args.commands.len() > 1 {
            format!("-c #{}", i + 1)
        } else {
            "-c".to_string()
        };
        out.push(SavedQuery {
            name: origin.clone(),
            origin,
            description: String::new(),
            sql: c.clone(),
        });
    }
    for f in &args.files {
        out.push(SavedQuery::from_file(f)?);
    }
    out.extend(queries_from_paths(&args.paths)?);
    Ok(out)
}

/// The saved queries that paths name: a `.sql` file each, or a folder's `.sql` files in file-name
/// order (an empty folder is a usage error). Shared by `sql` and `compare`.
pub fn queries_from_paths(paths: &[std::path::PathBuf]) -> Result<Vec<SavedQuery>, Error> {
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

pub fn run(settings: &Settings, args: &SqlArgs, quiet: bool) -> Result<(), Error> {
    let mut sources = gather(args)?;
    if sources.is_empty() {
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(Error::Usage(
                "nothing to run: give -c SQL, -f FILE, a folder of .sql files, or SQL on stdin (or use `stocklake repl`)"
                    .into(),
            ));
        }
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|e| Error::Other(format!("reading stdin: {e}")))?;
        sources.push(SavedQuery {
            name: "<stdin>".into(),
            origin: "<stdin>".into(),
            description: String::new(),
            sql: text,
        });
    }
    let show = ShowOptions {
        format: args.query.format,
        max_rows: args.query.maxrows,
        timing: !quiet,
    };
    let titled = sources.len() > 1 && !quiet;
    let rt = runtime()?;
    rt.block_on(async {
        let athena = AthenaSettings {
            quiet,
            ..AthenaSettings::resolve(settings, &args.query.athena, None)
        };
        let engine =
            Engine::connect_with(args.query.engine, lake_url(settings, &args.query), athena)
                .await?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if let Engine::Both(local, athena) = &engine {
            let tol = args.query.tolerance.tolerance();
            return compare_sources(local, athena, &sources, tol, show.format, &mut out).await;
        }
        for q in &sources {
            if titled {
                out.flush().ok();
                eprintln!("== {}", q.origin);
            }
            let source = SqlSource {
                origin: q.origin.clone(),
                text: q.sql.clone(),
            };
            run_source(&engine, &source, show, &mut out).await?;
        }
        Ok(())
    })
}
