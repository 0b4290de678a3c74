//! Exactly once across crashes: the consumer is killed with SIGKILL at random moments while a
//! stream of 200,000 events flows, restarted each time, and the lake must end up holding every
//! event exactly once.

use std::time::Duration;

use stocklake::source::synthetic::Rng;

use crate::harness::kafka::{
    SHORT_SESSION, background_stream, broker_with_topic, consume, partition_sizes, spawn_consumer,
};
use crate::harness::lake::{assert_exactly_once, delta_log, lake_offsets, read_lake};
use crate::harness::{stderr, unique};

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let (broker, topic) = broker_with_topic(6);
    let bootstrap = broker.bootstrap_servers().to_string();
    let total = 200_000;
    let stream = background_stream(&bootstrap, &topic, total, 12_000.0);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = unique("crash");
    let mut rng = Rng::new(2026);
    let mut kills = 0;
    let small_batches = ["--flush-rows", "4000", "--flush-interval", "250ms", "-q"];
    while kills < 12 {
        let log = dir.path().join(format!("run-{kills}.log"));
        let mut child = spawn_consumer(&bootstrap, &topic, &group, &lake, &small_batches, &log);
        // Between 0.6 s and 2.6 s: sometimes before the first assignment, mostly mid-batch.
        std::thread::sleep(Duration::from_millis(600 + rng.next_u64() % 2000));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        kills += 1;
    }
    assert_eq!(stream.join().unwrap(), total);
    // The last killed member stays in the group until its 3 s session expires, and only then
    // are its partitions handed over: wait longer than that before calling the stream idle.
    let out = consume(&bootstrap, &topic, &group, &lake)
        .args(["--exit-when-idle", "8s"])
        .args(SHORT_SESSION)
        .output();
    assert!(out.status.success(), "{}", stderr(&out));

    let rows = read_lake(&lake);
    assert_exactly_once(&rows, &partition_sizes(&bootstrap, &topic, 6));
    // The table's offsets (its `txn` versions) are every partition's end.
    let sizes = partition_sizes(&bootstrap, &topic, 6);
    assert_eq!(lake_offsets(&lake, &topic), sizes);
    // The kills really interrupted work: many flushes committed, across the runs.
    let log = delta_log(&lake.join("ticks"));
    assert!(log.version > 20, "only {} commits", log.version);
}
