//! Property tests of the CSV layout readers (cases: `STOCKLAKE_FUZZ_CASES`, default 256): any
//! file under any layout's header is read or refused without a panic, every error names the
//! file and a line of it, and with `--on-error skip` every data line is either a tick or a
//! skipped row. (The other parsers' properties are unit tests beside them: the wire decoder,
//! the statement splitter, Athena's CSV and `.csv.metadata`.)

use proptest::prelude::*;
use stocklake::source::{CsvOptions, OnError, SourceError, load_csv_files};

fn cases() -> u32 {
    std::env::var("STOCKLAKE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The header lines of the layouts stocklake reads, and one it does not know.
const HEADERS: &[&str] = &[
    "Ticker,Date,Open,High,Low,Close,Volume,Adj Close",
    "Date,Open,High,Low,Close,Adj Close,Volume",
    "Date,Close/Last,Volume,Open,High,Low",
    "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>",
    "\u{feff}Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD",
    "symbol,timestamp,price",
];

/// A field: plausible values of each kind, and noise.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Z]{1,5}(\\.US)?",
        "(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]",
        "[01][0-9]/[0-3][0-9]/20[0-9]{2}",
        "20[0-9]{6}",
        "\\$?[0-9]{1,4}\\.[0-9]{0,6}",
        "-?[0-9]{1,12}",
        "(NaN|null|inf|1e400|-0)",
        "\"[a-z,\"]{0,4}\"",
        "\\PC{0,6}",
    ]
}

fn file() -> impl Strategy<Value = (usize, Vec<Vec<String>>)> {
    (
        0..HEADERS.len(),
        prop::collection::vec(prop::collection::vec(field(), 0..11), 0..12),
    )
}

/// The file's text: the header, then the rows (fields joined by commas).
fn text(header: usize, rows: &[Vec<String>]) -> String {
    let mut t = format!("{}\n", HEADERS[header]);
    for r in rows {
        t.push_str(&r.join(","));
        t.push('\n');
    }
    t
}

/// The error names `path`, and a line of the file when it is about a row.
fn names_the_place(e: &SourceError, path: &std::path::Path, lines: u64) -> Result<(), String> {
    match e {
        SourceError::Row { pos, .. }
            if pos.file != path || pos.line < 2 || pos.line > lines + 1 =>
        {
            return Err(format!("{e} (file {}, {lines} lines)", path.display()));
        }
        SourceError::Header { path: p, .. } | SourceError::Io { path: p, .. } if p != path => {
            return Err(format!("{e} names another file"));
        }
        SourceError::Invalid(m) if !m.contains(&*path.to_string_lossy()) => {
            return Err(format!("{e} names no file"));
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_file_is_read_or_refused_naming_the_file_and_line((header, rows) in file()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("AAPL.csv");
        let body = text(header, &rows);
        std::fs::write(&path, &body).unwrap();
        let lines = body.lines().count() as u64;
        let fail = CsvOptions { layout: None, symbol: None, on_error: OnError::Fail };
        if let Err(e) = load_csv_files(std::slice::from_ref(&path), &fail) {
            prop_assert!(names_the_place(&e, &path, lines).is_ok(), "{:?}", names_the_place(&e, &path, lines));
        }
        let skip = CsvOptions { on_error: OnError::Skip, ..fail };
        match load_csv_files(std::slice::from_ref(&path), &skip) {
            Ok((ticks, report)) => {
                for e in &report.skipped {
                    prop_assert!(names_the_place(e, &path, lines).is_ok(), "{}", e);
                }
                // Every data line is a tick or a skipped row (blank lines are neither). A quoted
                // field may span lines (CSV), so with quotes a record may be several lines.
                let data = body.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
                let read = ticks.len() + report.skipped.len();
                if body.contains('"') {
                    prop_assert!(read <= data, "{} records of {} lines", read, data);
                } else {
                    prop_assert_eq!(read, data, "ticks + skipped rows against the lines of\n{}", body);
                }
                prop_assert_eq!(report.rows(), ticks.len() as u64);
            }
            // Only the header can refuse a whole file when rows are skipped.
            Err(e) => prop_assert!(
                matches!(e, SourceError::Header { .. } | SourceError::Invalid(_)),
                "{}", e
            ),
        }
    }
}
