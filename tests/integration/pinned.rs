//! Pinning the local engine to a table version: `--as-of` by version and by time (and the errors
//! for versions and times that never existed), and offline `compare` reading the version a saved
//! Athena result recorded, saying when the table moved during the Athena query.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stocklake::compare::offline::Against;
use stocklake::compare::run::{AsOf as CompareAsOf, against_saved};
use stocklake::compare::{Tolerance, report};
use stocklake::engine::lakegen::LakeGen;
use stocklake::engine::{LocalEngine, TableVersions};
use stocklake::lake::delta::read::AsOf;

use crate::harness::golden::golden_csv;
use crate::harness::lake::{lake_arg, sample_lake};

fn column(name: &str, ty: &str) -> Value {
    json!({"name": name, "athena_type": ty, "precision": 0, "scale": 0, "nullable": true})
}

/// The sample lake (versions 1 to 5: one symbol each) plus version 6, one NEW row, committed a
/// moment later.
fn sample_lake_with_a_sixth_version() -> tempfile::TempDir {
    let lake = sample_lake();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let mut more = LakeGen::new(
        lake.path(),
        stocklake::lake::TableLayout::default(),
        5_000_000,
        100,
    )
    .unwrap();
    more.push(&crate::harness::flat_tick("NEW", "2013-03-04", 1.0, 1))
        .unwrap();
    more.finish().unwrap();
    lake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_reads_an_older_version_by_number_or_time_and_refuses_what_never_existed() {
    let lake = sample_lake_with_a_sixth_version();
    let count = "SELECT count(*) AS n FROM stocklake.ticks";
    let n = |out: stocklake::engine::QueryOutput| golden_csv(&out);
    let now = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    let out = now.query(count).await.unwrap();
    assert_eq!(out.info.table_versions, Some(TableVersions::at(6)));
    assert_eq!(n(out), "n\n12155\n");
    let state = now.lake_state().await.unwrap();
    assert_eq!((state.version, state.files, state.rows), (6, 6, 12155));
    assert_eq!(state.offsets.len(), 1);
    assert_eq!(
        (state.offsets[0].topic.as_str(), state.offsets[0].partition),
        ("ticks", 0)
    );
    assert_eq!(state.offsets[0].last_offset, 5_000_000);

    // By number: version 5, the sample lake before NEW; version 2: AAPL and FB only.
    let pinned = LocalEngine::open_at(&lake_arg(lake.path()), Some(AsOf::Version(5)))
        .await
        .unwrap();
    assert_eq!(n(pinned.query(count).await.unwrap()), "n\n12154\n");
    let five = pinned.lake_state().await.unwrap();
    assert_eq!((five.version, five.files, five.rows), (5, 5, 12154));
    assert!(
        five.describe().contains("pinned --as-of 5"),
        "{}",
        five.describe()
    );
    let out = pinned
        .query_at(count, Some(AsOf::Version(2)))
        .await
        .unwrap();
    assert_eq!(out.info.table_versions, Some(TableVersions::at(2)));
    assert_eq!(n(out), "n\n3466\n");
    // The session's pin holds for the next query; None goes back to the latest version.
    assert_eq!(n(pinned.query(count).await.unwrap()), "n\n12154\n");
    pinned.set_as_of(None).await.unwrap();
    assert_eq!(n(pinned.query(count).await.unwrap()), "n\n12155\n");

    // By time: the moment version 5 was committed reads version 5.
    let at_five = five.committed.unwrap();
    let by_time = LocalEngine::open_at(&lake_arg(lake.path()), Some(AsOf::Time(at_five)))
        .await
        .unwrap();
    let out = by_time.query(count).await.unwrap();
    assert_eq!(out.info.table_versions, Some(TableVersions::at(5)));
    assert_eq!(n(out), "n\n12154\n");

    // A version that does not exist, a time before the table.
    let err = LocalEngine::open_at(&lake_arg(lake.path()), Some(AsOf::Version(99)))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no version 99") && err.contains("latest version is 6"),
        "{err}"
    );
    let long_ago: AsOf = "2001-01-01T00:00:00Z".parse().unwrap();
    let err = now.set_as_of(Some(long_ago)).await.unwrap_err().to_string();
    assert!(
        err.contains("did not exist yet at 2001-01-01T00:00:00Z"),
        "{err}"
    );
    assert_eq!(now.as_of().await, None, "a refused pin changes nothing");
}

