//! `stocklake audit`: runs the lake's exactly-once audit (`lake::audit`), adds the brokers'
//! watermarks with `--brokers`, prints the report (text or JSON) on stdout and the time it took
//! on stderr, and fails (exit status 1) when it found a problem.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Instant;

use crate::cli::{AuditArgs, ReportFormat};
use crate::error::Error;
use crate::kafka::offsets::topic_watermarks;
use crate::lake::LakeError;
use crate::lake::audit::{AuditReport, Finding, FindingKind, PartitionAudit, audit_lake};
use crate::settings::{Settings, defaults};

pub fn run(settings: &Settings, args: &AuditArgs, quiet: bool) -> Result<(), Error> {
    let lake = settings.lake_url(args.lake.as_ref());
    let started = Instant::now();
    let topic = settings.topic_if_set(&args.kafka);
    let mut report = super::runtime(None)?.block_on(audit_lake(&lake, topic.as_deref()))?;
    let read = started.elapsed();
    let mut kafka_source = None;
    if let Some(kafka) = settings.kafka_if_asked(&args.kafka) {
        let Some(topic) = report.topic.clone() else {
            return Err(Error::Usage(
                "the lake holds no Kafka offsets yet: pass --topic to compare it with the brokers"
                    .into(),
            ));
        };
        let marks = topic_watermarks(&kafka, &topic, None, defaults::KAFKA_LOOKUP_TIMEOUT)?;
        let by_partition: BTreeMap<i32, (i64, i64)> = marks
            .iter()
            .map(|m| (m.partition, (m.low, m.high)))
            .collect();
        report.add_kafka(&by_partition);
        kafka_source = Some(kafka.brokers);
    }
    let text = match args.format {
        ReportFormat::Json => {
            let mut value = serde_json::to_value(&report).map_err(json_err)?;
            value["problems"] = report.problems().into();
            value["seconds"] = read.as_secs_f64().into();
            serde_json::to_string_pretty(&value).map_err(json_err)? + "\n"
        }
        ReportFormat::Text => render(&report, kafka_source.as_deref()),
    };
    print_stdout(&text)?;
    if !quiet {
        eprintln!(
            "read {} rows of {} files in {:.2} s",
            report.rows,
            report.files,
            read.as_secs_f64()
        );
    }
    match report.problems() {
        0 => Ok(()),
        n => Err(Error::Lake(LakeError::Data {
            location: lake,
            message: format!(
                "the audit found {n} problem{} (listed above)",
                if n == 1 { "" } else { "s" }
            ),
        })),
    }
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Io {
        what: "writing the report as JSON".into(),
        source: e.into(),
    }
}

/// Writes `text` to stdout.
pub(crate) fn print_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::io("writing to stdout"))
}

