//! Saved queries on the sample lake: each matches its golden result (STOCKLAKE_BLESS=1
//! regenerates them), and the golden results agree with values computed straight from the CSV.

use std::collections::BTreeMap;

use stocklake::engine::LocalEngine;
use stocklake::engine::queries;
use stocklake::engine::statements;

use crate::harness::golden::{bless, compare_golden, golden_csv, golden_path};
use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::{repo, sample_csv};

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

/// data/stocks.csv read with the csv crate alone: symbol -> [(date, close, adj_close, volume)]
/// in date order.
type Series = BTreeMap<String, Vec<(String, f64, f64, i64)>>;

fn csv_series() -> Series {
    let mut rdr = csv::Reader::from_path(sample_csv()).unwrap();
    let mut out = Series::new();
    for rec in rdr.records() {
        let r = rec.unwrap();
        // Ticker,Date,Open,High,Low,Close,Volume,Adj Close
        out.entry(r[0].to_string()).or_default().push((
            r[1].to_string(),
            r[5].parse().unwrap(),
            r[7].parse().unwrap(),
            r[6].parse().unwrap(),
        ));
    }
    for rows in out.values_mut() {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

fn golden_rows(name: &str) -> Vec<BTreeMap<String, String>> {
    let mut rdr = csv::Reader::from_path(golden_path(name)).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

fn close_to(got: &str, want: f64, what: &str) {
    let g: f64 = got.parse().unwrap_or_else(|_| panic!("{what}: {got:?}"));
    assert!(
        (g - want).abs() <= 1e-8 * want.abs().max(1.0),
        "{what}: golden {g}, CSV {want}"
    );
}

#[test]
fn golden_counts_vwap_averages_and_drawdowns_equal_values_from_the_csv() {
    let series = csv_series();

    // daily_summary: trading days and total volume per symbol.
    let summary = golden_rows("daily_summary");
    assert_eq!(summary.len(), series.len());
    for row in &summary {
        let rows = &series[&row["symbol"]];
        assert_eq!(row["trading_days"], rows.len().to_string());
        let volume: i64 = rows.iter().map(|r| r.3).sum();
        assert_eq!(row["total_volume"], volume.to_string());
        assert_eq!(row["first_day"], rows[0].0);
        assert_eq!(row["last_day"], rows[rows.len() - 1].0);
    }

    // monthly_vwap: sum(close * volume) / sum(volume) per symbol and month.
    let mut months: BTreeMap<(String, String), (f64, i64, usize)> = BTreeMap::new();
    for (sym, rows) in &series {
        for (date, close, _, vol) in rows {
            let m = months
                .entry((sym.clone(), format!("{}-01", &date[..7])))
                .or_default();
            m.0 += close * *vol as f64;
            m.1 += vol;
            m.2 += 1;
        }
    }
    let vwap = golden_rows("monthly_vwap");
    assert_eq!(vwap.len(), months.len());
    for row in &vwap {
        let (pv, v, n) = months[&(row["symbol"].clone(), row["month_start"].clone())];
        close_to(&row["vwap"], pv / v as f64, "vwap");
        assert_eq!(row["trading_days"], n.to_string());
        assert_eq!(row["total_volume"], v.to_string());
    }

    // moving_averages: 20/50-day averages of the adjusted close and their crossing days.
    let mut crossings = Vec::new();
    for (sym, rows) in &series {
        let mut prev_side = None;
        for i in 49..rows.len() {
            let avg = |n: usize| rows[i + 1 - n..=i].iter().map(|r| r.2).sum::<f64>() / n as f64;
            let (ma20, ma50) = (avg(20), avg(50));
            let side = if ma20 > ma50 { 1 } else { -1 };
            if prev_side.is_some_and(|p| p != side) {
                crossings.push((sym.clone(), rows[i].0.clone(), ma20, ma50, side));
            }
            prev_side = Some(side);
        }
    }
    let golden = golden_rows("moving_averages");
    assert_eq!(golden.len(), crossings.len());
    for (row, (sym, date, ma20, ma50, side)) in golden.iter().zip(&crossings) {
        assert_eq!((&row["symbol"], &row["trade_date"]), (sym, date));
        close_to(&row["ma20"], *ma20, "ma20");
        close_to(&row["ma50"], *ma50, "ma50");
        assert_eq!(
            row["cross_kind"],
            if *side == 1 { "golden" } else { "death" }
        );
    }

    // max_drawdown: the deepest fall of the adjusted close below its running peak.
    for row in golden_rows("max_drawdown") {
        let rows = &series[&row["symbol"]];
        let (mut peak, mut worst) = (f64::MIN, 0.0f64);
        for r in rows {
            peak = peak.max(r.2);
            worst = worst.min(r.2 / peak - 1.0);
        }
        close_to(&row["max_drawdown"], worst, "max_drawdown");
    }
}
