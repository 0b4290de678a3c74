//! `stocklake compact` on a lake of 20,000 small files while a writer keeps committing: every
//! (Kafka partition, offset) is in the table exactly once before, during and after, read through
//! the Delta log; afterwards each partition holds one file (or a few for the live ones), and the
//! vacuum leaves only the table's files on the disk. Also the command's refusals and dry run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int32Array, Int64Array};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stocklake::lake::TableLayout;
use stocklake::lake::delta::app_id;
use stocklake::lake::delta::compact::smallfiles::SmallFileLake;

use crate::harness::{cmd, stderr, stdout};

const TOPIC: &str = "ticks";
const PARTITIONS: i32 = 4;
const SYMBOLS: usize = 500;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What a reader sees at one version of the table: its version, the number of files of each
/// partition folder, and every row's (Kafka partition, offset).
struct Seen {
    version: u64,
    files_per_dir: BTreeMap<String, usize>,
    offsets: HashMap<i32, Vec<i64>>,
    txns: HashMap<i32, i64>,
}

/// The (Kafka partition, offset) of each row of each file read so far: data files never change,
/// so each is read once.
type FileRows = HashMap<String, Vec<(i32, i64)>>;

/// Reads the latest version through the Delta log: the active files (each read with the
/// `parquet` crate, two columns, unless `cache` has it) and the `txn` of each Kafka partition.
async fn read_table(lake: &Path) -> Seen {
    read_table_cached(lake, &mut FileRows::new()).await
}

async fn read_table_cached(lake: &Path, cache: &mut FileRows) -> Seen {
    let url = url::Url::from_directory_path(lake.join("ticks")).unwrap();
    let table = deltalake::open_table(url).await.unwrap();
    let version = table.version().unwrap() as u64;
    let state = table.snapshot().unwrap();
    let mut txns = HashMap::new();
    for p in 0..PARTITIONS {
        if let Some(v) = state
            .transaction_version(table.log_store().as_ref(), app_id(TOPIC, p))
            .await
            .unwrap()
        {
            txns.insert(p, v);
        }
    }
    let paths: Vec<String> = state
        .log_data()
        .iter()
        .map(|f| f.path().into_owned())
        .collect();
    let mut files_per_dir = BTreeMap::new();
    let mut offsets: HashMap<i32, Vec<i64>> = HashMap::new();
    for path in paths {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        *files_per_dir.entry(dir).or_insert(0) += 1;
        let rows = cache
            .entry(path.clone())
            .or_insert_with(|| read_offsets(&lake.join("ticks").join(&path), version));
        for (p, o) in rows.iter() {
            offsets.entry(*p).or_default().push(*o);
        }
    }
    Seen {
        version,
        files_per_dir,
        offsets,
        txns,
    }
}

