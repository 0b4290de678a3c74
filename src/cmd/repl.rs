//! `stocklake repl`: the interactive shell (the loop itself lives in `crate::repl`).

use crate::Error;
use crate::cli::ReplArgs;
use crate::config::Settings;

pub fn run(settings: &Settings, args: &ReplArgs, quiet: bool) -> Result<(), Error> {
    let opts = crate::repl::ReplOptions {
        lake: super::sql::lake_url(settings, &args.query).to_string(),
        engine: args.query.engine,
        format: args.query.format,
        max_rows: args.query.maxrows,
        timing: !quiet,
        queries_dir: args
            .queries
            .clone()
            .or_else(crate::engine::queries::default_dir),
        history: args
            .history
            .clone()
            .or_else(crate::repl::default_history_path),
        athena: crate::engine::athena::AthenaSettings {
            quiet,
            ..crate::engine::athena::AthenaSettings::resolve(settings, &args.query.athena, None)
        },
        tolerance: args.query.tolerance.tolerance(),
    };
    crate::repl::run(opts)
}

/// The REPL on a lake with default settings (what `demo --repl` ends in).
pub fn run_on(lake: &str, quiet: bool) -> Result<(), Error> {
    use clap::Parser;
    let cli = crate::cli::Cli::try_parse_from(["stocklake", "repl", "--lake", lake])
        .map_err(|e| Error::Usage(e.to_string()))?;
    match cli.command {
        crate::cli::Command::Repl(args) => run(&Settings::default(), &args, quiet),
        _ => unreachable!("parsed a repl command line"),
    }
}
