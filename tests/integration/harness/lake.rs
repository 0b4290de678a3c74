//! Lakes of the tests: the sample lake (data/stocks.csv written with the library's lake
//! generator), and reading a lake back with the `parquet` crate, independently of the consumer's
//! code, down to the exactly-once check over Kafka offsets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stocklake::lake::layout::unescape_value;
use stocklake::tick::Tick;

/// One row of the lake with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub tick: Tick,
    pub partition: i32,
    pub offset: i64,
    pub file: PathBuf,
}

/// A fresh lake of data/stocks.csv (one file per symbol) in a temporary folder.
pub fn sample_lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let (files, rows) =
        stocklake::engine::lakegen::write_sample_lake(&super::sample_csv(), dir.path())
            .expect("sample lake");
    assert_eq!((files, rows), (5, 12_154));
    dir
}

/// A lake folder as the `--lake` argument and the engine's URL.
pub fn lake_arg(dir: &Path) -> String {
    dir.display().to_string()
}

/// Every file below `dir` (none when it does not exist), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The Parquet files below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = files_under(dir);
    out.retain(|p| p.extension().is_some_and(|x| x == "parquet"));
    out
}

/// Every row of `<lake>/ticks`, with partition values taken from the directory names.
pub fn read_lake(lake: &Path) -> Vec<Row> {
    let table = lake.join("ticks");
    let mut rows = Vec::new();
    for file in parquet_files(&table) {
        let rel = file
            .strip_prefix(&table)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
        rows.extend(read_parquet(bytes, &rel, &file));
    }
    rows
}

/// The rows of one lake file; `rel` is its path below `ticks/` (`symbol=AAPL/part-….parquet`).
pub fn read_parquet(bytes: bytes::Bytes, rel: &str, file: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut parts: HashMap<String, String> = HashMap::new();
    for s in rel.split('/').filter(|s| s.contains('=')) {
        let (k, v) = s.split_once('=').unwrap();
        parts.insert(k.to_string(), unescape_value(v).unwrap());
    }
    {
        let file = file.to_path_buf();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let b = batch.unwrap();
            let col = |name: &str| {
                b.column_by_name(name)
                    .unwrap_or_else(|| panic!("{name} in {}", file.display()))
                    .clone()
            };
            let f64s = |name: &str| {
                col(name)
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .unwrap()
                    .clone()
            };
            let et = col("event_time");
            let et = et
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap();
            let td = col("trade_date");
            let td = td.as_any().downcast_ref::<Date32Array>().unwrap();
            let (open, high, low, close, adj) = (
                f64s("open"),
                f64s("high"),
                f64s("low"),
                f64s("close"),
                f64s("adj_close"),
            );
            let vol = col("volume");
            let vol = vol.as_any().downcast_ref::<Int64Array>().unwrap();
            let kp = col("kafka_partition");
            let kp = kp.as_any().downcast_ref::<Int32Array>().unwrap();
            let ko = col("kafka_offset");
            let ko = ko.as_any().downcast_ref::<Int64Array>().unwrap();
            let sym = b
                .column_by_name("symbol")
                .map(|c| c.as_any().downcast_ref::<StringArray>().unwrap().clone());
            let opt = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
            for i in 0..b.num_rows() {
                let symbol = match &sym {
                    Some(s) => s.value(i).to_string(),
                    None => parts
                        .get("symbol")
                        .cloned()
                        .expect("symbol column or partition"),
                };
                let tick = Tick {
                    symbol,
                    event_time: et.value(i),
                    open: opt(&open, i),
                    high: opt(&high, i),
                    low: opt(&low, i),
                    close: opt(&close, i),
                    adj_close: opt(&adj, i),
                    volume: (!vol.is_null(i)).then(|| vol.value(i)),
                };
                assert_eq!(
                    td.value(i),
                    tick.trade_date(),
                    "trade_date matches event_time"
                );
                rows.push(Row {
                    tick,
                    partition: kp.value(i),
                    offset: ko.value(i),
                    file: file.clone(),
                });
            }
        }
    }
    rows
}

/// Asserts that `got` (read back) holds the same ticks as `want`, in any order: the same
/// values, sorted by (symbol, event_time), row for row.
pub fn assert_same_ticks(mut got: Vec<Tick>, mut want: Vec<Tick>) {
    let key = |t: &Tick| (t.symbol.clone(), t.event_time);
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got.len(), want.len(), "how many ticks: got vs want");
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "row {i} by (symbol, event_time) differs:\n got  {:?}\n want {:?}",
            got[i], want[i]
        );
    }
}

/// Asserts that the lake holds every offset `0..size` of every partition exactly once.
pub fn assert_exactly_once(rows: &[Row], sizes: &HashMap<i32, i64>) {
    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    for r in rows {
        *seen.entry((r.partition, r.offset)).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        dups.is_empty(),
        "duplicated events (partition, offset) -> count: {dups:?}"
    );
    for (p, size) in sizes {
        let missing: Vec<i64> = (0..*size)
            .filter(|o| !seen.contains_key(&(*p, *o)))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: missing offsets, first ones {missing:?} of {size}"
        );
    }
    let total: i64 = sizes.values().sum();
    assert_eq!(
        rows.len() as i64,
        total,
        "rows in the lake vs events in the topic"
    );
}