/// An aligned text table: left-aligned first column, the others right-aligned.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i == 0 {
                s.push_str(&format!("{cell:<w$}"));
            } else {
                s.push_str(&format!("  {cell:>w$}"));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// `offsets 10..=12 (3)` or `offset 10`.
fn range(first: i64, last: i64) -> String {
    if first == last {
        format!("offset {first}")
    } else {
        format!("offsets {first}..={last} ({})", last - first + 1)
    }
}

/// Where a duplicate's copies are: `2 times in ticks`, `in ticks and in rejects`, ….
fn copies(f: &Finding) -> String {
    let times = |n: u32| {
        if n == 1 {
            String::new()
        } else {
            format!("{n} times ")
        }
    };
    match (f.in_ticks, f.in_rejects) {
        (0, r) => format!("{}in rejects", times(r)),
        (t, 0) => format!("{}in ticks", times(t)),
        (t, r) => format!("{}in ticks and {}in rejects", times(t), times(r)),
    }
}

fn describe(f: &Finding, p: &PartitionAudit) -> String {
    let committed = p.committed.map_or("none".into(), |c| c.to_string());
    match f.kind {
        FindingKind::Gap => format!("GAP        {}: in neither table", range(f.first, f.last)),
        FindingKind::Duplicate => format!("DUPLICATE  {}: {}", range(f.first, f.last), copies(f)),
        FindingKind::Uncommitted => format!(
            "UNCOMMITTED {}: {} above the committed offset ({committed})",
            range(f.first, f.last),
            copies(f)
        ),
        FindingKind::RejectsAhead => format!(
            "note: {} in rejects above the committed offset ({committed}), covered by the \
             rejects table's ({}): a flush between its two commits",
            range(f.first, f.last),
            p.rejects_committed.unwrap_or_default()
        ),
        FindingKind::NoRows => format!(
            "NO ROWS    the lake commits offsets up to {} but holds none of this partition",
            f.first
        ),
    }
}

fn kafka_lines(p: &PartitionAudit, out: &mut String) {
    let Some(k) = &p.kafka else { return };
    let holds = if k.high > k.low {
        format!("Kafka holds offsets {}..={}", k.low, k.high - 1)
    } else {
        format!("Kafka holds no offset (next: {})", k.high)
    };
    let missing = match k.not_in_lake {
        Some((a, b)) => format!("; not yet in the lake: {}", range(a, b)),
        None => "; the lake has all of them".into(),
    };
    out.push_str(&format!("  {holds}{missing}\n"));
    if let Some(first) = p.coverage.first {
        if first < k.low {
            out.push_str(&format!(
                "  the lake starts at {first}, below Kafka's low watermark {}: the lake is the only copy of offsets {first}..={}\n",
                k.low,
                k.low - 1
            ));
        } else if let Some((a, b)) = k.before_lake {
            out.push_str(&format!(
                "  note: the lake starts at {first}, above Kafka's low watermark {}: Kafka still holds {} that the lake never had (the consumer started after them)\n",
                k.low,
                range(a, b)
            ));
        }
    }
    if k.lake_ahead {
        out.push_str(&format!(
            "  LAKE AHEAD the lake's committed offset {} is at or past the topic's end {} (was the topic re-created?)\n",
            p.committed.unwrap_or_default(),
            k.high
        ));
    }
}

fn render(r: &AuditReport, brokers: Option<&str>) -> String {
    let mut out = format!(
        "audit of {} (ticks version {}, rejects {}), topic {}{}\n",
        r.lake,
        r.ticks_version,
        r.rejects_version
            .map_or("none".into(), |v| format!("version {v}")),
        r.topic.as_deref().unwrap_or("none (no committed offset)"),
        brokers.map_or(String::new(), |b| format!(", Kafka on {b}"))
    );
    for p in &r.partitions {
        let held = match (p.coverage.first, p.coverage.last) {
            (Some(a), Some(b)) => format!("offsets {a}..={b}"),
            _ => "no offsets".into(),
        };
        let verdict = if p.problems() == 0 { "OK" } else { "FAILED" };
        out.push_str(&format!(
            "partition {}: {verdict}: {held}: {} ticks + {} rejects, {} distinct offsets; committed offset {}\n",
            p.partition,
            p.coverage.ticks,
            p.coverage.rejects,
            p.coverage.distinct,
            p.committed.map_or("none".into(), |c| c.to_string()),
        ));
        for f in &p.coverage.findings {
            out.push_str(&format!("  {}\n", describe(f, p)));
        }
        kafka_lines(p, &mut out);
    }
    if r.rows_without_offset > 0 {
        out.push_str(&format!(
            "ROWS WITHOUT OFFSET {} rows have no Kafka partition or offset\n",
            r.rows_without_offset
        ));
    }
    let n = r.problems();
    if n == 0 {
        out.push_str(&format!(
            "result: OK: every committed offset of {} partition{} is in the lake exactly once ({} rows)\n",
            r.partitions.len(),
            if r.partitions.len() == 1 { "" } else { "s" },
            r.rows
        ));
    } else {
        out.push_str(&format!(
            "result: FAILED: {n} problem{}\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    out
}
