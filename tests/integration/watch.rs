//! `sql --watch` and the REPL's `\watch` on a lake a running consumer writes: the counts and the
//! table version grow between refreshes, the "rows changed" figure is the multiset difference,
//! Ctrl-C (SIGINT) ends the watch (exit 0; the REPL session goes on); on a pseudo-terminal each
//! refresh replaces the last one.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::cmd::{Running, cmd};
use crate::harness::kafka::{broker_with_topic, spawn_consumer, stream_until};
use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::{text, unique};
use crate::repl::{line_reader, repl, start};

/// One refresh as printed (csv format): its header's version and row difference, and the count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Refresh {
    version: u64,
    /// (added, removed); None for the first refresh.
    diff: Option<(usize, usize)>,
    count: u64,
}

/// Parses `== … | table version V | 1 row | +A -R rows since the last refresh | …` headers,
/// each followed by the csv header `n` and the count.
fn refreshes(stdout: &str) -> Vec<Refresh> {
    let header = regex::Regex::new(
        r"^== \S+ \S+ UTC \| table version (\d+) \| 1 row \| (first refresh|\+(\d+) -(\d+) rows since the last refresh) \| every ",
    )
    .unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(c) = header.captures(l) else {
            continue;
        };
        // A refresh cut short by the end of the output is not counted.
        let Some(count) = lines.get(i + 2).and_then(|c| c.parse().ok()) else {
            continue;
        };
        assert_eq!(lines[i + 1], "n", "{stdout}");
        out.push(Refresh {
            version: c[1].parse().unwrap(),
            diff: c
                .get(3)
                .map(|a| (a.as_str().parse().unwrap(), c[4].parse().unwrap())),
            count,
        });
    }
    out
}

/// Checks refreshes taken while the lake grew: counts and versions never go down and grow
/// overall, each difference is +1 -1 when the count changed and +0 -0 when it did not.
fn assert_growing(r: &[Refresh], output: &str) {
    assert!(r.len() >= 3, "at least three refreshes: {r:?}\n{output}");
    assert_eq!(r[0].diff, None, "{output}");
    for w in r.windows(2) {
        assert!(w[1].count >= w[0].count, "{r:?}");
        assert!(w[1].version >= w[0].version, "{r:?}");
        let want = if w[1].count == w[0].count {
            (0, 0)
        } else {
            (1, 1)
        };
        assert_eq!(w[1].diff, Some(want), "{r:?}");
    }
    let (first, last) = (r[0], r[r.len() - 1]);
    assert!(last.count > first.count, "the rows grow: {r:?}\n{output}");
    assert!(last.version > first.version, "the version grows: {r:?}");
    assert!(
        r.iter().any(|x| x.diff == Some((1, 1))),
        "a refresh saw the count change: {r:?}"
    );
}

/// A lake that a consumer fills from a paced stream (40 events/s until stopped, 300 ms flushes).
struct Feed {
    _broker: stocklake::kafka::EmbeddedBroker,
    stop: Arc<AtomicBool>,
    stream: Option<JoinHandle<u64>>,
    consumer: Running,
    lake: tempfile::TempDir,
}

impl Feed {
    fn start() -> Feed {
        let (broker, topic) = broker_with_topic(1);
        let lake = tempfile::tempdir().unwrap();
        let bootstrap = broker.bootstrap_servers().to_string();
        let consumer = spawn_consumer(
            &bootstrap,
            &topic,
            &unique("g"),
            lake.path(),
            &["--flush-interval", "300ms"],
            &lake.path().join("consumer.log"),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stream = stream_until(&bootstrap, &topic, 40.0, stop.clone());
        // The watch needs the table: wait for the member's first commit (its claim of the
        // partitions, before any rows).
        let log = lake.path().join("ticks/_delta_log");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !log.join("00000000000000000001.json").exists() {
            assert!(Instant::now() < deadline, "the consumer never committed");
            std::thread::sleep(Duration::from_millis(50));
        }
        Feed {
            _broker: broker,
            stop,
            stream: Some(stream),
            consumer,
            lake,
        }
    }

    fn path(&self) -> &Path {
        self.lake.path()
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.stream.take() {
            assert!(s.join().unwrap() > 0);
        }
        self.consumer.signal(libc::SIGTERM);
    }
}

impl Drop for Feed {
    /// A failing test stops the stream too (before the broker goes).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.stream.take() {
            let _ = s.join();
        }
    }
}

