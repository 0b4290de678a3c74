//! Lakes written straight to Parquet, without Kafka, in the layout `consume` writes: for tests
//! (the sample lake) and benchmarks (synthetic lakes). Local folders only.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::lake::layout::{LAYOUT_FILE, TABLE_DIR, file_name};
use crate::lake::{LakeError, TableLayout};
use crate::tick::{Tick, TickBatchBuilder};

/// Writes ticks into lake files.
pub struct LakeGen {
    root: PathBuf,
    layout: TableLayout,
    rows_per_file: usize,
    /// The "Kafka offset" of the next tick (file names derive from it, as consume's do).
    next_offset: i64,
    open: BTreeMap<String, (TickBatchBuilder, i64)>,
    files: u64,
    rows: u64,
}

impl LakeGen {
    /// A writer into the lake at `root`. Saves `layout` as the table layout unless the lake
    /// already has one (then that one must be equal). `first_offset` keeps file names of a later
    /// append apart from earlier ones.
    pub fn new(
        root: &Path,
        layout: TableLayout,
        first_offset: i64,
        rows_per_file: usize,
    ) -> Result<Self, LakeError> {
        let layout_path = root.join(LAYOUT_FILE);
        match std::fs::read(&layout_path) {
            Ok(bytes) => {
                let existing: TableLayout =
                    serde_json::from_slice(&bytes).map_err(|e| LakeError::Data {
                        location: layout_path.display().to_string(),
                        message: e.to_string(),
                    })?;
                if existing != layout {
                    return Err(LakeError::Data {
                        location: layout_path.display().to_string(),
                        message: format!("the lake is partitioned as {existing:?}, not {layout:?}"),
                    });
                }
            }
            Err(_) => {
                let dir = layout_path.parent().unwrap_or(root);
                std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
                let json = serde_json::to_vec_pretty(&layout).expect("layout serialises");
                std::fs::write(&layout_path, json).map_err(|source| io(&layout_path, source))?;
            }
        }
        Ok(LakeGen {
            root: root.to_path_buf(),
            layout,
            rows_per_file: rows_per_file.max(1),
            next_offset: first_offset,
            open: BTreeMap::new(),
            files: 0,
            rows: 0,
        })
    }

    /// Adds one tick; a partition's file is written when it holds `rows_per_file` rows.
    pub fn push(&mut self, tick: &Tick) -> Result<(), LakeError> {
        let dir = self.layout.partition_dir(&tick.symbol, tick.event_time);
        let offset = self.next_offset;
        self.next_offset += 1;
        let with_symbol = self.layout.symbol_in_file();
        let cap = self.rows_per_file.min(65_536);
        let (builder, _) = self
            .open
            .entry(dir.clone())
            .or_insert_with(|| (TickBatchBuilder::new(with_symbol, cap), offset));
        builder.push(tick, 0, offset);
        if builder.len() >= self.rows_per_file {
            self.flush_one(&dir)?;
        }
        Ok(())
    }

    /// Writes every partition's pending rows.
    pub fn flush(&mut self) -> Result<(), LakeError> {
        let dirs: Vec<String> = self.open.keys().cloned().collect();
        for dir in dirs {
            self.flush_one(&dir)?;
        }
        Ok(())
    }

    /// Flushes and returns (files written, rows written, next offset).
    pub fn finish(mut self) -> Result<(u64, u64, i64), LakeError> {
        self.flush()?;
        Ok((self.files, self.rows, self.next_offset))
    }

    fn flush_one(&mut self, dir: &str) -> Result<(), LakeError> {
        let Some((mut builder, first_offset)) = self.open.remove(dir) else {
            return Ok(());
        };
        if builder.is_empty() {
            return Ok(());
        }
        let batch = builder.finish();
        let folder = self.root.join(TABLE_DIR).join(dir);
        std::fs::create_dir_all(&folder).map_err(|source| io(&folder, source))?;
        let path = folder.join(file_name("ticks", 0, first_offset));
        let tmp = folder.join(format!(".{}.tmp", file_name("ticks", 0, first_offset)));
        let file = File::create(&tmp).map_err(|source| io(&tmp, source))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let data_err = |e: parquet::errors::ParquetError| LakeError::Data {
            location: tmp.display().to_string(),
            message: e.to_string(),
        };
        let mut writer =
            ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(data_err)?;
        writer.write(&batch).map_err(data_err)?;
        writer.close().map_err(data_err)?;
        // Rename into place, so a reader never sees half a file.
        std::fs::rename(&tmp, &path).map_err(|source| io(&path, source))?;
        self.files += 1;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
}

fn io(path: &Path, source: std::io::Error) -> LakeError {
    LakeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `ticks` as a lake at `root` (one file per partition unless a partition exceeds
/// `rows_per_file`). Returns (files, rows).
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

/// The sample lake: `csv` (e.g. data/stocks.csv) loaded and written with the default layout.
pub fn write_sample_lake(
    csv: &Path,
    root: &Path,
) -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let (ticks, _) =
        crate::source::load_csv_files(&[csv.to_path_buf()], &crate::source::CsvOptions::default())?;
    Ok(write_lake(root, TableLayout::default(), ticks, 1_000_000)?)
}
