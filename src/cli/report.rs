//! The flags of `stocklake status` and `stocklake audit`, their help examples, and the help
//! text of the Kafka flags they share with the other commands (no broker or topic default).

use clap::Args;

use super::{KafkaArgs, parse_size};
use crate::settings::defaults;

/// Shown at the end of `stocklake status --help`.
pub(super) const STATUS_HELP: &str = "\
Examples:
  stocklake status --lake s3://my-bucket/stocklake
  stocklake status --lake s3://my-bucket/stocklake --brokers b1:9092 --topic ticks --group stocklake
  stocklake status --lake ./lake --format json

Lake offset: the last Kafka offset the ticks table committed for the partition (its Delta txn).
Group offset: the next offset the consumer group reads (Kafka's committed offset, a copy).
Lag: high watermark - 1 - lake offset, the events Kafka holds that the lake does not yet have.";

/// Shown at the end of `stocklake audit --help`.
pub(super) const AUDIT_HELP: &str = "\
Examples:
  stocklake audit --lake s3://my-bucket/stocklake
  stocklake audit --lake s3://my-bucket/stocklake --brokers b1:9092 --format json

Exit status: 0 when every offset from the first one the lake holds to its committed offset is in
the lake exactly once (ticks or rejects) and nothing above the committed offset is visible; 1
when a gap, a duplicate or an uncommitted offset was found (each listed), or on an error.";

/// Output of `status` and `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// Text for people.
    #[default]
    Text,
    /// One JSON object (for machines).
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The lake: a folder, file:// URL or s3://bucket/prefix. Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group whose committed offsets are shown (with --brokers). Default: stocklake.
    #[arg(long, short = 'g', env = "STOCKLAKE_GROUP")]
    pub group: Option<String>,

    /// Files under half this size count as small (the rule of `stocklake compact`, which packs
    /// them into files of this size).
    #[arg(long, value_parser = parse_size, default_value = defaults::COMPACT_TARGET_SIZE, value_name = "SIZE")]
    pub target_size: u64,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The lake: a folder, file:// URL or s3://bucket/prefix. Default: the settings file's
    /// [lake] url, else ./lake.
    #[arg(long, env = "STOCKLAKE_LAKE")]
    pub lake: Option<String>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// `--brokers` of `status` and `audit`: optional, no default.
pub(super) fn brokers_help(arg: clap::Arg) -> clap::Arg {
    arg.help(
        "Kafka bootstrap servers: also read the topic's watermarks from them. Default: the lake \
         alone (the settings file's brokers are not used unless given here)",
    )
}

/// `--topic` of `status` and `audit`: the lake's own by default.
pub(super) fn topic_help(arg: clap::Arg) -> clap::Arg {
    arg.help("Topic name. Default: the settings file's, else the one topic the lake's offsets name")
}
