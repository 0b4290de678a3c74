//! Corrupt lake pieces (issue 16): a truncated data file, a damaged log entry, a damaged
//! checkpoint or `_last_checkpoint`, and files that are not part of the table. `sql`, `audit`,
//! `status` and `compact` refuse the damaged pieces with one error line naming the file (or, for
//! a log entry, the table), never a panic or a stack trace, and ignore what is not part of the
//! table; `sync` mirrors every piece byte for byte, and the mirror fails as the source does.

use std::path::{Path, PathBuf};

use stocklake::lake::TableLayout;

use crate::harness::delta::{files_below, open};
use crate::harness::lake::{lake_arg, parquet_files, sample_lake};
use crate::harness::{cmd, rt, stderr, stdout};

/// `stocklake <args> --lake LAKE`: exit code, stdout, stderr.
fn run(lake: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cmd(args).arg("--lake").arg(lake_arg(lake)).output();
    (out.status.code(), stdout(&out), stderr(&out))
}

/// One error line, no panic, no stack trace.
fn one_clean_error(what: &str, err: &str) {
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(
        !err.contains("with_backtrace") && !err.contains("\n   0: "),
        "{what}: {err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{what}: {err}"
    );
}

fn a_data_file(lake: &Path) -> PathBuf {
    parquet_files(&lake.join("ticks"))
        .into_iter()
        .next()
        .expect("a data file")
}

/// Cuts a data file of the lake to 100 bytes; returns its file name.
fn truncate_a_data_file(lake: &Path) -> String {
    let file = a_data_file(lake);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(100)
        .unwrap();
    file.file_name().unwrap().to_string_lossy().to_string()
}

/// Overwrites the ticks table's newest log entry with broken JSON.
fn damage_the_last_log_entry(lake: &Path) {
    let log = lake.join("ticks/_delta_log");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    std::fs::write(entries.last().unwrap(), "{\"add\": garbage\n").unwrap();
}

#[test]
fn a_truncated_data_file_is_named() {
    let dir = sample_lake();
    let name = truncate_a_data_file(dir.path());
    let (code, _, err) = run(dir.path(), &["sql", "-c", "SELECT sum(volume) FROM ticks"]);
    assert_eq!(code, Some(1), "{err}");
    one_clean_error("sql", &err);
    assert!(err.contains(&name), "sql names the file: {err}");
    let (code, _, err) = run(dir.path(), &["audit"]);
    assert_eq!(code, Some(1), "{err}");
    one_clean_error("audit", &err);
    assert!(
        err.contains("reading the Parquet file") && err.contains(&name),
        "audit names the file: {err}"
    );
}

