//! Saved queries on the sample lake: each matches its golden result (STOCKLAKE_BLESS=1
//! regenerates them), and the golden results agree with values computed straight from the CSV.

mod support;

use stocklake::engine::LocalEngine;
use stocklake::engine::queries;
use stocklake::engine::statements;
use support::*;

async fn run_saved(engine: &LocalEngine, name: &str) -> String {
    let saved = queries::from_dir(&repo().join("queries")).unwrap();
    let q = queries::find(&saved, name).unwrap_or_else(|| panic!("saved query {name}"));
    let st = statements::split(&q.sql);
    assert_eq!(st.len(), 1, "{name} holds one statement");
    let out = engine
        .query(&st[0].text)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    golden_csv(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_saved_query_matches_its_golden_result() {
    let lake = sample_lake();
    let engine = LocalEngine::open(&lake_arg(lake.path())).await.unwrap();
    let saved = queries::from_dir(&repo().join("queries")).unwrap();
    assert!(saved.len() >= 8, "{} saved queries", saved.len());
    // The built-in copies are the files.
    assert_eq!(
        queries::builtin()
            .iter()
            .map(|q| (&q.name, &q.sql))
            .collect::<Vec<_>>(),
        saved.iter().map(|q| (&q.name, &q.sql)).collect::<Vec<_>>()
    );
    let mut failures = Vec::new();
    for q in &saved {
        assert!(q.sql.starts_with("-- "), "{} starts with a comment", q.name);
        assert!(!q.description.is_empty());
        let got = run_saved(&engine, &q.name).await;
        assert!(got.lines().count() > 1, "{}: no rows", q.name);
        let path = golden_path(&q.name);
        if bless() {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (STOCKLAKE_BLESS=1 writes it)", path.display()));
        if let Err(diff) = compare_golden(&got, &want) {
            failures.push(format!("{}: {diff}", q.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
