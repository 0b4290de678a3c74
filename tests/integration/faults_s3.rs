//! S3 faults (issue 16): the consumer writes an S3 lake (moto) through the fault-injecting proxy
//! of the harness. With a share of every kind of request failing (500, 503 SlowDown, resets
//! before and after moto did the request, slow answers) it retries and the lake ends with every
//! event once; when S3 stays down past the retry time it stops with one error naming the request
//! and its object, the lake stays consistent, and a restart continues; `sql` and `sync` against
//! a failing S3 say what failed in one line.

use std::collections::HashMap;
use std::process::Output;
use std::time::Instant;

use serde_json::Value;

use crate::harness::kafka::{broker_with_topic, idle_consumer, partition_sizes, produce_ticks};
use crate::harness::lake::{Tally, assert_same_ticks, print_tally, tally};
use crate::harness::moto::Moto;
use crate::harness::s3proxy::{Fault, FaultProxy, Op, Plan};
use crate::harness::{cmd, sample_ticks, stderr, stdout, unique};

const BUCKET: &str = "fault-lake";
const LAKE: &str = "s3://fault-lake/stocklake";

/// moto with the lake's bucket, and the sample ticks in a 3-partition topic.
struct Setup {
    moto: Moto,
    broker: stocklake::kafka::EmbeddedBroker,
    topic: String,
    sizes: HashMap<i32, i64>,
}

fn setup() -> Setup {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let (broker, topic) = broker_with_topic(3);
    produce_ticks(broker.bootstrap_servers(), &topic, sample_ticks());
    let sizes = partition_sizes(broker.bootstrap_servers(), &topic, 3);
    Setup {
        moto,
        broker,
        topic,
        sizes,
    }
}

impl Setup {
    /// `consume` of group `group` into the lake until idle, through `proxy` (None: straight to
    /// moto), with S3 requests retried for `retry`.
    fn consume(&self, proxy: Option<&FaultProxy>, group: &str, retry: &str) -> Output {
        let env = proxy.map_or_else(|| self.moto.env(), |p| p.env(&self.moto));
        idle_consumer(self.broker.bootstrap_servers(), &self.topic, group, LAKE)
            .args(["--flush-rows", "1500"])
            .envs(env)
            .env("STOCKLAKE_S3_RETRY_TIMEOUT", retry)
            .output()
    }

    /// The lake's rows counted against the topic.
    fn tally(&self) -> Tally {
        tally(&self.moto.read_lake(BUCKET, "stocklake").rows, &self.sizes)
    }

    /// The audit finds every event of the topic once.
    fn assert_audit_ok(&self) {
        let report = self.audit();
        assert_eq!(report["problems"], 0, "{report:#}");
        assert_eq!(report["rows"], self.sizes.values().sum::<i64>());
    }

    /// `stocklake audit --format json` of the lake (straight to moto): the report.
    fn audit(&self) -> Value {
        let out = cmd(&["audit", "--lake", LAKE, "--format", "json"])
            .envs(self.moto.env())
            .output();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }
}

/// The lines of a failed command's stderr that are its error (`error: …`).
fn error_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

/// A command that failed on S3 exited 1 with one error line naming `names` (each), no panic.
fn assert_one_error(out: &Output, names: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines = error_lines(out);
    assert_eq!(lines.len(), 1, "one error line: {err}");
    for name in names {
        assert!(lines[0].contains(name), "{name} in {}", lines[0]);
    }
    lines[0].clone()
}

