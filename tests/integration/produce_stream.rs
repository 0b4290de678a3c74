//! `stocklake produce` streams its files: the events arrive in the order and with the values of
//! loading every row and sorting (`sort_for_replay`), on several files, on a file not in time
//! order (the external sort, forced into tiny runs), looped; `--file-order`; and a bad row in the
//! last file still stops everything before the first event.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stocklake::source::csv::read_csv;
use stocklake::source::{CsvOptions, Replay, load_csv_files};
use stocklake::tick::Tick;

use crate::harness::kafka::{broker_with_topic, read_topic, topic_size};
use crate::harness::{cmd, stderr};

const BOKEH: &str = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Three symbols over five days in a scrambled order, with ties (same symbol and day twice);
/// `close` numbers the rows so that any reordering of ties shows.
fn unsorted(tag: u32) -> String {
    let mut s = BOKEH.to_string();
    for i in 0..40u32 {
        let sym = ["AAA", "BBB", "CCC"][(i * 7 % 3) as usize];
        let day = 1 + (i * 13 + tag) % 5;
        s += &format!("{sym},2024-01-0{day},1.5,2.25,0.5,{tag}.{i:03},{i},\n");
    }
    s
}

/// A file in order, one out of order, a file without a symbol column (symbol from the name),
/// a second one out of order and one more in order: ties inside and across files.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let in_order = format!(
        "{BOKEH}AAA,2024-01-01,1,2,0.5,1.5,10,\nAAA,2024-01-01,1,2,0.5,1.6,11,1.1\nBBB,2024-01-01,1,2,0.5,1.7,,\nAAA,2024-01-03,1,2,0.5,1.8,13,\n"
    );
    vec![
        write(dir, "first.csv", &in_order),
        write(dir, "scrambled.csv", &unsorted(1)),
        write(
            dir,
            "BBB.csv",
            "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-01,1,2,0.5,3.5,3.4,100\n2024-01-02,1,2,0.5,3.6,null,200\n2024-01-04,1,2,0.5,3.8,3.4,400\n",
        ),
        write(dir, "scrambled2.csv", &unsorted(2)),
        write(dir, "last.csv", &in_order.replace(",1.", ",2.")),
    ]
}

/// `stocklake produce FILES… extra…` into a fresh one-partition topic (send order = topic
/// order); the events in topic order and stderr.
fn produce(files: &[PathBuf], extra: &[&str], expected: usize) -> (Vec<Tick>, String) {
    let (broker, topic) = broker_with_topic(1);
    let out = cmd(&["produce"])
        .args(files)
        .args(["--brokers", broker.bootstrap_servers(), "--topic", &topic])
        .args(extra)
        .output();
    let err = stderr(&out);
    assert!(out.status.success(), "produce failed: {err}");
    let mut records = read_topic(
        broker.bootstrap_servers(),
        &topic,
        1,
        expected,
        Duration::from_secs(30),
    );
    records.sort_by_key(|r| r.offset);
    let ticks = records
        .iter()
        .map(|r| Tick::decode_json(&r.value).expect("valid wire format"))
        .collect();
    (ticks, err)
}

/// What the old in-memory path sends: every row loaded, then `sort_for_replay`.
fn in_memory(files: &[PathBuf]) -> Vec<Tick> {
    load_csv_files(files, &CsvOptions::default()).unwrap().0
}

#[test]
fn several_files_arrive_in_the_order_and_with_the_values_of_the_in_memory_sort() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let want = in_memory(&files);
    assert_eq!(want.len(), 91);
    let (got, err) = produce(&files, &[], want.len());
    assert_eq!(got, want);
    assert!(err.contains("read 91 rows from 5 file(s)"), "{err}");
    assert!(err.contains("sorted 2 file(s) not in time order"), "{err}");
}

#[test]
fn the_external_sort_in_tiny_runs_and_a_multi_level_merge_keep_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let want = in_memory(&files);
    let extra = ["--sort-run-rows", "3", "--max-open-files", "2"];
    let (got, err) = produce(&files, &extra, want.len());
    assert_eq!(got, want);
    // 40 rows in runs of 3: 14 runs per scrambled file.
    assert!(err.contains("(28 run(s) of at most 3 rows)"), "{err}");
}

#[test]
fn a_single_unsorted_file_is_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![write(dir.path(), "scrambled.csv", &unsorted(3))];
    let want = in_memory(&files);
    let (got, _) = produce(&files, &["--sort-run-rows", "7"], want.len());
    assert_eq!(got, want);
    assert!(
        got.windows(2)
            .all(|w| (w[0].event_time, &w[0].symbol) <= (w[1].event_time, &w[1].symbol))
    );
}

#[test]
fn loop_and_limit_shift_times_like_the_in_memory_replay() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let sorted = in_memory(&files);
    let n = 2 * sorted.len() + 7;
    let want: Vec<Tick> = Replay::new(sorted, true).take(n).collect();
    let limit = n.to_string();
    let extra = ["--loop", "--limit", &limit, "--sort-run-rows", "5"];
    let (got, _) = produce(&files, &extra, n);
    assert_eq!(got, want);
}

#[test]
fn file_order_sends_each_file_as_it_is_file_after_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let mut want = Vec::new();
    for f in &files {
        let input = std::fs::File::open(f).unwrap();
        read_csv(f, input, &CsvOptions::default(), &mut want, &mut Vec::new()).unwrap();
    }
    let (got, err) = produce(&files, &["--file-order"], want.len());
    assert_eq!(got, want);
    assert!(!err.contains("sorted"), "{err}");
}

#[test]
fn fail_sends_nothing_when_the_last_file_has_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = inputs(dir.path());
    files.push(write(
        dir.path(),
        "bad.csv",
        &format!("{BOKEH}AAA,2024-01-01,1,2,0.5,1.5,10,\nAAA,2024-01-02,1,2,0.5,1.5,ten,\n"),
    ));
    let (broker, topic) = broker_with_topic(1);
    let out = cmd(&["produce"])
        .args(&files)
        .args(["--brokers", broker.bootstrap_servers(), "--topic", &topic])
        .output();
    let err = stderr(&out);
    let named = err.contains("bad.csv:3:7 (Volume)");
    assert!(out.status.code() == Some(1) && named, "{err}");
    let sent = topic_size(broker.bootstrap_servers(), &topic, 1);
    assert_eq!(sent, 0, "not even the rows of the good files before it");
}
