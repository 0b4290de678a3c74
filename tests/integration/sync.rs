//! `sync` against moto S3: first copy, an incremental rerun copying only the changed object, a
//! deletion upstream, an interrupted run resumed, a foreign folder left alone, and a Delta table
//! never torn by an interrupted run.

use std::sync::atomic::{AtomicBool, Ordering};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use stocklake::sync::{MANIFEST, PART_SUFFIX, SyncEvent, sync};

use crate::harness::moto::Moto;
use crate::harness::{cmd, rt, stderr};

const KEYS: &[&str] = &[
    "lake/_stocklake/table.json",
    "lake/ticks/symbol=AAPL/part-ticks-0-00000000000000000000.parquet",
    "lake/ticks/symbol=A%2FB/part-ticks-1-00000000000000000004.parquet",
];

async fn put(store: &dyn ObjectStore, key: &str, body: &str) {
    store
        .put(&Path::parse(key).unwrap(), body.to_string().into())
        .await
        .unwrap();
}

/// Runs `stocklake sync`, returns the summary line.
/// `stocklake sync`: (exit status, stderr).
fn run_sync(
    moto: &Moto,
    src: &str,
    dest: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let out = cmd(&["sync", src])
        .arg(dest)
        .args(extra)
        .envs(moto.env())
        .output();
    (out.status.code(), stderr(&out))
}

#[test]
fn sync_copies_then_only_changes_then_deletions() {
    let moto = Moto::start();
    moto.create_bucket("sync1");
    let dest = tempfile::tempdir().unwrap();
    let local = dest.path().join("lake");
    let config = rt().block_on(moto.sdk_config());
    let store = stocklake::aws::s3_store(&config, "sync1").unwrap();
    rt().block_on(async {
        for (i, k) in KEYS.iter().enumerate() {
            put(&*store, k, &format!("content {i}")).await;
        }
        put(&*store, "other/not-in-the-lake", "x").await;
    });

    let (code, err) = run_sync(&moto, "s3://sync1/lake", &local, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("3 objects upstream: 3 copied"), "{err}");
    assert_eq!(
        std::fs::read_to_string(
            local.join("ticks/symbol=A%2FB/part-ticks-1-00000000000000000004.parquet")
        )
        .unwrap(),
        "content 2"
    );
    assert!(local.join(MANIFEST).exists());

    let (code, err) = run_sync(&moto, "s3://sync1/lake", &local, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("0 copied (0 bytes), 3 unchanged, 0 deleted"),
        "{err}"
    );

    // Same size, new content: the ETag tells.
    rt().block_on(put(&*store, KEYS[1], "CONTENT 1"));
    let (code, err) = run_sync(&moto, "s3://sync1/lake", &local, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("1 copied (9 bytes), 2 unchanged, 0 deleted"),
        "{err}"
    );
    let aapl = local.join("ticks/symbol=AAPL/part-ticks-0-00000000000000000000.parquet");
    assert_eq!(std::fs::read_to_string(&aapl).unwrap(), "CONTENT 1");

    rt().block_on(async {
        store.delete(&Path::parse(KEYS[1]).unwrap()).await.unwrap();
    });
    let (code, err) = run_sync(&moto, "s3://sync1/lake", &local, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("2 objects upstream: 0 copied (0 bytes), 2 unchanged, 1 deleted"),
        "{err}"
    );
    assert!(!aapl.exists());
    assert!(
        !local.join("ticks/symbol=AAPL").exists(),
        "empty folders go too"
    );
}

#[test]
fn an_interrupted_sync_resumes_where_it_stopped() {
    let moto = Moto::start();
    moto.create_bucket("sync2");
    let dest = tempfile::tempdir().unwrap();
    let local = dest.path().join("mirror");
    rt().block_on(async {
        let config = moto.sdk_config().await;
        let store = stocklake::aws::s3_store(&config, "sync2").unwrap();
        for (i, k) in KEYS.iter().enumerate() {
            put(&*store, k, &format!("content {i}")).await;
        }
        let prefix = Path::parse("lake").unwrap();
        let stop = AtomicBool::new(false);
        let mut stop_after_first = |e: SyncEvent<'_>| {
            if let SyncEvent::Copied { .. } = e {
                stop.store(true, Ordering::SeqCst);
            }
        };
        let first = sync(
            store.clone(),
            &prefix,
            "s3://sync2/lake/",
            &local,
            false,
            &stop,
            &mut stop_after_first,
        )
        .await
        .unwrap();
        assert!(first.interrupted);
        assert_eq!(first.copied, 1);

        // A download killed half-way leaves a part file behind.
        let part = local.join(format!("ticks/symbol=AAPL/half{PART_SUFFIX}"));
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        std::fs::write(&part, "half").unwrap();

        let go = AtomicBool::new(false);
        let second = sync(
            store,
            &prefix,
            "s3://sync2/lake/",
            &local,
            false,
            &go,
            &mut |_| {},
        )
        .await
        .unwrap();
        assert!(!second.interrupted);
        assert_eq!((second.copied, second.unchanged), (2, 1));
        assert!(!part.exists(), "leftover part files are removed");
        for (i, k) in KEYS.iter().enumerate() {
            let rel = k.strip_prefix("lake/").unwrap();
            assert_eq!(
                std::fs::read_to_string(local.join(rel)).unwrap(),
                format!("content {i}")
            );
        }
    });
}

