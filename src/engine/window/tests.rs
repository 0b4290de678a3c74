//! The streaming window operator against DataFusion's own on generated partitions: the same
//! rows, the same bits, for every function and frame it takes, with partitions split across
//! many small batches.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::col;
use datafusion::physical_plan::displayable;

use super::*;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Partitions of random lengths (some empty of values, some long) in (sym, t) order, cut into
/// batches of random sizes; doubles with NULLs, NaN, ±0.0 and large values, BIGINTs with NULLs.
fn table(seed: u64) -> MemTable {
    let mut rng = Rng(seed);
    let (mut sym, mut t, mut x, mut i) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in 0..12 {
        let len = match rng.below(4) {
            0 => rng.below(3),
            1 => rng.below(30),
            _ => rng.below(300),
        };
        for k in 0..len {
            sym.push(format!("S{s:02}"));
            t.push(k as i64);
            x.push(match rng.below(20) {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(-0.0),
                3 => Some(1e300),
                4 => Some(-1e300),
                _ => Some((rng.below(2_000_000) as f64 - 1_000_000.0) / 7.0),
            });
            i.push((rng.below(10) > 0).then(|| rng.below(1000) as i64 - 500));
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("sym", DataType::Utf8, false),
        Field::new("t", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("i", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(sym)),
        Arc::new(Int64Array::from(t)),
        Arc::new(Float64Array::from(x)),
        Arc::new(Int64Array::from(i)),
    ];
    let all = RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch");
    let mut batches = Vec::new();
    let mut at = 0;
    while at < all.num_rows() {
        let len = (1 + rng.below(40) as usize).min(all.num_rows() - at);
        batches.push(all.slice(at, len));
        at += len;
    }
    MemTable::try_new(schema, vec![batches])
        .expect("table")
        .with_sort_order(vec![vec![
            col("sym").sort(true, false),
            col("t").sort(true, false),
        ]])
}

/// The query's result and plan with the operator, and DataFusion's result without it.
async fn both(seed: u64, sql: &str) -> (Vec<RecordBatch>, String, Vec<RecordBatch>) {
    let config = || {
        SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(16)
    };
    let ours = SessionContext::new_with_state(
        SessionStateBuilder::new()
            .with_config(config())
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(StreamWindows))
            .build(),
    );
    let theirs = SessionContext::new_with_config(config());
    for ctx in [&ours, &theirs] {
        ctx.register_table("ticks", Arc::new(table(seed)))
            .expect("register");
    }
    let df = ours.sql(sql).await.expect("plan");
    let plan = df.create_physical_plan().await.expect("physical plan");
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    let got = datafusion::physical_plan::collect(plan, ours.task_ctx())
        .await
        .expect("run with the operator");
    let want = theirs
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run without");
    (got, shown, want)
}

/// Each column as comparable values: doubles by their bits.
fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(r) {
                        "NULL".to_string()
                    } else if let Some(f) = c.as_any().downcast_ref::<Float64Array>() {
                        format!("f{:016x}", f.value(r).to_bits())
                    } else if let Some(u) = c.as_any().downcast_ref::<UInt64Array>() {
                        u.value(r).to_string()
                    } else {
                        arrow::util::display::array_value_to_string(c, r).expect("display")
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    rows
}

async fn check(sql: &str, expect_ours: bool) {
    for seed in [1, 7, 42, 1234, 98765] {
        let (got, plan, want) = both(seed, sql).await;
        assert_eq!(
            plan.contains("StreamWindowExec"),
            expect_ours,
            "seed {seed}: {sql}\n{plan}"
        );
        let (got, want) = (cells(&got), cells(&want));
        assert!(!want.is_empty(), "seed {seed}: no rows");
        assert_eq!(got.len(), want.len(), "seed {seed}: {sql}");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "seed {seed}, row {k}: {sql}");
        }
    }
}

const W: &str = "PARTITION BY sym ORDER BY t";