#[test]
fn the_consumer_rides_out_failing_s3_requests_and_writes_every_event_once() {
    let s = setup();
    // 15 % of every request fails one way or another; and the commits (conditional PUTs) meet
    // each fault in turn, among them commits moto wrote whose answer never came (reset after,
    // or closed after: then the client sends it again and meets 412 Precondition Failed).
    let all = [
        Fault::Internal,
        Fault::SlowDown,
        Fault::ResetBefore,
        Fault::ResetAfter,
        Fault::SlowMs(400),
    ];
    let plan = Plan::every_op(0.15, &all, 16)
        .nth(Op::CondPut, 4, Fault::ResetAfter)
        .nth(Op::CondPut, 5, Fault::CloseAfter)
        .nth(Op::CondPut, 7, Fault::ResetBefore)
        .nth(Op::CondPut, 9, Fault::ResetAfter)
        .nth(Op::CondPut, 11, Fault::Internal)
        .nth(Op::CondPut, 13, Fault::SlowDown)
        .nth(Op::CondPut, 15, Fault::SlowMs(1500));
    let proxy = FaultProxy::start(&s.moto, plan);
    let started = Instant::now();
    let out = s.consume(Some(&proxy), &unique("g"), "30s");
    let took = started.elapsed();
    let stats = proxy.stats();
    println!("proxy: {stats:?}\nconsume took {took:.1?}");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("committed 12154 rows"),
        "{}",
        stderr(&out)
    );
    // The faults did happen, to every kind of request the consumer makes.
    for op in [Op::Put, Op::CondPut, Op::Get, Op::List] {
        assert!(stats.faults_of(op) > 0, "no fault on {op:?}: {stats:?}");
    }
    assert!(
        stats.faults[&(Op::CondPut, Fault::ResetAfter)] >= 2,
        "{stats:?}"
    );
    assert_eq!(
        stats.faults[&(Op::CondPut, Fault::CloseAfter)],
        1,
        "{stats:?}"
    );
    for line in stderr(&out)
        .lines()
        .filter(|l| l.contains("answer was lost"))
    {
        println!("{line}");
    }
    let lost_answers = stderr(&out).matches("the commit's answer was lost").count();
    assert!(lost_answers >= 3, "{}", stderr(&out));
    // The closed connection's commit was sent again by the S3 client and met 412: the version
    // was taken by this very commit, found in the log by its id.
    assert!(
        stderr(&out).contains("when it was sent again), but the log holds it"),
        "{}",
        stderr(&out)
    );

    let t = s.tally();
    print_tally(
        &format!(
            "S3: 15 % of requests fail ({} faults: 500, 503 SlowDown, resets, 400 ms), 7 commits faulted",
            stats.total_faults()
        ),
        &format!("retried; {lost_answers} commits found in the log after a lost answer"),
        &t,
    );
    t.assert_every_event_once();
    s.assert_audit_ok();
    let rows = s.moto.read_lake(BUCKET, "stocklake").rows;
    assert_same_ticks(rows.into_iter().map(|r| r.tick).collect(), sample_ticks());
}

#[test]
fn a_compaction_commit_whose_answer_was_lost_keeps_its_files() {
    let s = setup();
    let out = s.consume(None, &unique("g"), "10s");
    assert!(out.status.success(), "{}", stderr(&out));
    // Compaction (and its vacuum's deletes) through failing requests, its commit written by
    // moto and its answer lost: taken as committed, its new files kept (deleting them, as a
    // failed commit's files are, would leave a log naming missing files, and the vacuum would
    // then delete the small files it replaced).
    let files_before = s.moto.read_lake(BUCKET, "stocklake").keys.len();
    let retried = [Fault::Internal, Fault::SlowDown, Fault::SlowMs(400)];
    let plan = Plan::every_op(0.15, &retried, 17)
        .nth(Op::CondPut, 1, Fault::ResetAfter)
        .nth(Op::Delete, 1, Fault::SlowDown);
    let proxy = FaultProxy::start(&s.moto, plan);
    let out = cmd(&["compact", "--lake", LAKE, "--retain", "0s"])
        .arg("--allow-short-retain")
        .envs(proxy.env(&s.moto))
        .env("STOCKLAKE_S3_RETRY_TIMEOUT", "30s")
        .output();
    let stats = proxy.stats();
    println!("compact: {}\nproxy: {stats:?}", stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stats.faults_of(Op::Delete) > 0, "{stats:?}");
    assert!(
        stderr(&out).contains("the compaction commit's answer was lost"),
        "{}",
        stderr(&out)
    );
    let lake = s.moto.read_lake(BUCKET, "stocklake");
    assert!(lake.keys.len() < files_before, "{} files", lake.keys.len());
    let t = tally(&lake.rows, &s.sizes);
    print_tally(
        "S3: compact + vacuum with 15 % of requests failing, its commit's answer lost",
        &format!(
            "{files_before} files compacted into {}; commit found in the log",
            lake.keys.len()
        ),
        &t,
    );
    t.assert_every_event_once();
    s.assert_audit_ok();
}

