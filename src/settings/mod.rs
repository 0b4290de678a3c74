//! The one place that turns command-line flags (and the `STOCKLAKE_*` variables clap reads for
//! them), the settings file and the defaults into the plain option structs the core takes.
//! Precedence, highest first: flag, environment variable, settings file, built-in default
//! ([`defaults`] is the only home of every default).
//!
//! ```toml
//! [kafka]
//! brokers = "b-1.msk.example:9096"
//! topic = "ticks"
//! group = "stocklake"
//! [kafka.properties]            # any librdkafka property
//! "security.protocol" = "SASL_SSL"
//! [lake]
//! url = "s3://my-bucket/stocklake"
//! s3_retry_timeout = "2m"        # how long S3 requests are retried (5xx, dropped connections)
//! [athena]
//! workgroup = "primary"
//! database = "stocklake"
//! output = "s3://my-bucket/athena-results/"
//! ```

pub mod defaults;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{AthenaArgs, CompactArgs, ConsumeArgs, KafkaArgs, QueryArgs, ToleranceArgs};
use crate::compare::Tolerance;
use crate::engine::EngineKind;
use crate::engine::athena::AthenaSettings;
use crate::kafka::KafkaSettings;
use crate::kafka::consumer::ConsumeOptions;
use crate::lake::delta::compact::CompactOptions;
use crate::lake::delta::read::AsOf;

