//! Golden query results: a result as stable CSV text, a tolerant comparison with the committed
//! file in tests/golden, and `STOCKLAKE_BLESS=1` to rewrite them.

use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use stocklake::engine::QueryOutput;

use super::repo;

/// A float with 10 significant digits, without exponent or trailing zeros (stable across
/// summation orders, readable in a diff).
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (9 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// A result as golden CSV text: header, then rows; floats through [`fmt_float`], NULL empty.
pub fn golden_csv(out: &QueryOutput) -> String {
    let mut s = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    let opts = FormatOptions::default();
    for b in &out.batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formatter"))
            .collect();
        for row in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(col, f)| {
                    if col.is_null(row) {
                        String::new()
                    } else if col.data_type() == &DataType::Float64 {
                        fmt_float(col.as_primitive::<Float64Type>().value(row))
                    } else {
                        f.value(row).to_string()
                    }
                })
                .collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
    }
    s
}

/// Compares two golden texts cell by cell, numbers with a relative tolerance. Err names the
/// first difference.
pub fn compare_golden(got: &str, want: &str) -> Result<(), String> {
    let (g, w): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    if g.len() != w.len() {
        return Err(format!("{} lines, golden has {}", g.len(), w.len()));
    }
    for (i, (gl, wl)) in g.iter().zip(&w).enumerate() {
        let (gc, wc): (Vec<_>, Vec<_>) = (gl.split(',').collect(), wl.split(',').collect());
        let same = gc.len() == wc.len()
            && gc.iter().zip(&wc).all(|(a, b)| {
                a == b
                    || match (a.parse::<f64>(), b.parse::<f64>()) {
                        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-9),
                        _ => false,
                    }
            });
        if !same {
            return Err(format!("line {}: got\n  {gl}\nwant\n  {wl}", i + 1));
        }
    }
    Ok(())
}

/// The golden file of a saved query.
pub fn golden_path(name: &str) -> PathBuf {
    repo().join("tests/golden").join(format!("{name}.csv"))
}

pub fn bless() -> bool {
    std::env::var_os("STOCKLAKE_BLESS").is_some_and(|v| v != "0")
}
