//! The rewrite through DataFusion's SQL: projections, filters, aggregates, subqueries,
//! `TRY_CAST`, names, errors.

use std::sync::Arc;

use arrow::array::{Float32Array, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;

use super::{Shortest, TrinoFloatToDecimal, fast_unscaled};

/// A session with the rule and a table `t(id, x DOUBLE, r REAL)`.
fn session() -> SessionContext {
    let ctx = SessionContext::new();
    ctx.add_analyzer_rule(Arc::new(TrinoFloatToDecimal));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("r", DataType::Float32, true),
    ]));
    let ids = arrow::array::Int64Array::from(vec![1, 2, 3, 4, 5, 6]);
    let values = [
        Some(1.005),
        Some(2.675),
        Some(-1.005),
        Some(0.125),
        Some(1e-7),
        None,
    ];
    let x = Float64Array::from(values.to_vec());
    // The same decimals as reals (each the float nearest to the decimal).
    let r: Float32Array = values.iter().map(|v| v.map(|v| v as f32)).collect();
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(x), Arc::new(r)]).unwrap();
    ctx.register_batch("t", batch).unwrap();
    ctx
}

/// Every cell of the result as text, row by row, and the column names.
async fn run(ctx: &SessionContext, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let names = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        "NULL".to_string()
                    } else {
                        array_value_to_string(c, i).unwrap()
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    Ok((names, rows))
}

/// [`run`], which must succeed.
async fn ok(ctx: &SessionContext, sql: &str) -> (Vec<String>, Vec<Vec<String>>) {
    match run(ctx, sql).await {
        Ok(out) => out,
        Err(e) => panic!("{sql}: {e}"),
    }
}

fn column(rows: &[Vec<String>], c: usize) -> Vec<&str> {
    rows.iter().map(|r| r[c].as_str()).collect()
}

#[tokio::test]
async fn doubles_and_reals_round_half_up_from_their_decimal_text() {
    let ctx = session();
    let sql = "SELECT CAST(x AS DECIMAL(10, 2)), CAST(r AS DECIMAL(10, 2)) FROM t ORDER BY id";
    let (_, rows) = ok(&ctx, sql).await;
    let want = ["1.01", "2.68", "-1.01", "0.13", "0.00", "NULL"];
    assert_eq!(column(&rows, 0), want);
    assert_eq!(column(&rows, 1), want);
}

#[tokio::test]
async fn literals_filters_aggregates_and_subqueries_are_rewritten() {
    let ctx = session();
    let one = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { ok(&ctx, sql).await.1 }
    };
    assert_eq!(
        one("SELECT CAST(CAST(1.005 AS DOUBLE) AS DECIMAL(10, 2))").await,
        [["1.01"]]
    );
    assert_eq!(
        one("SELECT id FROM t WHERE CAST(x AS DECIMAL(10, 2)) = 1.01").await,
        [["1"]]
    );
    // 1.01 + 2.68 - 1.01 + 0.13 + 0.00 (arrow's cast: 1.00 + 2.67 - 1.00 + 0.13 + 0.00).
    assert_eq!(
        one("SELECT sum(CAST(x AS DECIMAL(10, 2))) FROM t").await,
        [["2.81"]]
    );
    assert_eq!(
        one(
            "SELECT (SELECT max(CAST(x AS DECIMAL(10, 2))) FROM t) AS m, \
             id FROM t WHERE id IN (SELECT id FROM t WHERE CAST(x AS DECIMAL(5, 2)) = 2.68)"
        )
        .await,
        [["2.68", "2"]]
    );
    assert_eq!(
        one("SELECT CAST(x AS DECIMAL(38, 3)) AS a, CAST(x AS DECIMAL(50, 2)) AS b FROM t WHERE id = 3")
            .await,
        [["-1.005", "-1.01"]]
    );
}

#[tokio::test]
async fn column_names_stay_those_of_a_cast() {
    let ctx = session();
    let sql = "SELECT CAST(x AS DECIMAL(10, 2)), sum(CAST(x AS DECIMAL(10, 2))) FROM t GROUP BY 1";
    let (names, _) = ok(&ctx, sql).await;
    let plain = SessionContext::new();
    let batch = RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new(
        "x",
        DataType::Float64,
        true,
    )])));
    plain.register_batch("t", batch).unwrap();
    let (want, _) = ok(&plain, sql).await;
    assert_eq!(names, want);
}

