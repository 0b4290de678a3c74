//! `stocklake consume` end to end on a local lake: values, Parquet types, hostile symbols, poison.

use std::collections::HashMap;

use stocklake::lake::rejects::Reject;
use stocklake::tick::Tick;

use crate::harness::kafka::{
    broker_with_topic, consume_until_idle, partition_sizes, produce_file, produce_raw,
    produce_ticks,
};
use crate::harness::lake::{
    Row, assert_exactly_once, assert_same_ticks, read_lake, read_rejects, table_files,
};
use crate::harness::{python, repo, sample_csv, sample_ticks, stderr, text};

#[test]
fn the_sample_file_lands_once_with_the_csv_values_and_athena_types() {
    let (broker, topic) = broker_with_topic(3);
    let out = produce_file(&sample_csv(), broker.bootstrap_servers(), &topic)
        .arg("-q")
        .output();
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let out = consume_until_idle(broker.bootstrap_servers(), &topic, dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("committed 12154 rows in 5 files"),
        "{}",
        stderr(&out)
    );

    let rows = read_lake(dir.path());
    assert_exactly_once(
        &rows,
        &partition_sizes(broker.bootstrap_servers(), &topic, 3),
    );
    assert_same_ticks(rows.into_iter().map(|r| r.tick).collect(), sample_ticks());

    // Physical types: INT64 TIMESTAMP(MILLIS, UTC) and DATE, never INT96 or NANOS.
    for file in table_files(dir.path()) {
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&file).unwrap())
                .unwrap();
        use parquet::file::reader::FileReader;
        let schema = reader.metadata().file_metadata().schema_descr();
        for col in schema.columns() {
            assert_ne!(
                col.physical_type(),
                parquet::basic::Type::INT96,
                "{}",
                file.display()
            );
        }
        let et = schema
            .columns()
            .iter()
            .find(|c| c.name() == "event_time")
            .unwrap();
        assert_eq!(et.physical_type(), parquet::basic::Type::INT64);
        let mut printed = Vec::new();
        parquet::schema::printer::print_schema(&mut printed, schema.root_schema());
        let printed = String::from_utf8(printed).unwrap();
        assert!(
            printed.contains("INT64 event_time (TIMESTAMP(MILLIS,true))"),
            "{printed}"
        );
        assert!(printed.contains("INT32 trade_date (DATE)"), "{printed}");
        assert!(
            schema.columns().iter().all(|c| c.name() != "symbol"),
            "symbol is the partition key, not a column"
        );
        assert!(
            reader
                .metadata()
                .row_group(0)
                .column(1)
                .statistics()
                .is_some(),
            "statistics are written"
        );
    }

    // pyarrow reads it with Hive partitioning and sees UTC milliseconds.
    let check = python(&[
        repo().join("tests/py/check_lake.py"),
        dir.path().to_path_buf(),
    ])
    .output();
    let text = text(&check.stdout);
    assert!(
        check.status.success(),
        "pyarrow check failed: {text}{}",
        stderr(&check)
    );
    assert!(text.contains("rows=12154"), "{text}");
    assert!(text.contains("event_time=timestamp[ms, tz=UTC]"), "{text}");
    assert!(text.contains("symbols=AAPL,FB,GOOG,IBM,MSFT"), "{text}");

    // A group new to Kafka (no committed offsets) on the same lake starts where the lake
    // ends: it reads nothing again, not even to skip it.
    let sorted_files = || {
        let mut f = table_files(dir.path());
        f.sort();
        f
    };
    let files_before = sorted_files();
    let again = consume_until_idle(broker.bootstrap_servers(), &topic, dir.path(), &[]);
    let text = stderr(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("committed 0 rows in 0 files"), "{text}");
    assert!(text.contains("0 events were already in the lake"), "{text}");
    assert_eq!(sorted_files(), files_before);
    assert_eq!(read_lake(dir.path()).len(), 12_154);
}

