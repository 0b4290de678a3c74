//! The command line (clap derive). Every flag has its help text here; settings that also live in
//! `stocklake.toml` are `Option`s so that a flag overrides the file, which overrides defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::settings::defaults;
use crate::source::{Layout, OnError};

/// The flags of `status` and `audit`: `cli/report.rs`.
mod report;
pub use report::{AuditArgs, ReportFormat, StatusArgs};

/// Shown at the end of `stocklake --help`.
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (compare: every result agrees)
  1  failure (compare, sql --engine both: a result disagrees or a side failed)
  2  usage error: a bad flag or value, an unreadable settings file, nothing to run, or sync
     into a folder it did not create without --force

Settings: flags win over STOCKLAKE_* environment variables, which win over ./stocklake.toml
(or --config FILE), which wins over the built-in defaults.";

/// Shown at the end of `stocklake sql --help`.
const SQL_EXAMPLES: &str = "\
Examples:
  stocklake sql -c \"SELECT symbol, count(*) FROM ticks GROUP BY 1\"
  stocklake sql queries/ --engine both
  stocklake sql --watch 1s -c \"SELECT symbol, max(event_time), count(*) FROM ticks GROUP BY 1\"
      (runs it every second, e.g. while `stocklake consume` writes, until Ctrl-C)";

