//! `stocklake repl`: the interactive shell (the loop itself lives in `crate::repl`).

use crate::Error;
use crate::cli::ReplArgs;
use crate::settings::{self, Settings};

pub fn run(settings: &Settings, args: &ReplArgs, quiet: bool) -> Result<(), Error> {
    let q = &args.query;
    let opts = crate::repl::ReplOptions {
        lake: settings.lake_url(q.lake.as_ref()),
        engine: q.engine,
        format: q.format,
        max_rows: q.maxrows,
        timing: !quiet,
        queries_dir: settings::queries_dir(args.queries.as_ref()),
        history: settings::history_file(args.history.as_ref()),
        athena: settings.athena(&q.athena),
        tolerance: settings::tolerance(&q.tolerance),
        as_of: settings::as_of(q)?,
    };
    run_with(opts, quiet)
}

/// The shell with these options, Ctrl-C cancelling the running statement (`demo --repl` ends in
/// it too).
pub fn run_with(opts: crate::repl::ReplOptions, quiet: bool) -> Result<(), Error> {
    let rt = super::runtime(None)?;
    crate::repl::run(opts, &rt, super::spinner(quiet), crate::signal::stop_flag())
}

/// The shell on `lake` with every other option at its default (what `demo --repl` ends in).
pub fn run_on(lake: &str, quiet: bool) -> Result<(), Error> {
    let settings = Settings::default();
    let opts = crate::repl::ReplOptions {
        lake: lake.to_string(),
        engine: crate::engine::EngineKind::Local,
        format: crate::print::OutputFormat::default(),
        max_rows: None,
        timing: !quiet,
        queries_dir: settings::queries_dir(None),
        history: settings::history_file(None),
        athena: settings.athena(&crate::cli::AthenaArgs::default()),
        tolerance: crate::compare::Tolerance::default(),
        as_of: None,
    };
    run_with(opts, quiet)
}
