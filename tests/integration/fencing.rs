//! Fencing through the Delta log: a member frozen past its session (a zombie), a second
//! consumer group on the same lake, and a lake whose offsets are ahead of its topic (the topic
//! was re-created). Each would write rows twice (or skip new ones) without the table's `txn`
//! claims and checks.

use std::path::Path;
use std::time::{Duration, Instant};

use stocklake::kafka::{BrokerOptions, EmbeddedBroker};

use crate::harness::cmd::Running;
use crate::harness::kafka::{
    background_stream, broker_with_topic, consume_until_idle, partition_sizes, produce_ticks,
    spawn_consumer,
};
use crate::harness::lake::{assert_exactly_once, read_lake};
use crate::harness::{sample_ticks, stderr, unique};

/// Each commit of the ticks table: (version, writer, whether it added data files).
fn commits(lake: &Path) -> Vec<(u64, String, bool)> {
    let log = lake.join("ticks/_delta_log");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&log).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_suffix(".json").and_then(|v| v.parse().ok()) else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut writer = String::new();
        let mut adds = false;
        for line in text.lines() {
            let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(w) = action["commitInfo"]["stocklakeWriter"].as_str() {
                writer = w.to_string();
            }
            adds |= action.get("add").is_some();
        }
        out.push((version, writer, adds));
    }
    out.sort();
    out
}