#[derive(Debug, Parser)]
#[command(
    name = "stocklake",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_STATUS_HELP
)]
pub struct Cli {
    /// Settings file (TOML). Default: ./stocklake.toml when it exists.
    #[arg(long, global = true, env = "STOCKLAKE_CONFIG")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Quiet: no progress bars or timings, only data and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log lines on stderr as text, or as one JSON object per line (for services).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "STOCKLAKE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// How long a failing S3 request (5xx, SlowDown, dropped connection) is retried with
    /// back-off before the command fails (default 2m; also `[lake] s3_retry_timeout`).
    #[arg(long, global = true, hide = true, value_parser = humantime::parse_duration, env = "STOCKLAKE_S3_RETRY_TIMEOUT")]
    pub s3_retry_timeout: Option<std::time::Duration>,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Shown at the end of `stocklake produce --help`.
const PRODUCE_HELP: &str = "\
Examples:
  stocklake produce data/stocks.csv --brokers localhost:9092 --topic ticks --delay 1s
  stocklake produce data/*.csv --replay-speed 86400 --metrics 127.0.0.1:9465
  stocklake produce --synthetic --symbols 500 --rows 10000000";

/// Shown at the end of `stocklake consume --help`.
const CONSUME_HELP: &str = "\
Examples:
  stocklake consume --brokers localhost:9092 --topic ticks --lake s3://my-bucket/stocklake
  stocklake consume --lake ./lake --flush-interval 500ms --compact-every 1h --metrics 127.0.0.1:9464
  stocklake consume --lake ./lake --exit-when-idle 2s --log-format json";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish stock ticks from CSV files or the synthetic generator to a Kafka topic.
    #[command(after_help = PRODUCE_HELP)]
    Produce(ProduceArgs),
    /// Write the Kafka topic into a Parquet lake (local folder or S3), exactly once.
    #[command(after_help = CONSUME_HELP)]
    Consume(ConsumeArgs),
    /// The whole path on this machine, nothing installed: an embedded broker, the sample data
    /// produced flat out, consumed into a local lake, every saved query run on it.
    Demo(DemoArgs),
    /// Run an embedded Kafka-protocol broker (librdkafka's mock cluster) for local work.
    ///
    /// The broker lives in this process and in memory only: stop it and the data is gone.
    /// librdkafka-based clients (stocklake, confluent-kafka-python, kcat) work with it; the
    /// Java client is not supported. Each partition keeps at most 5 MiB or 100,000 batches and
    /// silently drops the oldest beyond that: use it for demos and tests, not for storage.
    Broker(BrokerArgs),
    /// Print throughput figures of a release build (see README: Benchmarks).
    Bench(BenchArgs),
    /// Register the lake's Delta tables (ticks, and rejects when present) in Glue the way
    /// Athena's Delta Lake support reads them (table_type DELTA, no partitions to register), or
    /// print the equivalent Athena DDL (--ddl).
    Catalog(CatalogArgs),
    /// Bin-pack the lake's small files (each partition's, of the ticks and rejects tables) into
    /// files of --target-size, then delete files no longer referenced after --retain, staging
    /// files of killed writes, and expired log entries. Safe while consumers write: every reader
    /// sees each row once, before, during and after; two compactions never both commit.
    Compact(CompactArgs),
    /// Mirror an S3 lake into a local folder, incrementally (new and changed objects by size
    /// and ETag; objects deleted upstream are removed). Safe to interrupt and rerun: data files
    /// are copied before the Delta log entries that name them, so an interrupted mirror is the
    /// table at an older version.
    Sync(SyncArgs),
    /// Run SQL against the lake (its latest committed version, or --as-of): -c text, -f files,
    /// folders of .sql files, or stdin.
    #[command(after_help = SQL_EXAMPLES)]
    Sql(SqlArgs),
    /// Interactive SQL shell over the lake (multi-line statements end at `;`, `\?` for help).
    Repl(ReplArgs),
    /// Run queries on the local engine, at the table version each saved Athena result recorded,
    /// and compare the results with them (offline). Exit status 0 when all agree, 1 when any
    /// disagrees or a side could not run.
    Compare(CompareArgs),
    /// Maintenance of a lake: `lake upgrade` converts a lake written by stocklake 0.1.
    Lake(LakeArgs),
    /// What the lake holds now: per table its version, files, rows, bytes, small files and last
    /// commit; per Kafka partition the lake's committed offset and, with --brokers, the
    /// topic's watermarks, the group's committed offset and the lag.
    #[command(after_help = report::STATUS_HELP, mut_arg("brokers", report::brokers_help), mut_arg("topic", report::topic_help))]
    Status(StatusArgs),
    /// Prove that the lake holds every Kafka offset exactly once: from the first offset it holds
    /// to its committed offset, each offset is once in the ticks or the rejects table. Lists
    /// every gap and duplicate range; exit status 1 if there is any.
    #[command(after_help = report::AUDIT_HELP, mut_arg("brokers", report::brokers_help), mut_arg("topic", report::topic_help))]
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct LakeArgs {
    #[command(subcommand)]
    pub what: LakeWhat,
}

#[derive(Debug, Subcommand)]
pub enum LakeWhat {
    /// Convert, in place, a lake written by stocklake 0.1 (Parquet files and _stocklake/offsets
    /// records) into the Delta tables ticks/ and rejects/.
    ///
    /// Stop every consumer of the lake first, and start consumers of this version only after the
    /// upgrade reported success (nothing can tell whether a consumer is running). A batch that
    /// was being written is rolled back first; every committed data file is recorded in one
    /// Delta commit where it lies (no data is copied), with the committed Kafka offsets as `txn`
    /// versions, so consumers continue where they were; quarantined events become rows of the
    /// rejects table. Then _stocklake/ and _rejects/ are removed. An interrupted upgrade is
    /// finished by running it again; on a lake that is a Delta lake already it changes nothing.
    Upgrade(UpgradeArgs),
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The lake: a folder, file:// URL or s3://bucket/prefix. Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,
}

/// Which lake, which engine, and how results look.
#[derive(Debug, Args, Clone)]
pub struct QueryArgs {
    /// Lake root: a folder, file:// or s3://bucket/prefix URL. Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    /// Engine that runs the statements.
    #[arg(long, value_enum, default_value_t = crate::engine::EngineKind::Local, env = "STOCKLAKE_ENGINE")]
    pub engine: crate::engine::EngineKind,

    /// Output format of results.
    #[arg(long, value_enum, default_value_t = crate::print::OutputFormat::Table)]
    pub format: crate::print::OutputFormat,

    /// Print at most this many rows of each result.
    #[arg(long)]
    pub maxrows: Option<usize>,

    /// Read this version of the lake's Delta tables instead of the latest: a table version
    /// (42) or a time (RFC 3339, e.g. 2026-01-15T09:30:00Z, or a date: the last version
    /// committed then). Local engine only (Athena cannot time travel). Default: every
    /// statement reads the latest committed version at its start.
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<crate::lake::delta::read::AsOf>,

    #[command(flatten)]
    pub athena: AthenaArgs,

    #[command(flatten)]
    pub tolerance: ToleranceArgs,
}

/// When two floats agree: |a - b| <= abs-tol, or |a - b| <= rel-tol × max(|a|, |b|).
#[derive(Debug, Args, Clone)]
pub struct ToleranceArgs {
    /// Relative float tolerance of comparisons (agreement to about 9 significant digits by
    /// default, room for sums taken in another order).
    #[arg(long, default_value_t = defaults::REL_TOL, value_name = "REL")]
    pub rel_tol: f64,

    /// Absolute float tolerance of comparisons (for values near zero).
    #[arg(long, default_value_t = defaults::ABS_TOL, value_name = "ABS")]
    pub abs_tol: f64,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// .sql files, or folders whose .sql files are compared in file-name order (e.g. queries/).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Saved Athena results: a folder (stocklake's own store, or <query id>.csv files with their
    /// .metadata downloaded from an Athena output location) or one result CSV file. A query
    /// finds its result by SQL text, else by file name (<query name>.csv).
    #[arg(long, default_value = defaults::SAVED_RESULTS_DIR)]
    pub against: PathBuf,

    /// Which version of the lake's Delta table the local engine reads: `saved` (the version
    /// each saved result recorded while its Athena query ran, the later one if the table moved
    /// meanwhile; the latest version for results that record none), `now` (the latest), a
    /// table version (42) or a time (RFC 3339, e.g. 2026-01-15T09:30:00Z: the last version
    /// committed then).
    #[arg(long, value_name = "saved|now|VERSION|TIME", default_value = defaults::COMPARE_AS_OF)]
    pub as_of: crate::compare::run::AsOf,

    /// Lake root: a folder, file:// or s3://bucket/prefix URL. Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    /// Glue database whose name the local engine gives the lake's tables (besides stocklake),
    /// for saved results that do not record the database their query ran in. Default: the
    /// settings file's [athena] database, else stocklake.
    #[arg(long, env = "STOCKLAKE_DATABASE")]
    pub database: Option<String>,

    /// Report format: table (text for people), json or ndjson (for machines).
    #[arg(long, value_enum, default_value_t = crate::print::OutputFormat::Table)]
    pub format: crate::print::OutputFormat,

    #[command(flatten)]
    pub tolerance: ToleranceArgs,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// .sql files, or folders whose .sql files run in file-name order (e.g. queries/).
    pub paths: Vec<PathBuf>,

    /// SQL text to run (repeatable; several statements separated by `;`).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub commands: Vec<String>,

    /// A .sql file to run (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub query: QueryArgs,

    /// Re-run the statement every INTERVAL (1s, 500ms, or seconds: 2) until Ctrl-C (then exit
    /// 0), each result under a header line: the time, the table version read and the rows
    /// changed since the last refresh. On a terminal each refresh replaces the last. One
    /// statement, local engine only (each Athena run is billed).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub watch: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub query: QueryArgs,

    /// Folder of saved queries for \queries and \run NAME. Default: ./queries when it exists,
    /// else the queries built into stocklake.
    #[arg(long, env = "STOCKLAKE_QUERIES")]
    pub queries: Option<PathBuf>,

    /// History file. Default: ~/.stocklake_history.
    #[arg(long, env = "STOCKLAKE_HISTORY")]
    pub history: Option<PathBuf>,
}

/// Where the Kafka cluster is, and librdkafka properties to pass through.
#[derive(Debug, Args, Clone, Default)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers. Default: localhost:9092.
    #[arg(long, short = 'b', env = "STOCKLAKE_BROKERS")]
    pub brokers: Option<String>,

    /// Topic name. Default: ticks.
    #[arg(long, short = 't', env = "STOCKLAKE_TOPIC")]
    pub topic: Option<String>,

    /// Any librdkafka property, e.g. -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512
    /// (repeatable; overrides stocklake's defaults and the settings file). librdkafka's debug
    /// lines (-X debug=cgrp,fetch) show with -vv.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// CSV files to replay (layout detected from the header). Rows of all files are replayed
    /// together in event-time order, then symbol, streamed in bounded memory: files already in
    /// that order are merged as they are read, others are sorted in temporary files (TMPDIR).
    #[arg(required_unless_present = "synthetic", conflicts_with = "synthetic")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Force a CSV layout instead of detecting it from the header.
    #[arg(long, value_enum)]
    pub layout: Option<Layout>,

    /// Symbol for files without a symbol column (default: the file name, e.g. AAPL.csv).
    #[arg(long)]
    pub symbol: Option<String>,

    /// What a malformed row does: `fail` stops before anything is sent, `skip` sends the good
    /// rows and reports the skipped ones.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    pub on_error: OnError,

    /// Wait this long between events (e.g. 1s, 250ms): the original tutorial's pacing.
    #[arg(long, value_parser = humantime::parse_duration, group = "pace")]
    pub delay: Option<Duration>,

    /// Send this many events per second.
    #[arg(long, group = "pace")]
    pub rate: Option<f64>,

    /// Replay event time this many times faster than real time (86400: a day per second).
    #[arg(long, group = "pace")]
    pub replay_speed: Option<f64>,

    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,

    /// Replay the files again and again (event times move forward each pass) until Ctrl-C
    /// or --limit.
    #[arg(long = "loop")]
    pub looping: bool,

    /// Send each file's rows in the order they are in the file, file after file, instead of
    /// merging all files into event-time order (no sorting, no temporary files).
    #[arg(long, conflicts_with = "synthetic")]
    pub file_order: bool,

    /// Rows per sorted run of the external sort (tests force tiny runs).
    #[arg(long, hide = true, default_value_t = defaults::SORT_RUN_ROWS)]
    pub sort_run_rows: usize,

    /// Most files or runs read at once (tests force a multi-level merge).
    #[arg(long, hide = true, default_value_t = defaults::MAX_OPEN_FILES)]
    pub max_open_files: usize,

    /// Generate synthetic ticks instead of reading files.
    #[arg(long)]
    pub synthetic: bool,

    /// Synthetic: number of symbols.
    #[arg(long, default_value_t = defaults::SYNTHETIC_SYMBOLS, requires = "synthetic")]
    pub symbols: usize,

    /// Synthetic: total number of events.
    #[arg(long, default_value_t = defaults::SYNTHETIC_ROWS, requires = "synthetic")]
    pub rows: u64,

    /// Synthetic: random seed (the same seed gives the same stream).
    #[arg(long, default_value_t = defaults::SYNTHETIC_SEED, requires = "synthetic")]
    pub seed: u64,

    /// Synthetic: bar interval (1d: one bar per weekday; less: bars through the US session).
    #[arg(long, value_parser = humantime::parse_duration, default_value = defaults::SYNTHETIC_INTERVAL, requires = "synthetic")]
    pub interval: Duration,

    /// Synthetic: date of the first bar (YYYY-MM-DD).
    #[arg(long, default_value = defaults::SYNTHETIC_START, requires = "synthetic")]
    pub start: String,

    /// Serve Prometheus metrics (events sent, acknowledged, failed) on this address
    /// (e.g. 127.0.0.1:9465): GET /metrics, GET /healthz.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group. Default: stocklake.
    #[arg(long, short = 'g', env = "STOCKLAKE_GROUP")]
    pub group: Option<String>,

    /// The lake: a folder, file:// URL or s3://bucket/prefix. Default: ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    /// Partition columns, in directory order (a new lake only; an existing one keeps its own).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub partition_by: Vec<crate::lake::PartitionKey>,

    /// Close a batch at this many events.
    #[arg(long, default_value_t = defaults::FLUSH_ROWS)]
    pub flush_rows: usize,

    /// Close a batch when its events' payloads reach this many bytes.
    #[arg(long, default_value_t = defaults::FLUSH_BYTES)]
    pub flush_bytes: usize,

    /// Close a batch when its oldest event has waited this long (e.g. 5s, 500ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = defaults::FLUSH_INTERVAL)]
    pub flush_interval: Duration,

    /// Events larger than this many bytes are quarantined as oversized.
    #[arg(long, default_value_t = defaults::MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// Stop after a last flush when no event arrived for this long and every assigned partition
    /// was read to its end (batch jobs, tests).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub exit_when_idle: Option<Duration>,

    /// Stop after this many events were read: committed as rows or rejects, or found already in
    /// the lake (benchmarks, batch jobs). Reading starts after what the lake holds, so on a
    /// lake that holds a stream already, combine it with --exit-when-idle.
    #[arg(long)]
    pub max_events: Option<u64>,

    /// When the lake holds offsets past a partition's end (the topic was deleted and
    /// re-created), keep the lake's rows and read that partition from its beginning. Without
    /// it such a partition is refused with an error naming both offsets.
    #[arg(long)]
    pub reset_lake_offsets: bool,

    /// No longer needed: the lake is a Delta table, which Athena reads without registered
    /// partitions (`stocklake catalog` registers the table once). Accepted and ignored.
    #[arg(long, hide = true)]
    pub register_partitions: bool,

    /// Ignored (it went with --register-partitions).
    #[arg(long, hide = true)]
    pub database: Option<String>,

    /// Run `stocklake compact` in the background this often (e.g. 1h), with its default
    /// --target-size and --retain, for partitions with no commit in --compact-min-age.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub compact_every: Option<Duration>,

    /// With --compact-every: compact only partitions with no commit in this long. Default: the
    /// --compact-every interval. A lake partitioned by symbol only (the default) has a live
    /// feed's symbols changing at every flush: 0s compacts them too.
    #[arg(long, value_parser = humantime::parse_duration, requires = "compact_every")]
    pub compact_min_age: Option<Duration>,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464; port 0 picks one and
    /// says which): GET /metrics (events read, committed and rejected by reason, commits and
    /// their latency, flush sizes, files and bytes written, per-partition lag and lake offset,
    /// last commit time) and GET /healthz (200 while the member holds partitions and commits
    /// when events wait, else 503; a JSON body says why).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The lake folder to write (reused when it exists: events it holds are not written twice).
    #[arg(long, default_value = defaults::LAKE)]
    pub lake: String,

    /// CSV file(s) to produce. Default: data/stocks.csv, or the copy built into stocklake.
    pub files: Vec<PathBuf>,

    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,

    /// Rows of each query result to print.
    #[arg(long, default_value_t = 8)]
    pub maxrows: usize,

    /// End in the interactive SQL shell on the lake.
    #[arg(long)]
    pub repl: bool,
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Port for clients' bootstrap connections (0: only the mock broker's random port).
    #[arg(long, default_value_t = 9092, env = "STOCKLAKE_BROKER_PORT")]
    pub port: u16,

    /// Topic to create.
    #[arg(long, default_value = defaults::TOPIC)]
    pub topic: String,

    /// Partitions of the topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Committed events/s from a pre-filled topic to Parquet on local disk, and the consumer's
    /// peak memory, next to a flat-out write of the same rows from memory (the ceiling).
    Consume {
        /// Number of synthetic events in the topic.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Partitions of the topic (the embedded broker keeps at most 5 MiB per partition).
        #[arg(long, default_value_t = 24)]
        partitions: i32,
        /// Symbols (one partition directory each).
        #[arg(long, default_value_t = 50)]
        symbols: usize,
        /// Consumer runs (each a new group into a new lake); the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// Flat-out produce into the embedded broker: the sample file and synthetic events, next to
    /// librdkafka sending the same pre-encoded payloads (the ceiling).
    Produce {
        /// The sample CSV file.
        #[arg(long, default_value = "data/stocks.csv")]
        file: PathBuf,
        /// How many times to replay the sample file per measurement.
        #[arg(long, default_value_t = 40)]
        passes: u64,
        /// Number of synthetic events.
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        /// Partitions of the benchmark topic.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
    },
    /// Time every saved query (warm) on a synthetic lake, and the start-to-first-row time of
    /// `stocklake sql -c` on the sample lake.
    Query(BenchQueryArgs),
    /// Time every saved query (warm, local engine) on a lake of many small files, compact it,
    /// and time them again (the target: at least 5x faster).
    Compact(BenchCompactArgs),
    /// Send-to-query latency (p50, p99, max) of events at a slow and a fast rate through the
    /// embedded broker and a consumer with a short flush interval into a temporary lake, seen by
    /// a poller on the local engine; and the commits and files per hour that setting costs.
    Freshness(BenchFreshnessArgs),
    /// Peak memory and events/s of `stocklake produce` replaying a large synthetic CSV file
    /// into the embedded broker (the target: at most 256 MiB for 10M rows).
    ProduceMemory(BenchProduceMemoryArgs),
    /// A long stream (50M synthetic events by default) through the embedded broker into
    /// `stocklake consume` (its own process) writing a temporary local lake: the consumer's
    /// memory (current and peak RSS) and rate at 10 %, 50 % and 100 % of the events, and an
    /// audit that the lake holds every event once.
    Soak(BenchSoakArgs),
}

#[derive(Debug, Args)]
pub struct BenchSoakArgs {
    /// Events to stream.
    #[arg(long, default_value_t = 50_000_000)]
    pub events: u64,
    /// Symbols (one partition directory each).
    #[arg(long, default_value_t = 500)]
    pub symbols: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 48)]
    pub partitions: i32,
    /// How far the producer may run ahead of the consumer's last commit, in events. The
    /// embedded broker keeps at most 5 MiB a partition and drops the oldest beyond that, so by
    /// default the window fills 3/4 of the busiest partition (by the keys' partitions), with
    /// what a partition holds measured first on a topic of its own.
    #[arg(long)]
    pub window: Option<u64>,
    /// Write the lake into this (new) folder and keep it.
    #[arg(long)]
    pub lake: Option<PathBuf>,
    /// Run the consumer with `--compact-every` this interval (and `--compact-min-age 0s`), as a
    /// live feed should run: the table's active files, and what the consumer holds of them,
    /// stay bounded.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub compact_every: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct BenchFreshnessArgs {
    /// The slow rate, events/s (the tutorial's feed).
    #[arg(long, default_value_t = 1.0)]
    pub slow_rate: f64,
    /// How long to send at the slow rate.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub slow_for: Duration,
    /// The fast rate, events/s.
    #[arg(long, default_value_t = 1000.0)]
    pub fast_rate: f64,
    /// How long to send at the fast rate.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub fast_for: Duration,
    /// The consumer's --flush-interval.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "200ms")]
    pub flush_interval: Duration,
    /// How often the poller looks for new rows (the latency includes up to one interval).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "50ms")]
    pub poll: Duration,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Symbols (one partition directory each, so up to one file each per flush).
    #[arg(long, default_value_t = 5)]
    pub symbols: usize,
    /// A librdkafka property for the producer and the consumer (repeatable), e.g.
    /// -X fetch.wait.max.ms=100.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct BenchProduceMemoryArgs {
    /// Rows of the CSV file.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Symbols (daily bars, all symbols of a day together).
    #[arg(long, default_value_t = 1_000)]
    pub symbols: usize,
    /// Partitions of the benchmark topic (the embedded broker drops the oldest events beyond
    /// 5 MiB a partition; only acknowledgements are counted).
    #[arg(long, default_value_t = 24)]
    pub partitions: i32,
    /// Write each day's symbols in reverse order: the file is not in time order and produce
    /// sorts it in runs on disk (the external sort).
    #[arg(long)]
    pub unsorted: bool,
    /// Keep the CSV file at this path (reused when it exists) instead of a temporary file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchCompactArgs {
    /// Symbols (one partition each).
    #[arg(long, default_value_t = 500)]
    pub symbols: usize,
    /// Flushes, each writing a file per symbol and one commit (files = symbols x flushes).
    #[arg(long, default_value_t = 40)]
    pub flushes: usize,
    /// Rows (daily bars) per file.
    #[arg(long, default_value_t = 25)]
    pub rows_per_file: usize,
    /// Timed runs of each query after one warm-up run; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Write the lake into this (new) folder and keep it.
    #[arg(long)]
    pub lake: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchQueryArgs {
    /// The sample CSV file (for the start-to-first-row measurement).
    #[arg(long, default_value = "data/stocks.csv")]
    pub file: PathBuf,
    /// Rows of the synthetic lake.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Symbols of the synthetic lake (one daily series and one file each).
    #[arg(long, default_value_t = 1_000)]
    pub symbols: u64,
    /// Timed runs of each query after one warm-up run.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Keep the synthetic lake in this folder (reused when it already holds a lake).
    #[arg(long)]
    pub lake: Option<PathBuf>,
    /// Time the same queries on the same files with DuckDB too, and print each ratio and their
    /// geometric mean: the Python of this venv runs scripts/bench_duckdb.py (needs the duckdb
    /// and deltalake packages; `bash scripts/python-env.sh` installs them).
    #[arg(long, env = "STOCKLAKE_VENV", default_value = ".venv")]
    pub venv: PathBuf,
    /// Time the local engine only.
    #[arg(long)]
    pub no_duckdb: bool,
    /// Threads for each engine (the local engine's runtime workers, DuckDB's threads);
    /// default: the machine's cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Time only this saved query (repeatable); default: all of them.
    #[arg(long, value_name = "QUERY")]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Lake root (s3://bucket/prefix, file:///path or a folder). Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    /// Glue database. Default: the settings file's [athena] database, else stocklake.
    #[arg(long, env = "STOCKLAKE_DATABASE")]
    pub database: Option<String>,

    /// Print the CREATE EXTERNAL TABLE … TBLPROPERTIES ('table_type'='DELTA') statements for
    /// the Athena console instead of calling Glue.
    #[arg(long)]
    pub ddl: bool,

    /// Does nothing (kept for old scripts): Athena reads the partitions of a Delta table from
    /// its log, there are none to add to Glue.
    #[arg(long, hide = true)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The lake: a folder, file:// URL or s3://bucket/prefix. Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    /// Size of the files written (e.g. 128MiB, 64MB). Files under half of it count as small
    /// and are packed together, oldest first, up to this size per file.
    #[arg(long, value_parser = parse_size, default_value = defaults::COMPACT_TARGET_SIZE, value_name = "SIZE")]
    pub target_size: u64,

    /// Files no longer referenced by the table (replaced by compaction, or never committed by
    /// a killed writer) are deleted once they are this old. Never less than the longest query
    /// you expect: a query reading an older version still needs them.
    #[arg(long, value_parser = humantime::parse_duration, default_value = defaults::COMPACT_RETAIN, value_name = "DURATION")]
    pub retain: Duration,

    /// Accept --retain below one hour (only when no query or writer can be running).
    #[arg(long)]
    pub allow_short_retain: bool,

    /// Compact only partitions with no commit in this long (e.g. 1h), so that partitions still
    /// being written are not rewritten at every run (0s: every partition).
    #[arg(long, value_parser = humantime::parse_duration, default_value = defaults::COMPACT_MIN_AGE, value_name = "DURATION")]
    pub min_age: Duration,

    /// Commit the files rewritten so far at least this often (a long compaction then shows
    /// progress in the table, and loses less work if stopped).
    #[arg(long, value_parser = humantime::parse_duration, default_value = defaults::COMPACT_COMMIT_EVERY, value_name = "DURATION")]
    pub commit_every: Duration,

    /// Compact only: no vacuum, no log clean-up.
    #[arg(long)]
    pub no_vacuum: bool,

    /// Print what would be done; write and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The S3 lake to copy (s3://bucket/prefix).
    pub source: String,

    /// The local folder to mirror it into (created when missing).
    pub dest: PathBuf,

    /// Mirror into a non-empty folder that no earlier sync created (files not upstream are
    /// deleted from it).
    #[arg(long)]
    pub force: bool,
}

/// Where and how Athena runs a statement (for `sql --engine athena` and the REPL).
#[derive(Debug, Args, Clone, Default)]
pub struct AthenaArgs {
    /// Glue database the statements run in, on both engines: Athena's query context, and on
    /// the local engine the schema unqualified names resolve in (the lake's tables are also
    /// `stocklake.ticks`). Default: the settings file's [athena] database, else stocklake.
    #[arg(long, env = "STOCKLAKE_DATABASE")]
    pub database: Option<String>,

    /// Athena workgroup. Default: the settings file's [athena] workgroup, else primary.
    #[arg(long, env = "STOCKLAKE_ATHENA_WORKGROUP")]
    pub workgroup: Option<String>,

    /// Athena data catalog. Default: AwsDataCatalog.
    #[arg(long = "data-catalog", env = "STOCKLAKE_ATHENA_CATALOG")]
    pub data_catalog: Option<String>,

    /// S3 location for Athena's result files (s3://bucket/prefix/). Default: the settings
    /// file's [athena] output, else the workgroup's setting.
    #[arg(long, env = "STOCKLAKE_ATHENA_OUTPUT")]
    pub output: Option<String>,

    /// How results are fetched: GetQueryResults pages, the result CSV, or auto (the CSV when
    /// there is more than one page).
    #[arg(long, value_enum, env = "STOCKLAKE_ATHENA_FETCH")]
    pub fetch: Option<crate::engine::athena::Fetch>,
}

/// A size in bytes: `134217728`, `128MiB`, `64 MB`, `1GiB`, `512k` (k/M/G are powers of 1024
/// unless spelled kB/MB/GB).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 128MiB, 64MB, 1048576)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "{text:?}: unknown size unit {other:?} (use B, KiB, MiB, GiB, kB, MB or GB)"
            ));
        }
    };
    let bytes = number * factor as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?}: a size must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// Parses a watch interval (`sql --watch`, `\\watch`): seconds as a number (`2`, `0.5`) or a
/// duration (`500ms`, `1s`, `1m`), more than zero.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} is not a number of seconds")),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?}: {e} (e.g. 2, 0.5, 500ms, 1s)"))?,
    };
    if d.is_zero() {
        return Err("the interval must be more than zero".into());
    }
    Ok(d)
}
