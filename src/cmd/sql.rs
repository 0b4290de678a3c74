//! `stocklake sql`: run statements from -c, -f, folders of saved queries or stdin on the chosen
//! engine; results on stdout in the chosen format, timings on stderr. With `--watch`, one
//! statement re-run until Ctrl-C.

use std::io::{IsTerminal, Read, Write};

use crate::Error;
use crate::cli::SqlArgs;
use crate::engine::Engine;
use crate::engine::queries::SavedQuery;
use crate::engine::statements::{self, Statement};
use crate::script::{self, Show};
use crate::settings::{self, Settings};

/// Reads the statements the arguments name, in order: -c texts, -f files, then paths; stdin
/// when there are none.
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
    out.extend(script::queries_from_paths(&args.paths)?);
    if out.is_empty() {
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
            .map_err(Error::io("reading stdin"))?;
        out.push(SavedQuery {
            name: "<stdin>".into(),
            origin: "<stdin>".into(),
            description: String::new(),
            sql: text,
        });
    }
    Ok(out)
}

pub fn run(settings: &Settings, args: &SqlArgs, quiet: bool) -> Result<(), Error> {
    let sources = gather(args)?;
    let q = &args.query;
    let show = Show {
        format: q.format,
        max_rows: q.maxrows,
        timing: !quiet,
        tolerance: settings::tolerance(&q.tolerance),
        cancel: crate::signal::stop_flag(),
    };
    let as_of = settings::as_of(q)?;
    if args.watch.is_some() {
        crate::repl::watch::refuse_engine(q.engine, "--watch")?;
    }
    let titled = sources.len() > 1 && !quiet;
    let rt = super::runtime(None)?;
    rt.block_on(async {
        let engine = Engine::connect(
            q.engine,
            &settings.lake_url(q.lake.as_ref()),
            settings.athena(&q.athena),
            super::spinner(quiet),
        )
        .await?;
        engine.set_as_of(as_of).await?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if let Some(interval) = args.watch {
            return watch(&engine, &sources, interval, show, quiet, &mut out).await;
        }
        if let Engine::Both(local, athena) = &engine {
            return script::compare_all(local, athena, &sources, show, &mut out).await;
        }
        for q in &sources {
            if titled {
                out.flush().ok();
                eprintln!("== {}", q.origin);
            }
            script::run_text(&engine, &q.origin, &q.sql, show, &mut out).await?;
        }
        Ok(())
    })
}

/// `--watch`: the one statement of `sources` every `interval` until Ctrl-C.
async fn watch(
    engine: &Engine,
    sources: &[SavedQuery],
    interval: std::time::Duration,
    show: Show<'_>,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut found: Vec<(&str, Statement)> = sources
        .iter()
        .flat_map(|q| {
            statements::split(&q.sql)
                .into_iter()
                .map(move |s| (q.origin.as_str(), s))
        })
        .collect();
    let given = found.len();
    let (origin, stmt) = match found.pop() {
        Some(one) if given == 1 => one,
        _ => {
            return Err(Error::Usage(format!(
                "--watch re-runs one statement; {given} were given"
            )));
        }
    };
    let opts = crate::repl::watch::WatchOptions {
        interval,
        in_place: std::io::stdout().is_terminal(),
    };
    let refreshes = crate::repl::watch::watch(engine, origin, &stmt, opts, show, out).await?;
    if !quiet {
        eprintln!(
            "(watch stopped after {refreshes} refresh{})",
            if refreshes == 1 { "" } else { "es" }
        );
    }
    Ok(())
}
