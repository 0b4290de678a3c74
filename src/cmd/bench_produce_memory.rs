//! `stocklake bench produce-memory`: peak memory and events/s of `stocklake produce` (its own
//! process, as users run it) replaying a large synthetic CSV file into the embedded broker.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::BenchProduceMemoryArgs;
use crate::error::Error;
use crate::kafka::{BrokerOptions, EmbeddedBroker};
use crate::source::runs::TempDir;
use crate::source::{Synthetic, SyntheticOptions};
use crate::tick::{Tick, civil_from_days};

/// The target for 10M rows.
const TARGET_MIB: f64 = 256.0;

pub fn run(args: &BenchProduceMemoryArgs) -> Result<(), Error> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; run `cargo run --release -- bench produce-memory`"
        );
    }
    let tmp = TempDir::with_prefix("stocklake-bench")?;
    let csv = match &args.csv {
        Some(p) => p.clone(),
        None => tmp.path().join("ticks.csv"),
    };
    let order = if args.unsorted {
        "not in time order"
    } else {
        "in time order"
    };
    let written = Instant::now();
    if csv.exists() {
        eprintln!("reusing {}", csv.display());
    } else {
        write_csv(&csv, args)?;
    }
    let write_secs = written.elapsed().as_secs_f64();
    let size = std::fs::metadata(&csv)
        .map_err(Error::io(format!("reading {}", csv.display())))?
        .len();

    let topic = "bench-produce-memory";
    let broker = EmbeddedBroker::start(BrokerOptions {
        topics: vec![(topic.into(), args.partitions)],
        ..Default::default()
    })?;
    let run = produce_process(&csv, broker.bootstrap_servers(), topic, tmp.path())?;
    drop(broker);
    let acked = field(&run.stderr, "acknowledged")
        .ok_or_else(|| Error::Bench(format!("no summary from produce: {}", run.stderr)))?;
    if acked != args.rows as f64 {
        return Err(Error::Bench(format!(
            "produce acknowledged {acked} events, not {}: {}",
            args.rows, run.stderr
        )));
    }
    let peak_mib = run.peak_kib as f64 / 1024.0;
    println!(
        "produce of a {:.0} MB CSV file ({} rows, {} symbols, {order}) into the embedded broker ({} partitions)",
        size as f64 / 1e6,
        args.rows,
        args.symbols,
        args.partitions
    );
    println!("{:<34} {:>10.1} s", "writing the CSV file", write_secs);
    println!(
        "{:<34} {:>10.1} s  {:>10.0} events/s",
        "produce (one process, both passes)",
        run.secs,
        acked / run.secs
    );
    println!(
        "{:<34} {:>10.0} MiB  (target {TARGET_MIB:.0} MiB: {})",
        "produce's peak memory (VmHWM)",
        peak_mib,
        if peak_mib <= TARGET_MIB {
            "met"
        } else {
            "missed"
        }
    );
    Ok(())
}

/// A bokeh-layout file of synthetic daily bars, all symbols of a day together (alphabetical,
/// or reversed with `unsorted`).
fn write_csv(path: &Path, args: &BenchProduceMemoryArgs) -> Result<(), Error> {
    let io = Error::io(format!("writing {}", path.display()));
    let file =
        std::fs::File::create(path).map_err(Error::io(format!("creating {}", path.display())))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let opts = SyntheticOptions {
        symbols: args.symbols.max(1),
        rows: args.rows,
        seed: 7,
        ..Default::default()
    };
    let mut line = String::with_capacity(128);
    let mut day: Vec<String> = Vec::with_capacity(opts.symbols);
    let mut day_time = None;
    let result = (|| -> std::io::Result<()> {
        out.write_all(b"Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n")?;
        for t in Synthetic::new(opts) {
            if day_time.is_some_and(|d| d != t.event_time) {
                flush_day(&mut out, &mut day, args.unsorted)?;
            }
            day_time = Some(t.event_time);
            line.clear();
            csv_line(&t, &mut line);
            day.push(line.clone());
        }
        flush_day(&mut out, &mut day, args.unsorted)?;
        out.flush()
    })();
    result.map_err(io)
}

fn flush_day(out: &mut impl Write, day: &mut Vec<String>, reverse: bool) -> std::io::Result<()> {
    if reverse {
        day.reverse();
    }
    for l in day.drain(..) {
        out.write_all(l.as_bytes())?;
    }
    Ok(())
}

fn csv_line(t: &Tick, out: &mut String) {
    use std::fmt::Write as _;
    let (y, m, d) = civil_from_days(t.event_time.div_euclid(crate::tick::MS_PER_DAY));
    let _ = write!(out, "{},{y:04}-{m:02}-{d:02}", t.symbol);
    for v in [t.open, t.high, t.low, t.close] {
        out.push(',');
        if let Some(v) = v {
            let _ = write!(out, "{v}");
        }
    }
    out.push(',');
    if let Some(v) = t.volume {
        let _ = write!(out, "{v}");
    }
    out.push(',');
    if let Some(v) = t.adj_close {
        let _ = write!(out, "{v}");
    }
    out.push('\n');
}

struct ProduceRun {
    secs: f64,
    peak_kib: u64,
    stderr: String,
}

/// `stocklake produce CSV` as a child process; its VmHWM (which exec resets) is sampled every
/// 10 ms while it runs: a high-water mark, so the last sample holds the peak up to then.
fn produce_process(
    csv: &Path,
    brokers: &str,
    topic: &str,
    dir: &Path,
) -> Result<ProduceRun, Error> {
    let exe = std::env::current_exe().map_err(Error::io("finding the stocklake binary"))?;
    let log: PathBuf = dir.join("produce.log");
    let log_file = std::fs::File::create(&log).map_err(Error::io("creating the produce log"))?;
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("produce")
        .arg(csv)
        .args(["--brokers", brokers, "--topic", topic])
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(Error::io("starting produce"))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = vm_hwm(&status_file) {
            peak_kib = peak_kib.max(kib);
        }
        match child.try_wait().map_err(Error::io("waiting for produce"))? {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let stderr = std::fs::read_to_string(&log).map_err(Error::io("reading the produce log"))?;
    if !status.success() {
        return Err(Error::Bench(format!("produce failed: {stderr}")));
    }
    Ok(ProduceRun {
        secs,
        peak_kib,
        stderr,
    })
}

fn vm_hwm(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The number just before `word` in produce's summary ("… 10 acknowledged, …").
fn field(summary: &str, word: &str) -> Option<f64> {
    let before = summary.split(&format!(" {word}")).next()?;
    before.rsplit([' ', ':']).next()?.parse().ok()
}
