//! The streaming replay of CSV files in bounded memory: a first pass that validates every row
//! and finds which files are in replay order, then passes that merge the files k-way (files
//! not in order are cut into sorted runs on disk first), or send them file after file.
//!
//! The order is exactly [`super::sort_for_replay`]'s on all rows of all files: event time,
//! then symbol, ties in file order, then row order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use super::csv::{CsvOptions, CsvRows, LoadReport};
use super::error::SourceError;
use super::runs::{RunReader, RunWriter, TempDir, sort_into_runs};
use crate::tick::{MS_PER_DAY, Tick};

/// Skipped rows' errors kept by the first pass (all are counted).
const KEPT_ERRORS: usize = 1000;

#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub csv: CsvOptions,
    /// Send each file's rows as they are, file after file: no merge, no sort.
    pub file_order: bool,
    /// Replay again and again, event times shifted forward each pass.
    pub looping: bool,
    /// Rows per sorted run when a file is not in replay order (memory: ~200 bytes a row).
    pub run_rows: usize,
    /// Most files read at once; more sources are merged into runs first.
    pub max_open: usize,
    /// Set (by Ctrl-C) to stop the first pass, the sort and the merges of groups.
    pub cancel: Option<&'static AtomicBool>,
}

/// [`SourceError::Interrupted`] once `cancel` is set; looks at rows 1, 4097, 8193, …
pub(super) fn check_cancel(cancel: Option<&AtomicBool>, row: u64) -> Result<(), SourceError> {
    match cancel {
        Some(c) if row % 4096 == 1 && c.load(AtomicOrdering::Relaxed) => {
            Err(SourceError::Interrupted)
        }
        _ => Ok(()),
    }
}

/// What the first pass found: rows and skipped rows per file, and which files are in order.
#[derive(Debug, Default)]
pub struct Scan {
    /// `skipped` keeps the first 1000 errors; the per-file counts count them all.
    pub report: LoadReport,
    pub in_order: Vec<bool>,
}

/// Reads every row of every file once: validates it (under [`super::OnError::Fail`] the first
/// malformed row is the error) and checks whether each file is in replay order.
pub fn scan_csv_files(paths: &[PathBuf], opts: &StreamOptions) -> Result<Scan, SourceError> {
    let mut scan = Scan::default();
    let mut seen = 0u64;
    for path in paths {
        let file = open(path)?;
        let mut rows = CsvRows::new(path, file, &opts.csv)?;
        let mut report = super::csv::FileReport {
            path: path.clone(),
            layout: rows.layout(),
            rows: 0,
            skipped: 0,
        };
        let mut in_order = true;
        let mut prev: Option<(i64, String)> = None;
        while let Some(row) = rows.next_row()? {
            seen += 1;
            check_cancel(opts.cancel, seen)?;
            match row {
                Ok(t) => {
                    report.rows += 1;
                    match &mut prev {
                        Some((time, sym)) => {
                            if in_order && key_cmp(*time, sym, &t) == Ordering::Greater {
                                in_order = false;
                            }
                            *time = t.event_time;
                            sym.clone_from(&t.symbol);
                        }
                        None => prev = Some((t.event_time, t.symbol)),
                    }
                }
                Err(e) => {
                    report.skipped += 1;
                    if scan.report.skipped.len() < KEPT_ERRORS {
                        scan.report.skipped.push(e);
                    }
                }
            }
        }
        scan.report.files.push(report);
        scan.in_order.push(in_order);
    }
    Ok(scan)
}

