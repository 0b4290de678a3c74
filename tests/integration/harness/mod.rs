//! The shared test harness: paths of the repository, unique names, text of a process's output,
//! a Tokio runtime; and below, the clean command builder ([`cmd`]), the Kafka fixtures
//! ([`kafka`]), a mock cluster to fail ([`faulty`]), lake readers ([`lake`]), moto ([`moto`]) and
//! golden results ([`golden`]).

pub mod cmd;
pub mod delta;
pub mod faulty;
pub mod golden;
pub mod kafka;
pub mod lake;
pub mod moto;
pub mod s3proxy;
pub mod snapshot;

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

pub use cmd::{cmd, python};

/// The repository root (the tests never run the binary there: see [`cmd`]).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// data/stocks.csv, the sample data.
pub fn sample_csv() -> PathBuf {
    repo().join("data/stocks.csv")
}

/// The ticks of data/stocks.csv, in replay order.
pub fn sample_ticks() -> Vec<stocklake::tick::Tick> {
    let options = stocklake::source::CsvOptions::default();
    let (ticks, _) = stocklake::source::load_csv_files(&[sample_csv()], &options)
        .expect("data/stocks.csv loads");
    ticks
}

/// A bar of `symbol` on `date` (`YYYY-MM-DD`) whose open, high, low and close are all `price`.
pub fn flat_tick(symbol: &str, date: &str, price: f64, volume: i64) -> stocklake::tick::Tick {
    stocklake::tick::Tick {
        symbol: symbol.into(),
        event_time: stocklake::tick::parse_iso_millis(date).expect("a YYYY-MM-DD date"),
        open: Some(price),
        high: Some(price),
        low: Some(price),
        close: Some(price),
        adj_close: None,
        volume: Some(volume),
    }
}

/// A file of tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Bytes a process printed, as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// A Tokio runtime for a synchronous test that calls async library code.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// A plain HTTP/1.1 request to `addr` (`host:port`), one per connection (JSON body when not
/// empty); returns the status code and the body.
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    let mut out = String::new();
    s.read_to_string(&mut out)
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
