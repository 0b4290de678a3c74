//! `consume --metrics`: a scrape of /metrics during a run agrees with the run's own summary
//! (events, rows, rejects by reason, files, commits, per-partition lake offsets), and /healthz
//! follows the member's assignment.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::cmd::Running;
use crate::harness::kafka::{
    SHORT_SESSION, broker_with_topic, consume, partition_sizes, produce_raw,
};
use crate::harness::{sample_ticks, unique};

/// `GET path` on `addr`: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    crate::harness::http(addr, "GET", path, "")
}

/// The value of the sample `name` (with its labels, exactly as exposed), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of every sample of the family `name` (all label sets).
fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits for `cond` (up to `secs`), panicking with `what` when it never holds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a consumer with `--metrics 127.0.0.1:0`, stderr to `log`; returns it and the address
/// it says it serves on.
fn consumer_with_metrics(
    bootstrap: &str,
    topic: &str,
    group: &str,
    lake: &Path,
    log: &Path,
) -> (Running, String) {
    let file = std::fs::File::create(log).unwrap();
    let child = consume(bootstrap, topic, group, lake)
        .args(SHORT_SESSION)
        .args(["--flush-interval", "200ms", "--metrics", "127.0.0.1:0"])
        .args(["-v", "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn();
    let mut addr = String::new();
    wait_for(20, "the metrics address in the consumer's log", || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        match text
            .lines()
            .find_map(|l| l.strip_prefix("metrics on http://")?.split('/').next())
        {
            Some(a) => {
                addr = a.to_string();
                true
            }
            None => false,
        }
    });
    (child, addr)
}

#[test]
fn a_scrape_during_a_run_agrees_with_the_runs_summary() {
    let (broker, topic) = broker_with_topic(3);
    let bootstrap = broker.bootstrap_servers().to_string();
    let mut messages: Vec<(Vec<u8>, Vec<u8>)> = sample_ticks()
        .into_iter()
        .map(|t| (t.symbol.clone().into_bytes(), t.to_json().into_bytes()))
        .collect();
    let good = messages.len();
    for i in 0..7 {
        messages.push((b"AAA".to_vec(), format!("not json {i}").into_bytes()));
    }
    for i in 0..4 {
        messages.push((
            b"AAA".to_vec(),
            format!(r#"{{"symbol":"AAA","event_time":"tomorrow {i}"}}"#).into_bytes(),
        ));
    }
    produce_raw(&bootstrap, &topic, &messages);
    let total = messages.len() as f64;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("consume.log");
    let (mut child, addr) = consumer_with_metrics(
        &bootstrap,
        &topic,
        &unique("g"),
        &dir.path().join("lake"),
        &log,
    );
    let mut text = String::new();
    // Counters move at each commit; the partitions' gauges within a quarter second after.
    wait_for(60, "every event committed, as /metrics tells", || {
        text = get(&addr, "/metrics").1;
        sample(&text, "stocklake_consumer_rows_committed_total").unwrap_or(0.0)
            + family_sum(&text, "stocklake_consumer_events_rejected_total")
            == total
            && family_sum(&text, "stocklake_consumer_partition_lake_offset") == total
    });
    let (code, health) = get(&addr, "/healthz");
    assert_eq!(code, 200, "{health}");
    let h: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(h["assigned_partitions"], serde_json::json!([0, 1, 2]));
    child.signal(libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    // --log-format json: log lines are JSON objects (the summary is not a log line).
    let json: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        json.iter().any(|v| v["level"] == "INFO"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("flushed "))),
        "{log}"
    );
    // "committed R rows in F files (… MiB) and J rejects in N flushes, …"
    let summary = log
        .lines()
        .find(|l| l.starts_with("committed "))
        .unwrap_or_else(|| panic!("no summary in\n{log}"));
    let words: Vec<&str> = summary.split_whitespace().collect();
    let num = |i: usize| words[i].parse::<f64>().unwrap();
    let (rows, files, rejects, flushes) = (num(1), num(4), num(9), num(12));
    assert_eq!(rows, good as f64, "{summary}");
    assert_eq!(rejects, 11.0, "{summary}");
    let m = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"));
    assert_eq!(m("stocklake_consumer_rows_committed_total"), rows);
    assert_eq!(m("stocklake_consumer_events_read_total"), total);
    assert_eq!(m("stocklake_consumer_files_written_total"), files);
    assert_eq!(m("stocklake_consumer_commits_total"), flushes);
    assert_eq!(
        m("stocklake_consumer_commit_duration_seconds_count"),
        flushes
    );
    assert_eq!(m("stocklake_consumer_flush_events_sum"), total);
    assert_eq!(
        m("stocklake_consumer_events_rejected_total{reason=\"not a valid tick JSON object\"}"),
        7.0,
        "{text}"
    );
    assert_eq!(
        family_sum(&text, "stocklake_consumer_events_rejected_total"),
        rejects
    );
    assert!(m("stocklake_consumer_bytes_written_total") > 0.0);
    assert!(m("stocklake_consumer_last_commit_timestamp_seconds") > 1.7e9);
    assert_eq!(m("stocklake_consumer_assigned_partitions"), 3.0);
    for (p, size) in partition_sizes(&bootstrap, &topic, 3) {
        let offset = m(&format!(
            "stocklake_consumer_partition_lake_offset{{partition=\"{p}\"}}"
        ));
        assert_eq!(offset, size as f64, "partition {p}");
        assert_eq!(
            m(&format!(
                "stocklake_consumer_partition_lag{{partition=\"{p}\"}}"
            )),
            0.0
        );
    }
}

#[test]
fn healthz_follows_the_members_assignment() {
    let (broker, topic) = broker_with_topic(1);
    let bootstrap = broker.bootstrap_servers().to_string();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = unique("g");
    let (mut a, a_addr) =
        consumer_with_metrics(&bootstrap, &topic, &group, &lake, &dir.path().join("a.log"));
    wait_for(30, "a's /healthz to say healthy", || {
        get(&a_addr, "/healthz").0 == 200
    });
    // A second member of the group, on a topic of one partition: one of the two holds it, and
    // the other's /healthz says it holds none.
    let (mut b, b_addr) =
        consumer_with_metrics(&bootstrap, &topic, &group, &lake, &dir.path().join("b.log"));
    let mut states = (0, 0);
    wait_for(30, "one member healthy and the other not", || {
        states = (get(&a_addr, "/healthz").0, get(&b_addr, "/healthz").0);
        matches!(states, (200, 503) | (503, 200))
    });
    let (holder, holder_addr, other, other_addr) = if states.0 == 200 {
        (&mut a, &a_addr, &mut b, &b_addr)
    } else {
        (&mut b, &b_addr, &mut a, &a_addr)
    };
    let (_, body) = get(other_addr, "/healthz");
    assert!(body.contains("no partitions assigned"), "{body}");
    // Stop the holder: it leaves the group, and the other member takes the partition over.
    let _ = holder_addr;
    holder.signal(libc::SIGTERM);
    assert!(holder.wait().unwrap().success());
    wait_for(30, "the other member to hold the partition", || {
        get(other_addr, "/healthz").0 == 200
    });
    let (_, body) = get(other_addr, "/healthz");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["assigned_partitions"], serde_json::json!([0]));
    other.signal(libc::SIGTERM);
    assert!(other.wait().unwrap().success());
}