fn open(path: &Path) -> Result<std::fs::File, SourceError> {
    std::fs::File::open(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// (time, symbol) of a previous row against `t`'s.
fn key_cmp(time: i64, symbol: &str, t: &Tick) -> Ordering {
    time.cmp(&t.event_time)
        .then_with(|| symbol.cmp(t.symbol.as_str()))
}

/// Where a pass reads from, in file order: a CSV file or a sorted run on disk.
#[derive(Debug, Clone)]
enum Spec {
    Csv(PathBuf),
    Run(PathBuf),
}

enum Source {
    Csv {
        rows: Box<CsvRows<std::fs::File>>,
        path: PathBuf,
        prev: Option<(i64, String)>,
        check_order: bool,
    },
    Run(RunReader),
}

impl Source {
    fn open(spec: &Spec, opts: &CsvOptions, check_order: bool) -> Result<Source, SourceError> {
        Ok(match spec {
            Spec::Csv(path) => Source::Csv {
                rows: Box::new(CsvRows::new(path, open(path)?, opts)?),
                path: path.clone(),
                prev: None,
                check_order,
            },
            Spec::Run(path) => Source::Run(RunReader::open(path)?),
        })
    }

    /// The next good row; malformed rows are skipped (the first pass reported them).
    fn next_tick(&mut self) -> Result<Option<Tick>, SourceError> {
        match self {
            Source::Run(r) => r.next_tick(),
            Source::Csv {
                rows,
                path,
                prev,
                check_order,
            } => loop {
                let t = match rows.next_row()? {
                    None => return Ok(None),
                    Some(Err(_)) => continue,
                    Some(Ok(t)) => t,
                };
                if *check_order {
                    match prev {
                        Some((time, sym)) => {
                            if key_cmp(*time, sym, &t) == Ordering::Greater {
                                return Err(SourceError::Invalid(format!(
                                    "{}: the file changed while it was replayed (rows out of order)",
                                    path.display()
                                )));
                            }
                            *time = t.event_time;
                            sym.clone_from(&t.symbol);
                        }
                        None => *prev = Some((t.event_time, t.symbol.clone())),
                    }
                }
                return Ok(Some(t));
            },
        }
    }
}

/// The next row of source `ord`; the heap's top is the smallest (time, symbol, ord).
struct Head {
    tick: Tick,
    ord: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .tick
            .event_time
            .cmp(&self.tick.event_time)
            .then_with(|| other.tick.symbol.cmp(&self.tick.symbol))
            .then_with(|| other.ord.cmp(&self.ord))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// One pass over the sources: k-way merged, or one after the other (`concat`).
struct Merge {
    sources: Vec<Source>,
    heap: BinaryHeap<Head>,
    concat: Option<usize>,
}

impl Merge {
    fn open(specs: &[Spec], opts: &CsvOptions, concat: bool) -> Result<Merge, SourceError> {
        let mut sources = Vec::with_capacity(specs.len());
        for s in specs {
            sources.push(Source::open(s, opts, !concat)?);
        }
        let mut heap = BinaryHeap::with_capacity(sources.len());
        if !concat {
            for (ord, s) in sources.iter_mut().enumerate() {
                if let Some(tick) = s.next_tick()? {
                    heap.push(Head { tick, ord });
                }
            }
        }
        Ok(Merge {
            sources,
            heap,
            concat: concat.then_some(0),
        })
    }

    fn next_tick(&mut self) -> Result<Option<Tick>, SourceError> {
        if let Some(i) = &mut self.concat {
            while let Some(s) = self.sources.get_mut(*i) {
                if let Some(t) = s.next_tick()? {
                    return Ok(Some(t));
                }
                *i += 1;
            }
            return Ok(None);
        }
        let Some(Head { tick, ord }) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(next) = self.sources[ord].next_tick()? {
            self.heap.push(Head { tick: next, ord });
        }
        Ok(Some(tick))
    }
}

/// Where a streaming replay stopped with an error: the iterator ends, the error waits here.
#[derive(Debug, Clone, Default)]
pub struct StreamFailure(Arc<Mutex<Option<SourceError>>>);

impl StreamFailure {
    pub fn take(&self) -> Option<SourceError> {
        self.0.lock().ok().and_then(|mut e| e.take())
    }

    fn set(&self, e: SourceError) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
    }
}

/// The replay of the scanned files, once or forever (like [`super::Replay`]: each further pass
/// shifts event times forward by the data's span plus the smallest step between two events).
pub struct CsvStream {
    specs: Vec<Spec>,
    opts: StreamOptions,
    rows: u64,
    merge: Option<Merge>,
    passes_done: u64,
    shift: i64,
    span: Span,
    failure: StreamFailure,
    ended: bool,
    /// Files sorted into runs: (file, runs).
    pub sorted_files: Vec<(PathBuf, usize)>,
    _tmp: Option<TempDir>,
}

/// Event-time extent of the first pass.
#[derive(Default)]
struct Span {
    min: Option<i64>,
    max: i64,
    prev: i64,
    step: Option<i64>,
}

impl Span {
    fn see(&mut self, t: i64) {
        match self.min {
            None => {
                self.min = Some(t);
                self.max = t;
            }
            Some(min) => {
                let d = t - self.prev;
                if d > 0 && self.step.is_none_or(|s| d < s) {
                    self.step = Some(d);
                }
                self.min = Some(min.min(t));
                self.max = self.max.max(t);
            }
        }
        self.prev = t;
    }

    fn pass_span(&self) -> i64 {
        self.max - self.min.unwrap_or(0) + self.step.unwrap_or(MS_PER_DAY)
    }
}

impl CsvStream {
    /// Plans the replay of `paths` (scanned by [`scan_csv_files`]): files not in order are
    /// sorted into runs now, unless `file_order`.
    pub fn new(paths: &[PathBuf], scan: &Scan, opts: StreamOptions) -> Result<Self, SourceError> {
        let mut tmp = None;
        let mut specs = Vec::new();
        let mut sorted_files = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let rows = scan.report.files.get(i).map_or(0, |f| f.rows);
            let in_order = scan.in_order.get(i).copied().unwrap_or(false);
            if rows == 0 {
                continue;
            }
            if in_order || opts.file_order {
                specs.push(Spec::Csv(path.clone()));
                continue;
            }
            let dir = temp(&mut tmp)?;
            let runs = sort_into_runs(path, &opts, dir, &format!("f{i}"))?;
            sorted_files.push((path.clone(), runs.len()));
            specs.extend(runs.into_iter().map(Spec::Run));
        }
        let mut level = 0;
        while !opts.file_order && specs.len() > opts.max_open.max(2) {
            let dir = temp(&mut tmp)?.to_path_buf();
            specs = merge_groups(&specs, &opts, &dir, level)?;
            level += 1;
        }
        Ok(CsvStream {
            specs,
            rows: scan.report.rows(),
            opts,
            merge: None,
            passes_done: 0,
            shift: 0,
            span: Span::default(),
            failure: StreamFailure::default(),
            ended: false,
            sorted_files,
            _tmp: tmp,
        })
    }

    /// Rows in one pass.
    pub fn rows_per_pass(&self) -> u64 {
        self.rows
    }

    /// Where an error that ended the stream waits.
    pub fn failure(&self) -> StreamFailure {
        self.failure.clone()
    }

    fn fail(&mut self, e: SourceError) -> Option<Tick> {
        self.failure.set(e);
        self.ended = true;
        self.merge = None;
        None
    }
}

fn temp(tmp: &mut Option<TempDir>) -> Result<&Path, SourceError> {
    if tmp.is_none() {
        *tmp = Some(TempDir::new()?);
    }
    Ok(tmp.as_ref().map_or(Path::new("."), TempDir::path))
}

/// Merges consecutive groups of `max_open` sources into one run each (ties keep source order).
fn merge_groups(
    specs: &[Spec],
    opts: &StreamOptions,
    dir: &Path,
    level: usize,
) -> Result<Vec<Spec>, SourceError> {
    let mut out = Vec::new();
    for (g, group) in specs.chunks(opts.max_open.max(2)).enumerate() {
        let mut merge = Merge::open(group, &opts.csv, false)?;
        let mut w = RunWriter::create(dir.join(format!("m{level}-{g}.run")))?;
        let mut n = 0u64;
        while let Some(t) = merge.next_tick()? {
            w.write(&t)?;
            n += 1;
            check_cancel(opts.cancel, n)?;
        }
        out.push(Spec::Run(w.finish()?));
    }
    Ok(out)
}

impl Iterator for CsvStream {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        loop {
            if self.ended {
                return None;
            }
            if self.merge.is_none() {
                if self.rows == 0 || (self.passes_done > 0 && !self.opts.looping) {
                    self.ended = true;
                    return None;
                }
                if self.passes_done > 0 {
                    self.shift += self.span.pass_span();
                }
                match Merge::open(&self.specs, &self.opts.csv, self.opts.file_order) {
                    Ok(m) => self.merge = Some(m),
                    Err(e) => return self.fail(e),
                }
            }
            let merge = self.merge.as_mut()?;
            match merge.next_tick() {
                Ok(Some(mut t)) => {
                    if self.passes_done == 0 {
                        self.span.see(t.event_time);
                    }
                    t.event_time += self.shift;
                    return Some(t);
                }
                Ok(None) => {
                    self.merge = None;
                    self.passes_done += 1;
                }
                Err(e) => return self.fail(e),
            }
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
