//! Lakes written straight to a Delta table, without Kafka, in the layout `consume` writes: data
//! files encoded with the lake's writer profile and put through [`Lake::put`], recorded by
//! [`TicksTable::commit`] a few files per commit with their statistics, and a `txn` for Kafka
//! partition 0. For tests
//! (the sample lake) and benchmarks (synthetic lakes). Local folders only.

use std::collections::BTreeMap;
use std::path::Path;

use crate::lake::delta::stats::file_stats;
use crate::lake::delta::{AppTxn, DataFile, TicksTable, app_id, partition_values, ticks_url};
use crate::lake::layout::{TABLE_DIR, file_name};
use crate::lake::writer::encode;
use crate::lake::{Lake, LakeError, TableLayout};
use crate::tick::{Tick, TickBatchBuilder};

/// Files per commit unless [`LakeGen::with_files_per_commit`] says otherwise.
const FILES_PER_COMMIT: usize = 100;

/// The topic the generated rows claim to come from (their `txn` is `stocklake:ticks:0`).
const TOPIC: &str = "ticks";

/// One partition's rows not yet written: the builder, its first offset, and a tick of it (for
/// the partition values).
struct Open {
    builder: TickBatchBuilder,
    first_offset: i64,
    symbol: String,
    event_time: i64,
}

/// Writes ticks into a lake's Delta table.
pub struct LakeGen {
    lake: Lake,
    table: TicksTable,
    layout: TableLayout,
    rows_per_file: usize,
    files_per_commit: usize,
    /// The "Kafka offset" of the next tick (file names derive from it, as consume's do).
    next_offset: i64,
    open: BTreeMap<String, Open>,
    /// Files written and not yet committed.
    pending: Vec<DataFile>,
    files: u64,
    rows: u64,
    commits: u64,
}

/// Blocks on `work` from sync code, inside or outside a Tokio runtime: on a scoped thread with a
/// runtime of its own.
fn block_on<T: Send>(work: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime")
                .block_on(work)
        })
        .join()
        .expect("the lake generator's thread panicked")
    })
}

impl LakeGen {
    /// A writer into the lake at `root`. Creates the ticks table with `layout` unless the lake
    /// already has one (then its layout must be equal). `first_offset` keeps file names of a
    /// later append apart from earlier ones.
    pub fn new(
        root: &Path,
        layout: TableLayout,
        first_offset: i64,
        rows_per_file: usize,
    ) -> Result<Self, LakeError> {
        let location = root.to_str().ok_or_else(|| LakeError::Url {
            url: root.display().to_string(),
            message: "not UTF-8".into(),
        })?;
        let (lake, table) = block_on(async {
            let lake = Lake::open(location).await?;
            let table = TicksTable::open_or_create(&ticks_url(location)?, &layout).await?;
            Ok::<_, LakeError>((lake, table))
        })?;
        Ok(LakeGen {
            lake,
            table,
            layout,
            rows_per_file: rows_per_file.max(1),
            files_per_commit: FILES_PER_COMMIT,
            next_offset: first_offset,
            open: BTreeMap::new(),
            pending: Vec::new(),
            files: 0,
            rows: 0,
            commits: 0,
        })
    }

    /// Commits every `n` files (the last commit may hold fewer).
    pub fn with_files_per_commit(mut self, n: usize) -> Self {
        self.files_per_commit = n.max(1);
        self
    }

    /// Adds one tick; a partition's file is written when it holds `rows_per_file` rows.
    pub fn push(&mut self, tick: &Tick) -> Result<(), LakeError> {
        let dir = self.layout.partition_dir(&tick.symbol, tick.event_time);
        let offset = self.next_offset;
        self.next_offset += 1;
        let with_symbol = self.layout.symbol_in_file();
        let cap = self.rows_per_file.min(65_536);
        let open = self.open.entry(dir.clone()).or_insert_with(|| Open {
            builder: TickBatchBuilder::new(with_symbol, cap),
            first_offset: offset,
            symbol: tick.symbol.clone(),
            event_time: tick.event_time,
        });
        open.builder.push(tick, 0, offset);
        if open.builder.len() >= self.rows_per_file {
            self.flush_one(&dir)?;
        }
        Ok(())
    }