#[tokio::test]
async fn overflow_and_non_finite_values_fail_as_on_trino_or_are_null_under_try_cast() {
    let ctx = session();
    // The edge of DECIMAL(4, 2): 99.99 fits, 99.995 rounds to 100.00, which does not.
    let (_, rows) = ok(&ctx, "SELECT CAST(CAST(99.994 AS DOUBLE) AS DECIMAL(4, 2))").await;
    assert_eq!(rows, [["99.99"]]);
    for (sql, want) in [
        // 1.005 * 100 is 100.49999999999999 in binary: 100.50 at scale 2.
        (
            "x * 100 AS DECIMAL(4, 2)) FROM t",
            "DOUBLE '100.49999999999999' to DECIMAL(4, 2)",
        ),
        (
            "CAST(1e20 AS DOUBLE) AS DECIMAL(10, 2))",
            "DOUBLE '1.0E20' to DECIMAL(10, 2)",
        ),
        (
            "CAST(-99.995 AS DOUBLE) AS DECIMAL(4, 2))",
            "DOUBLE '-99.995' to DECIMAL(4, 2)",
        ),
        (
            "CAST(100000.0 AS REAL) AS DECIMAL(5, 0))",
            "REAL '100000.0' to DECIMAL(5, 0)",
        ),
        (
            "CAST('NaN' AS DOUBLE) AS DECIMAL(10, 2))",
            "DOUBLE 'NaN' to DECIMAL(10, 2)",
        ),
        (
            "CAST('inf' AS DOUBLE) AS DECIMAL(10, 2))",
            "DOUBLE 'Infinity' to DECIMAL(10, 2)",
        ),
        (
            "CAST('-inf' AS DOUBLE) AS DECIMAL(10, 2))",
            "DOUBLE '-Infinity' to DECIMAL(10, 2)",
        ),
    ] {
        let err = run(&ctx, &format!("SELECT CAST({sql}")).await.unwrap_err();
        assert!(err.contains(&format!("Cannot cast {want}")), "{err}");
    }
    let sql = "SELECT TRY_CAST(x * 100 AS DECIMAL(4, 2)), \
               TRY_CAST(CAST('NaN' AS DOUBLE) AS DECIMAL(4, 2)) FROM t ORDER BY id";
    let (_, rows) = ok(&ctx, sql).await;
    assert_eq!(
        column(&rows, 0),
        ["NULL", "NULL", "NULL", "12.50", "0.00", "NULL"]
    );
    assert!(column(&rows, 1).iter().all(|v| *v == "NULL"));
}

#[tokio::test]
async fn other_casts_are_untouched() {
    let ctx = session();
    let sql = "SELECT CAST(id AS DECIMAL(10, 2)), CAST('1.005' AS DECIMAL(10, 2)), \
               CAST(x AS VARCHAR), CAST(CAST(1.005 AS DECIMAL(10, 3)) AS DECIMAL(10, 2)) \
               FROM t WHERE id = 1";
    let (_, rows) = ok(&ctx, sql).await;
    assert_eq!(rows, [["1.00", "1.01", "1.005", "1.01"]]);
    let plan = ctx
        .sql("EXPLAIN SELECT CAST(id AS DECIMAL(10, 2)) FROM t")
        .await
        .unwrap();
    let text = format!("{:?}", plan.collect().await.unwrap());
    assert!(!text.contains("stocklake_"), "{text}");
}

/// The shortcut gives the text's answer wherever it answers: on ties of every scale, the
/// sample's halves, and pseudo-random values of many magnitudes, as doubles and as reals.
#[test]
fn the_shortcut_agrees_with_the_decimal_text() {
    let mut values: Vec<f64> = (-50_000..50_000).map(|k| f64::from(k) / 1000.0).collect();
    values.extend((0..20_000).map(|k| f64::from(k) / 200.0 + 0.005));
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..50_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mantissa = (seed >> 11) as f64 / (1u64 << 53) as f64;
        let exponent = (seed % 24) as i32 - 12;
        let sign = if seed & 1 == 0 { 1.0 } else { -1.0 };
        values.push(sign * mantissa * 10f64.powi(exponent));
    }
    let (mut fast, mut total) = (0, 0);
    for &v in &values {
        for scale in 0..=6i8 {
            for real in [false, true] {
                let (value, shortest, error) = if real {
                    let r = v as f32;
                    (
                        f64::from(r),
                        Shortest::of_f32(r),
                        f64::from(f32::EPSILON) / 2.0,
                    )
                } else {
                    (v, Shortest::of_f64(v), f64::EPSILON / 2.0)
                };
                total += 1;
                let Some((negative, q)) = fast_unscaled(value, error, 18, scale) else {
                    continue;
                };
                fast += 1;
                let (want_negative, want) = shortest.unwrap().unscaled(scale, 18).unwrap();
                let got = if q == 0 { String::new() } else { q.to_string() };
                assert_eq!(
                    (negative, got),
                    (want_negative, want),
                    "{v:e} (real: {real}) at scale {scale}"
                );
            }
        }
    }
    // Not the exact ties (a fifth of the values here) nor products beyond 2^52.
    assert!(
        fast * 10 > total * 8,
        "the shortcut answered {fast} of {total}"
    );
}
