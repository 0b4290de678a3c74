//! The REPL through its real input path (piped stdin): multi-line statements, backslash
//! commands, an error followed by a good statement, `\run` of a saved query, Ctrl-C cancelling
//! a running statement without ending the session, and new lake files seen mid-session.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use stocklake::engine::lakegen::LakeGen;
use stocklake::lake::TableLayout;

use crate::harness::cmd::{Cmd, Running};
use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::{cmd, repo, text};

/// `stocklake repl` on `lake`, in `work` (its `./queries` are the saved queries), keeping its
/// history in `work/history`.
pub(crate) fn repl(lake: &str, work: &Path) -> Cmd {
    cmd(&["repl", "--lake", lake, "--history"])
        .arg(work.join("history"))
        .current_dir(work)
}

#[test]
fn piped_session_with_multiline_meta_commands_errors_and_saved_queries() {
    let lake = sample_lake();
    // `\run monthly_vwap` finds the saved query in the working directory's ./queries.
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("queries")).unwrap();
    std::fs::copy(
        repo().join("queries/monthly_vwap.sql"),
        work.path().join("queries/monthly_vwap.sql"),
    )
    .unwrap();
    let input = "\
\\format csv
SELECT symbol,
       count(*) AS n
  FROM stocklake.ticks
 GROUP BY symbol
 ORDER BY symbol;
SELECT nope FROM ticks;
SELECT count(*) AS total FROM ticks;
\\nonsense
\\run monthly_vwap
\\d ticks
\\q
SELECT 'never' AS after_quit;
";
    let out = repl(&lake_arg(lake.path()), work.path()).output_with_stdin(input.as_bytes());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("format csv\n"), "{stdout}");
    assert!(
        stdout.contains("symbol,n\nAAPL,3270\nFB,196\nGOOG,2148\nIBM,3270\nMSFT,3270\n"),
        "{stdout}"
    );
    // The error is reported and the session goes on.
    assert!(
        stderr.contains("error: <input>: statement 1") && stderr.contains("nope"),
        "{stderr}"
    );
    assert!(stdout.contains("total\n12154\n"), "{stdout}");
    assert!(stderr.contains("unknown command \\nonsense"), "{stderr}");
    // \run by name: the saved query's first rows (golden: AAPL,2000-03-01,23,129.3982543,…).
    assert!(
        stdout.contains(
            "symbol,month_start,trading_days,vwap,total_volume\nAAPL,2000-03-01,23,129.39825427"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("trade_date") && stdout.contains("partition"),
        "{stdout}"
    );
    assert!(!stdout.contains("never"), "\\q ends the session");
    // The multi-line statement is one history entry.
    let hist = std::fs::read_to_string(work.path().join("history")).unwrap();
    assert!(hist.contains("\\run monthly_vwap"), "{hist}");
    assert!(
        hist.lines().any(|l| l.starts_with("SELECT symbol,")),
        "{hist}"
    );
}

/// Reads stdout lines on a thread, so the test can wait for one with a timeout.
pub(crate) fn line_reader(child: &mut Running) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `repl` with piped stdio; returns it, its stdin and its stdout lines.
pub(crate) fn start(repl: Cmd) -> (Running, ChildStdin, mpsc::Receiver<String>) {
    let mut child = repl
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let stdin = child.stdin.take().unwrap();
    let rx = line_reader(&mut child);
    (child, stdin, rx)
}

fn wait_for(rx: &mpsc::Receiver<String>, want: &str) {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line == want => return,
            Ok(_) => {}
            Err(e) => panic!("waiting for {want:?}: {e}"),
        }
    }
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_new_files_show_up_in_the_session() {
    let lake = sample_lake();
    let work = tempfile::tempdir().unwrap();
    let (child, mut stdin, rx) = start(repl(&lake_arg(lake.path()), work.path()));

    writeln!(stdin, "\\format csv\nSELECT count(*) AS n FROM ticks;").unwrap();
    wait_for(&rx, "12154");

    // Another writer adds a partition; the same session sees it.
    let mut more = LakeGen::new(lake.path(), TableLayout::default(), 1_000_000, 10).unwrap();
    let mut t = stocklake::source::Synthetic::new(Default::default())
        .next()
        .unwrap();
    t.symbol = "ZZZ".into();
    more.push(&t).unwrap();
    more.finish().unwrap();
    writeln!(stdin, "SELECT count(*) AS n FROM ticks;").unwrap();
    wait_for(&rx, "12155");

    // A statement that would run for ages, then Ctrl-C (SIGINT to the process).
    writeln!(
        stdin,
        "SELECT sum(value % 7) AS s FROM range(100000000000);"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.signal(libc::SIGINT);
    writeln!(stdin, "SELECT 42 AS answer;").unwrap();
    wait_for(&rx, "42");
    drop(stdin);
    let out = child.wait_with_output();
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cancelled"), "{stderr}");
}
