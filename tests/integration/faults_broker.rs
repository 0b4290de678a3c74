//! Broker faults through librdkafka's mock cluster (`rdkafka::mocking`): request errors pushed
//! for Produce, Fetch, OffsetCommit, JoinGroup and Heartbeat, the broker set down and up again,
//! added round-trip time. `stocklake produce` gets every event acknowledged, once, or names how
//! many were not and exits 1; `stocklake consume` rides out a 10 s outage mid-stream and every
//! fault here, and the lake ends with every event of the topic exactly once.
//!
//! Each test prints a `FAULT |` line with its numbers (run with `--nocapture` to see them).
//!
//! A limit of the mock, not of stocklake: it checks an idempotent producer's sequence numbers
//! only for transactional producers, so a Produce request that is appended but answered too
//! late (an RTT above `request.timeout.ms`) is appended again when retried, where a real broker
//! answers DUPLICATE_SEQUENCE_NUMBER. Such faults are not tried here.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaApiKey::{Fetch, Heartbeat, JoinGroup, OffsetCommit, Produce};
use serde_json::Value;

use crate::harness::cmd::Running;
use crate::harness::faulty::Faulty;
use crate::harness::kafka::{
    background_stream, consume, idle_consumer, partition_sizes, read_topic, stream_until,
    topic_size,
};
use crate::harness::lake::{assert_exactly_once, log_commits as commits, read_lake};
use crate::harness::{cmd, stderr, stdout, unique};