#[test]
fn a_damaged_log_entry_is_one_error_naming_the_table() {
    let dir = sample_lake();
    damage_the_last_log_entry(dir.path());
    for args in [
        &["sql", "-c", "SELECT count(*) FROM ticks"][..],
        &["audit"],
        &["status"],
        &["compact"],
    ] {
        let (code, _, err) = run(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        one_clean_error(args[0], &err);
        assert!(
            err.contains("Delta table") && err.contains("ticks") && err.contains("Json"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn files_that_are_not_part_of_the_table_are_ignored() {
    let dir = sample_lake();
    let ticks = dir.path().join("ticks");
    std::fs::write(ticks.join("notes.txt"), "not data").unwrap();
    std::fs::create_dir_all(ticks.join("symbol=ZZZ")).unwrap();
    std::fs::copy(
        a_data_file(dir.path()),
        ticks.join("symbol=ZZZ/stray.parquet"),
    )
    .unwrap();
    std::fs::write(ticks.join("symbol=AAPL/half-written.parquet"), b"PAR1").unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*), count(DISTINCT symbol) FROM ticks",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("12154,5"), "{out}");
    let (code, out, err) = run(dir.path(), &["audit"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// The sample lake with a checkpoint of its latest version (the JSON commits kept), and the
/// checkpoint's file (the newest one: the table has its own of version 0 too).
fn lake_with_checkpoint() -> (tempfile::TempDir, PathBuf) {
    let dir = sample_lake();
    rt().block_on(async {
        let t = open(dir.path(), &TableLayout::default()).await;
        deltalake::checkpoints::create_checkpoint(t.table(), None)
            .await
            .unwrap();
    });
    let checkpoint = std::fs::read_dir(dir.path().join("ticks/_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".checkpoint.parquet"))
        .max()
        .expect("a checkpoint");
    (dir, checkpoint)
}

/// `sql`, `audit`, `status` and `compact` each stop with one error naming `object`.
fn every_command_names(lake: &Path, object: &str, what: &str) {
    for args in [
        &["sql", "-c", "SELECT count(*) FROM ticks"][..],
        &["audit"],
        &["status"],
        &["compact"],
    ] {
        let (code, _, err) = run(lake, args);
        assert_eq!(code, Some(1), "{what}, {args:?}: {err}");
        one_clean_error(args[0], &err);
        assert!(
            err.contains("ticks") && err.contains(object),
            "{what}, {args:?} names {object}: {err}"
        );
    }
}

fn count(lake: &Path) -> String {
    let (code, out, err) = run(
        lake,
        &["sql", "--format", "csv", "-c", "SELECT count(*) FROM ticks"],
    );
    assert_eq!(code, Some(0), "{err}");
    out
}

#[test]
fn a_damaged_checkpoint_is_named_and_the_table_reads_again_without_it() {
    for damage in ["truncated", "random bytes", "a data file"] {
        let (dir, checkpoint) = lake_with_checkpoint();
        let name = checkpoint
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(count(dir.path()).contains("12154"));
        let len = std::fs::metadata(&checkpoint).unwrap().len();
        match damage {
            "truncated" => std::fs::OpenOptions::new()
                .write(true)
                .open(&checkpoint)
                .unwrap()
                .set_len(len / 2)
                .unwrap(),
            "random bytes" => std::fs::write(
                &checkpoint,
                (0..len)
                    .map(|i| ((i * 2_654_435_761) >> 13) as u8)
                    .collect::<Vec<u8>>(),
            )
            .unwrap(),
            _ => {
                std::fs::copy(a_data_file(dir.path()), &checkpoint).unwrap();
            }
        }
        every_command_names(dir.path(), &format!("_delta_log/{name}"), damage);
        // The advice works: without the checkpoint, the JSON commits give the same table.
        std::fs::remove_file(&checkpoint).unwrap();
        std::fs::remove_file(dir.path().join("ticks/_delta_log/_last_checkpoint")).unwrap();
        assert!(count(dir.path()).contains("12154"), "{damage}");
    }
}

#[test]
fn a_damaged_last_checkpoint_is_ignored_or_named() {
    let (dir, _) = lake_with_checkpoint();
    let last = dir.path().join("ticks/_delta_log/_last_checkpoint");
    // Unreadable: only a hint, so readers list the log instead.
    std::fs::write(&last, "{\"version\": garbage").unwrap();
    assert!(count(dir.path()).contains("12154"));
    let (code, out, err) = run(dir.path(), &["audit"]);
    assert_eq!(code, Some(0), "{out}{err}");
    // Pointing to a version that has no checkpoint: named.
    std::fs::write(&last, "{\"version\":7,\"size\":10}").unwrap();
    every_command_names(
        dir.path(),
        "_delta_log/_last_checkpoint names a checkpoint that is not there",
        "_last_checkpoint ahead",
    );
}

/// `sync` does not read the table: a truncated data file and a damaged log entry upstream (and
/// an S3 console's empty "folder" object) are mirrored byte for byte, and the mirror then fails
/// in `sql` exactly as the source does, naming the file or the table.
#[test]
fn sync_mirrors_corrupt_pieces_and_the_mirror_names_them() {
    use crate::harness::delta::upload_dir;
    use crate::harness::moto::Moto;
    use object_store::ObjectStoreExt;

    let moto = Moto::start();
    moto.create_bucket("corrupt");
    let truncated = sample_lake();
    let name = truncate_a_data_file(truncated.path());
    let damaged = sample_lake();
    damage_the_last_log_entry(damaged.path());
    rt().block_on(async {
        let config = moto.sdk_config().await;
        upload_dir(&config, "corrupt", "truncated", truncated.path()).await;
        upload_dir(&config, "corrupt", "damaged", damaged.path()).await;
        let store = stocklake::aws::s3_store(&config, "corrupt").unwrap();
        // What the S3 console's "Create folder" leaves: an empty object whose key ends in '/'.
        let marker =
            object_store::path::Path::from_url_path("truncated/ticks/symbol=NEW/").unwrap();
        store.put(&marker, Vec::new().into()).await.unwrap();
        let below = object_store::path::Path::from("truncated/ticks/symbol=NEW/notes.txt");
        store
            .put(&below, "a file in the folder".into())
            .await
            .unwrap();
    });
    let dest = tempfile::tempdir().unwrap();
    for (prefix, source, want) in [
        (
            "truncated",
            truncated.path(),
            vec![name.as_str(), "Parquet"],
        ),
        ("damaged", damaged.path(), vec!["Delta table", "Json"]),
    ] {
        let mirror = dest.path().join(prefix);
        let out = cmd(&["sync", &format!("s3://corrupt/{prefix}")])
            .arg(&mirror)
            .envs(moto.env())
            .output();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "sync {prefix}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let mut mirrored = files_below(&mirror);
        mirrored.retain(|f| f != stocklake::sync::MANIFEST);
        let mut upstream = files_below(source);
        if prefix == "truncated" {
            upstream.push("ticks/symbol=NEW/notes.txt".into());
            upstream.sort();
        }
        assert_eq!(
            mirrored, upstream,
            "{prefix}: the folder marker is left out"
        );
        for f in mirrored.iter().filter(|f| !f.ends_with("notes.txt")) {
            assert_eq!(
                std::fs::read(mirror.join(f)).unwrap(),
                std::fs::read(source.join(f)).unwrap(),
                "{prefix}/{f}"
            );
        }
        let (code, _, err) = run(&mirror, &["sql", "-c", "SELECT sum(volume) FROM ticks"]);
        assert_eq!(code, Some(1), "{prefix}: {err}");
        one_clean_error(prefix, &err);
        for w in want {
            assert!(err.contains(w), "the mirror of {prefix} names {w}: {err}");
        }
    }
}
