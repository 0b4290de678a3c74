//! `stocklake sql`: run statements from -c, -f, folders of saved queries or stdin on the chosen
//! engine; results on stdout in the chosen format, timings on stderr.

use std::io::{IsTerminal, Read, Write};

use crate::Error;
use crate::cli::SqlArgs;
use crate::engine::Engine;
use crate::engine::queries::SavedQuery;
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