fn tick(symbol: &str, day: i64) -> Tick {
    Tick {
        symbol: symbol.into(),
        event_time: stocklake::tick::parse_iso_millis("2024-01-02").unwrap()
            + day * stocklake::tick::MS_PER_DAY,
        open: Some(1.0),
        high: Some(2.0),
        low: Some(0.5),
        close: Some(1.5),
        adj_close: None,
        volume: Some(day),
    }
}

#[test]
fn hostile_symbols_stay_in_their_directory_and_read_back_unchanged() {
    let hostile = [
        "../x",
        "a/b",
        "%2F",
        ":",
        "with space",
        "ünïcødé",
        "..",
        "x=y",
        "AAPL",
    ];
    let (broker, topic) = broker_with_topic(2);
    let ticks: Vec<Tick> = hostile
        .iter()
        .flat_map(|s| (0..3).map(move |d| tick(s, d)))
        .collect();
    produce_ticks(broker.bootstrap_servers(), &topic, ticks.clone());
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = consume_until_idle(broker.bootstrap_servers(), &topic, &lake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Nothing outside the lake, and every data file exactly one level below ticks/.
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("lake")]);
    let table = lake.join("ticks");
    let files = table_files(&lake);
    assert_eq!(files.len(), hostile.len());
    for f in &files {
        let rel = f.strip_prefix(&table).unwrap();
        assert_eq!(rel.components().count(), 2, "{}", rel.display());
        assert!(
            rel.to_str().unwrap().starts_with("symbol="),
            "{}",
            rel.display()
        );
    }
    let rows = read_lake(&lake);
    assert_same_ticks(rows.into_iter().map(|r| r.tick).collect(), ticks);
}

