//! `stocklake status`: the lake's tables and per Kafka partition the lake's committed offset,
//! with `--brokers` next to the topic's watermarks, the group's committed offset and the lag;
//! as text or one JSON object on stdout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::{ReportFormat, StatusArgs};
use crate::engine::lakestate::human_bytes;
use crate::error::Error;
use crate::kafka::offsets::{PartitionWatermarks, topic_watermarks};
use crate::lake::status::{LakeStatus, TableStatus, lake_status};
use crate::settings::{Settings, defaults};

/// One Kafka partition: the lake's side, and the brokers' when asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
    /// The last offset the ticks table committed.
    lake_offset: Option<i64>,
    rejects_offset: Option<i64>,
    low_watermark: Option<i64>,
    high_watermark: Option<i64>,
    /// The next offset the group reads.
    group_offset: Option<i64>,
    /// high watermark - 1 - lake offset (high - low when the lake has none).
    lag: Option<i64>,
}

/// Where the brokers' figures come from.
#[derive(Debug, Clone, Serialize)]
struct KafkaSource {
    brokers: String,
    topic: String,
    group: String,
}

#[derive(Debug, Serialize)]
struct TableRow<'a> {
    #[serde(flatten)]
    table: &'a TableStatus,
    /// Seconds since the last commit.
    age_seconds: i64,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    lake: &'a str,
    tables: Vec<TableRow<'a>>,
    kafka: Option<KafkaSource>,
    partitions: Vec<PartitionRow>,
}

pub fn run(settings: &Settings, args: &StatusArgs, _quiet: bool) -> Result<(), Error> {
    let lake = settings.lake_url(args.lake.as_ref());
    let status = super::runtime(Some(2))?.block_on(lake_status(&lake, args.target_size / 2))?;
    let (source, marks) = match settings.kafka_if_asked(&args.kafka) {
        Some(kafka) => {
            let topic = match settings.topic_if_set(&args.kafka) {
                Some(t) => t,
                None => one_topic(&status)?,
            };
            let group = settings.group(args.group.as_ref());
            let marks =
                topic_watermarks(&kafka, &topic, Some(&group), defaults::KAFKA_LOOKUP_TIMEOUT)?;
            let source = KafkaSource {
                brokers: kafka.brokers.clone(),
                topic,
                group,
            };
            (Some(source), marks)
        }
        None => (None, Vec::new()),
    };
    let rows = partition_rows(&status, source.as_ref(), &marks);
    let now = Utc::now();
    let report = Report {
        lake: &status.lake,
        tables: status
            .tables
            .iter()
            .map(|t| TableRow {
                table: t,
                age_seconds: (now - t.last_commit).num_seconds(),
            })
            .collect(),
        kafka: source,
        partitions: rows,
    };
    let text = match args.format {
        ReportFormat::Json => {
            serde_json::to_string_pretty(&report).map_err(|e| Error::Io {
                what: "writing the report as JSON".into(),
                source: e.into(),
            })? + "\n"
        }
        ReportFormat::Text => render(&report, now),
    };
    super::audit::print_stdout(&text)
}

/// The one topic the lake's offsets name; an error asking for --topic otherwise.
fn one_topic(status: &LakeStatus) -> Result<String, Error> {
    let mut topics: Vec<&str> = status.partitions.iter().map(|p| p.topic.as_str()).collect();
    topics.dedup();
    match topics.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::Usage(
            "the lake holds no Kafka offsets yet: pass --topic to compare it with the brokers"
                .into(),
        )),
        many => Err(Error::Usage(format!(
            "the lake holds offsets of several topics ({}): pass --topic",
            many.join(", ")
        ))),
    }
}

