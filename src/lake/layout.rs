//! Where things live in a lake, and how partition values become directory names.
//!
//! ```text
//! <lake>/ticks/_delta_log/                                                the ticks Delta table's log
//! <lake>/ticks/<key=value>/…/part-<topic>-<partition>-<first offset>-<attempt>.parquet
//! <lake>/rejects/_delta_log/, part-<topic>-<attempt>.parquet         the rejects Delta table
//! ```
//! (Lakes written before the Delta table had `_rejects/<topic>/…jsonl` and
//! `_stocklake/{table.json,offsets/}`; `stocklake lake upgrade` converts them.)
//!
//! Readers take partition values from the Delta log, never from paths; the directory names
//! are for people, crawlers and MSCK. They are escaped Hive-style (`%XX`, upper-case hex) for
//! every ASCII character outside `[A-Za-z0-9._-]`, so no value can leave its directory (`/`,
//! `..`), break a `key=value` pair (`=`), or mean something to a shell, S3 or MSCK. Non-ASCII
//! characters stay as they are: Hive unescapes each `%XX` to one character, so byte-wise
//! escapes of UTF-8 would read back wrong there. A value that would be
//! `.` or `..` escapes its dots. The empty string is written as Hive's default partition name
//! (`__HIVE_DEFAULT_PARTITION__`) would turn it into NULL, so it is written as `%00` instead, a
//! spelling no other value has (symbols never contain control characters) and that
//! [`unescape_value`] turns back into "".

use serde::{Deserialize, Serialize};

use crate::tick::{MS_PER_DAY, civil_from_days};

/// The table's folder under the lake root; also the Glue and DataFusion table name.
pub const TABLE_DIR: &str = "ticks";
/// Where quarantined events went before the lake was a Delta table (read by `lake upgrade`).
pub const REJECTS_DIR: &str = "_rejects";
/// The rejects Delta table's folder under the lake root; also its table name.
pub const REJECTS_TABLE_DIR: &str = "rejects";
/// stocklake's own bookkeeping (the table layout).
pub const STATE_DIR: &str = "_stocklake";
/// The layout file, relative to the lake root.
pub const LAYOUT_FILE: &str = "_stocklake/table.json";

/// A partition key of the table, derived from the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PartitionKey {
    /// The symbol (`symbol=AAPL`).
    Symbol,
    /// Year of the event time, UTC (`year=2013`).
    Year,
    /// Month of the event time, UTC, two digits (`month=03`).
    Month,
    /// UTC date of the event time (`dt=2013-03-01`; `date` is a reserved word in SQL).
    Date,
}

impl PartitionKey {
    /// The column name in the table.
    pub fn column(self) -> &'static str {
        match self {
            PartitionKey::Symbol => "symbol",
            PartitionKey::Year => "year",
            PartitionKey::Month => "month",
            PartitionKey::Date => "dt",
        }
    }

    /// The column's type in Athena DDL.
    pub fn athena_type(self) -> &'static str {
        match self {
            PartitionKey::Symbol => "string",
            PartitionKey::Year | PartitionKey::Month => "int",
            PartitionKey::Date => "date",
        }
    }

    /// The column's Arrow type (DataFusion parses the directory value into it).
    pub fn arrow_type(self) -> arrow::datatypes::DataType {
        use arrow::datatypes::DataType;
        match self {
            PartitionKey::Symbol => DataType::Utf8,
            PartitionKey::Year | PartitionKey::Month => DataType::Int32,
            PartitionKey::Date => DataType::Date32,
        }
    }

    /// The partition value of a tick (not yet escaped).
    pub fn value(self, symbol: &str, event_time: i64) -> String {
        let (y, m, d) = civil_from_days(event_time.div_euclid(MS_PER_DAY));
        match self {
            PartitionKey::Symbol => symbol.to_string(),
            PartitionKey::Year => y.to_string(),
            PartitionKey::Month => format!("{m:02}"),
            PartitionKey::Date => format!("{y:04}-{m:02}-{d:02}"),
        }
    }
}

/// How the table is partitioned, in directory order. Saved at [`LAYOUT_FILE`] by the first
/// writer, so readers (the local engine, `catalog`) need no flags to find the partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableLayout {
    pub partition_by: Vec<PartitionKey>,
}

