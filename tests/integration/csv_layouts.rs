//! Every CSV layout the producer reads, from fixture files with the quirks of each source
//! (BOM, CRLF, `null`, `$` prices, newest first, no final newline), and malformed rows whose
//! errors must name file, line and column.

use std::path::PathBuf;

use stocklake::error::SourceError;
use stocklake::source::{CsvOptions, Layout, OnError, load_csv_files};
use stocklake::tick::{Tick, parse_iso_millis};

use crate::harness::sample_csv;

fn fixture(name: &str) -> PathBuf {
    crate::harness::fixture("csv").join(name)
}

fn load(name: &str, opts: CsvOptions) -> (Vec<Tick>, stocklake::source::LoadReport) {
    load_csv_files(&[fixture(name)], &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ms(s: &str) -> i64 {
    parse_iso_millis(s).unwrap()
}

/// (symbol, event time) of each tick, in the order read.
fn order(ticks: &[Tick]) -> Vec<(&str, i64)> {
    ticks
        .iter()
        .map(|t| (t.symbol.as_str(), t.event_time))
        .collect()
}

#[test]
fn bokeh_sample_layout() {
    let (ticks, report) = load("bokeh.csv", CsvOptions::default());
    assert_eq!(report.files[0].layout, Layout::Bokeh);
    assert_eq!(ticks.len(), 4);
    // Replay order: by date, then symbol.
    assert_eq!(
        order(&ticks),
        [
            ("AAPL", ms("2000-03-01")),
            ("MSFT", ms("2000-03-01")),
            ("AAPL", ms("2000-03-02")),
            ("MSFT", ms("2000-03-02"))
        ]
    );
    assert_eq!(
        ticks[0],
        Tick {
            symbol: "AAPL".into(),
            event_time: ms("2000-03-01"),
            open: Some(118.56),
            high: Some(132.06),
            low: Some(118.5),
            close: Some(130.31),
            adj_close: Some(4.186662803811),
            volume: Some(9_616_100),
        }
    );
}

#[test]
fn kaggle_index_layout_with_bom_and_float_volume() {
    let (ticks, report) = load("indexProcessed.csv", CsvOptions::default());
    assert_eq!(report.files[0].layout, Layout::Kaggle);
    assert_eq!(ticks.len(), 3);
    assert_eq!(ticks[0].symbol, "HSI");
    assert_eq!(ticks[0].volume, Some(0));
    assert_eq!(ticks[0].adj_close, Some(2568.300049));
    let nya = ticks.iter().find(|t| t.symbol == "NYA").unwrap();
    assert_eq!(nya.volume, Some(116_890_000));
    assert_eq!(nya.close, Some(1378.949951));
}

#[test]
fn yahoo_layout_crlf_null_no_final_newline_symbol_from_file_name() {
    let (ticks, report) = load("AAPL.csv", CsvOptions::default());
    assert_eq!(report.files[0].layout, Layout::Yahoo);
    assert_eq!(ticks.len(), 3);
    assert!(ticks.iter().all(|t| t.symbol == "AAPL"));
    let missing = &ticks[1];
    assert_eq!(missing.event_time, ms("2024-01-03"));
    assert_eq!(
        (
            missing.open,
            missing.close,
            missing.adj_close,
            missing.volume
        ),
        (None, None, None, None)
    );
    // The last row has no newline after it and still counts.
    assert_eq!(ticks[2].volume, Some(71_983_600));
    assert_eq!(ticks[2].adj_close, Some(181.023178));
    // --symbol wins over the file name.
    let (ticks, _) = load(
        "AAPL.csv",
        CsvOptions {
            symbol: Some("APPLE".into()),
            ..Default::default()
        },
    );
    assert!(ticks.iter().all(|t| t.symbol == "APPLE"));
}

#[test]
fn stooq_layout_with_dates_and_times() {
    let (ticks, report) = load("aapl.us.txt", CsvOptions::default());
    assert_eq!(report.files[0].layout, Layout::Stooq);
    assert_eq!(
        order(&ticks),
        [
            ("MSFT.US", ms("2024-01-02T00:00:00Z")),
            ("AAPL.US", ms("2024-01-02T15:30:00Z")),
            ("AAPL.US", ms("2024-01-02T15:35:00Z")),
        ]
    );
    assert_eq!(ticks[1].low, Some(186.9));
    assert_eq!(ticks[1].volume, Some(1_200_300));
    assert_eq!(ticks[1].adj_close, None);
}

#[test]
fn nasdaq_layout_dollars_us_dates_newest_first() {
    let name = "HistoricalData_1704585600000.csv";
    // Nasdaq's file names carry no ticker: without --symbol that is a clear error.
    let err = load_csv_files(&[fixture(name)], &CsvOptions::default()).unwrap_err();
    assert!(err.to_string().contains("--symbol"), "{err}");
    assert!(err.to_string().contains(name), "{err}");

    let (ticks, report) = load(
        name,
        CsvOptions {
            symbol: Some("AAPL".into()),
            ..Default::default()
        },
    );
    assert_eq!(report.files[0].layout, Layout::Nasdaq);
    let times: Vec<_> = ticks.iter().map(|t| t.event_time).collect();
    assert_eq!(
        times,
        [ms("2024-01-03"), ms("2024-01-04"), ms("2024-01-05")]
    );
    assert_eq!(ticks[2].close, Some(181.18));
    assert_eq!(ticks[1].high, Some(183.0872));
    assert_eq!(ticks[0].volume, Some(58_414_460));
}

#[test]
fn forced_layout_checks_its_columns() {
    let err = load_csv_files(
        &[fixture("bokeh.csv")],
        &CsvOptions {
            layout: Some(Layout::Stooq),
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bokeh.csv") && msg.contains("stooq") && msg.contains("per"),
        "{msg}"
    );

    let err = load_csv_files(&[fixture("no_close.csv")], &CsvOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no close column"), "{err}");
}

fn row_error(name: &str) -> (String, u64, usize) {
    match load_csv_files(&[fixture(name)], &CsvOptions::default()).unwrap_err() {
        e @ SourceError::Row { .. } => {
            let SourceError::Row { ref pos, .. } = e else {
                unreachable!()
            };
            (e.to_string(), pos.line, pos.column)
        }
        other => panic!("{name}: expected a row error, got {other}"),
    }
}

#[test]
fn malformed_rows_name_file_line_and_column() {
    let (msg, line, column) = row_error("bad_price.csv");
    assert_eq!((line, column), (3, 4), "{msg}");
    assert!(
        msg.contains("bad_price.csv:3:4 (High)") && msg.contains("\"abc\""),
        "{msg}"
    );

    let (msg, line, column) = row_error("bad_date.csv");
    assert_eq!((line, column), (4, 2), "{msg}");
    assert!(
        msg.contains("bad_date.csv:4:2 (Date)") && msg.contains("2000-02-30"),
        "{msg}"
    );

    let (msg, line, _) = row_error("bad_fields.csv");
    assert_eq!(line, 3, "{msg}");
    assert!(msg.contains("4 fields where the header has 8"), "{msg}");
}

#[test]
fn skip_keeps_good_rows_and_reports_every_bad_one() {
    let (ticks, report) = load(
        "bad_fields.csv",
        CsvOptions {
            on_error: OnError::Skip,
            ..Default::default()
        },
    );
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].event_time, ms("2000-03-01"));
    assert_eq!(report.files[0].skipped, 3);
    let reasons: Vec<String> = report.skipped.iter().map(|e| e.to_string()).collect();
    assert!(reasons[0].contains("bad_fields.csv:3"), "{reasons:?}");
    assert!(
        reasons[1].contains("bad_fields.csv:4:6 (Close)") && reasons[1].contains("negative"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("bad_fields.csv:5:7 (Volume)") && reasons[2].contains("whole number"),
        "{reasons:?}"
    );
}

#[test]
fn several_files_replay_together_in_event_time_order() {
    let (ticks, _) = load_csv_files(
        &[fixture("bokeh.csv"), fixture("indexProcessed.csv")],
        &CsvOptions::default(),
    )
    .unwrap();
    assert_eq!(ticks.len(), 7);
    assert!(
        ticks
            .windows(2)
            .all(|w| (w[0].event_time, &w[0].symbol) <= (w[1].event_time, &w[1].symbol))
    );
    assert_eq!(ticks[0].symbol, "HSI");
}

#[test]
fn the_sample_file_loads_completely() {
    let (ticks, report) = load_csv_files(&[sample_csv()], &CsvOptions::default()).unwrap();
    assert_eq!(report.files[0].layout, Layout::Bokeh);
    assert_eq!(ticks.len(), 12_154);
    let symbols: std::collections::BTreeSet<_> = ticks.iter().map(|t| t.symbol.as_str()).collect();
    assert_eq!(
        symbols.into_iter().collect::<Vec<_>>(),
        ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    );
    assert_eq!(ticks.first().unwrap().event_time, ms("2000-03-01"));
    assert_eq!(ticks.last().unwrap().event_time, ms("2013-03-01"));
}

#[test]
fn a_quote_that_never_closes_is_named_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quotes.csv");
    std::fs::write(
        &path,
        "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n\
         AAPL,2000-03-01,1,2,1,2,100,2\n\
         \"IBM,2000-03-01,1,2,1,2,100,2\n\
         MSFT,2000-03-01,1,2,1,2,100,2\n\
         GOOG,2000-03-01,1,2,1,2,100,2\n",
    )
    .unwrap();
    let err = load_csv_files(std::slice::from_ref(&path), &CsvOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("quotes.csv:3:1 (Ticker)") && text.contains("lines 3 to 5"),
        "{text}"
    );
    // Skipped rows say which lines they took.
    let skip = CsvOptions {
        on_error: OnError::Skip,
        ..CsvOptions::default()
    };
    let (ticks, report) = load_csv_files(&[path], &skip).unwrap();
    assert_eq!(ticks.len(), 1);
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].to_string().contains("runs over 3 lines"),
        "{}",
        report.skipped[0]
    );
}
