//! Tests of the streaming replay: the same ticks in the same order as loading everything and
//! [`sort_for_replay`](crate::source::sort_for_replay), on multi-file, unsorted and tied inputs.

use std::path::{Path, PathBuf};

use super::*;
use crate::source::synthetic::Rng;
use crate::source::{OnError, Replay, load_csv_files};

const BOKEH: &str = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A bokeh file of `n` random rows (3 symbols, 6 days: many ties); `close` numbers the rows.
fn random_rows(rng: &mut Rng, n: usize, tag: usize) -> String {
    let mut s = BOKEH.to_string();
    for i in 0..n {
        let sym = ["AAA", "BBB", "CCC"][(rng.next_u64() % 3) as usize];
        let day = 1 + rng.next_u64() % 6;
        s += &format!("{sym},2024-01-0{day},1,2,0.5,{tag}.{i:04},{i},\n");
    }
    s
}

/// Files in order, out of order, with ties inside and across files, bad rows, and a file
/// without a symbol column.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut rng = Rng::new(11);
    let sorted_a = format!(
        "{BOKEH}AAA,2024-01-01,1,2,0.5,1.5,10,\nAAA,2024-01-01,1,2,0.5,1.6,11,\nBBB,2024-01-01,1,2,0.5,1.7,12,\nAAA,2024-01-03,1,2,0.5,1.8,13,\n"
    );
    let yahoo = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-01,1,2,0.5,3.5,3.4,100\n2024-01-02,1,2,0.5,3.6,null,200\nnot-a-date,1,2,0.5,3.7,3.4,300\n2024-01-04,1,2,0.5,3.8,3.4,400\n";
    vec![
        write(dir, "sorted.csv", &sorted_a),
        write(dir, "unsorted1.csv", &random_rows(&mut rng, 57, 7)),
        write(dir, "AAA.csv", yahoo),
        write(dir, "unsorted2.csv", &random_rows(&mut rng, 31, 8)),
        write(dir, "sorted2.csv", &sorted_a.replace("1.", "2.")),
    ]
}

fn opts(run_rows: usize, max_open: usize, file_order: bool, looping: bool) -> StreamOptions {
    StreamOptions {
        csv: CsvOptions {
            on_error: OnError::Skip,
            ..Default::default()
        },
        file_order,
        looping,
        run_rows,
        max_open,
        cancel: None,
    }
}

/// The inputs in a new folder, what loading them in memory gives, and the first pass.
fn loaded() -> (tempfile::TempDir, Vec<PathBuf>, Vec<Tick>, LoadReport, Scan) {
    let dir = tempfile::tempdir().unwrap();
    let paths = inputs(dir.path());
    let o = opts(1, 2, false, false);
    let (ticks, report) = load_csv_files(&paths, &o.csv).unwrap();
    let scan = scan_csv_files(&paths, &o).unwrap();
    (dir, paths, ticks, report, scan)
}

#[test]
fn streamed_order_and_values_are_those_of_the_in_memory_sort() {
    let (_dir, paths, want, loaded, scan) = loaded();
    assert_eq!(scan.in_order, [true, false, true, false, true]);
    assert_eq!(scan.report.rows(), loaded.rows());
    assert_eq!(scan.report.rows(), want.len() as u64);
    assert_eq!(scan.report.skipped.len(), 1);
    for run_rows in [1, 2, 5, 1000] {
        for max_open in [2, 3, 64] {
            let stream = CsvStream::new(&paths, &scan, opts(run_rows, max_open, false, false));
            let stream = stream.unwrap();
            let failure = stream.failure();
            let got: Vec<Tick> = stream.collect();
            assert!(failure.take().is_none());
            assert_eq!(got, want, "run_rows {run_rows}, max_open {max_open}");
        }
    }
}

#[test]
fn looping_shifts_like_the_in_memory_replay() {
    let (_dir, paths, ticks, _, scan) = loaded();
    let n = ticks.len();
    let want: Vec<Tick> = Replay::new(ticks, true).take(3 * n + 5).collect();
    let stream = CsvStream::new(&paths, &scan, opts(4, 3, false, true)).unwrap();
    let got: Vec<Tick> = stream.take(3 * n + 5).collect();
    assert_eq!(got, want);
}

#[test]
fn file_order_sends_each_file_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let paths = inputs(dir.path());
    let csv = opts(1, 2, true, false).csv;
    let mut want = Vec::new();
    let mut skipped = Vec::new();
    for p in &paths {
        let f = std::fs::File::open(p).unwrap();
        crate::source::csv::read_csv(p, f, &csv, &mut want, &mut skipped).unwrap();
    }
    let scan = scan_csv_files(&paths, &opts(1, 2, true, false)).unwrap();
    let stream = CsvStream::new(&paths, &scan, opts(1, 2, true, false)).unwrap();
    assert!(stream.sorted_files.is_empty(), "nothing sorted");
    let got: Vec<Tick> = stream.collect();
    assert_eq!(got, want);
}

#[test]
fn fail_refuses_a_bad_row_in_the_last_file_in_the_first_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = inputs(dir.path());
    paths.remove(2); // the file with a bad date
    paths.push(write(
        dir.path(),
        "last.csv",
        &format!("{BOKEH}AAA,2024-01-01,1,2,0.5,1.5,10,\nAAA,2024-01-02,1,2,0.5,x,11,\n"),
    ));
    let mut fail = opts(1, 2, false, false);
    fail.csv.on_error = OnError::Fail;
    let err = scan_csv_files(&paths, &fail).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:3:6 (Close): \"x\" is not a price", paths[4].display())
    );
}

#[test]
fn a_set_cancel_flag_stops_the_first_pass_and_the_sort() {
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    let (_dir, paths, _, _, scan) = loaded();
    let mut o = opts(1, 2, false, false);
    o.cancel = Some(&STOP);
    let err = scan_csv_files(&paths, &o).unwrap_err();
    assert!(matches!(err, SourceError::Interrupted), "{err}");
    let err = CsvStream::new(&paths, &scan, o).err().unwrap();
    assert_eq!(
        err.to_string(),
        "interrupted while reading the files: nothing was sent"
    );
}
