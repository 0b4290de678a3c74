//! `sync` against moto S3: first copy, an incremental rerun copying only the changed object, a
//! deletion upstream, an interrupted run resumed, and a foreign folder left alone.

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