    /// Writes every partition's pending rows and commits them.
    pub fn flush(&mut self) -> Result<(), LakeError> {
        let dirs: Vec<String> = self.open.keys().cloned().collect();
        for dir in dirs {
            self.flush_one(&dir)?;
        }
        self.commit()
    }

    /// Flushes and returns (files written, rows written, next offset).
    pub fn finish(mut self) -> Result<(u64, u64, i64), LakeError> {
        self.flush()?;
        Ok((self.files, self.rows, self.next_offset))
    }

    /// The commits made so far.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Writes one partition's rows as a data file (not yet committed).
    fn flush_one(&mut self, dir: &str) -> Result<(), LakeError> {
        let Some(mut open) = self.open.remove(dir) else {
            return Ok(());
        };
        if open.builder.is_empty() {
            return Ok(());
        }
        let batch = open.builder.finish();
        let path = format!("{dir}/{}", file_name(TOPIC, 0, open.first_offset));
        let rel = format!("{TABLE_DIR}/{path}");
        let bytes = encode(std::slice::from_ref(&batch)).map_err(|e| LakeError::Parquet {
            key: self.lake.display(&rel),
            message: e.to_string(),
        })?;
        let size = bytes.len() as u64;
        block_on(self.lake.put(&rel, bytes))?;
        self.pending.push(DataFile {
            path,
            size,
            partition_values: partition_values(&self.layout, &open.symbol, open.event_time),
            rows: batch.num_rows() as u64,
            stats: Some(file_stats(std::slice::from_ref(&batch))),
        });
        self.files += 1;
        self.rows += batch.num_rows() as u64;
        if self.pending.len() >= self.files_per_commit {
            self.commit()?;
        }
        Ok(())
    }

    /// Records the files written since the last commit in one commit.
    fn commit(&mut self) -> Result<(), LakeError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let txn = AppTxn {
            app_id: app_id(TOPIC, 0),
            version: self.next_offset - 1,
        };
        let (table, pending) = (&mut self.table, &self.pending);
        block_on(table.commit(pending, std::slice::from_ref(&txn)))?;
        self.pending.clear();
        self.commits += 1;
        Ok(())
    }
}

/// Writes `ticks` as a lake at `root` (one file per partition unless a partition exceeds
/// `rows_per_file`), all in one commit. Returns (files, rows).
pub fn write_lake(
    root: &Path,
    layout: TableLayout,
    ticks: impl IntoIterator<Item = Tick>,
    rows_per_file: usize,
) -> Result<(u64, u64), LakeError> {
    let mut lake_gen = LakeGen::new(root, layout, 0, rows_per_file)?;
    for t in ticks {
        lake_gen.push(&t)?;
    }
    let (files, rows, _) = lake_gen.finish()?;
    Ok((files, rows))
}

/// The sample lake: `csv` (e.g. data/stocks.csv) loaded and written with the default layout,
/// one commit per symbol in name order (version 0 creates the table, version `i` adds the
/// `i`-th symbol's file).
pub fn write_sample_lake(
    csv: &Path,
    root: &Path,
) -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let (ticks, _) =
        crate::source::load_csv_files(&[csv.to_path_buf()], &crate::source::CsvOptions::default())?;
    let mut lake_gen =
        LakeGen::new(root, TableLayout::default(), 0, 1_000_000)?.with_files_per_commit(1);
    for t in &ticks {
        lake_gen.push(t)?;
    }
    // The files are written (and each committed) in partition folder order: symbol names.
    let (files, rows, _) = lake_gen.finish()?;
    Ok((files, rows))
}
