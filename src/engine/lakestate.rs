//! Which state of the lake a local query saw: the ticks table's version and its commit time, its
//! active files (count, rows, bytes) and the Kafka offsets its `txn` actions record
//! (`stocklake:<topic>:<partition>`, the last offset written).

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use serde::Serialize;

use crate::lake::LakeError;
use crate::lake::delta::read::{self, AsOf};

/// One Kafka partition's committed position in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    /// The last offset the table holds (inclusive).
    pub last_offset: i64,
}

/// The ticks table as the local engine read it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LakeState {
    pub lake: String,
    /// The table version read.
    pub version: u64,
    /// When that version was committed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    #[serde(skip)]
    pub committed: Option<DateTime<Utc>>,
    /// What the engine was pinned to (`--as-of`), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// The version's active data files, their rows (sum of `numRecords`) and bytes.
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub offsets: Vec<CommittedOffset>,
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1.2 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

impl LakeState {
    /// Whether the version read was committed after `t`.
    pub fn committed_after(&self, t: DateTime<Utc>) -> bool {
        self.committed.is_some_and(|c| c > t)
    }

    /// `version 5 (committed …), 5 files, 12154 rows, 1.2 MiB`.
    pub fn summary(&self) -> String {
        let mut s = format!("version {}", self.version);
        if let Some(c) = &self.committed_at {
            s.push_str(&format!(" (committed {c})"));
        }
        if let Some(a) = &self.as_of {
            s.push_str(&format!(", pinned --as-of {a}"));
        }
        s.push_str(&format!(
            ", {} file{}, {} rows, {}",
            self.files,
            plural(self.files),
            self.rows,
            human_bytes(self.bytes)
        ));
        s
    }

    /// The summary with the lake and the committed offsets.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: {}", self.lake, self.summary());
        if self.offsets.is_empty() {
            s.push_str("; no committed offsets");
        } else {
            let o: Vec<String> = self
                .offsets
                .iter()
                .map(|o| format!("{}/{}={}", o.topic, o.partition, o.last_offset))
                .collect();
            s.push_str(&format!("; last committed offsets {}", o.join(" ")));
        }
        s
    }
}

/// The state of `table` (the ticks table of the lake `lake`, loaded at the version read).
pub async fn read_state(
    lake: &str,
    table: &DeltaTable,
    as_of: Option<AsOf>,
) -> Result<LakeState, LakeError> {
    let version = table.version().unwrap_or_default();
    let committed = read::commit_time(table, version).await?;
    let stats = read::file_stats(table)?;
    let mut offsets: Vec<CommittedOffset> = read::txns(table)
        .await?
        .into_iter()
        .filter_map(|(app, v)| {
            let rest = app.strip_prefix("stocklake:")?;
            let (topic, partition) = rest.rsplit_once(':')?;
            Some(CommittedOffset {
                topic: topic.to_string(),
                partition: partition.parse().ok()?,
                last_offset: v,
            })
        })
        .collect();
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(LakeState {
        lake: lake.to_string(),
        version,
        committed_at: Some(committed.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        committed: Some(committed),
        as_of: as_of.map(|a| match a {
            AsOf::Version(v) => v.to_string(),
            AsOf::Time(_) => a.to_string(),
        }),
        files: stats.files,
        rows: stats.rows,
        bytes: stats.bytes,
        offsets,
    })
}