/// Whether `pid` wrote a commit with data files (after `after`, a version).
fn flushed_by(lake: &Path, pid: u32, after: Option<u64>) -> Option<u64> {
    let me = format!(":{pid}");
    commits(lake)
        .into_iter()
        .find(|(v, w, adds)| *adds && w.ends_with(&me) && after.is_none_or(|a| *v > a))
        .map(|(v, _, _)| v)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for the child to end; SIGTERM (then waits) if it has not.
fn wait_or_stop(child: &mut Running, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.signal(libc::SIGTERM);
    child.wait().unwrap();
    None
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_zombie_member_cannot_commit_after_its_partitions_moved() {
    let (broker, topic) = broker_with_topic(4);
    let bootstrap = broker.bootstrap_servers().to_string();
    let stream = background_stream(&bootstrap, &topic, 45_000, 3_000.0);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = unique("zombie");
    let (z_log, a_log) = (dir.path().join("zombie.log"), dir.path().join("a.log"));
    // The zombie flushes every 1.5 s and holds what came in meanwhile.
    let slow = ["--flush-rows", "1000000", "--flush-interval", "1500ms"];
    let mut zombie = spawn_consumer(&bootstrap, &topic, &group, &lake, &slow, &z_log);
    let z_pid = zombie.id();
    wait_for("the zombie's first flush", Duration::from_secs(30), || {
        flushed_by(&lake, z_pid, None).is_some()
    });
    std::thread::sleep(Duration::from_millis(700));
    zombie.signal(libc::SIGSTOP);
    let frozen_at = commits(&lake).last().map(|c| c.0).unwrap();

    // Its 3 s session expires; the partitions move to a new member, which claims and commits.
    let fast = ["--flush-interval", "300ms", "--exit-when-idle", "6s"];
    let mut a = spawn_consumer(&bootstrap, &topic, &group, &lake, &fast, &a_log);
    let a_pid = a.id();
    wait_for("the new owner's flush", Duration::from_secs(30), || {
        flushed_by(&lake, a_pid, Some(frozen_at)).is_some()
    });
    zombie.signal(libc::SIGCONT);
    let z_status = wait_or_stop(&mut zombie, Duration::from_secs(20));

    assert_eq!(stream.join().unwrap(), 45_000);
    let status = a.wait().unwrap();
    assert!(status.success(), "new owner: {}", log_text(&a_log));
    let z_text = log_text(&z_log);
    // The zombie's late batch was refused by the table, and it stopped saying so.
    assert!(
        z_status.is_some_and(|s| s.code() == Some(1)),
        "zombie: {z_status:?} {z_text}"
    );
    assert!(
        z_text.contains("were taken over, and this batch was refused (not committed)"),
        "{z_text}"
    );
    // Nothing the zombie committed after it froze.
    assert_eq!(flushed_by(&lake, z_pid, Some(frozen_at)), None);
    assert_exactly_once(&read_lake(&lake), &partition_sizes(&bootstrap, &topic, 4));
}

#[test]
fn a_second_group_on_the_same_lake_fences_the_first() {
    let (broker, topic) = broker_with_topic(3);
    let bootstrap = broker.bootstrap_servers().to_string();
    let stream = background_stream(&bootstrap, &topic, 30_000, 3_000.0);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let opts = ["--flush-interval", "300ms", "--exit-when-idle", "4s"];
    let mut a = spawn_consumer(&bootstrap, &topic, &unique("ga"), &lake, &opts, &a_log);
    let a_pid = a.id();
    wait_for("group a's first flush", Duration::from_secs(30), || {
        flushed_by(&lake, a_pid, None).is_some()
    });
    // Group b owns every partition too (as a does): its claim fences a.
    let mut b = spawn_consumer(&bootstrap, &topic, &unique("gb"), &lake, &opts, &b_log);
    let a_status = wait_or_stop(&mut a, Duration::from_secs(30));
    assert_eq!(stream.join().unwrap(), 30_000);
    let b_status = b.wait().unwrap();
    assert!(b_status.success(), "group b: {}", log_text(&b_log));
    let a_text = log_text(&a_log);
    assert!(
        a_status.is_some_and(|s| s.code() == Some(1)),
        "group a: {a_status:?} {a_text}"
    );
    assert!(a_text.contains("this batch was refused"), "{a_text}");
    assert_exactly_once(&read_lake(&lake), &partition_sizes(&bootstrap, &topic, 3));
}

#[test]
fn a_lake_ahead_of_a_recreated_topic_is_refused_until_told_to_start_over() {
    let (broker, topic) = broker_with_topic(2);
    let ticks = sample_ticks();
    produce_ticks(broker.bootstrap_servers(), &topic, ticks[..300].to_vec());
    let dir = tempfile::tempdir().unwrap();
    let out = consume_until_idle(broker.bootstrap_servers(), &topic, dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_lake(dir.path()).len(), 300);

    // The same topic name on a new cluster (as after deleting and re-creating it): 20 events.
    let fresh = EmbeddedBroker::start(BrokerOptions {
        topics: vec![(topic.clone(), 2)],
        ..Default::default()
    })
    .unwrap();
    produce_ticks(fresh.bootstrap_servers(), &topic, ticks[300..320].to_vec());
    let out = consume_until_idle(fresh.bootstrap_servers(), &topic, dir.path(), &[]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the lake holds offsets up to"), "{text}");
    assert!(text.contains("but the topic ends at offset"), "{text}");
    assert!(text.contains("--reset-lake-offsets"), "{text}");
    assert_eq!(
        read_lake(dir.path()).len(),
        300,
        "nothing read, nothing lost"
    );

    // Told to start over: the new topic's events land after the old rows.
    let out = consume_until_idle(
        fresh.bootstrap_servers(),
        &topic,
        dir.path(),
        &["--reset-lake-offsets"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_lake(dir.path()).len(), 320);
    // From then on the lake follows the new topic.
    let out = consume_until_idle(fresh.bootstrap_servers(), &topic, dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_lake(dir.path()).len(), 320);
}

#[test]
fn a_lake_deleted_under_a_running_consumer_stops_it() {
    let (broker, topic) = broker_with_topic(2);
    let bootstrap = broker.bootstrap_servers().to_string();
    let stream = background_stream(&bootstrap, &topic, 20_000, 2_000.0);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let log = dir.path().join("c.log");
    let opts = ["--flush-interval", "200ms"];
    let mut c = spawn_consumer(&bootstrap, &topic, &unique("gone"), &lake, &opts, &log);
    let pid = c.id();
    wait_for("a first flush", Duration::from_secs(30), || {
        flushed_by(&lake, pid, None).is_some()
    });
    // Gone in one step (a recursive delete races with the consumer's writes).
    std::fs::rename(&lake, dir.path().join("deleted")).unwrap();
    let status = wait_or_stop(&mut c, Duration::from_secs(20));
    stream.join().unwrap();
    let text = log_text(&log);
    assert!(
        status.is_some_and(|s| s.code() == Some(1)),
        "{status:?} {text}"
    );
    assert!(text.contains("was deleted or replaced"), "{text}");
    // It wrote no lone log entry into the emptied folder.
    assert!(
        !lake.join("ticks/_delta_log").exists(),
        "{:?}",
        std::fs::read_dir(lake.join("ticks")).map(|d| d.count())
    );
}
