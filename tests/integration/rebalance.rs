//! Exactly once across rebalances: two, then three, then one consumer of one group over a
//! 6-partition topic, while the stream flows.

use std::time::Duration;

use crate::harness::cmd::Running;
use crate::harness::kafka::{
    background_stream, broker_with_topic, partition_sizes, spawn_consumer,
};
use crate::harness::lake::{assert_exactly_once, read_lake};
use crate::harness::unique;

fn terminate(child: &mut Running) {
    child.signal(libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "a consumer stopped by SIGTERM exits cleanly: {status}"
    );
}

#[test]
fn two_then_three_then_one_consumer_lose_and_duplicate_nothing() {
    let (broker, topic) = broker_with_topic(6);
    let bootstrap = broker.bootstrap_servers().to_string();
    let total = 90_000;
    let stream = background_stream(&bootstrap, &topic, total, 6_000.0);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = unique("rebalance");
    let opts = ["--flush-rows", "3000", "--flush-interval", "300ms"];
    let mut a = spawn_consumer(
        &bootstrap,
        &topic,
        &group,
        &lake,
        &opts,
        &dir.path().join("a.log"),
    );
    let mut b = spawn_consumer(
        &bootstrap,
        &topic,
        &group,
        &lake,
        &opts,
        &dir.path().join("b.log"),
    );
    std::thread::sleep(Duration::from_secs(4));
    let mut c = spawn_consumer(
        &bootstrap,
        &topic,
        &group,
        &lake,
        &[
            "--flush-rows",
            "3000",
            "--flush-interval",
            "300ms",
            "--exit-when-idle",
            "3s",
        ],
        &dir.path().join("c.log"),
    );
    std::thread::sleep(Duration::from_secs(4));
    terminate(&mut a);
    terminate(&mut b);
    assert_eq!(stream.join().unwrap(), total);
    let status = c.wait().unwrap();
    let log = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap_or_default();
    assert!(status.success(), "c: {}", log("c.log"));

    let rows = read_lake(&lake);
    assert_exactly_once(&rows, &partition_sizes(&bootstrap, &topic, 6));
    // Each of the three wrote part of the lake.
    for name in ["a.log", "b.log", "c.log"] {
        let text = log(name);
        let committed = text
            .lines()
            .find(|l| l.starts_with("committed "))
            .unwrap_or_else(|| panic!("{name} has no summary: {text}"));
        assert!(
            !committed.starts_with("committed 0 rows"),
            "{name}: {committed}"
        );
    }
}
