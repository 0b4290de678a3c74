//! `\watch` and `sql --watch`: one statement re-run every interval on the local engine, each
//! result drawn under a header line (the time, the table version read, the rows changed since
//! the last refresh) until the cancel flag (Ctrl-C) is set. On a terminal each refresh replaces
//! the previous one; elsewhere the refreshes follow one another.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::Error;
use crate::engine::statements::Statement;
use crate::engine::{Engine, EngineError, EngineKind, QueryOutput};
use crate::print::{PrintError, rows_as_text, write_result};
use crate::script::Show;

/// How the rows of a result differ from the previous one's, as multisets of rows (a row is all
/// its values): `added` rows are in the new result more often than in the old one, `removed`
/// rows the other way round. A row whose value changed (a count going from 5 to 6) is one
/// removed and one added; order does not matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowDiff {
    pub added: usize,
    pub removed: usize,
}

impl RowDiff {
    /// The multiset difference of two results' rows (in [`rows_as_text`] form).
    pub fn between(old: &[String], new: &[String]) -> RowDiff {
        let mut count: HashMap<&str, i64> = HashMap::new();
        for r in new {
            *count.entry(r).or_default() += 1;
        }
        for r in old {
            *count.entry(r).or_default() -= 1;
        }
        let mut diff = RowDiff::default();
        for n in count.values() {
            if *n > 0 {
                diff.added += *n as usize;
            } else {
                diff.removed += n.unsigned_abs() as usize;
            }
        }
        diff
    }
}

/// How a watch runs: its interval, and whether each refresh replaces the previous one on a
/// terminal.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    pub interval: Duration,
    pub in_place: bool,
}

/// Why a statement cannot be watched on `engine`: only the local engine re-runs statements
/// (each Athena run is billed, at least 10 MB scanned, and takes seconds; the local engine
/// reads the same lake, on S3 too).
pub fn refuse_engine(kind: EngineKind, what: &str) -> Result<(), Error> {
    if kind == EngineKind::Local {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{what} runs on the local engine only, not {kind}: every Athena run is billed (at least \
         10 MB scanned) and takes seconds; the local engine reads the same lake (s3:// too). Use \
         --engine local (\\engine local in the REPL)"
    )))
}

/// The header line of one refresh.
fn header(result: &QueryOutput, diff: Option<RowDiff>, opts: WatchOptions) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f UTC");
    let version = match result.info.table_versions {
        Some(v) => format!("table {v}"),
        None => "table version unknown".into(),
    };
    let n = result.num_rows();
    let rows = format!("{n} row{}", if n == 1 { "" } else { "s" });
    let changed = match diff {
        None => "first refresh".to_string(),
        Some(d) => format!("+{} -{} rows since the last refresh", d.added, d.removed),
    };
    let every = humantime::format_duration(opts.interval);
    format!("== {now} | {version} | {rows} | {changed} | every {every}, Ctrl-C stops")
}

/// Terminal rows of stdout, when it is a terminal that says.
fn terminal_rows() -> Option<usize> {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass; stdout's fd stays open.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_row > 0).then_some(size.ws_row as usize)
}

/// What erases the previous refresh of `lines` lines: back up over it when it fits on the
/// screen, else clear the screen.
fn erase(lines: usize) -> String {
    match terminal_rows() {
        Some(rows) if lines < rows => format!("\x1b[{lines}F\x1b[J"),
        _ => "\x1b[H\x1b[2J".to_string(),
    }
}

/// Re-runs `stmt` (of `origin`) on `engine` every `opts.interval` (start to start; at once when
/// a run took longer) until `show.cancel` is set, drawing each result in `show.format` under
/// its header. Returns how many refreshes were drawn. A failing run ends the watch with its
/// error; Ctrl-C during a run ends it quietly.
pub async fn watch(
    engine: &Engine,
    origin: &str,
    stmt: &Statement,
    opts: WatchOptions,
    show: Show<'_>,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    refuse_engine(engine.kind(), "watching a statement")?;
    let io = |e| Error::from(PrintError::Io(e));
    let mut previous: Option<Vec<String>> = None;
    let mut drawn_lines = 0usize;
    let mut refreshes = 0u64;
    loop {
        let started = Instant::now();
        let result = match engine.query(&stmt.text, show.cancel).await {
            Ok(r) => r,
            Err(EngineError::Cancelled { .. }) => break,
            Err(source) => {
                return Err(Error::Statement {
                    origin: origin.to_string(),
                    index: stmt.index,
                    line: stmt.line,
                    snippet: stmt.snippet(),
                    source,
                });
            }
        };
        let rows = rows_as_text(&result.batches).map_err(PrintError::from)?;
        let diff = previous.as_deref().map(|old| RowDiff::between(old, &rows));
        let mut page = Vec::new();
        writeln!(page, "{}", header(&result, diff, opts)).map_err(io)?;
        write_result(
            &mut page,
            &result.schema,
            &result.batches,
            show.format,
            show.max_rows,
        )?;
        if opts.in_place && refreshes > 0 {
            out.write_all(erase(drawn_lines).as_bytes()).map_err(io)?;
        } else if refreshes > 0 {
            writeln!(out).map_err(io)?;
        }
        out.write_all(&page).map_err(io)?;
        out.flush().map_err(io)?;
        drawn_lines = page.iter().filter(|b| **b == b'\n').count();
        previous = Some(rows);
        refreshes += 1;
        let wait = (started + opts.interval).saturating_duration_since(Instant::now());
        let slept = async {
            tokio::time::sleep(wait).await;
            Ok(())
        };
        if crate::engine::cancellable(slept, show.cancel, "local")
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(refreshes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rows_changed_are_a_multiset_difference() {
        let d = RowDiff::between(&rows(&["5"]), &rows(&["6"]));
        assert_eq!(
            d,
            RowDiff {
                added: 1,
                removed: 1
            }
        );
        let d = RowDiff::between(&rows(&["a|1", "b|2"]), &rows(&["b|2", "a|1"]));
        assert_eq!(d, RowDiff::default());
        let d = RowDiff::between(&rows(&["a", "a", "b"]), &rows(&["a", "c", "c", "b"]));
        assert_eq!(
            d,
            RowDiff {
                added: 2,
                removed: 1
            }
        );
        let d = RowDiff::between(&[], &rows(&["x", "y"]));
        assert_eq!(
            d,
            RowDiff {
                added: 2,
                removed: 0
            }
        );
    }

    #[test]
    fn intervals_parse_as_seconds_or_durations() {
        assert_eq!(crate::cli::parse_interval("2"), Ok(Duration::from_secs(2)));
        assert_eq!(
            crate::cli::parse_interval("0.5"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            crate::cli::parse_interval("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            crate::cli::parse_interval("1m"),
            Ok(Duration::from_secs(60))
        );
        assert!(crate::cli::parse_interval("0").is_err());
        assert!(crate::cli::parse_interval("-1").is_err());
        assert!(crate::cli::parse_interval("soon").is_err());
    }
}