/// Collects lines until `n` lines matching `pred` were seen (or 60 s passed).
fn collect_until(rx: &mpsc::Receiver<String>, n: usize, pred: impl Fn(&str) -> bool) -> String {
    let mut seen = 0;
    let mut all = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen += pred(&line) as usize;
                all.push_str(&line);
                all.push('\n');
            }
            Err(e) => panic!("waiting for {n} lines ({seen} seen): {e}\n{all}"),
        }
    }
    all
}

fn is_header(l: &str) -> bool {
    l.starts_with("== ")
}

#[test]
fn sql_watch_shows_the_rows_and_version_growing_until_ctrl_c() {
    let feed = Feed::start();
    let mut child = cmd(&["sql", "--lake", &lake_arg(feed.path())])
        .args(["--format", "csv", "--watch", "500ms"])
        .args(["-c", "SELECT count(*) AS n FROM ticks"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let rx = line_reader(&mut child);
    let mut stdout = collect_until(&rx, 6, is_header);
    child.signal(libc::SIGINT);
    let out = child.wait_with_output();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        stdout.push_str(&l);
        stdout.push('\n');
    }
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("(watch stopped after "), "{stderr}");
    // Refreshes follow one another, a blank line between two.
    assert!(stdout.contains("\n\n== "), "{stdout}");
    assert_growing(&refreshes(&stdout), &stdout);
    feed.stop();
}

#[test]
fn repl_watch_ends_at_ctrl_c_and_the_session_goes_on() {
    let feed = Feed::start();
    let work = tempfile::tempdir().unwrap();
    let (child, mut stdin, rx) = start(repl(&lake_arg(feed.path()), work.path()));
    // Without a statement yet, \watch says so and the session goes on.
    writeln!(
        stdin,
        "\\watch\n\\format csv\nSELECT count(*) AS n FROM ticks;"
    )
    .unwrap();
    let mut stdout = collect_until(&rx, 1, |l| l == "n");
    writeln!(stdin, "\\watch 0.5").unwrap();
    stdout.push_str(&collect_until(&rx, 6, is_header));
    child.signal(libc::SIGINT);
    writeln!(stdin, "SELECT 42 AS answer;\n\\q").unwrap();
    stdout.push_str(&collect_until(&rx, 1, |l| l == "42"));
    drop(stdin);
    let out = child.wait_with_output();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("\\watch: no statement to re-run yet"),
        "{stderr}"
    );
    assert!(stderr.contains("(watch stopped after "), "{stderr}");
    assert_growing(&refreshes(&stdout), &stdout);
    feed.stop();
}

#[test]
fn on_a_terminal_each_refresh_replaces_the_last() {
    let lake = sample_lake();
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors, which we own from here on.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are not owned elsewhere.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let child = cmd(&["sql", "--lake", &lake_arg(lake.path())])
        .args(["--format", "csv", "--watch", "300ms"])
        .args(["-c", "SELECT count(*) AS n FROM ticks"])
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn();
    let (tx, rx) = mpsc::channel();
    let mut reader = std::fs::File::from(master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while text(&screen).matches("== ").count() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        screen.extend(
            rx.recv_timeout(left)
                .expect("three refreshes on the terminal"),
        );
    }
    child.signal(libc::SIGINT);
    let out = child.wait_with_output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let screen = text(&screen);
    // Each later refresh first moves the cursor back over the 3 lines drawn (header, csv
    // header, count) and clears below; the terminal shows \r\n for each newline.
    let redraws = screen.matches("\x1b[3F\x1b[J== ").count();
    assert!(redraws >= 2, "{screen:?}");
    assert!(screen.contains("| 1 row | +0 -0 rows since the last refresh |"));
    assert!(screen.contains("\r\nn\r\n12154\r\n"), "{screen:?}");
}