/// `stocklake produce --synthetic` of `rows` events over 20 symbols, with `extra` flags.
fn produce(f: &Faulty, rows: u64, extra: &[&str]) -> Running {
    let rows = rows.to_string();
    let bootstrap = f.bootstrap();
    cmd(&["produce", "--synthetic", "--symbols", "20", "--seed", "7"])
        .args([
            "--rows",
            &rows,
            "--brokers",
            &bootstrap,
            "--topic",
            &f.topic,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// What a topic holds: (events, distinct events). Synthetic events differ in (symbol, time),
/// so two equal payloads are one event delivered twice.
fn topic_events(f: &Faulty, expected: usize) -> (usize, usize) {
    let records = read_topic(
        &f.bootstrap(),
        &f.topic,
        f.partitions,
        expected,
        Duration::from_secs(20),
    );
    let distinct: HashSet<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
    (records.len(), distinct.len())
}

/// (N, M) of "error: N of M events were not acknowledged by the broker…", which must be the
/// run's last line (exit status 1), with `reason` after the colon.
fn unacknowledged(out: &Output, reason: &str) -> (u64, u64) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.splitn(5, ' ').collect();
    let [error, n, of, m, rest] = words[..] else {
        panic!("the last line is not the error: {err}");
    };
    assert_eq!((error, of), ("error:", "of"), "{err}");
    assert!(
        rest.starts_with("events were not acknowledged by the broker"),
        "{err}"
    );
    let (_, why) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("no reason: {err}"));
    assert!(why.contains(reason), "the reason is not {reason:?}: {err}");
    let number = |s: &str| s.parse().unwrap_or_else(|_| panic!("no count: {err}"));
    (number(n), number(m))
}

/// Waits until the topic holds at least `n` events (at most 15 s).
fn wait_for_events(f: &Faulty, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while topic_size(&f.bootstrap(), &f.topic, f.partitions) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} events after 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints a row of the faults table.
fn row(fault: &str, what: &str, produced: u64, in_lake: usize, duplicates: usize, lost: u64) {
    eprintln!("FAULT | {fault} | {what} | {produced} | {in_lake} | {duplicates} | {lost} |");
}

/// A `produce` of `rows` events that must exit 0 with the topic holding each event once.
fn assert_all_delivered_once(f: &Faulty, out: &Output, rows: u64, fault: &str, took: Duration) {
    assert!(out.status.success(), "{}", stderr(out));
    let (events, distinct) = topic_events(f, rows as usize);
    row(
        fault,
        &format!("exit 0 in {took:.1?}"),
        rows,
        events,
        events - distinct,
        0,
    );
    assert_eq!(
        (events, distinct),
        (rows as usize, rows as usize),
        "events, distinct"
    );
}

/// A `produce` of `rows` events that must exit 1 naming N of M events not acknowledged for
/// `reason`, with the topic holding the M - N others once. Returns (N, M, whether sending
/// stopped at a refused event).
fn assert_named_unacknowledged(
    f: &Faulty,
    out: &Output,
    rows: u64,
    reason: &str,
    fault: &str,
) -> (u64, u64, bool) {
    let (failed, total) = unacknowledged(out, reason);
    let stopped = stderr(out).contains("acknowledged by the broker, and sending stopped there: ");
    let (events, distinct) = topic_events(f, (total - failed) as usize);
    let what = format!("exit 1: {failed} of {total} not acknowledged (stopped: {stopped})");
    row(fault, &what, total, events, events - distinct, 0);
    assert!(
        failed > 0 && failed <= total && total <= rows,
        "{failed} of {total}"
    );
    assert!(stopped || total == rows, "{}", stderr(out));
    assert_eq!((events as u64, distinct), (total - failed, events));
    (failed, total, stopped)
}

/// `produce` of 3000 events at 3000/s after `errors` were pushed for Produce requests; every
/// pushed error must have been answered.
fn produce_after(f: &Faulty, errors: &str) -> Output {
    f.push(Produce, errors);
    let out = produce(f, 3000, &["--rate", "3000"]).wait_with_output();
    assert_eq!(f.left(Produce), 0, "every pushed error was answered");
    out
}

/// [`produce_after`] `errors` on a new cluster, which must fail as
/// [`assert_named_unacknowledged`] says. Returns the error line, whether sending stopped, and
/// how many events it named of how many.
fn produce_fails_after(errors: &str, reason: &str) -> (String, bool, u64, u64) {
    let f = Faulty::new(3);
    let out = produce_after(&f, errors);
    let fault = format!("Produce: {errors}");
    let (failed, total, stopped) = assert_named_unacknowledged(&f, &out, 3000, reason, &fault);
    let err = stderr(&out);
    (
        err.lines().last().unwrap_or_default().to_string(),
        stopped,
        failed,
        total,
    )
}

#[test]
fn produce_retries_retriable_produce_errors_and_delivers_every_event_once() {
    let f = Faulty::new(3);
    f.rtt(20);
    let started = Instant::now();
    let out = produce_after(
        &f,
        "NOT_LEADER_FOR_PARTITION REQUEST_TIMED_OUT NOT_ENOUGH_REPLICAS LEADER_NOT_AVAILABLE \
         NOT_ENOUGH_REPLICAS_AFTER_APPEND KAFKA_STORAGE_ERROR _TRANSPORT NOT_LEADER_FOR_PARTITION \
         REQUEST_TIMED_OUT",
    );
    let fault = "Produce: 9 retriable errors (one a disconnect), RTT 20 ms";
    assert_all_delivered_once(&f, &out, 3000, fault, started.elapsed());
}

#[test]
fn produce_names_the_events_a_non_retriable_error_failed_and_exits_1() {
    let (_, stopped, _, total) =
        produce_fails_after("INVALID_RECORD MSG_SIZE_TOO_LARGE", "InvalidRecord");
    assert_eq!((total, stopped), (3000, false));
}

#[test]
fn produce_names_the_events_a_refused_topic_failed_and_exits_1() {
    // librdkafka keeps TOPIC_AUTHORIZATION_FAILED as the topic's state: the next event is
    // refused at once (sending stops there, the events in flight are still waited for), or,
    // when every event was queued already, the rest of the queue fails with it.
    produce_fails_after("TOPIC_AUTHORIZATION_FAILED", "Topic authorization failed");
}

#[test]
fn produce_names_the_events_a_fatal_idempotence_error_failed_and_exits_1() {
    // OUT_OF_ORDER_SEQUENCE_NUMBER on the first request in flight is a fatal error of the
    // idempotent producer: librdkafka purges what it holds and refuses the next event. The
    // error names the fatal error, not the purge.
    let (line, ..) = produce_fails_after("OUT_OF_ORDER_SEQUENCE_NUMBER", "fatal error: ");
    let why = "fatal error: OutOfOrderSequenceNumber (Broker: Broker received an out of order \
               sequence number): ProduceRequest for ";
    assert!(line.contains(why), "{line}");
}

/// `produce` of `rows` events at 1000/s with `extra` flags, and the broker down for `outage`
/// once the topic holds its first 100 events.
fn produce_through_an_outage(f: &Faulty, rows: u64, extra: &[&str], outage: Duration) -> Output {
    let run = produce(f, rows, &[&["--rate", "1000"][..], extra].concat());
    wait_for_events(f, 100);
    f.down();
    std::thread::sleep(outage);
    f.up();
    run.wait_with_output()
}

#[test]
fn produce_rides_out_a_broker_outage_shorter_than_the_message_timeout() {
    let f = Faulty::new(3);
    let started = Instant::now();
    let out = produce_through_an_outage(&f, 3000, &[], Duration::from_secs(3));
    let fault = "broker down 3 s mid-run (message.timeout.ms 60 s)";
    assert_all_delivered_once(&f, &out, 3000, fault, started.elapsed());
}

#[test]
fn produce_names_the_events_an_outage_longer_than_the_message_timeout_failed() {
    // Events wait at most 2 s for their acknowledgement; the producer reconnects within 0.5 s
    // of the broker's return, so the events of the last seconds are delivered.
    let f = Faulty::new(3);
    let timeout = "message.timeout.ms=2000";
    let reconnect = "reconnect.backoff.max.ms=500";
    let extra = ["-X", timeout, "-X", reconnect];
    let out = produce_through_an_outage(&f, 6000, &extra, Duration::from_secs(4));
    let fault = "broker down 4 s mid-run, message.timeout.ms 2 s";
    let (failed, total, _) =
        assert_named_unacknowledged(&f, &out, 6000, "Message timed out", fault);
    assert!(
        failed < total,
        "events before and after the outage were delivered"
    );
}

/// A flush a second: commits to the lake and to Kafka while the faults happen, and not so
/// many small files that reading the lake back takes long.
const FLUSHES: [&str; 5] = ["--flush-rows", "1000", "--flush-interval", "1s", "-q"];

/// Commits of the ticks table that claim partitions (a `txn` and no data file): one per
/// assignment of partitions to a member.
fn claims(lake: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(lake.join("ticks/_delta_log")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            text.contains("\"txn\"") && !text.contains("\"add\"")
        })
        .count()
}