impl TableLayout {
    /// Whether the `symbol` column lives in the files (false when it is a partition key).
    pub fn symbol_in_file(&self) -> bool {
        !self.partition_by.contains(&PartitionKey::Symbol)
    }

    /// The partition directory of a tick, relative to the table folder, e.g.
    /// `symbol=AAPL/year=2013`.
    pub fn partition_dir(&self, symbol: &str, event_time: i64) -> String {
        let mut out = String::new();
        for (i, key) in self.partition_by.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(key.column());
            out.push('=');
            out.push_str(&escape_value(&key.value(symbol, event_time)));
        }
        out
    }

    /// The Arrow fields of the partition columns, in order.
    pub fn partition_fields(&self) -> Vec<arrow::datatypes::Field> {
        self.partition_by
            .iter()
            .map(|k| arrow::datatypes::Field::new(k.column(), k.arrow_type(), false))
            .collect()
    }
}

/// The data file name of one write attempt of a batch that starts at `first_offset` of a Kafka
/// partition: `attempt` (random, per flush) makes it unique, so no writer, however late, can
/// overwrite a file another writer committed; only the Delta log decides which files count.
pub fn attempt_file_name(topic: &str, partition: i32, first_offset: i64, attempt: &str) -> String {
    format!(
        "part-{}-{partition}-{first_offset:020}-{attempt}.parquet",
        escape_value(topic)
    )
}

/// A deterministic data file name for a batch that starts at `first_offset` of a Kafka
/// partition, for lakes written in one go (the lake generator, the benchmark's ceiling); the
/// consumer uses [`attempt_file_name`].
pub fn file_name(topic: &str, partition: i32, first_offset: i64) -> String {
    format!(
        "part-{}-{partition}-{first_offset:020}.parquet",
        escape_value(topic)
    )
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Escapes a partition value for use as a directory name (see the module docs).
pub fn escape_value(v: &str) -> String {
    if v.is_empty() {
        return "%00".into();
    }
    let dots_only = v.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match u8::try_from(c) {
            Ok(b) if b.is_ascii() => {
                if is_plain(b) && !(dots_only && b == b'.') {
                    out.push(c);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            // Non-ASCII stays as it is (UTF-8 in the name): Hive turns each `%XX` into one
            // character, so byte-wise escapes would read back as mojibake there.
            _ => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_value`]. None for a malformed escape or bytes that are not UTF-8.
pub fn unescape_value(s: &str) -> Option<String> {
    if s == "%00" {
        return Some(String::new());
    }
    percent_decode(s)
}

/// Decodes `%XX` sequences. None for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_in_one_directory_and_round_trip() {
        for v in [
            "AAPL",
            "../x",
            "..",
            ".",
            "a/b",
            "%2F",
            ":",
            "with space",
            "ünï©ødé",
            "",
            "=",
            "a=b",
            "BRK.B",
            "^GSPC",
            "*?[]{}\\\"'#",
            "%00",
        ] {
            let e = escape_value(v);
            assert!(
                e.chars()
                    .all(|c| !c.is_ascii() || is_plain(c as u8) || c == '%'),
                "{v:?} -> {e}"
            );
            assert!(e != "." && e != ".." && !e.is_empty(), "{v:?} -> {e}");
            assert_eq!(unescape_value(&e).as_deref(), Some(v), "{v:?} -> {e}");
        }
        assert_ne!(escape_value(""), escape_value("%00"));
        // Non-ASCII stays readable for Hive (one character per `%XX` there).
        assert_eq!(escape_value("ünï/é"), "ünï%2Fé");
    }

    #[test]
    fn partition_dirs_follow_the_layout() {
        let t = crate::tick::parse_iso_millis("2013-03-01T15:30:00Z").unwrap();
        let l = TableLayout {
            partition_by: vec![
                PartitionKey::Symbol,
                PartitionKey::Year,
                PartitionKey::Month,
            ],
        };
        assert_eq!(l.partition_dir("A/B", t), "symbol=A%2FB/year=2013/month=03");
        let l = TableLayout {
            partition_by: vec![PartitionKey::Date],
        };
        assert_eq!(l.partition_dir("X", t), "dt=2013-03-01");
        assert!(l.symbol_in_file());
        assert_eq!(
            attempt_file_name("ticks", 2, 41, "0f3a"),
            "part-ticks-2-00000000000000000041-0f3a.parquet"
        );
    }
}