#[tokio::test]
async fn row_number_and_lag_match_datafusion() {
    check(
        &format!(
            "SELECT sym, t, row_number() OVER ({W}) AS rn, lag(x) OVER ({W}) AS l1, \
             lag(x, 3) OVER ({W}) AS l3, lag(sym, 2) OVER ({W}) AS ls, lag(i) OVER ({W}) AS li, \
             lag(x, 0) OVER ({W}) AS l0 FROM ticks ORDER BY sym, t"
        ),
        true,
    )
    .await;
}

#[tokio::test]
async fn sliding_sums_averages_and_counts_match_datafusion() {
    let frames = [
        "ROWS BETWEEN 3 PRECEDING AND CURRENT ROW",
        "ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING",
        "ROWS BETWEEN 5 PRECEDING AND 2 PRECEDING",
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING",
        "ROWS BETWEEN CURRENT ROW AND CURRENT ROW",
    ];
    for frame in frames {
        check(
            &format!(
                "SELECT sym, t, avg(x) OVER ({W} {frame}) AS a, sum(x) OVER ({W} {frame}) AS s, \
                 count(x) OVER ({W} {frame}) AS c, count(*) OVER ({W} {frame}) AS n, \
                 avg(CAST(i AS DOUBLE)) OVER ({W} {frame}) AS ai FROM ticks ORDER BY sym, t"
            ),
            true,
        )
        .await;
    }
}

#[tokio::test]
async fn sliding_and_running_extremes_match_datafusion() {
    let frames = [
        "ROWS BETWEEN 4 PRECEDING AND CURRENT ROW",
        "ROWS BETWEEN 6 PRECEDING AND 3 PRECEDING",
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING",
    ];
    for frame in frames {
        check(
            &format!(
                "SELECT sym, t, min(x) OVER ({W} {frame}) AS mn, max(x) OVER ({W} {frame}) AS mx, \
                 min(i) OVER ({W} {frame}) AS mni, max(i) OVER ({W} {frame}) AS mxi \
                 FROM ticks ORDER BY sym, t"
            ),
            true,
        )
        .await;
    }
}

#[tokio::test]
async fn frames_it_does_not_compute_stay_with_datafusion() {
    // A RANGE frame (the default with ORDER BY) and a frame reaching past the current row.
    check(
        &format!("SELECT sym, t, sum(x) OVER ({W}) AS s FROM ticks ORDER BY sym, t"),
        false,
    )
    .await;
    check(
        &format!(
            "SELECT sym, t, avg(x) OVER ({W} ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) AS a \
             FROM ticks ORDER BY sym, t"
        ),
        false,
    )
    .await;
}

/// The plan of `sql` with the operator has none of DataFusion's window operators left.
async fn all_windows_ours(sql: &str) {
    let (_, plan, _) = both(1, sql).await;
    assert!(!plan.contains("WindowAggExec"), "{sql}\n{plan}");
}

#[tokio::test]
async fn whole_partition_aggregates_match_datafusion() {
    let whole = "SELECT sym, t, count(*) OVER (PARTITION BY sym) AS n, sum(x) OVER (PARTITION BY sym) AS s, \
         avg(x) OVER (PARTITION BY sym) AS a, min(i) OVER (PARTITION BY sym) AS mn, \
         max(x) OVER (PARTITION BY sym) AS mx, count(DISTINCT i) OVER (PARTITION BY sym) AS d \
         FROM ticks ORDER BY sym, t";
    check(whole, true).await;
    all_windows_ours(whole).await;
    // The shape of `top_movers`: a rank within each day and the day's count, over rows that
    // must first be sorted by day.
    let movers = "SELECT t, sym, x FROM (SELECT t, sym, x, \
         row_number() OVER (PARTITION BY t ORDER BY abs(x) DESC, sym) AS r, \
         count(*) OVER (PARTITION BY t) AS n FROM ticks WHERE x IS NOT NULL) \
         WHERE r = 1 AND n > 1 ORDER BY t, sym";
    check(movers, true).await;
    all_windows_ours(movers).await;
}
