//! A comparison for people (a verdict line, both sides' row counts and lake state, the first
//! differing rows side by side with the differing cells marked `*`, per-column counts) or for
//! machines (`--format json`: the [`Comparison`] as JSON).

use std::fmt::Write as _;
use std::io::Write;

use super::{Comparison, RowDiffKind};
use crate::print::OutputFormat;

fn side_line(out: &mut String, s: &super::SideSummary) {
    let f = &s.facts;
    let _ = write!(
        out,
        "   {:<7} {} row{}, {} column{}",
        f.label,
        s.rows,
        if s.rows == 1 { "" } else { "s" },
        s.columns.len(),
        if s.columns.len() == 1 { "" } else { "s" }
    );
    if let Some(id) = &f.query_id {
        let _ = write!(out, "; query {id}");
    }
    if let Some(t) = &f.ran_at {
        let _ = write!(out, ", ran {t}");
    }
    if let Some(src) = &f.source {
        let _ = write!(out, "; from {src}");
    }
    if let Some(v) = &f.table_versions {
        let _ = write!(out, "; table {v} around the query");
    }
    if let Some(lake) = &f.lake {
        let _ = write!(out, "; lake {}", lake.describe());
    }
    out.push('\n');
}

/// The human-readable report.
pub fn text(c: &Comparison) -> String {
    let mut out = String::new();
    let (l, r) = (&c.left.facts.label, &c.right.facts.label);
    let verdict = match (c.agree, c.cut_ties.is_empty()) {
        (false, _) => "MISMATCH",
        (true, true) => "match",
        (true, false) => "match, but for the rows kept among ties cut by a LIMIT or OFFSET",
    };
    let _ = writeln!(out, "== {}: {verdict}", c.query);
    side_line(&mut out, &c.left);
    side_line(&mut out, &c.right);
    let rows = match (c.ordered, c.order_keys.as_slice()) {
        (false, _) => "as sorted sets (no final ORDER BY)".to_string(),
        (true, []) => "as sorted sets (no ORDER BY key is an output column)".to_string(),
        (true, keys) => format!(
            "in the order of the ORDER BY keys ({}); rows that tie on every key as a set",
            keys.join(", ")
        ),
    };
    let _ = writeln!(
        out,
        "   rows compared {rows}; floats agree within rel {:e} or abs {:e}",
        c.tolerance.rel, c.tolerance.abs
    );
    for s in &c.schema {
        let _ = writeln!(out, "   schema: {s}");
    }
    if let Some(at) = c.order_differs_at {
        let _ = writeln!(
            out,
            "   order: both sides hold the same rows in a different order, first at row {at}"
        );
    }
    for t in &c.cut_ties {
        cut_tie(&mut out, t, l, r);
    }
    if !c.agree {
        let _ = writeln!(
            out,
            "   differences: {} changed row(s), {} row(s) only on {l}, {} row(s) only on {r}",
            c.changed_rows, c.only_left_rows, c.only_right_rows
        );
    }
    if !c.column_mismatches.is_empty() {
        let counts: Vec<String> = c
            .column_mismatches
            .iter()
            .map(|m| format!("{} {}", m.column, m.mismatches))
            .collect();
        let _ = writeln!(out, "   mismatches per column: {}", counts.join(", "));
    }
    for d in &c.rows {
        let pos = |side: &str, n: Option<usize>| {
            n.map_or(format!("no row on {side}"), |n| format!("{side} row {n}"))
        };
        let what = match d.kind {
            RowDiffKind::Changed => format!("differs in {}", d.differing.join(", ")),
            RowDiffKind::OnlyLeft => format!("only on {l}"),
            RowDiffKind::OnlyRight => format!("only on {r}"),
        };
        let _ = writeln!(
            out,
            "   -- {} / {}: {what}",
            pos(l, d.left_row),
            pos(r, d.right_row)
        );
        let name_w = c.columns.iter().map(String::len).max().unwrap_or(6).max(6);
        let lw = d
            .left
            .iter()
            .flatten()
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(l.len(), 40);
        let _ = writeln!(out, "        {:<name_w$}  {l:<lw$}  {r}", "column");
        for (i, col) in c.columns.iter().enumerate() {
            let cell = |v: &Option<Vec<String>>| {
                v.as_ref()
                    .map_or("-".to_string(), |v| v.get(i).cloned().unwrap_or_default())
            };
            let marked = d.kind == RowDiffKind::Changed && d.differing.contains(col);
            let mark = if marked { "*" } else { " " };
            let why = match d.differing.iter().position(|x| x == col) {
                Some(k) if marked => {
                    format!("   ({})", d.reasons.get(k).map_or("", String::as_str))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "      {mark} {col:<name_w$}  {:<lw$}  {}{why}",
                cell(&d.left),
                cell(&d.right)
            );
        }
    }
    let differing = c.changed_rows + c.only_left_rows + c.only_right_rows;
    if differing > c.rows.len() {
        let _ = writeln!(
            out,
            "   ({} more differing row(s) not shown)",
            differing - c.rows.len()
        );
    }
    for n in &c.notes {
        let _ = writeln!(out, "   note: {n}");
    }
    out
}

/// A tie cut by the LIMIT or OFFSET: where, on which key values, and the rows each side alone
/// kept.
fn cut_tie(out: &mut String, t: &super::CutTie, l: &str, r: &str) {
    let rows = match t.rows {
        1 => format!("row {} ties", t.first_row),
        n => format!("rows {}-{} tie", t.first_row, t.first_row + n - 1),
    };
    let _ = writeln!(
        out,
        "   ties at the {}: the engines kept different rows among ties at the {} ({rows} on {}): \
         {} row(s) only on {l}, {} only on {r}",
        t.at,
        t.at,
        t.keys.join(", "),
        t.only_left.len(),
        t.only_right.len()
    );
    if let Some(n) = t.tie_rows_without_limit {
        let verdict = match t.not_in_tie {
            0 => format!("every row {r} kept is one of them: both are correct results"),
            k => format!("{k} row(s) {r} kept are not (shown below as rows missing on {l})"),
        };
        let _ = writeln!(
            out,
            "      checked: without its {} the query gives {n} row(s) of this tie on {l}; {verdict}",
            t.at.to_uppercase()
        );
    }
    for (side, rows) in [(l, &t.only_left), (r, &t.only_right)] {
        for row in rows.iter().take(super::SHOWN_ROWS) {
            let _ = writeln!(out, "      only on {side}: {}", row.join(" | "));
        }
    }
}

/// Writes comparisons in `format`: JSON (an array; one object for a single comparison) for
/// `json`, one JSON object per line for `ndjson`, the text report otherwise.
pub fn write(
    out: &mut dyn Write,
    comparisons: &[Comparison],
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let v = if comparisons.len() == 1 {
                serde_json::to_string_pretty(&comparisons[0])
            } else {
                serde_json::to_string_pretty(comparisons)
            }
            .map_err(std::io::Error::other)?;
            writeln!(out, "{v}")?;
        }
        OutputFormat::Ndjson => {
            for c in comparisons {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(c).map_err(std::io::Error::other)?
                )?;
            }
        }
        OutputFormat::Table | OutputFormat::Csv => {
            for c in comparisons {
                write!(out, "{}", text(c))?;
            }
            if comparisons.len() > 1 {
                let agree = comparisons.iter().filter(|c| c.agree).count();
                writeln!(out, "{agree} of {} comparisons agree", comparisons.len())?;
            }
        }
    }
    out.flush()
}