/// A saved Athena result of `sql` that answered `n` and recorded `versions`.
fn saved_count(dir: &Path, sql: &str, n: u64, versions: Option<(u64, u64)>) -> PathBuf {
    let mut meta = json!({"query_id": "count", "sql": sql, "workgroup": "primary",
        "database": "stocklake", "catalog": "AwsDataCatalog", "output_location": null,
        "submitted_at": "2026-01-15T09:30:00+00:00", "elapsed_ms": 1, "bytes_scanned": 0,
        "rows": 1, "fetched_from": "pages", "columns": [column("n", "bigint")]});
    if let Some((before, after)) = versions {
        meta["table_versions"] = json!({"before": before, "after": after});
    }
    std::fs::write(dir.join("count.json"), meta.to_string()).unwrap();
    std::fs::write(dir.join("count.csv"), format!("\"n\"\n\"{n}\"\n")).unwrap();
    dir.join("count.csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_compare_reads_the_version_the_saved_result_recorded() {
    let lake = sample_lake_with_a_sixth_version();
    let dir = tempfile::tempdir().unwrap();
    let sql = "SELECT count(*) AS n FROM stocklake.ticks";
    let run = |file: PathBuf, as_of: CompareAsOf| {
        let l = lake_arg(lake.path());
        async move {
            let against = Against::open(&file).unwrap();
            against_saved(
                &l,
                &against,
                "count",
                sql,
                as_of,
                Tolerance::default(),
                &std::sync::atomic::AtomicBool::new(false),
            )
            .await
            .unwrap()
        }
    };
    // Athena answered 12154 at version 5: `saved` reads version 5 and agrees, `now` does not.
    let f = saved_count(dir.path(), sql, 12154, Some((5, 5)));
    let c = run(f.clone(), CompareAsOf::Saved).await;
    assert!(c.agree, "{}", report::text(&c));
    assert_eq!(c.left.facts.lake.as_ref().unwrap().version, 5);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    let c = run(f.clone(), CompareAsOf::Now).await;
    assert!(!c.agree);
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("local read version 6") && n.contains("ran on version 5")),
        "{:?}",
        c.notes
    );
    let c = run(f, CompareAsOf::At(AsOf::Version(5))).await;
    assert!(c.agree, "{}", report::text(&c));

    // The table moved from 5 to 6 while Athena ran (it saw 6): the local side reads 6, and
    // the report says so.
    let f = saved_count(dir.path(), sql, 12155, Some((5, 6)));
    let c = run(f, CompareAsOf::Saved).await;
    assert!(c.agree, "{}", report::text(&c));
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("the table moved during the athena query")
                && n.contains("version 5 just before it started, 6 just after it ended")),
        "{:?}",
        c.notes
    );
    assert!(
        report::text(&c).contains("the table moved"),
        "{}",
        report::text(&c)
    );

    // A result that records no version: the latest version.
    let f = saved_count(dir.path(), sql, 12155, None);
    let c = run(f.clone(), CompareAsOf::Saved).await;
    assert!(c.agree, "{}", report::text(&c));
    assert_eq!(c.left.facts.lake.as_ref().unwrap().version, 6);
    // The note names the submission time and whose clock gave it: this machine's in a result
    // saved before Athena's was recorded, Athena's in a newer one.
    let said = |c: &stocklake::compare::Comparison, clock: &str| {
        c.notes.iter().any(|n| {
            n.contains(&format!(
                "committed after the athena query was submitted \
                 (2026-01-15T09:30:00+00:00 by {clock})"
            )) && n.contains("--as-of 2026-01-15T09:30:00Z")
        })
    };
    assert!(said(&c, "this machine's clock"), "{:?}", c.notes);
    let json = dir.path().join("count.json");
    let mut meta: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    meta["submitted_clock"] = json!("athena");
    std::fs::write(&json, meta.to_string()).unwrap();
    let c = run(f, CompareAsOf::Saved).await;
    assert!(said(&c, "Athena's clock"), "{:?}", c.notes);
}