/// Waits for `child` to end (at most `limit`, then it is killed); true when it exited with 0.
fn ends_ok(mut child: Running, limit: Duration, log: &Path) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("waiting for the consumer") {
            if !status.success() {
                eprintln!("{}", std::fs::read_to_string(log).unwrap_or_default());
            }
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the consumer did not end within {limit:?}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// What the lake holds against the topic: prints the table row, then asserts every event of
/// the topic once in the lake (read through its Delta log here, and by `stocklake audit
/// --brokers`, which also compares with the topic's end).
fn assert_lake_exactly_once(f: &Faulty, lake: &Path, fault: &str, what: &str) {
    let bootstrap = f.bootstrap();
    let sizes = partition_sizes(&bootstrap, &f.topic, f.partitions);
    let produced: i64 = sizes.values().sum();
    let rows = read_lake(lake);
    let distinct: HashSet<(i32, i64)> = rows.iter().map(|r| (r.partition, r.offset)).collect();
    let lost = sizes
        .iter()
        .map(|(p, n)| (0..*n).filter(|o| !distinct.contains(&(*p, *o))).count())
        .sum::<usize>();
    row(
        fault,
        what,
        produced as u64,
        rows.len(),
        rows.len() - distinct.len(),
        lost as u64,
    );
    assert_exactly_once(&rows, &sizes);
    let out = cmd(&["audit", "--lake"])
        .arg(lake)
        .args(["--brokers", &bootstrap, "--format", "json"])
        .output();
    let report: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    assert!(out.status.success(), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["problems"], 0, "{report:#}");
    assert_eq!(report["rows"], produced, "{report:#}");
}

/// A stream of events at 500/s into a new topic while `stocklake consume` (until idle) reads
/// it into a new lake; once the lake has its first flushes, the `errors` (names, see
/// `error_codes`) are pushed for their requests and `rtt_ms` is added, and the stream goes on
/// until every pushed error was taken by a request (at least 3 s, at most 30 s in all). Then
/// the lake must hold every event once. Returns how many claims the table holds.
fn consume_under_faults(errors: &[(RDKafkaApiKey, &str)], rtt_ms: u64) -> usize {
    let f = &Faulty::new(3);
    let mut fault: Vec<String> = errors.iter().map(|(a, e)| format!("{a:?}: {e}")).collect();
    if rtt_ms > 0 {
        fault.push(format!("RTT +{rtt_ms} ms"));
    }
    let fault = format!("{}, mid-stream", fault.join("; "));
    let started = Instant::now();
    let bootstrap = f.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let stop = Arc::new(AtomicBool::new(false));
    let stream = stream_until(&bootstrap, &f.topic, 500.0, stop.clone());
    let log = dir.path().join("consume.log");
    let consumer = idle_consumer(&bootstrap, &f.topic, &unique("g"), &lake)
        .args(FLUSHES)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn();
    let deadline = started + Duration::from_secs(30);
    while commits(&lake) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = read_lake(&lake).len();
    for (api, names) in errors {
        f.push(*api, names);
    }
    f.rtt(rtt_ms);
    let left = || errors.iter().map(|(api, _)| f.left(*api)).sum::<usize>();
    while Instant::now() < deadline && (started.elapsed() < Duration::from_secs(3) || left() > 0) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let produced = stream.join().expect("the stream");
    let in_topic = topic_size(&bootstrap, &f.topic, f.partitions);
    assert_eq!(
        in_topic, produced as i64,
        "events acknowledged vs in the topic"
    );
    assert_eq!(left(), 0, "pushed errors left untaken");
    assert!(
        ends_ok(consumer, Duration::from_secs(30), &log),
        "the consumer failed"
    );
    f.rtt(0);
    let warnings = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let what = format!(
        "set with {before} rows in the lake; exit 0 in {:.1?}, {} claims, {warnings} log lines",
        started.elapsed(),
        claims(&lake)
    );
    assert_lake_exactly_once(f, &lake, &fault, &what);
    claims(&lake)
}

#[test]
fn consume_stays_exactly_once_through_fetch_errors() {
    // OFFSET_OUT_OF_RANGE makes librdkafka reset the partitions to their beginning
    // (auto.offset.reset=earliest): the events it reads again are skipped or re-read in
    // order from the lake's position.
    let fetch = "NOT_LEADER_FOR_PARTITION OFFSET_OUT_OF_RANGE UNKNOWN_TOPIC_OR_PART _TRANSPORT \
                 KAFKA_STORAGE_ERROR OFFSET_OUT_OF_RANGE REQUEST_TIMED_OUT";
    consume_under_faults(&[(Fetch, fetch)], 0);
}

#[test]
fn consume_stays_exactly_once_through_offset_commit_errors() {
    // Kafka's committed offsets are a copy for lag monitors: a failed commit is a warning.
    let commit = "NOT_COORDINATOR REQUEST_TIMED_OUT COORDINATOR_NOT_AVAILABLE \
                  OFFSET_METADATA_TOO_LARGE ILLEGAL_GENERATION";
    consume_under_faults(&[(OffsetCommit, commit)], 0);
}

#[test]
fn consume_stays_exactly_once_through_heartbeat_and_join_group_errors() {
    // REBALANCE_IN_PROGRESS makes the member rejoin (taking the JoinGroup errors), and
    // ILLEGAL_GENERATION makes it lose its partitions: it claims them again in the lake.
    let heartbeat = "REBALANCE_IN_PROGRESS NOT_COORDINATOR ILLEGAL_GENERATION";
    let join = "COORDINATOR_LOAD_IN_PROGRESS NOT_COORDINATOR COORDINATOR_NOT_AVAILABLE";
    let claims = consume_under_faults(&[(Heartbeat, heartbeat), (JoinGroup, join)], 0);
    assert!(
        claims >= 2,
        "the lost partitions were claimed again: {claims} claims"
    );
}

#[test]
fn consume_stays_exactly_once_with_200_ms_added_round_trip_time() {
    consume_under_faults(&[], 200);
}

/// A stream of 3000 events over 12 s, a consumer reading it (with `session`), and the broker
/// down for 10 s once the lake has its first flush; the consumer reads on after it and stops
/// after the 3000th event.
fn consume_through_an_outage(session: &[&str], fault: &str) -> usize {
    let started = Instant::now();
    let f = Faulty::new(3);
    let bootstrap = f.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let log = dir.path().join("consume.log");
    let total = 3000;
    let stream = background_stream(&bootstrap, &f.topic, total, 250.0);
    let consumer = consume(&bootstrap, &f.topic, &unique("g"), &lake)
        .args(["--max-events", &total.to_string()])
        .args(FLUSHES)
        .args(session)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    while commits(&lake) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = read_lake(&lake).len();
    f.down();
    let down_at = started.elapsed();
    std::thread::sleep(Duration::from_secs(10));
    f.up();
    assert!(
        before > 0 && before < total as usize,
        "{before} rows before the outage"
    );
    assert_eq!(stream.join().expect("the stream"), total);
    assert!(
        ends_ok(consumer, Duration::from_secs(40), &log),
        "the consumer failed"
    );
    let lines = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let what = format!(
        "down at {down_at:.1?} with {before} rows in the lake, up 10 s later; exit 0 in {:.1?}, \
         {} claims, {lines} log lines",
        started.elapsed(),
        claims(&lake)
    );
    assert_lake_exactly_once(&f, &lake, fault, &what);
    claims(&lake)
}

#[test]
fn consume_rides_out_a_10_s_broker_outage_within_its_session() {
    // librdkafka's default session (45 s) outlasts the outage: the member keeps its
    // partitions, and the lake holds the one claim of its start.
    let claims = consume_through_an_outage(&[], "broker down 10 s mid-stream (session 45 s)");
    assert_eq!(claims, 1);
}

#[test]
fn consume_rides_out_a_10_s_broker_outage_longer_than_its_session() {
    let session = [
        "-X",
        "session.timeout.ms=6000",
        "-X",
        "heartbeat.interval.ms=1000",
    ];
    // The member's session ends during the outage: it loses its partitions, rejoins once the
    // broker is back and claims them again from the lake's position.
    let claims = consume_through_an_outage(&session, "broker down 10 s mid-stream (session 6 s)");
    assert!(
        claims >= 2,
        "the lost partitions were claimed again: {claims} claims"
    );
}