/// The lake's partitions, joined with the brokers' view of `source`'s topic.
fn partition_rows(
    status: &LakeStatus,
    source: Option<&KafkaSource>,
    marks: &[PartitionWatermarks],
) -> Vec<PartitionRow> {
    let mut rows: BTreeMap<(String, i32), PartitionRow> = status
        .partitions
        .iter()
        .map(|p| {
            let row = PartitionRow {
                topic: p.topic.clone(),
                partition: p.partition,
                lake_offset: p.lake_offset,
                rejects_offset: p.rejects_offset,
                low_watermark: None,
                high_watermark: None,
                group_offset: None,
                lag: None,
            };
            ((p.topic.clone(), p.partition), row)
        })
        .collect();
    if let Some(source) = source {
        for m in marks {
            let row = rows
                .entry((source.topic.clone(), m.partition))
                .or_insert_with(|| PartitionRow {
                    topic: source.topic.clone(),
                    partition: m.partition,
                    lake_offset: None,
                    rejects_offset: None,
                    low_watermark: None,
                    high_watermark: None,
                    group_offset: None,
                    lag: None,
                });
            row.low_watermark = Some(m.low);
            row.high_watermark = Some(m.high);
            row.group_offset = m.group_offset;
            row.lag = Some(match row.lake_offset {
                Some(c) => m.high - 1 - c,
                None => m.high - m.low,
            });
        }
    }
    rows.into_values().collect()
}

/// `3s ago`, `2h 5m ago`: whole seconds, at most two units.
fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - since).num_seconds();
    if secs < 0 {
        return "in the future".into();
    }
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut left = secs;
    let mut parts = Vec::new();
    for (name, size) in units {
        if left >= size && parts.len() < 2 {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        }
    }
    if parts.is_empty() {
        "0s ago".into()
    } else {
        format!("{} ago", parts.join(" "))
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn render(r: &Report<'_>, now: DateTime<Utc>) -> String {
    let mut out = format!("lake {}\n\n", r.lake);
    let small_below = r.tables.first().map_or(0, |t| t.table.small_below);
    let tables: Vec<Vec<String>> = r
        .tables
        .iter()
        .map(|t| {
            let t = t.table;
            vec![
                t.table.clone(),
                t.version.to_string(),
                t.files.to_string(),
                t.rows.to_string(),
                human_bytes(t.bytes),
                t.small_files.to_string(),
                format!(
                    "{} ({})",
                    t.last_commit
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    age(t.last_commit, now)
                ),
            ]
        })
        .collect();
    out.push_str(&super::audit::table(
        &[
            "table",
            "version",
            "files",
            "rows",
            "bytes",
            "small files",
            "last commit",
        ],
        &tables,
    ));
    out.push_str(&format!(
        "small files: under {} (half of compact's --target-size)\n\n",
        human_bytes(small_below)
    ));
    match &r.kafka {
        Some(k) => out.push_str(&format!(
            "Kafka: topic {} on {}, group {}\n",
            k.topic, k.brokers, k.group
        )),
        None => out.push_str("Kafka partitions (the lake's side; --brokers adds the topic's)\n"),
    }
    if r.partitions.is_empty() {
        out.push_str("no Kafka partition committed yet\n");
        return out;
    }
    let rows: Vec<Vec<String>> = r
        .partitions
        .iter()
        .map(|p| {
            let mut row = vec![
                p.topic.clone(),
                p.partition.to_string(),
                opt(p.lake_offset),
                opt(p.rejects_offset),
            ];
            if r.kafka.is_some() {
                row.extend([
                    opt(p.low_watermark),
                    opt(p.high_watermark),
                    opt(p.group_offset),
                    opt(p.lag),
                ]);
            }
            row
        })
        .collect();
    let mut headers = vec!["topic", "partition", "lake offset", "rejects offset"];
    if r.kafka.is_some() {
        headers.extend(["low", "high", "group offset", "lag"]);
    }
    out.push_str(&super::audit::table(&headers, &rows));
    if r.kafka.is_some() {
        out.push_str(
            "lake offset: last offset committed to the lake; group offset: next offset the group \
             reads; lag = high - 1 - lake offset\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_show_two_units_at_most() {
        let now = Utc::now();
        let ago = |s: i64| age(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(0), "0s ago");
        assert_eq!(ago(59), "59s ago");
        assert_eq!(ago(3_725), "1h 2m ago");
        assert_eq!(ago(2 * 86_400 + 7), "2d 7s ago");
        assert_eq!(
            age(now + chrono::Duration::seconds(5), now),
            "in the future"
        );
    }
}
