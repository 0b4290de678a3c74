//! The thin binary: parse the CLI, start logging, dispatch, map errors to an exit code.

use clap::Parser;
use stocklake::cli::{Cli, Command};
use stocklake::settings::Settings;
use stocklake::{Error, cmd};

fn main() {
    // A closed pipe (`stocklake sql … | head`) ends the program quietly, as in other CLI tools.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    stocklake::signal::install();
    let code = match run(&cli) {
        Ok(()) => stocklake::error::exit::OK,
        Err(e) => {
            eprintln!("error: {}", stocklake::report::chain(&e));
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> Result<(), Error> {
    let settings = Settings::load(cli.config.as_deref())?;
    stocklake::aws::set_s3_retry(settings.s3_retry(cli.s3_retry_timeout)?);
    let quiet = cli.quiet;
    match &cli.command {
        Command::Produce(args) => cmd::produce::run(&settings, args, quiet),
        Command::Consume(args) => cmd::consume::run(&settings, args, quiet),
        Command::Demo(args) => cmd::demo::run(args, quiet),
        Command::Broker(args) => cmd::broker::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Catalog(args) => cmd::catalog::run(&settings, args, quiet),
        Command::Compact(args) => cmd::compact::run(&settings, args, quiet),
        Command::Sync(args) => cmd::sync::run(args, quiet),
        Command::Sql(args) => cmd::sql::run(&settings, args, quiet),
        Command::Repl(args) => cmd::repl::run(&settings, args, quiet),
        Command::Compare(args) => cmd::compare::run(&settings, args),
        Command::Lake(args) => cmd::lake::run(&settings, args, quiet),
        Command::Status(args) => cmd::status::run(&settings, args, quiet),
        Command::Audit(args) => cmd::audit::run(&settings, args, quiet),
    }
}

/// Log lines on stderr: warnings by default, more with each -v; RUST_LOG overrides. The AWS
/// SDK's own warnings (credential and region probes, retries) show from -v on: by default a
/// failed AWS call is the one line of the error it ends with.
fn init_logging(verbose: u8, format: stocklake::cli::LogFormat) {
    let default = match verbose {
        0 => concat!(
            "warn,aws_config=error,aws_runtime=error,aws_types=error,aws_smithy_runtime=error,",
            "aws_smithy_runtime_api=error,aws_smithy_http_client=error,aws_sdk_athena=error,",
            "aws_sdk_glue=error,aws_sdk_sso=error,aws_sdk_ssooidc=error,aws_sdk_sts=error,",
            // rdkafka's BaseConsumer closes its queue again when dropped, after the consumer
            // closed it and left the group; librdkafka then sometimes answers "broker handle
            // destroyed", which rdkafka logs as an ERROR after a clean exit. (Its `log` records
            // reach tracing since deltalake's kernel turns on tracing-subscriber's tracing-log.)
            // Shown from -v on.
            "rdkafka::consumer::base_consumer=off,",
            // The Delta kernel logs each error it then returns, with a stack trace; the error
            // itself reaches the user once, through the command's error line.
            "buoyant_kernel=off,buoyant_kernel_engine=off,",
            // deltalake's commit loop logs its retries and the error it then returns (a commit
            // that failed on S3 printed the same S3 error three times); stocklake's own commit
            // says what it does about a failed commit.
            "deltalake_core::kernel::transaction=off"
        ),
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        stocklake::cli::LogFormat::Text => fmt.with_target(false).init(),
        stocklake::cli::LogFormat::Json => fmt.json().with_current_span(false).init(),
    }
}
