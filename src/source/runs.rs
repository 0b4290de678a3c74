//! Sorted runs on disk for the streaming replay: a private temporary folder, a compact binary
//! format for ticks, and the external sort that cuts a file that is not in replay order into
//! sorted runs of a bounded number of rows.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::csv::CsvRows;
use super::error::SourceError;
use super::stream::StreamOptions;
use crate::tick::Tick;

/// A folder of its own under the system's temporary folder (`TMPDIR`), removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> Result<Self, SourceError> {
        Self::with_prefix("stocklake-sort")
    }

    /// A folder named `<prefix>-<pid>-…`.
    pub fn with_prefix(prefix: &str) -> Result<Self, SourceError> {
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "{prefix}-{}-{nanos:x}-{attempt}",
                std::process::id()
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(SourceError::Io { path, source }),
            }
        }
        Err(SourceError::Invalid(format!(
            "cannot create a temporary folder in {}",
            base.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!("could not remove {}: {e}", self.path.display());
        }
    }
}

const BUF: usize = 64 << 10;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes ticks to a run file: per tick the symbol (u16 length, bytes), the event time (i64),
/// a byte saying which of open, high, low, close, adj_close (f64) and volume (i64) follow, and
/// those; all little-endian. Floats are stored bit for bit.
pub struct RunWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl RunWriter {
    pub fn create(path: PathBuf) -> Result<Self, SourceError> {
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        Ok(RunWriter {
            out: BufWriter::with_capacity(BUF, file),
            path,
        })
    }

    pub fn write(&mut self, t: &Tick) -> Result<(), SourceError> {
        let mut rec = Vec::with_capacity(80);
        let symbol = t.symbol.as_bytes();
        let len = u16::try_from(symbol.len())
            .map_err(|_| SourceError::Invalid(format!("symbol too long: {}", t.symbol)))?;
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(symbol);
        rec.extend_from_slice(&t.event_time.to_le_bytes());
        let prices = [t.open, t.high, t.low, t.close, t.adj_close];
        let mut mask = 0u8;
        for (i, p) in prices.iter().enumerate() {
            if p.is_some() {
                mask |= 1 << i;
            }
        }
        if t.volume.is_some() {
            mask |= 1 << 5;
        }
        rec.push(mask);
        for p in prices.into_iter().flatten() {
            rec.extend_from_slice(&p.to_bits().to_le_bytes());
        }
        if let Some(v) = t.volume {
            rec.extend_from_slice(&v.to_le_bytes());
        }
        self.out.write_all(&rec).map_err(io_err(&self.path))
    }

    pub fn finish(mut self) -> Result<PathBuf, SourceError> {
        self.out.flush().map_err(io_err(&self.path))?;
        Ok(self.path)
    }
}

/// Reads back what a [`RunWriter`] wrote.
pub struct RunReader {
    path: PathBuf,
    input: BufReader<std::fs::File>,
}

impl RunReader {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        Ok(RunReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(BUF, file),
        })
    }

    pub fn next_tick(&mut self) -> Result<Option<Tick>, SourceError> {
        let mut len = [0u8; 2];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err(&self.path)(e)),
        }
        let mut symbol = vec![0u8; usize::from(u16::from_le_bytes(len))];
        self.read(&mut symbol)?;
        let symbol = String::from_utf8(symbol)
            .map_err(|_| SourceError::Invalid(format!("{}: corrupt run", self.path.display())))?;
        let mut word = [0u8; 8];
        self.read(&mut word)?;
        let event_time = i64::from_le_bytes(word);
        let mut mask = [0u8; 1];
        self.read(&mut mask)?;
        let mut prices = [None; 5];
        for (i, p) in prices.iter_mut().enumerate() {
            if mask[0] & (1 << i) != 0 {
                self.read(&mut word)?;
                *p = Some(f64::from_bits(u64::from_le_bytes(word)));
            }
        }
        let volume = if mask[0] & (1 << 5) != 0 {
            self.read(&mut word)?;
            Some(i64::from_le_bytes(word))
        } else {
            None
        };
        Ok(Some(Tick {
            open: prices[0],
            high: prices[1],
            low: prices[2],
            close: prices[3],
            adj_close: prices[4],
            symbol,
            event_time,
            volume,
        }))
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), SourceError> {
        self.input.read_exact(buf).map_err(io_err(&self.path))
    }
}

/// Cuts the CSV file `path` into sorted runs of at most `opts.run_rows` rows in `dir`, each in
/// replay order with ties in file order (what a stable sort of the whole file gives once the
/// runs are merged with ties going to the earlier run). Malformed rows are dropped (the first
/// pass has reported or refused them).
pub fn sort_into_runs(
    path: &Path,
    opts: &StreamOptions,
    dir: &Path,
    name: &str,
) -> Result<Vec<PathBuf>, SourceError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut rows = CsvRows::new(path, file, &opts.csv)?;
    let run_rows = opts.run_rows.max(1);
    let mut runs = Vec::new();
    let mut chunk: Vec<Tick> = Vec::with_capacity(run_rows.min(1 << 16));
    let mut seen = 0u64;
    loop {
        let row = rows.next_row()?;
        seen += 1;
        super::stream::check_cancel(opts.cancel, seen)?;
        let end = row.is_none();
        if let Some(Ok(tick)) = row {
            chunk.push(tick);
        }
        if chunk.len() >= run_rows || (end && !chunk.is_empty()) {
            super::sort_for_replay(&mut chunk);
            let mut w = RunWriter::create(dir.join(format!("{name}-{}.run", runs.len())))?;
            for t in &chunk {
                w.write(t)?;
            }
            runs.push(w.finish()?);
            chunk.clear();
        }
        if end {
            return Ok(runs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_every_value_bit_for_bit() {
        let dir = TempDir::new().unwrap();
        let ticks = vec![
            Tick {
                symbol: "BRK.B".into(),
                event_time: -86_400_000,
                open: Some(0.1 + 0.2),
                high: None,
                low: Some(-0.0),
                close: Some(1e300),
                adj_close: None,
                volume: Some(i64::MAX),
            },
            Tick {
                symbol: "Ä".into(),
                event_time: 1,
                open: None,
                high: Some(f64::MIN_POSITIVE),
                low: None,
                close: None,
                adj_close: Some(2.5),
                volume: None,
            },
        ];
        let mut w = RunWriter::create(dir.path().join("r")).unwrap();
        for t in &ticks {
            w.write(t).unwrap();
        }
        let path = w.finish().unwrap();
        let mut r = RunReader::open(&path).unwrap();
        let mut back = Vec::new();
        while let Some(t) = r.next_tick().unwrap() {
            back.push(t);
        }
        assert_eq!(back, ticks);
        assert!(back[0].low.unwrap().is_sign_negative());
        let kept = dir.path().to_path_buf();
        drop(dir);
        assert!(!kept.exists(), "the temporary folder is removed");
    }
}
