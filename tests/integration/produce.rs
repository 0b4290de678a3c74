//! `stocklake produce` end to end against the embedded broker, through the real binary.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use stocklake::tick::Tick;

use crate::harness::kafka::{Record, broker_with_topic, produce_file, read_topic, topic_size};
use crate::harness::lake::assert_same_ticks;
use crate::harness::{cmd, fixture, sample_csv, sample_ticks, stderr};

#[test]
fn the_whole_sample_file_arrives_once_keyed_and_in_order() {
    let (broker, topic) = broker_with_topic(3);
    let out = produce_file(&sample_csv(), broker.bootstrap_servers(), &topic).output();
    assert!(out.status.success(), "produce failed: {}", stderr(&out));
    assert!(
        stderr(&out).contains("12154 acknowledged, 0 failed"),
        "{}",
        stderr(&out)
    );

    let csv_ticks = sample_ticks();
    let records = read_topic(
        broker.bootstrap_servers(),
        &topic,
        3,
        csv_ticks.len(),
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), 12_154, "every row exactly once");
    assert_eq!(topic_size(broker.bootstrap_servers(), &topic, 3), 12_154);

    let mut partition_of: HashMap<String, i32> = HashMap::new();
    let mut last_time: HashMap<String, i64> = HashMap::new();
    let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in &records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut received = Vec::with_capacity(records.len());
    for (_, mut recs) in by_partition {
        recs.sort_by_key(|r| r.offset);
        for r in recs {
            let tick = Tick::decode_json(&r.value).expect("valid wire format");
            assert_eq!(
                r.key.as_deref(),
                Some(tick.symbol.as_bytes()),
                "key = symbol"
            );
            let p = *partition_of
                .entry(tick.symbol.clone())
                .or_insert(r.partition);
            assert_eq!(p, r.partition, "{} on two partitions", tick.symbol);
            if let Some(prev) = last_time.insert(tick.symbol.clone(), tick.event_time) {
                assert!(
                    prev < tick.event_time,
                    "{} out of event-time order",
                    tick.symbol
                );
            }
            received.push(tick);
        }
    }
    assert!(
        partition_of
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "keys spread over partitions"
    );

    // Same values as the CSV, row for row.
    assert_same_ticks(received, csv_ticks);
}

#[test]
fn a_malformed_row_fails_before_anything_is_sent() {
    let (broker, topic) = broker_with_topic(1);
    let bad = fixture("csv/bad_price.csv");
    let out = produce_file(&bad, broker.bootstrap_servers(), &topic).output();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad_price.csv:3:4 (High)"), "{err}");
    assert_eq!(
        topic_size(broker.bootstrap_servers(), &topic, 1),
        0,
        "nothing sent"
    );
}

#[test]
fn skip_sends_the_good_rows_and_says_what_it_skipped() {
    let (broker, topic) = broker_with_topic(1);
    let bad = fixture("csv/bad_fields.csv");
    let out = produce_file(&bad, broker.bootstrap_servers(), &topic)
        .args(["--on-error", "skip"])
        .output();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("skipped 3 malformed row(s)"), "{err}");
    assert!(err.contains("bad_fields.csv:4:6 (Close)"), "{err}");
    let records = read_topic(
        broker.bootstrap_servers(),
        &topic,
        1,
        1,
        Duration::from_secs(20),
    );
    assert_eq!(records.len(), 1);
}

#[test]
fn synthetic_events_with_a_limit_and_a_rate() {
    let (broker, topic) = broker_with_topic(2);
    let out = cmd(&[
        "produce",
        "--synthetic",
        "--symbols",
        "20",
        "--rows",
        "100000",
        "--seed",
        "3",
        "--limit",
        "300",
        "--rate",
        "2000",
        "--brokers",
        broker.bootstrap_servers(),
        "--topic",
        &topic,
    ])
    .output();
    assert!(out.status.success(), "{}", stderr(&out));
    let records = read_topic(
        broker.bootstrap_servers(),
        &topic,
        2,
        300,
        Duration::from_secs(30),
    );
    assert_eq!(records.len(), 300);
    let symbols: std::collections::HashSet<_> = records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(symbols.len(), 20);
}

#[test]
fn unacknowledged_events_make_the_exit_status_non_zero() {
    // Nothing listens on this port: every delivery times out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = cmd(&["produce"])
        .arg(fixture("csv/bokeh.csv"))
        .args(["--brokers", &format!("127.0.0.1:{port}")])
        .args(["-X", "message.timeout.ms=1500", "-q"])
        .output();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("4 of 4 events were not acknowledged"), "{err}");
}

#[test]
fn delay_paces_like_the_tutorial() {
    let (broker, topic) = broker_with_topic(1);
    let started = std::time::Instant::now();
    let out = produce_file(
        &fixture("csv/bokeh.csv"),
        broker.bootstrap_servers(),
        &topic,
    )
    .args(["--delay", "200ms"])
    .output();
    assert!(out.status.success(), "{}", stderr(&out));
    // Four events, three gaps of 200 ms: an outcome check, not a performance target.
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(topic_size(broker.bootstrap_servers(), &topic, 1), 4);
}

#[test]
fn sigterm_stops_reading_waits_for_deliveries_and_prints_the_summary() {
    let (broker, topic) = broker_with_topic(1);
    let child = produce_file(&sample_csv(), broker.bootstrap_servers(), &topic)
        .args(["--delay", "100ms"])
        .stderr(std::process::Stdio::piped())
        .spawn();
    std::thread::sleep(Duration::from_millis(1500));
    child.signal(libc::SIGTERM);
    let out = child.wait_with_output();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let summary = err
        .lines()
        .find(|l| l.starts_with("interrupted: sent "))
        .unwrap_or_else(|| panic!("{err}"));
    let sent: i64 = summary.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(sent > 3 && sent < 100, "{summary}");
    assert!(
        summary.contains(&format!("{sent} acknowledged, 0 failed, 0 unconfirmed")),
        "{summary}"
    );
    assert_eq!(
        topic_size(broker.bootstrap_servers(), &topic, 1),
        sent,
        "everything sent was delivered"
    );
}
