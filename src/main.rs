//! The thin binary: parse the CLI, start logging, dispatch, map errors to an exit code.

use clap::Parser;
use stocklake::cli::{Cli, Command};
use stocklake::config::Settings;

fn main() {
    // A closed pipe (`stocklake sql … | head`) ends the program quietly, as in other CLI tools.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    stocklake::signal::install();
    let code = match run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            e.downcast_ref::<stocklake::Error>()
                .map_or(1, stocklake::Error::exit_code)
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref()).map_err(stocklake::Error::from)?;
    match &cli.command {
        Command::Produce(args) => stocklake::cmd::produce::run(&settings, args, cli.quiet)?,
        Command::Consume(args) => stocklake::cmd::consume::run(&settings, args, cli.quiet)?,
        Command::Demo(args) => stocklake::cmd::demo::run(args, cli.quiet)?,
        Command::Broker(args) => stocklake::cmd::broker::run(args)?,
        Command::Bench(args) => stocklake::cmd::bench::run(args)?,
        Command::Catalog(args) => stocklake::cmd::catalog::run(&settings, args, cli.quiet)?,
        Command::Sync(args) => stocklake::cmd::sync::run(args, cli.quiet)?,
        Command::Sql(args) => stocklake::cmd::sql::run(&settings, args, cli.quiet)?,
        Command::Repl(args) => stocklake::cmd::repl::run(&settings, args, cli.quiet)?,
        Command::Compare(args) => stocklake::cmd::compare::run(&settings, args)?,
    }
    Ok(())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
