//! Snapshots of what a person sees: a command's exit status, stdout and stderr, with the parts
//! that change from run to run (temporary paths, ports, timings, rates, memory) replaced by
//! placeholders, compared with `tests/snapshots/<name>.txt`. `STOCKLAKE_BLESS=1` rewrites them.

use std::path::PathBuf;
use std::process::Output;

use regex::Regex;

use super::golden::bless;
use super::{repo, text};

/// What varies between runs, and what stands for it.
fn volatile() -> &'static [(Regex, &'static str)] {
    static RULES: std::sync::OnceLock<Vec<(Regex, &'static str)>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        [
            (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
            (r"\b\d+(\.\d+)? ?(ns|µs|ms|s)\b", "<time>"),
            (r"\b\d+ events/s\b", "<n> events/s"),
            (r"\b\d+(\.\d+)? MiB\b", "<n> MiB"),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).expect("valid pattern"), to))
        .collect()
    })
}

/// `text` with each `(value, name)` of `names` replaced by `<name>`, then the volatile parts.
pub fn normalise(text: &str, names: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (value, name) in names {
        if !value.is_empty() {
            out = out.replace(value, &format!("<{name}>"));
        }
    }
    for (re, to) in volatile() {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
}

/// The snapshot text of a finished command.
pub fn render(title: &str, out: &Output, names: &[(&str, &str)]) -> String {
    let status = out
        .status
        .code()
        .map_or("killed by a signal".to_string(), |c| c.to_string());
    normalise(
        &format!(
            "$ {title}\nexit status {status}\n--- stdout\n{}--- stderr\n{}",
            text(&out.stdout),
            text(&out.stderr)
        ),
        names,
    )
}

fn path(name: &str) -> PathBuf {
    repo().join("tests/snapshots").join(format!("{name}.txt"))
}

/// Compares `got` with the snapshot `name` (or writes it when blessing); panics with both texts.
pub fn assert_snapshot(name: &str, got: &str) {
    let file = path(name);
    if bless() {
        std::fs::create_dir_all(file.parent().expect("a folder")).expect("snapshot folder");
        std::fs::write(&file, got).expect("write the snapshot");
        return;
    }
    let want = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with STOCKLAKE_BLESS=1 to write it. It would be:\n{got}",
            file.display()
        )
    });
    assert!(
        got == want,
        "{} differs (STOCKLAKE_BLESS=1 rewrites it).\n--- want\n{want}\n--- got\n{got}",
        file.display()
    );
}

#[test]
fn volatile_parts_are_replaced_and_the_rest_kept() {
    let t = "on 127.0.0.1:40123 in 1.25s (1.2 ms, 12345 events/s), 204 MiB; 12154 rows in /tmp/x";
    assert_eq!(
        normalise(t, &[("/tmp/x", "lake")]),
        "on 127.0.0.1:<port> in <time> (<time>, <n> events/s), <n> MiB; 12154 rows in <lake>"
    );
}