#[test]
fn sync_leaves_a_foreign_folder_alone_unless_forced() {
    let moto = Moto::start();
    moto.create_bucket("sync3");
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("precious.txt"), "mine").unwrap();
    // A refusal that --force overrides is a usage error: exit status 2.
    let (code, err) = run_sync(&moto, "s3://sync3/lake", dest.path(), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(dest.path().join("precious.txt").exists());
    let (code, err) = run_sync(&moto, "s3://sync3/lake", dest.path(), &["--force"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!dest.path().join("precious.txt").exists());
    let (code, err) = run_sync(&moto, "s3://sync3/other", dest.path(), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("mirrors s3://sync3/lake/"), "{err}");
}

/// A Delta table mirrored by a sync that stops after the data files and the first commits opens
/// at that older version, with every file its log names; the rerun completes it. The copy order
/// is data, commits by version, checkpoint, `_last_checkpoint`. After an upstream compaction and
/// vacuum, an interrupted sync keeps the vacuumed files the mirror's log still names; a complete
/// one deletes them.
#[test]
fn an_interrupted_sync_never_tears_a_delta_table() {
    use crate::harness::delta::{Chunk, commit, open, query, upload_dir};
    use stocklake::lake::TableLayout;
    use stocklake::sync::copy_order;

    let moto = Moto::start();
    moto.create_bucket("sync4");
    let upstream = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let local = dest.path().join("mirror");
    let layout = TableLayout::default();
    rt().block_on(async {
        let mut t = open(upstream.path(), &layout).await;
        for (i, symbol) in ["AAPL", "IBM", "MSFT", "AAPL"].iter().enumerate() {
            let chunk = Chunk {
                symbol,
                partition: 0,
                first: i as i64 * 10,
                rows: 10,
            };
            commit(&mut t, upstream.path(), &layout, "ticks", &[chunk]).await;
        }
        assert_eq!(t.version(), 4);
        deltalake::checkpoints::create_checkpoint(t.loaded().await.unwrap(), None)
            .await
            .unwrap();
        let config = moto.sdk_config().await;
        upload_dir(&config, "sync4", "lake", upstream.path()).await;
        let store = stocklake::aws::s3_store(&config, "sync4").unwrap();
        let prefix = Path::parse("lake").unwrap();

        // Stop right after the commit of version 2 was copied.
        let stop = AtomicBool::new(false);
        let mut copied: Vec<String> = Vec::new();
        let mut on_event = |e: SyncEvent<'_>| {
            if let SyncEvent::Copied { key, .. } = e {
                copied.push(key.to_string());
                if key.ends_with("_delta_log/00000000000000000002.json") {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        };
        let first = sync(
            store.clone(),
            &prefix,
            "s3://sync4/lake/",
            &local,
            false,
            &stop,
            &mut on_event,
        )
        .await
        .unwrap();
        assert!(first.interrupted);
        let data: Vec<&String> = copied
            .iter()
            .filter(|k| !k.contains("_delta_log/"))
            .collect();
        assert_eq!(data.len(), 4, "every data file first: {copied:?}");
        assert!(
            copied[..4].iter().all(|k| !k.contains("_delta_log/")),
            "{copied:?}"
        );
        assert_eq!(
            copied[4..],
            [
                "ticks/_delta_log/00000000000000000000.json",
                "ticks/_delta_log/00000000000000000001.json",
                "ticks/_delta_log/00000000000000000002.json",
            ]
        );
        assert!(!local.join("ticks/_delta_log/_last_checkpoint").exists());

        // The mirror is a table at version 2: the commits of AAPL 0..9 and IBM 10..19.
        let mirror = open(&local, &layout).await;
        assert_eq!(mirror.version(), 2);
        assert_eq!(
            query(
                &mirror,
                "SELECT symbol, count(*), sum(volume) FROM ticks GROUP BY symbol ORDER BY symbol"
            )
            .await,
            ["AAPL|10|45", "IBM|10|145"]
        );

        // The rerun copies the rest in order: commits 3 and 4, the checkpoint, then
        // _last_checkpoint.
        let mut rest: Vec<String> = Vec::new();
        let go = AtomicBool::new(false);
        let second = sync(
            store.clone(),
            &prefix,
            "s3://sync4/lake/",
            &local,
            false,
            &go,
            &mut |e| {
                if let SyncEvent::Copied { key, .. } = e {
                    rest.push(key.to_string());
                }
            },
        )
        .await
        .unwrap();
        assert!(!second.interrupted);
        assert_eq!(
            rest,
            [
                "ticks/_delta_log/00000000000000000003.json",
                "ticks/_delta_log/00000000000000000004.json",
                "ticks/_delta_log/00000000000000000000.checkpoint.parquet",
                "ticks/_delta_log/00000000000000000004.checkpoint.parquet",
                "ticks/_delta_log/_last_checkpoint",
            ]
        );
        let mirror = open(&local, &layout).await;
        assert_eq!(mirror.version(), 4);
        assert_eq!(
            query(
                &mirror,
                "SELECT symbol, count(*), sum(volume) FROM ticks GROUP BY symbol ORDER BY symbol"
            )
            .await,
            ["AAPL|20|390", "IBM|10|145", "MSFT|10|245"]
        );

        // Upstream compacts AAPL's two files into one (version 5) and vacuums the old ones. A
        // sync interrupted after the new file keeps the old ones: the mirror's log (version 4)
        // still names them.
        let before = aapl_files(upstream.path());
        assert_eq!(before.len(), 2, "{before:?}");
        let (_, metrics) = t.loaded().await.unwrap().clone().optimize().await.unwrap();
        assert_eq!(metrics.num_files_removed, 2, "{metrics:?}");
        upload_dir(&config, "sync4", "lake", upstream.path()).await;
        for f in &before {
            std::fs::remove_file(upstream.path().join("ticks").join(f)).unwrap();
            store
                .delete(&Path::parse(format!("lake/ticks/{f}")).unwrap())
                .await
                .unwrap();
        }
        let stop = AtomicBool::new(false);
        let third = sync(
            store.clone(),
            &prefix,
            "s3://sync4/lake/",
            &local,
            false,
            &stop,
            &mut |e| {
                if let SyncEvent::Copied { key, .. } = e {
                    assert!(!key.contains("_delta_log/"), "the data file first: {key}");
                    stop.store(true, Ordering::SeqCst);
                }
            },
        )
        .await
        .unwrap();
        assert!(third.interrupted);
        assert_eq!((third.copied, third.deleted), (1, 0));
        assert_eq!(
            aapl_files(&local).len(),
            3,
            "old files kept, new one copied"
        );
        let mirror = open(&local, &layout).await;
        assert_eq!(mirror.version(), 4);
        let totals =
            "SELECT symbol, count(*), sum(volume) FROM ticks GROUP BY symbol ORDER BY symbol";
        assert_eq!(
            query(&mirror, totals).await,
            ["AAPL|20|390", "IBM|10|145", "MSFT|10|245"]
        );
        // The complete run copies the log, then deletes what upstream vacuumed.
        let go = AtomicBool::new(false);
        let fourth = sync(
            store.clone(),
            &prefix,
            "s3://sync4/lake/",
            &local,
            false,
            &go,
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!(fourth.deleted, 2, "{fourth:?}");
        assert_eq!(aapl_files(&local).len(), 1);
        let mirror = open(&local, &layout).await;
        assert_eq!(mirror.version(), 5);
        assert_eq!(
            query(&mirror, totals).await,
            ["AAPL|20|390", "IBM|10|145", "MSFT|10|245"]
        );

        // Sorting puts any listing in that order.
        let mut keys = [
            "ticks/_delta_log/_last_checkpoint",
            "ticks/_delta_log/00000000000000000010.json",
            "ticks/_delta_log/00000000000000000010.checkpoint.parquet",
            "ticks/_delta_log/00000000000000000009.json",
            "ticks/symbol=IBM/part-1.parquet",
            "rejects/_delta_log/00000000000000000000.json",
            "rejects/part-0.parquet",
        ];
        keys.sort_by_key(|k| copy_order(k));
        assert_eq!(
            keys,
            [
                "rejects/part-0.parquet",
                "ticks/symbol=IBM/part-1.parquet",
                "rejects/_delta_log/00000000000000000000.json",
                "ticks/_delta_log/00000000000000000009.json",
                "ticks/_delta_log/00000000000000000010.json",
                "ticks/_delta_log/00000000000000000010.checkpoint.parquet",
                "ticks/_delta_log/_last_checkpoint",
            ]
        );
    });
}

/// The data files of `<lake>/ticks/symbol=AAPL/`, relative to `ticks/`.
fn aapl_files(lake: &std::path::Path) -> Vec<String> {
    let dir = lake.join("ticks/symbol=AAPL");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| format!("symbol=AAPL/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    out.sort();
    out
}
