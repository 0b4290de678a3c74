//! Every default value of stocklake, in one place: the constants the command line shows in its
//! help, and the `Default` impls of the core's option structs (written here, not next to the
//! structs, so that no default is spelled twice).

use std::path::PathBuf;
use std::time::Duration;

use crate::compare::Tolerance;
use crate::engine::athena::{AthenaSettings, Fetch};
use crate::kafka::KafkaSettings;
use crate::kafka::consumer::ConsumeOptions;
use crate::lake::delta::compact::CompactOptions;
use crate::lake::{PartitionKey, TableLayout};
use crate::source::SyntheticOptions;
use crate::tick::{MS_PER_DAY, days_from_civil};

/// Kafka bootstrap servers.
pub const BROKERS: &str = "localhost:9092";
/// The topic ticks go to.
pub const TOPIC: &str = "ticks";
/// The consumer group of `consume`.
pub const GROUP: &str = "stocklake";
/// The lake root.
pub const LAKE: &str = "./lake";
/// The Glue database (and Athena's default database).
pub const DATABASE: &str = "stocklake";
/// The Athena workgroup.
pub const ATHENA_WORKGROUP: &str = "primary";
/// The Athena data catalog.
pub const ATHENA_CATALOG: &str = "AwsDataCatalog";
/// Where fetched Athena results are saved, for offline `compare`.
pub const SAVED_RESULTS_DIR: &str = ".stocklake/athena";
/// Which table version offline `compare` reads: the one each saved result recorded.
pub const COMPARE_AS_OF: &str = "saved";
/// First wait between two polls of a running Athena query; it grows ×1.5 up to the maximum.
pub const ATHENA_FIRST_POLL: Duration = Duration::from_millis(200);
pub const ATHENA_MAX_POLL: Duration = Duration::from_secs(2);
/// `status` and `audit`: how long the brokers have to answer (metadata, watermarks, offsets).
pub const KAFKA_LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `\watch` without an argument re-runs the last statement.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// A batch closes at this many events...
pub const FLUSH_ROWS: usize = 500_000;
/// ...or when its payloads reach this many bytes...
pub const FLUSH_BYTES: usize = 64 << 20;
/// ...or when its oldest event has waited this long (humantime, as the flag takes it).
pub const FLUSH_INTERVAL: &str = "5s";
pub const FLUSH_INTERVAL_DURATION: Duration = Duration::from_secs(5);
/// `/healthz` of `consume --metrics`: a member holding partitions with events waiting that has
/// not committed for the longer of this and three flush intervals is unhealthy.
pub const STALL_AFTER: Duration = Duration::from_secs(30);
/// Events larger than this are quarantined as oversized.
pub const MAX_EVENT_BYTES: usize = 64 << 10;

/// `compact`: the size of the files it writes (files under half of it are packed)...
pub const COMPACT_TARGET_SIZE: &str = "128MiB";
pub const COMPACT_TARGET_SIZE_BYTES: u64 = 128 << 20;
/// ...how long files no longer referenced are kept before the vacuum deletes them...
pub const COMPACT_RETAIN: &str = "7d";
pub const COMPACT_RETAIN_DURATION: Duration = Duration::from_secs(7 * 86_400);
/// ...the shortest --retain accepted without --allow-short-retain (a flush in progress and a
/// running query must keep their files)...
pub const COMPACT_MIN_RETAIN: Duration = Duration::from_secs(3600);
/// ...how long a partition must have had no commit to be compacted (0: every partition)...
pub const COMPACT_MIN_AGE: &str = "0s";
/// ...and how often it commits what it rewrote so far.
pub const COMPACT_COMMIT_EVERY: &str = "1m";
pub const COMPACT_COMMIT_EVERY_DURATION: Duration = Duration::from_secs(60);

/// Relative float tolerance of comparisons: about 6 decimal digits of slack left in a double's
/// 15-16, enough for sums and averages taken in a different order by another engine.
pub const REL_TOL: f64 = 1e-9;
/// Absolute float tolerance: values this close to zero (a return of 0 computed as 1e-17) agree.
pub const ABS_TOL: f64 = 1e-12;

