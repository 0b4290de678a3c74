//! Lakes of the tests: the sample lake (data/stocks.csv written with the library's lake
//! generator), and reading a lake back through its Delta log (replayed here) with the `parquet`
//! crate, independently of the consumer's code, down to the exactly-once check over Kafka
//! offsets.

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

/// Every data `.parquet` file below `dir` (committed or not; not the checkpoints of a
/// `_delta_log/`), sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "_delta_log") {
                    continue;
                }
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What a Delta table's log says, replayed here from its JSON commits alone (independently of
/// deltalake and of stocklake's code): the active data files and the `txn` versions.
#[derive(Debug, Default)]
pub struct DeltaLog {
    /// Active files: path below the table folder (as the store names it) and its file.
    pub files: Vec<(String, PathBuf)>,
    /// `txn` versions by application id.
    pub txns: HashMap<String, i64>,
    /// The last version.
    pub version: i64,
}

/// Replays `<table>/_delta_log/*.json` in version order (the table never cleans its log up in
/// the tests, so the JSON commits are complete; checkpoints are not needed).
pub fn delta_log(table: &Path) -> DeltaLog {
    let log = table.join("_delta_log");
    let commits: Vec<(String, String)> = std::fs::read_dir(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .flatten()
        .map(|e| {
            let name = e.file_name().into_string().unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            (name, text)
        })
        .collect();
    let (paths, txns, version) = replay(commits);
    let mut out = DeltaLog {
        txns,
        version,
        ..Default::default()
    };
    for rel in paths {
        let file = rel
            .split('/')
            .fold(table.to_path_buf(), |p, part| p.join(part));
        assert!(file.is_file(), "the log names {rel}, which is missing");
        out.files.push((rel, file));
    }
    out
}

/// Replays a Delta log given as (file name, text) of its entries (other files are ignored):
/// the active files' paths as the store names them (decoded from the log's URI form), the
/// `txn` versions and the last version. Panics when a version is missing.
pub fn replay(entries: Vec<(String, String)>) -> (Vec<String>, HashMap<String, i64>, i64) {
    let mut commits: Vec<(i64, String)> = entries
        .into_iter()
        .filter_map(|(name, text)| Some((name.strip_suffix(".json")?.parse().ok()?, text)))
        .collect();
    commits.sort();
    let mut active = std::collections::BTreeSet::new();
    let mut txns = HashMap::new();
    let mut version = -1;
    for (v, text) in commits {
        assert_eq!(v, version + 1, "commit {} is missing", version + 1);
        version = v;
        for line in text.lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                active.insert(add["path"].as_str().unwrap().to_string());
            } else if let Some(rm) = action.get("remove") {
                active.remove(rm["path"].as_str().unwrap());
            } else if let Some(txn) = action.get("txn") {
                txns.insert(
                    txn["appId"].as_str().unwrap().to_string(),
                    txn["version"].as_i64().unwrap(),
                );
            }
        }
    }
    let paths = active
        .into_iter()
        .map(|uri| {
            stocklake::lake::layout::percent_decode(&uri)
                .unwrap_or_else(|| panic!("bad path in the log: {uri}"))
        })
        .collect();
    (paths, txns, version)
}

/// The Kafka offsets a lake holds, by partition: the ticks table's `txn` versions (the last
/// offset written) plus one, for `topic`. Claims of partitions never written (-1) give 0.
pub fn lake_offsets(lake: &Path, topic: &str) -> HashMap<i32, i64> {
    let prefix = format!("stocklake:{topic}:");
    delta_log(&lake.join("ticks"))
        .txns
        .into_iter()
        .filter_map(|(id, v)| Some((id.strip_prefix(&prefix)?.parse().ok()?, v + 1)))
        .collect()
}

/// Commits in the ticks table's log so far (0 before it exists).
pub fn log_commits(lake: &Path) -> usize {
    std::fs::read_dir(lake.join("ticks/_delta_log"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// Every row of `<lake>/ticks` that the Delta log holds, with partition values taken from
/// the directory names.
pub fn read_lake(lake: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for (rel, file) in delta_log(&lake.join("ticks")).files {
        let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
        rows.extend(read_parquet(bytes, &rel, &file));
    }
    rows
}

/// Every reject the `<lake>/rejects` Delta table holds (read with the `parquet` crate).
pub fn read_rejects(lake: &Path) -> Vec<stocklake::lake::rejects::Reject> {
    let mut out = Vec::new();
    for (_, file) in delta_log(&lake.join("rejects")).files {
        let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let b = batch.unwrap();
            let text = |name: &str| {
                b.column_by_name(name)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let ints = |name: &str| {
                b.column_by_name(name)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone()
            };
            let partition = b.column_by_name("partition").unwrap();
            let partition = partition.as_any().downcast_ref::<Int32Array>().unwrap();
            let (topic, reason, key, vt, vb, sha) = (
                text("topic"),
                text("reason"),
                text("key_base64"),
                text("value_text"),
                text("value_base64"),
                text("value_sha256"),
            );
            let (offset, bytes) = (ints("offset"), ints("value_bytes"));
            let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
            for i in 0..b.num_rows() {
                out.push(stocklake::lake::rejects::Reject {
                    topic: topic.value(i).to_string(),
                    partition: partition.value(i),
                    offset: offset.value(i),
                    reason: reason.value(i).to_string(),
                    key_base64: opt(&key, i),
                    value_text: opt(&vt, i),
                    value_base64: opt(&vb, i),
                    value_bytes: bytes.value(i) as u64,
                    value_sha256: opt(&sha, i),
                });
            }
        }
    }
    out
}

/// The active data files of `<lake>/ticks`, sorted.
pub fn table_files(lake: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = delta_log(&lake.join("ticks"))
        .files
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    files.sort();
    files
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

/// What a fault test found in a lake, for its assertions and its line in the faults table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Events in the topic (up to `sizes`).
    pub produced: i64,
    /// Rows in the lake, and distinct (partition, offset) among them.
    pub total: i64,
    pub distinct: i64,
    /// Rows beyond the first of their (partition, offset).
    pub duplicates: i64,
    /// Offsets of `sizes` that no row holds.
    pub lost: i64,
}

impl Tally {
    /// Asserts that the lake holds every event produced exactly once.
    pub fn assert_every_event_once(&self) {
        assert_eq!(
            (self.total, self.distinct, self.duplicates, self.lost),
            (self.produced, self.produced, 0, 0),
            "{self:?}"
        );
    }
}

/// Counts `rows` against the offsets `0..size` of each partition in `sizes`.
pub fn tally(rows: &[Row], sizes: &HashMap<i32, i64>) -> Tally {
    let mut seen: HashMap<(i32, i64), i64> = HashMap::new();
    for r in rows {
        *seen.entry((r.partition, r.offset)).or_default() += 1;
    }
    let lost = sizes
        .iter()
        .map(|(p, n)| (0..*n).filter(|o| !seen.contains_key(&(*p, *o))).count() as i64)
        .sum();
    Tally {
        produced: sizes.values().sum(),
        total: rows.len() as i64,
        distinct: seen.len() as i64,
        duplicates: seen.values().map(|n| n - 1).sum(),
        lost,
    }
}

/// Prints `tally` as a row of the faults table (`| fault | what happened | produced | in lake
/// | duplicates | lost |`) on the test's output.
pub fn print_tally(fault: &str, happened: &str, t: &Tally) {
    println!(
        "| {fault} | {happened} | {} | {} ({} distinct) | {} | {} |",
        t.produced, t.total, t.distinct, t.duplicates, t.lost
    );
}
