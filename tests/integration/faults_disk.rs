//! A full disk under a local lake (issue 16): the consumer runs with a limit on the size of
//! the files it writes (`RLIMIT_FSIZE` with `SIGXFSZ` ignored, so a write past it fails with
//! EFBIG as on a full disk; mounting a small tmpfs needs privileges CI's container may not
//! have). It stops with one error naming the file, the lake stays readable and exactly-once,
//! and once the limit is lifted a restart ends with every event once.

use std::collections::HashMap;

use crate::harness::kafka::{broker_with_topic, idle_consumer, partition_sizes, produce_ticks};
use crate::harness::lake::{
    assert_same_ticks, lake_offsets, parquet_files, print_tally, read_lake, tally,
};
use crate::harness::{cmd, sample_ticks, stderr, stdout, unique};

/// Larger than every file of a flush of the first events (data files and log entries of a few
/// KiB), smaller than the data files of the flush of the rest (tens of KiB).
const LIMIT: u64 = 24 << 10;

/// The first events of the sample: a flush of them fits under [`LIMIT`].
const FIRST: usize = 300;

#[test]
fn a_full_disk_stops_the_consumer_naming_the_file_and_a_restart_ends_exactly_once() {
    let (broker, topic) = broker_with_topic(3);
    let bs = broker.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = unique("g");
    let consume = |limit: Option<u64>| {
        let c = idle_consumer(bs, &topic, &group, &lake);
        match limit {
            Some(bytes) => c.file_size_limit(bytes),
            None => c,
        }
        .output()
    };
    let ticks = sample_ticks();

    // Room for the first events' files.
    produce_ticks(bs, &topic, ticks[..FIRST].to_vec());
    let out = consume(Some(LIMIT));
    assert!(out.status.success(), "{}", stderr(&out));
    let first = partition_sizes(bs, &topic, 3);

    // The rest needs larger files than the "disk" takes: the consumer stops, naming the file.
    produce_ticks(bs, &topic, ticks[FIRST..].to_vec());
    let sizes = partition_sizes(bs, &topic, 3);
    let out = consume(Some(LIMIT));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let line = lines[0];
    println!("{line}");
    assert!(line.contains("File too large"), "{line}");
    let named = lake.canonicalize().unwrap().join("ticks");
    assert!(line.contains(&*named.to_string_lossy()), "{line}");
    assert!(line.contains(".parquet"), "{line}");

    // The lake is what it was: readable, the first events once, nothing of the failed flush.
    let rows = read_lake(&lake);
    let stopped = tally(&rows, &sizes);
    print_tally(
        &format!(
            "local lake, files limited to {} KiB (RLIMIT_FSIZE)",
            LIMIT >> 10
        ),
        "consume stopped with one error naming the file",
        &stopped,
    );
    let t = tally(&rows, &first);
    assert_eq!(
        (t.total, t.distinct, t.duplicates, t.lost),
        (FIRST as i64, FIRST as i64, 0, 0)
    );
    assert_eq!(lake_offsets(&lake, &topic), first);
    let count = cmd(&["sql", "--format", "csv", "-q", "--lake"])
        .arg(&lake)
        .args(["-c", "SELECT count(*) AS n FROM stocklake.ticks"])
        .output_ok();
    assert_eq!(stdout(&count), format!("n\n{FIRST}\n"));
    let audit = cmd(&["audit", "--lake"]).arg(&lake).output();
    assert!(audit.status.success(), "{}", stdout(&audit));
    // The failed flush left no file bigger than the limit behind.
    for f in parquet_files(&lake) {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len <= LIMIT, "{}: {len} bytes", f.display());
    }

    // Space again: the restart continues from the lake and ends with every event once.
    let out = consume(None);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_lake(&lake);
    let t = tally(&rows, &sizes);
    print_tally(
        "limit lifted, consume restarted",
        "continued from the lake's offsets",
        &t,
    );
    t.assert_every_event_once();
    let offsets: HashMap<i32, i64> = lake_offsets(&lake, &topic);
    assert_eq!(offsets, sizes);
    let audit = cmd(&["audit", "--lake"]).arg(&lake).output();
    assert!(audit.status.success(), "{}", stdout(&audit));
    assert_same_ticks(rows.into_iter().map(|r| r.tick).collect(), ticks);
}