/// S3 requests that fail with a 5xx, a 429 or a dropped connection are retried with
/// exponential back-off (from 100 ms, at most 5 s apart) until this long after they first went
/// out; then the command fails with the request's error. Bounds how long S3 may stay down.
pub const S3_RETRY_TIMEOUT_DURATION: Duration = Duration::from_secs(120);
pub const S3_FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const S3_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The synthetic generator.
pub const SYNTHETIC_SYMBOLS: usize = 5;
pub const SYNTHETIC_ROWS: u64 = 10_000;
pub const SYNTHETIC_SEED: u64 = 7;
pub const SYNTHETIC_INTERVAL: &str = "1d";
pub const SYNTHETIC_START: &str = "2020-01-02";
/// produce: rows per sorted run when an input file is not in time order (~200 bytes a row).
pub const SORT_RUN_ROWS: usize = 250_000;
/// produce: most files (or sorted runs) read at once; more are merged in groups first.
pub const MAX_OPEN_FILES: usize = 200;

impl Default for crate::aws::S3Retry {
    fn default() -> Self {
        crate::aws::S3Retry {
            timeout: S3_RETRY_TIMEOUT_DURATION,
            first_backoff: S3_FIRST_BACKOFF,
            max_backoff: S3_MAX_BACKOFF,
        }
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: BROKERS.into(),
            properties: Vec::new(),
        }
    }
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            topic: TOPIC.into(),
            group: GROUP.into(),
            flush_rows: FLUSH_ROWS,
            flush_bytes: FLUSH_BYTES,
            flush_interval: FLUSH_INTERVAL_DURATION,
            max_event_bytes: MAX_EVENT_BYTES,
            exit_when_idle: None,
            max_events: None,
            reset_lake_offsets: false,
        }
    }
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_size: COMPACT_TARGET_SIZE_BYTES,
            retain: COMPACT_RETAIN_DURATION,
            min_age: Duration::ZERO,
            commit_every: COMPACT_COMMIT_EVERY_DURATION,
            vacuum: true,
            dry_run: false,
        }
    }
}

impl Default for AthenaSettings {
    fn default() -> Self {
        AthenaSettings {
            workgroup: ATHENA_WORKGROUP.into(),
            database: DATABASE.into(),
            catalog: ATHENA_CATALOG.into(),
            output: None,
            fetch: Fetch::Auto,
            save_dir: Some(PathBuf::from(SAVED_RESULTS_DIR)),
            first_poll: ATHENA_FIRST_POLL,
            max_poll: ATHENA_MAX_POLL,
        }
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            rel: REL_TOL,
            abs: ABS_TOL,
        }
    }
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions {
            symbols: SYNTHETIC_SYMBOLS,
            rows: SYNTHETIC_ROWS,
            seed: SYNTHETIC_SEED,
            interval_ms: MS_PER_DAY,
            start_ms: days_from_civil(2020, 1, 2) * MS_PER_DAY,
        }
    }
}

impl Default for TableLayout {
    /// A new lake is partitioned by symbol.
    fn default() -> Self {
        TableLayout {
            partition_by: vec![PartitionKey::Symbol],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_defaults_parse_as_the_typed_ones() {
        assert_eq!(
            humantime::parse_duration(SYNTHETIC_INTERVAL).unwrap(),
            Duration::from_millis(MS_PER_DAY as u64)
        );
        assert_eq!(
            crate::tick::parse_iso_millis(SYNTHETIC_START),
            Some(SyntheticOptions::default().start_ms)
        );
        assert_eq!(
            humantime::parse_duration(FLUSH_INTERVAL).unwrap(),
            FLUSH_INTERVAL_DURATION
        );
        let compact = CompactOptions::default();
        assert_eq!(
            crate::cli::parse_size(COMPACT_TARGET_SIZE),
            Ok(compact.target_size)
        );
        assert_eq!(
            humantime::parse_duration(COMPACT_RETAIN).unwrap(),
            compact.retain
        );
        assert_eq!(
            humantime::parse_duration(COMPACT_MIN_AGE).unwrap(),
            compact.min_age
        );
        assert_eq!(
            humantime::parse_duration(COMPACT_COMMIT_EVERY).unwrap(),
            compact.commit_every
        );
    }
}
