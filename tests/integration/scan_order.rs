//! The local engine's scan declares the lake's order (`symbol, event_time`) and partitioning
//! (by symbol) only where the files say they hold it: window queries then need no sort and no
//! repartition, and a file whose rows are out of order gets the sort back and the same answers.

use stocklake::engine::LocalEngine;
use stocklake::engine::lakegen::LakeGen;
use stocklake::engine::queries;
use stocklake::lake::TableLayout;
use stocklake::tick::Tick;

use crate::harness::delta::tick_at;
use crate::harness::golden::golden_csv;
use crate::harness::lake::lake_arg;

const SYMBOLS: [&str; 5] = ["AAA", "BBB", "CCC", "DDD", "EEE"];
const DAYS: i64 = 400;

/// A daily series per symbol whose price wanders (so returns, peaks and crosses happen).
fn tick(symbol: &str, day: i64) -> Tick {
    let mut t = tick_at(symbol, day);
    let seed = symbol.bytes().map(i64::from).sum::<i64>();
    let price = 100.0 + 20.0 * ((day + seed) as f64 / 9.0).sin() + (day % 7) as f64;
    t.event_time = stocklake::tick::parse_iso_millis("2001-01-01").unwrap() + day * 86_400_000;
    t.open = Some(price - 0.5);
    t.high = Some(price + 1.0);
    t.low = Some(price - 1.0);
    t.close = Some(price);
    t.volume = Some(1_000 + (day * 37 + seed) % 900 + if day % 53 == 0 { 50_000 } else { 0 });
    t
}

/// A lake of the series, one file per symbol; `reversed` symbols' rows are written newest first.
fn write_lake(dir: &std::path::Path, reversed: &[&str]) {
    let mut g = LakeGen::new(dir, TableLayout::default(), 0, 100_000).unwrap();
    for s in SYMBOLS {
        let mut days: Vec<i64> = (0..DAYS).collect();
        if reversed.contains(&s) {
            days.reverse();
        }
        for d in days {
            g.push(&tick(s, d)).unwrap();
        }
    }
    g.finish().unwrap();
}

/// Each saved query's result (as golden CSV) and the physical plan of its statement.
async fn run_all(dir: &std::path::Path) -> Vec<(String, String, String)> {
    let engine = LocalEngine::open(&lake_arg(dir)).await.unwrap();
    let mut out = Vec::new();
    for q in queries::builtin() {
        let sql = stocklake::engine::statements::split(&q.sql).remove(0).text;
        let result = golden_csv(&engine.query(&sql).await.unwrap());
        let plan = engine.query(&format!("EXPLAIN {sql}")).await.unwrap();
        let plan = golden_csv(&plan);
        out.push((q.name.clone(), result, plan));
    }
    out
}

/// The keys of each operator of the plan whose line starts with `op` and lists them in
/// `[...]` (e.g. `SortExec: expr=[...]`, `RepartitionExec: partitioning=Hash([...]`), each key
/// without its column index.
fn keys_of(plan: &str, op: &str) -> Vec<Vec<String>> {
    plan.lines()
        .filter_map(|l| {
            let rest = &l[l.find(op)? + op.len()..];
            let list = &rest[..rest.find(']')?];
            Some(
                list.split(", ")
                    .map(|k| {
                        let name = k.split('@').next().unwrap_or(k);
                        let options = k.split_once(' ').map_or("", |(_, o)| o);
                        format!("{name} {options}").trim().to_string()
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Whether the plan sorts rows by symbol and event time: what a window `PARTITION BY symbol
/// ORDER BY event_time` over the table needs when the scan does not declare that order.
fn sorts_by_symbol_and_time(plan: &str) -> bool {
    keys_of(plan, " SortExec: expr=[")
        .iter()
        .chain(keys_of(plan, ",SortExec: expr=[").iter())
        .any(|k| k == &["symbol ASC NULLS LAST", "event_time ASC NULLS LAST"])
}

/// Whether the plan hash-repartitions rows by the symbol alone.
fn repartitions_by_symbol(plan: &str) -> bool {
    keys_of(plan, "RepartitionExec: partitioning=Hash([")
        .iter()
        .any(|k| k == &["symbol"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_over_a_lake_in_order_need_no_sort_and_an_unordered_file_gets_it_back() {
    let ordered = tempfile::tempdir().unwrap();
    write_lake(ordered.path(), &[]);
    let unordered = tempfile::tempdir().unwrap();
    write_lake(unordered.path(), &["CCC"]);

    let a = run_all(ordered.path()).await;
    let b = run_all(unordered.path()).await;
    for ((name, result_a, plan_a), (_, result_b, plan_b)) in a.iter().zip(&b) {
        // Same rows, same answers, whatever order the files hold them in.
        assert_eq!(result_a, result_b, "{name}: the results differ");
        assert!(result_a.lines().count() > 1, "{name}: no rows");
        if is_window(plan_a) {
            // Every window is PARTITION BY symbol ORDER BY event_time: on the ordered lake no
            // sort below it; with one file out of order, the sort is back.
            assert!(
                !sorts_by_symbol_and_time(plan_a),
                "{name}: the ordered lake is still sorted by symbol, event_time:\n{plan_a}"
            );
            assert!(
                sorts_by_symbol_and_time(plan_b),
                "{name}: the lake with a file out of order is not sorted:\n{plan_b}"
            );
        }
        // Each file holds one symbol, and the scan's partitions are DataFusion's hash of it.
        assert!(
            !repartitions_by_symbol(plan_a),
            "{name}: the lake partitioned by symbol is repartitioned by symbol:\n{plan_a}"
        );
    }
    // The window queries are most of the saved ones.
    let windows = a.iter().filter(|(_, _, p)| is_window(p)).count();
    assert!(windows >= 6, "{windows} saved queries use a window");
    // Their windows over (symbol, event_time) run in stocklake's streaming window operator.
    let streamed = a
        .iter()
        .filter(|(_, _, p)| p.contains("StreamWindowExec"))
        .count();
    assert!(
        streamed >= 6,
        "{streamed} saved queries use the streaming window operator"
    );
}

/// The plan computes a window function (DataFusion's operators or stocklake's).
fn is_window(plan: &str) -> bool {
    plan.contains("WindowAggExec") || plan.contains("StreamWindowExec")
}