#[test]
fn bad_events_are_quarantined_with_reasons_and_good_ones_land() {
    let (broker, topic) = broker_with_topic(3);
    let good = |i: i64| {
        let t = tick(["AAA", "BBB", "CCC"][i as usize % 3], i);
        (t.symbol.clone().into_bytes(), t.to_json().into_bytes())
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not a valid tick JSON", b"this is not json".to_vec()),
        (
            "missing field `symbol`",
            br#"{"event_time":"2024-01-02T00:00:00.000Z","close":1}"#.to_vec(),
        ),
        (
            "invalid type",
            br#"{"symbol":"AAA","event_time":"2024-01-02","close":"1.5"}"#.to_vec(),
        ),
        (
            "not a valid tick JSON",
            br#"{"symbol":"AAA","event_time":"2024-01-02","close":NaN}"#.to_vec(),
        ),
        (
            "is negative",
            br#"{"symbol":"AAA","event_time":"2024-01-02","close":-3.5}"#.to_vec(),
        ),
        (
            "not UTF-8",
            b"{\"symbol\":\"\xff\xfe\",\"event_time\":\"2024-01-02\"}".to_vec(),
        ),
        (
            "oversized",
            format!(
                r#"{{"symbol":"AAA","event_time":"2024-01-02","pad":"{}"}}"#,
                "x".repeat(70_000)
            )
            .into_bytes(),
        ),
        (
            "event_time",
            br#"{"symbol":"AAA","event_time":"tomorrow"}"#.to_vec(),
        ),
        (
            "`symbol`: is empty",
            br#"{"symbol":"","event_time":"2024-01-02T00:00:00.000Z","close":1}"#.to_vec(),
        ),
    ];
    // 4,000 good events, 40 of each bad kind (1% each), interleaved.
    let mut messages = Vec::new();
    let mut expected_bad: HashMap<Vec<u8>, &str> = HashMap::new();
    for i in 0..4000i64 {
        messages.push(good(i));
        if i % 100 == 50 {
            for (why, payload) in &bad {
                // Trailing spaces make each payload distinct without changing why it is bad.
                let mut p = payload.clone();
                p.extend(std::iter::repeat_n(b' ', expected_bad.len() + 1));
                expected_bad.insert(p.clone(), why);
                messages.push((b"AAA".to_vec(), p));
            }
        }
    }
    assert_eq!(expected_bad.len(), 40 * bad.len(), "distinct bad payloads");
    produce_raw(broker.bootstrap_servers(), &topic, &messages);

    let dir = tempfile::tempdir().unwrap();
    let out = consume_until_idle(
        broker.bootstrap_servers(),
        &topic,
        dir.path(),
        &["--flush-rows", "700"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("committed 4000 rows"), "{err}");
    assert!(
        err.contains(&format!("and {} rejects", expected_bad.len())),
        "{err}"
    );

    let rows = read_lake(dir.path());
    let rejects: Vec<Reject> = read_rejects(dir.path());
    assert_eq!(rejects.len(), expected_bad.len());
    // Oversized events keep a 64 KiB prefix with their length and SHA-256 (70 KB each here).
    let by_hash: HashMap<String, &Vec<u8>> = expected_bad
        .keys()
        .map(|p| (stocklake::lake::rejects::sha256_hex(p), p))
        .collect();
    for r in &rejects {
        let mut raw = r.value().unwrap();
        if r.is_truncated() {
            let whole = by_hash[r.value_sha256.as_deref().unwrap()];
            assert!(whole.starts_with(&raw) && r.value_bytes == whole.len() as u64);
            assert_eq!(raw.len(), stocklake::lake::rejects::KEPT_VALUE_BYTES);
            raw = whole.clone();
        }
        let why = expected_bad
            .get(&raw)
            .unwrap_or_else(|| panic!("unexpected reject {r:?}"));
        assert!(r.reason.contains(why), "{} should say {why}", r.reason);
        assert_eq!(r.topic, topic);
    }
    // Together, rows and rejects account for every offset exactly once.
    let mut all = rows.clone();
    for r in &rejects {
        all.push(Row {
            tick: tick("reject", 0),
            partition: r.partition,
            offset: r.offset,
            file: Default::default(),
        });
    }
    assert_exactly_once(
        &all,
        &partition_sizes(broker.bootstrap_servers(), &topic, 3),
    );
}

#[test]
fn partition_by_symbol_and_year_or_by_date() {
    let (broker, topic) = broker_with_topic(2);
    let ticks: Vec<Tick> = ["AAA", "BBB"]
        .iter()
        .flat_map(|s| [0i64, 400].map(|d| tick(s, d)))
        .collect();
    produce_ticks(broker.bootstrap_servers(), &topic, ticks.clone());

    let dir = tempfile::tempdir().unwrap();
    let out = consume_until_idle(
        broker.bootstrap_servers(),
        &topic,
        dir.path(),
        &["--partition-by", "symbol,year"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut dirs: Vec<String> = table_files(dir.path())
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .strip_prefix(dir.path().join("ticks"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "symbol=AAA/year=2024",
            "symbol=AAA/year=2025",
            "symbol=BBB/year=2024",
            "symbol=BBB/year=2025"
        ]
    );
    assert_eq!(read_lake(dir.path()).len(), 4);

    // The layout is saved; a consumer asking for another one on the same lake is refused.
    let out = consume_until_idle(
        broker.bootstrap_servers(),
        &topic,
        dir.path(),
        &["--partition-by", "date"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "has partition columns (symbol, year) but this writer asked for partition columns (dt)"
        ),
        "{}",
        stderr(&out)
    );

    let other = tempfile::tempdir().unwrap();
    let out = consume_until_idle(
        broker.bootstrap_servers(),
        &topic,
        other.path(),
        &["--partition-by", "date"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_lake(other.path());
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r.file.to_str().unwrap().contains("/dt=202")),
        "{rows:?}"
    );
    let symbols: std::collections::BTreeSet<_> =
        rows.iter().map(|r| r.tick.symbol.clone()).collect();
    assert_eq!(
        symbols.into_iter().collect::<Vec<_>>(),
        ["AAA", "BBB"],
        "symbol stays a column when it is not a key"
    );
}