/// The (Kafka partition, offset) of each row of one data file.
fn read_offsets(file: &Path, version: u64) -> Vec<(i32, i64)> {
    let f = std::fs::File::open(file)
        .unwrap_or_else(|e| panic!("version {version}: active file {}: {e}", file.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let schema = builder.parquet_schema();
    let cols: Vec<usize> = (0..schema.num_columns())
        .filter(|i| matches!(schema.column(*i).name(), "kafka_partition" | "kafka_offset"))
        .collect();
    let mask = ProjectionMask::leaves(schema, cols);
    let mut out = Vec::new();
    for batch in builder.with_projection(mask).build().unwrap() {
        let b = batch.unwrap();
        let kp = b.column_by_name("kafka_partition").unwrap();
        let kp = kp.as_any().downcast_ref::<Int32Array>().unwrap();
        let ko = b.column_by_name("kafka_offset").unwrap();
        let ko = ko.as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            out.push((kp.value(i), ko.value(i)));
        }
    }
    out
}

/// Every offset up to each partition's `txn` is there exactly once, and nothing beyond it.
fn assert_exactly_once(seen: &Seen) {
    for p in 0..PARTITIONS {
        let mut got = seen.offsets.get(&p).cloned().unwrap_or_default();
        got.sort_unstable();
        let last = seen.txns.get(&p).copied().unwrap_or(-1);
        let want: Vec<i64> = (0..=last).collect();
        if got != want {
            let mut dups = got.clone();
            dups.dedup();
            panic!(
                "version {}: Kafka partition {p}: {} rows for offsets 0..={last} ({} distinct)",
                seen.version,
                got.len(),
                dups.len()
            );
        }
    }
}

/// Every file under the table folder except its log, relative to it, sorted.
fn parquet_files_on_disk(table: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![table.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("_delta_log") {
                    stack.push(p);
                }
            } else {
                out.push(p.strip_prefix(table).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_lake_of_20000_small_files_is_compacted_while_a_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_path_buf();
    let lake_s = lake.display().to_string();
    let rt = rt();

    // 500 symbols × 40 flushes: 20,000 files of 3 rows, 40 commits.
    let started = Instant::now();
    let mut writer = rt.block_on(async {
        let mut w =
            SmallFileLake::create(&lake_s, TableLayout::default(), TOPIC, SYMBOLS, PARTITIONS)
                .await
                .unwrap();
        let all: Vec<usize> = (0..SYMBOLS).collect();
        for _ in 0..40 {
            w.flush(&all, 3).await.unwrap();
        }
        w
    });
    assert_eq!(writer.files(), 20_000);
    eprintln!(
        "20,000 files written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut cache = FileRows::new();
    let started = Instant::now();
    let before = rt.block_on(read_table_cached(&lake, &mut cache));
    eprintln!("read in {:.1} s", started.elapsed().as_secs_f64());
    assert_exactly_once(&before);
    assert_eq!(before.files_per_dir.len(), SYMBOLS);
    assert!(before.files_per_dir.values().all(|n| *n == 40));
    let base = before.version;

    // `stocklake compact` runs while the writer commits flushes of 10 live symbols and a
    // reader checks each version it finds.
    let compact = cmd(&[
        "compact",
        "--lake",
        &lake_s,
        "--retain",
        "1h",
        "--commit-every",
        "20s",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::fs::File::create(dir.path().join("compact.log")).unwrap())
    .spawn();
    let compact = Arc::new(std::sync::Mutex::new(compact));
    let done = Arc::new(AtomicBool::new(false));
    let live: Vec<usize> = (0..10).collect();
    let writer_done = done.clone();
    let flushes = std::thread::spawn(move || {
        let rt = rt_single();
        let mut n = 0;
        while !writer_done.load(Ordering::Relaxed) || n < 3 {
            rt.block_on(writer.flush(&live, 2)).unwrap();
            n += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        (writer, n)
    });
    let mut checked = Vec::new();
    let status = loop {
        let t = Instant::now();
        let seen = rt.block_on(read_table_cached(&lake, &mut cache));
        assert_exactly_once(&seen);
        eprintln!(
            "checked version {} ({} files) in {:.1} s",
            seen.version,
            seen.files_per_dir.values().sum::<usize>(),
            t.elapsed().as_secs_f64()
        );
        checked.push((seen.version, seen.files_per_dir.values().sum::<usize>()));
        if let Some(status) = compact.lock().unwrap().try_wait().unwrap() {
            break status;
        }
    };
    done.store(true, Ordering::Relaxed);
    let (writer, flushes) = flushes.join().unwrap();
    let out = Arc::try_unwrap(compact)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap()
        .wait_with_output();
    let log = std::fs::read_to_string(dir.path().join("compact.log")).unwrap();
    assert!(status.success(), "compact failed: {log}");
    let report = stdout(&out);
    eprintln!("{report}\nchecked (version, files): {checked:?}");
    assert!(report.contains("files     20"), "{report}");
    assert!(flushes >= 3);
    // Some check saw the table while compaction was under way (some files rewritten, others not).
    assert!(
        checked
            .iter()
            .any(|(_, files)| *files > SYMBOLS && *files < 20_000),
        "no check saw a partly compacted table: {checked:?}"
    );

    let after = rt.block_on(read_table_cached(&lake, &mut cache));
    assert_exactly_once(&after);
    assert!(after.version > base);
    let sum: i64 = writer.next_offsets().values().sum();
    assert_eq!(
        after.offsets.values().map(Vec::len).sum::<usize>() as i64,
        sum
    );
    // The settled symbols hold one file each; the live ones one plus what came after the plan.
    for (dir, n) in &after.files_per_dir {
        let live = (0..10).any(|i| {
            dir == &format!(
                "symbol={}",
                stocklake::lake::delta::compact::smallfiles::symbol(i)
            )
        });
        assert!(
            *n == 1 || (live && *n <= 1 + flushes as usize),
            "{dir} holds {n} files"
        );
    }

    // Once the writer stopped: a second run packs the live ones too, and a vacuum with no
    // retention leaves exactly the table's files on the disk.
    let out = cmd(&[
        "compact",
        "--lake",
        &lake_s,
        "--retain",
        "0s",
        "--allow-short-retain",
    ])
    .output_ok();
    let report = stdout(&out);
    eprintln!("{report}");
    let last = rt.block_on(read_table_cached(&lake, &mut cache));
    assert_exactly_once(&last);
    assert!(
        last.files_per_dir.values().all(|n| *n == 1),
        "{:?}",
        last.files_per_dir
    );
    let mut active: Vec<String> = rt.block_on(async {
        let url = url::Url::from_directory_path(lake.join("ticks")).unwrap();
        let t = deltalake::open_table(url).await.unwrap();
        t.snapshot()
            .unwrap()
            .log_data()
            .iter()
            .map(|f| f.path().into_owned())
            .collect()
    });
    active.sort();
    assert_eq!(parquet_files_on_disk(&lake.join("ticks")), active);
    assert!(report.contains("unreferenced files"), "{report}");
}

fn rt_single() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn compact_refuses_a_short_retain_and_a_missing_table_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake_s = dir.path().display().to_string();
    let out = cmd(&["compact", "--lake", &lake_s, "--retain", "10m"]).output();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-short-retain"),
        "{}",
        stderr(&out)
    );

    let out = cmd(&["compact", "--lake", &lake_s]).output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no Delta table here"),
        "{}",
        stderr(&out)
    );

    let rt = rt();
    rt.block_on(async {
        let mut w = SmallFileLake::create(&lake_s, TableLayout::default(), TOPIC, 3, 2)
            .await
            .unwrap();
        for _ in 0..4 {
            w.flush(&[0, 1, 2], 2).await.unwrap();
        }
    });
    let table = dir.path().join("ticks");
    let files = parquet_files_on_disk(&table);
    let out = cmd(&["compact", "--lake", &lake_s, "--dry-run"]).output_ok();
    let report = stdout(&out);
    assert!(report.contains("dry run"), "{report}");
    assert!(report.contains("would rewrite 12 small files"), "{report}");
    assert!(
        report.contains("of 3 of 3 partitions into 3 files"),
        "{report}"
    );
    assert_eq!(parquet_files_on_disk(&table), files);
    let seen = rt.block_on(read_table(dir.path()));
    assert_eq!(seen.files_per_dir.values().sum::<usize>(), 12);
}

/// A real `stocklake consume --compact-every` on a live stream: compaction commits land between
/// the consumer's flushes, and the lake holds every event exactly once.
#[test]
fn consume_compacts_in_the_background_and_keeps_every_event_once() {
    use crate::harness::kafka::{
        SESSION, background_stream, broker_with_topic, consume, partition_sizes,
    };
    use crate::harness::lake::{assert_exactly_once as exactly_once, delta_log, read_lake};
    let (broker, topic) = broker_with_topic(3);
    let bootstrap = broker.bootstrap_servers().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stream = background_stream(&bootstrap, &topic, 4_000, 400.0);
    let out = consume(&bootstrap, &topic, &crate::harness::unique("g"), dir.path())
        .args(SESSION)
        .args([
            "--flush-interval",
            "200ms",
            "--compact-every",
            "2s",
            "--compact-min-age",
            "0s",
            "--exit-when-idle",
            "4s",
        ])
        .output();
    assert_eq!(stream.join().unwrap(), 4_000);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("background compaction of"), "{log}");
    exactly_once(
        &read_lake(dir.path()),
        &partition_sizes(&bootstrap, &topic, 3),
    );
    // Compaction commits are in the log, between the consumer's.
    let table = dir.path().join("ticks");
    let mut optimize = 0;
    for e in std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if text.contains("\"operation\":\"OPTIMIZE\"") && text.contains("stocklake:compact") {
            optimize += 1;
        }
    }
    assert!(optimize >= 1, "no compaction commit in the log");
    let written: usize = regex::Regex::new(r"committed \d+ rows in (\d+) files")
        .unwrap()
        .captures(&log)
        .unwrap_or_else(|| panic!("no summary: {log}"))[1]
        .parse()
        .unwrap();
    let active = delta_log(&table).files.len();
    assert!(
        active < written,
        "{active} active files of {written} written: nothing compacted\n{log}"
    );
}
