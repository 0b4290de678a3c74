//! Exactly once across crashes: the consumer is killed with SIGKILL at random moments while a
//! stream of 200,000 events flows, restarted each time, and the lake must end up holding every
//! event exactly once.

use std::time::Duration;

use stocklake::source::synthetic::Rng;

use crate::harness::kafka::{
    SHORT_SESSION, background_stream, broker_with_topic, consume, partition_sizes, spawn_consumer,
};
use crate::harness::lake::{
    assert_exactly_once, delta_log, lake_offsets, log_commits as commits, read_lake,
};
use crate::harness::{stderr, unique};

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let (broker, topic) = broker_with_topic(6);
    let bootstrap = broker.bootstrap_servers().to_string();
    let total = 200_000;
    // Slow enough that the stream outlasts the kills (each run first waits out the killed
    // member's 3 s session before it is assigned anything).
    let stream = background_stream(&bootstrap, &topic, total, 4_000.0);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = unique("crash");
    let mut rng = Rng::new(2026);
    let mut kills = 0;
    let small_batches = ["--flush-rows", "4000", "--flush-interval", "250ms", "-q"];
    while kills < 12 {
        let log = dir.path().join(format!("run-{kills}.log"));
        let before = commits(&lake);
        let mut child = spawn_consumer(&bootstrap, &topic, &group, &lake, &small_batches, &log);
        // Once this run has claimed its partitions and committed a flush (or after 12 s),
        // kill it 0 to 0.8 s later: mostly while it writes or commits the next one.
        let deadline = std::time::Instant::now() + Duration::from_secs(12);
        while commits(&lake) < before + 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 800));
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
    // The kills really interrupted work: the killed runs committed flushes before dying, and
    // some died with data files written but not committed (they are not in the table).
    let log = delta_log(&lake.join("ticks"));
    assert!(log.version > 24, "only {} commits", log.version);
    let written = crate::harness::lake::parquet_files(&lake.join("ticks")).len();
    eprintln!(
        "{} commits; {} data files written, {} in the table",
        log.version,
        written,
        log.files.len()
    );
}