/// The settings file or a value on the command line is wrong (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The settings file, `stocklake.toml`. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSection,
    pub lake: LakeSection,
    pub athena: AthenaSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSection {
    pub brokers: Option<String>,
    pub topic: Option<String>,
    pub group: Option<String>,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LakeSection {
    /// Local folder, `file://` or `s3://` URL of the lake root.
    pub url: Option<String>,
    /// How long a failing S3 request is retried (humantime, e.g. `90s`, `2m`).
    pub s3_retry_timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AthenaSection {
    pub workgroup: Option<String>,
    pub database: Option<String>,
    pub catalog: Option<String>,
    /// S3 output location for query results; absent: the workgroup's setting.
    pub output: Option<String>,
}

/// The first of `flag`, `file` and `default` that is set.
fn pick(flag: Option<&String>, file: Option<&String>, default: &str) -> String {
    flag.or(file)
        .map_or_else(|| default.to_string(), String::clone)
}

impl Settings {
    /// Reads `path`, or `./stocklake.toml` when `path` is None and that file exists, or defaults.
    pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("stocklake.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Settings::default());
            }
            Err(e) => {
                return Err(SettingsError::File {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Settings::parse(&text).map_err(|message| SettingsError::File { path, message })
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Kafka connection settings: the file's properties, then the `-X` ones (which win).
    pub fn kafka(&self, args: &KafkaArgs) -> KafkaSettings {
        let mut properties: Vec<(String, String)> = self
            .kafka
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        properties.extend(args.property.iter().cloned());
        KafkaSettings {
            brokers: pick(
                args.brokers.as_ref(),
                self.kafka.brokers.as_ref(),
                defaults::BROKERS,
            ),
            properties,
        }
    }

    pub fn topic(&self, args: &KafkaArgs) -> String {
        pick(
            args.topic.as_ref(),
            self.kafka.topic.as_ref(),
            defaults::TOPIC,
        )
    }

    /// The lake root URL.
    pub fn lake_url(&self, flag: Option<&String>) -> String {
        pick(flag, self.lake.url.as_ref(), defaults::LAKE)
    }

    /// The S3 retry policy: `--s3-retry-timeout` (or `STOCKLAKE_S3_RETRY_TIMEOUT`), else the
    /// file's `[lake] s3_retry_timeout`, else the default.
    pub fn s3_retry(
        &self,
        flag: Option<std::time::Duration>,
    ) -> Result<crate::aws::S3Retry, SettingsError> {
        let timeout = match (flag, &self.lake.s3_retry_timeout) {
            (Some(d), _) => d,
            (None, Some(text)) => humantime::parse_duration(text).map_err(|e| {
                SettingsError::Invalid(format!("[lake] s3_retry_timeout = {text:?}: {e}"))
            })?,
            (None, None) => defaults::S3_RETRY_TIMEOUT_DURATION,
        };
        Ok(crate::aws::S3Retry {
            timeout,
            ..crate::aws::S3Retry::default()
        })
    }

    /// The Glue (and Athena) database.
    pub fn database(&self, flag: Option<&String>) -> String {
        pick(flag, self.athena.database.as_ref(), defaults::DATABASE)
    }

    /// What `consume` does with each event and batch.
    pub fn consume(&self, args: &ConsumeArgs) -> ConsumeOptions {
        ConsumeOptions {
            topic: self.topic(&args.kafka),
            group: pick(
                args.group.as_ref(),
                self.kafka.group.as_ref(),
                defaults::GROUP,
            ),
            flush_rows: args.flush_rows.max(1),
            flush_bytes: args.flush_bytes.max(1),
            flush_interval: args.flush_interval,
            max_event_bytes: args.max_event_bytes,
            exit_when_idle: args.exit_when_idle,
            max_events: args.max_events,
            reset_lake_offsets: args.reset_lake_offsets,
        }
    }

    /// Where and how Athena runs statements.
    pub fn athena(&self, args: &AthenaArgs) -> AthenaSettings {
        let a = &self.athena;
        AthenaSettings {
            workgroup: pick(
                args.workgroup.as_ref(),
                a.workgroup.as_ref(),
                defaults::ATHENA_WORKGROUP,
            ),
            database: self.database(args.database.as_ref()),
            catalog: pick(
                args.data_catalog.as_ref(),
                a.catalog.as_ref(),
                defaults::ATHENA_CATALOG,
            ),
            output: args.output.clone().or_else(|| a.output.clone()),
            fetch: args.fetch.unwrap_or_default(),
            ..AthenaSettings::default()
        }
    }
}

/// `status` and `audit`.
impl Settings {
    /// The topic of `--topic` or the settings file; None lets the lake's offsets name it.
    pub fn topic_if_set(&self, args: &KafkaArgs) -> Option<String> {
        args.topic.clone().or_else(|| self.kafka.topic.clone())
    }

    /// The consumer group of `--group`, else the settings file's, else the default.
    pub fn group(&self, flag: Option<&String>) -> String {
        pick(flag, self.kafka.group.as_ref(), defaults::GROUP)
    }

    /// The Kafka settings when `--brokers` (or `STOCKLAKE_BROKERS`) asks for the brokers' view;
    /// None otherwise (the settings file's brokers alone do not).
    pub fn kafka_if_asked(&self, args: &KafkaArgs) -> Option<KafkaSettings> {
        args.brokers.as_ref().map(|_| self.kafka(args))
    }
}

/// What `compact` does. A `--retain` shorter than [`defaults::COMPACT_MIN_RETAIN`] is refused
/// unless `--allow-short-retain`: the vacuum would delete files a running query, or a flush about
/// to commit, still needs.
pub fn compact(args: &CompactArgs) -> Result<CompactOptions, SettingsError> {
    check_retain(args.retain, args.allow_short_retain)?;
    Ok(CompactOptions {
        target_size: args.target_size.max(1),
        retain: args.retain,
        min_age: args.min_age,
        commit_every: args.commit_every,
        vacuum: !args.no_vacuum,
        dry_run: args.dry_run,
    })
}

/// What `consume --compact-every` runs in the background: partitions with no commit for
/// `--compact-min-age` (default: the interval itself), the default size and retention.
pub fn background_compact(args: &ConsumeArgs) -> Option<(std::time::Duration, CompactOptions)> {
    let every = args.compact_every?;
    Some((
        every,
        CompactOptions {
            min_age: args.compact_min_age.unwrap_or(every),
            ..CompactOptions::default()
        },
    ))
}

fn check_retain(retain: std::time::Duration, allowed: bool) -> Result<(), SettingsError> {
    if retain < defaults::COMPACT_MIN_RETAIN && !allowed {
        return Err(SettingsError::Invalid(format!(
            "--retain {} is shorter than {}: the vacuum could delete files that a running query or a flush about to commit still needs; pass --allow-short-retain if no reader or writer can be running",
            humantime::format_duration(retain),
            humantime::format_duration(defaults::COMPACT_MIN_RETAIN)
        )));
    }
    Ok(())
}

/// The table version `sql` and `repl` read (`--as-of`): local engine only, since Athena cannot
/// time travel (and `--engine both` pins the local side to what Athena saw by itself).
pub fn as_of(args: &QueryArgs) -> Result<Option<AsOf>, SettingsError> {
    match (args.as_of, args.engine) {
        (Some(_), EngineKind::Athena | EngineKind::Both) => Err(SettingsError::Invalid(format!(
            "--as-of works with the local engine only, not --engine {}: Athena cannot read an \
             older table version (with --engine both, each comparison reads the version Athena saw)",
            args.engine
        ))),
        (as_of, _) => Ok(as_of),
    }
}

/// Float tolerance of comparisons.
pub fn tolerance(args: &ToleranceArgs) -> Tolerance {
    Tolerance {
        rel: args.rel_tol,
        abs: args.abs_tol,
    }
}

/// The saved queries' folder: the flag, else `./queries` when it exists (else the built-in ones).
pub fn queries_dir(flag: Option<&PathBuf>) -> Option<PathBuf> {
    flag.cloned().or_else(|| {
        let d = PathBuf::from("queries");
        d.is_dir().then_some(d)
    })
}

/// The REPL's history file: the flag, else `~/.stocklake_history`.
pub fn history_file(flag: Option<&PathBuf>) -> Option<PathBuf> {
    flag.cloned()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".stocklake_history")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let s = Settings::parse(
            "[kafka]\nbrokers = \"k:1\"\n[kafka.properties]\n\"linger.ms\" = \"50\"\n",
        )
        .unwrap();
        let mut args = KafkaArgs::default();
        assert_eq!(s.topic(&args), defaults::TOPIC);
        assert_eq!(s.kafka(&args).brokers, "k:1");
        assert_eq!(Settings::default().kafka(&args).brokers, defaults::BROKERS);
        args.brokers = Some("flag:2".into());
        args.property = vec![("linger.ms".into(), "0".into())];
        let k = s.kafka(&args);
        assert_eq!(k.brokers, "flag:2");
        assert_eq!(k.producer_config().get("linger.ms"), Some("0"));
        assert!(
            Settings::parse("[kafka]\nbrokerz = 1\n")
                .unwrap_err()
                .contains("brokerz")
        );
    }

    #[test]
    fn the_s3_retry_time_comes_from_the_flag_then_the_file() {
        use std::time::Duration;
        let file = Settings::parse("[lake]\ns3_retry_timeout = \"90s\"\n").unwrap();
        assert_eq!(
            file.s3_retry(None).unwrap().timeout,
            Duration::from_secs(90)
        );
        let flag = Some(Duration::from_secs(3));
        assert_eq!(file.s3_retry(flag).unwrap().timeout, Duration::from_secs(3));
        let default = Settings::default().s3_retry(None).unwrap();
        assert_eq!(default, crate::aws::S3Retry::default());
        assert_eq!(default.timeout, defaults::S3_RETRY_TIMEOUT_DURATION);
        let bad = Settings::parse("[lake]\ns3_retry_timeout = \"soon\"\n").unwrap();
        assert!(bad.s3_retry(None).is_err());
    }

    #[test]
    fn sizes_parse_with_their_units() {
        use crate::cli::parse_size;
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("64 MB"), Ok(64_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn a_short_retain_needs_its_flag() {
        use std::time::Duration;
        assert!(check_retain(Duration::from_secs(7 * 86_400), false).is_ok());
        let err = check_retain(Duration::from_secs(60), false).unwrap_err();
        assert!(err.to_string().contains("--allow-short-retain"), "{err}");
        assert!(check_retain(Duration::ZERO, true).is_ok());
    }

    #[test]
    fn athena_settings_take_the_file_under_the_flags() {
        let s = Settings::parse("[athena]\nworkgroup = \"wg\"\ndatabase = \"db\"\n").unwrap();
        let mut args = AthenaArgs::default();
        let a = s.athena(&args);
        assert_eq!((a.workgroup.as_str(), a.database.as_str()), ("wg", "db"));
        assert_eq!(a.catalog, defaults::ATHENA_CATALOG);
        args.workgroup = Some("flag".into());
        assert_eq!(s.athena(&args).workgroup, "flag");
        args.database = Some("other".into());
        assert_eq!(s.athena(&args).database, "other");
        assert_eq!(Settings::default().athena(&args).database, "other");
        args.database = None;
        assert_eq!(
            Settings::default().athena(&args).database,
            defaults::DATABASE
        );
    }
}