#[test]
fn s3_down_past_the_retry_time_stops_the_consumer_cleanly_and_a_restart_continues() {
    let s = setup();
    let proxy = FaultProxy::start(&s.moto, Plan::default());
    // S3 answers 503 SlowDown to everything from the 7th commit on (the tables' creation and
    // the partitions' claims are the first ones): a few flushes are in, then S3 is gone.
    proxy.set_down_after(Op::CondPut, 6, Fault::SlowDown);
    let group = unique("g");
    let started = Instant::now();
    let out = s.consume(Some(&proxy), &group, "2s");
    let took = started.elapsed();
    println!("stopped after {took:.1?}: {}", stderr(&out));
    let line = assert_one_error(&out, &[LAKE, "503", "SlowDown"]);
    assert!(line.contains("PUT") || line.contains("GET"), "{line}");
    // Bounded: the retry time of the commit and of the search for it, not minutes.
    assert!(took.as_secs() < 20, "{took:?}");

    // The lake holds whole flushes only: each partition's rows are exactly the offsets its
    // txn says, once; the audit agrees, and a reader sees the same.
    let lake = s.moto.read_lake(BUCKET, "stocklake");
    let held: HashMap<i32, i64> = (0..3)
        .map(|p| {
            let txn = lake.txns.get(&format!("stocklake:{}:{p}", s.topic));
            (p, txn.map_or(0, |v| v + 1))
        })
        .collect();
    let partial = tally(&lake.rows, &held);
    let stopped = tally(&lake.rows, &s.sizes);
    print_tally(
        "S3 down (503 SlowDown to everything) from the 7th commit on, retry time 2 s",
        &format!("consume stopped after {took:.1?} with one error"),
        &stopped,
    );
    assert_eq!((partial.duplicates, partial.lost), (0, 0), "{partial:?}");
    assert!(
        partial.total > 0 && partial.total < 12_154,
        "some flushes landed before S3 went down: {partial:?}"
    );
    assert_eq!(s.audit()["problems"], 0);
    let count = cmd(&["sql", "--lake", LAKE, "--format", "csv", "-q"])
        .args(["-c", "SELECT count(*) AS n FROM stocklake.ticks"])
        .envs(s.moto.env())
        .output_ok();
    assert_eq!(stdout(&count), format!("n\n{}\n", partial.total));

    // S3 is back: the same group's restart continues where the lake ends.
    proxy.set_down(None);
    let out = s.consume(Some(&proxy), &group, "2s");
    assert!(out.status.success(), "{}", stderr(&out));
    let t = s.tally();
    print_tally(
        "S3 back, consume restarted",
        "continued from the lake's offsets",
        &t,
    );
    t.assert_every_event_once();
    s.assert_audit_ok();
}

#[test]
fn sql_and_sync_against_a_failing_s3_say_what_failed_in_one_line() {
    let s = setup();
    let out = s.consume(None, &unique("g"), "10s");
    assert!(out.status.success(), "{}", stderr(&out));
    let proxy = FaultProxy::start(&s.moto, Plan::default());
    let env = proxy.env(&s.moto);
    let sql = |down: Option<Fault>| {
        proxy.set_down(down);
        cmd(&["sql", "--lake", LAKE, "--format", "csv", "-q"])
            .args(["-c", "SELECT count(*) AS n FROM stocklake.ticks"])
            .envs(env.clone())
            .env("STOCKLAKE_S3_RETRY_TIMEOUT", "1s")
            .output()
    };
    // Through the proxy while S3 is well: the whole lake.
    let ok = sql(None);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "n\n12154\n");

    for (fault, says) in [
        (Fault::Internal, "500"),
        (Fault::SlowDown, "SlowDown"),
        (Fault::ResetBefore, "reset"),
    ] {
        let out = sql(Some(fault));
        let line = assert_one_error(&out, &[BUCKET, says]);
        println!("sql, S3 down with {fault:?}: {line}");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }

    // Only the data files fail (GET of an object, not the listing or the log's first read).
    proxy.set_down(None);
    let dest = tempfile::tempdir().unwrap();
    let mirror = dest.path().join("mirror");
    let sync = |retry: &str| {
        cmd(&["sync", LAKE])
            .arg(&mirror)
            .envs(env.clone())
            .env("STOCKLAKE_S3_RETRY_TIMEOUT", retry)
            .output()
    };
    proxy.set_plan(Plan {
        share: [(Op::Get, 1.0)].into(),
        faults: vec![Fault::SlowDown],
        seed: 1,
        ..Plan::default()
    });
    let out = sync("1s");
    let line = assert_one_error(&out, &["stocklake/", "SlowDown", "GET"]);
    println!("sync, every GET answered 503 SlowDown: {line}");
    proxy.set_plan(Plan::default());
    let out = sync("10s");
    assert!(out.status.success(), "{}", stderr(&out));
    let local = cmd(&["sql", "--format", "csv", "-q", "--lake"])
        .arg(&mirror)
        .args(["-c", "SELECT count(*) AS n FROM stocklake.ticks"])
        .output_ok();
    assert_eq!(stdout(&local), "n\n12154\n");
}
