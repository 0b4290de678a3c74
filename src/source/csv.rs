//! CSV readers for the common stock-data layouts, recognised from the header row.
//!
//! | layout | header | notes |
//! |---|---|---|
//! | `bokeh` | `Ticker,Date,Open,High,Low,Close,Volume,Adj Close` | the sample data |
//! | `kaggle` | `Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD` | volume as `0.0`; CloseUSD (close converted to USD) is not kept |
//! | `yahoo` | `Date,Open,High,Low,Close,Adj Close,Volume` | one ticker per file; `null` for missing |
//! | `stooq` | `<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>` | `YYYYMMDD` dates, `HHMMSS` times |
//! | `nasdaq` | `Date,Close/Last,Volume,Open,High,Low` | `$` prices, `MM/DD/YYYY`, newest first |
//! | `generic` | any header with a date and a close column | |
//!
//! Headers match case-insensitively, ignoring spaces, `_`, `-` and `<>`. A UTF-8 BOM, CRLF line
//! ends and a missing final newline are accepted. Missing values: empty, `null`, `NaN`, `N/A`, `-`.

use std::path::{Path, PathBuf};

use super::error::{FilePos, SourceError};
use crate::tick::{Tick, days_from_civil, days_in_month, parse_iso_millis};

/// The CSV layouts stocklake recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    Bokeh,
    Kaggle,
    Yahoo,
    Stooq,
    Nasdaq,
    Generic,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Bokeh => "bokeh",
            Layout::Kaggle => "kaggle",
            Layout::Yahoo => "yahoo",
            Layout::Stooq => "stooq",
            Layout::Nasdaq => "nasdaq",
            Layout::Generic => "generic",
        }
    }

    /// The layout whose signature columns the (normalised) header holds.
    fn detect(names: &[String]) -> Layout {
        let has = |n: &str| names.iter().any(|h| h == n);
        if has("per") && has("openint") {
            Layout::Stooq
        } else if has("close/last") {
            Layout::Nasdaq
        } else if has("index") && has("closeusd") {
            Layout::Kaggle
        } else if has("ticker") && has("adjclose") {
            Layout::Bokeh
        } else if has("adjclose") && !names.iter().any(|h| field_of(h) == Some(Field::Symbol)) {
            Layout::Yahoo
        } else {
            Layout::Generic
        }
    }
}

/// What to do with a malformed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Stop at the first malformed row; nothing is sent.
    #[default]
    Fail,
    /// Send the good rows; report how many were skipped and why.
    Skip,
}

#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Force a layout instead of detecting it.
    pub layout: Option<Layout>,
    /// Symbol for files without a symbol column (otherwise taken from the file name).
    pub symbol: Option<String>,
    pub on_error: OnError,
}

/// What loading found: rows read and rows skipped, per file.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub files: Vec<FileReport>,
    /// Skipped rows' errors (all of them; `--on-error skip` prints the first few).
    pub skipped: Vec<SourceError>,
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub layout: Layout,
    pub rows: u64,
    pub skipped: u64,
}

impl LoadReport {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Rows skipped in all files (`skipped` may keep fewer errors than this).
    pub fn skipped_rows(&self) -> u64 {
        self.files.iter().map(|f| f.skipped).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Symbol,
    Date,
    Time,
    Open,
    High,
    Low,
    Close,
    AdjClose,
    Volume,
}

/// Lower-cased header name without spaces, `_`, `-`, `<`, `>` or a BOM.
fn normalise(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '<' | '>' | '"'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn field_of(normalised: &str) -> Option<Field> {
    Some(match normalised {
        "ticker" | "symbol" | "index" | "name" => Field::Symbol,
        "date" | "datetime" | "timestamp" => Field::Date,
        "time" => Field::Time,
        "open" => Field::Open,
        "high" => Field::High,
        "low" => Field::Low,
        "close" | "close/last" | "last" => Field::Close,
        "adjclose" | "adjustedclose" => Field::AdjClose,
        "volume" | "vol" => Field::Volume,
        _ => return None,
    })
}

/// Column index of each field in one file.
#[derive(Debug, Default)]
struct Columns {
    symbol: Option<usize>,
    date: usize,
    time: Option<usize>,
    open: Option<usize>,
    high: Option<usize>,
    low: Option<usize>,
    close: usize,
    adj_close: Option<usize>,
    volume: Option<usize>,
}

/// Loads every file, validates every row, and returns the ticks in replay order.
///
/// With [`OnError::Fail`] the first malformed row is returned as the error, before anything is
/// sent; with [`OnError::Skip`] malformed rows are collected in the report.
pub fn load_csv_files(
    paths: &[PathBuf],
    opts: &CsvOptions,
) -> Result<(Vec<Tick>, LoadReport), SourceError> {
    let mut ticks = Vec::new();
    let mut report = LoadReport::default();
    for path in paths {
        let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        let file_report = read_csv(path, file, opts, &mut ticks, &mut report.skipped)?;
        report.files.push(file_report);
    }
    super::sort_for_replay(&mut ticks);
    Ok((ticks, report))
}

/// Reads one CSV stream into `out`. `path` names it in errors and may supply the symbol.
pub fn read_csv(
    path: &Path,
    input: impl std::io::Read,
    opts: &CsvOptions,
    out: &mut Vec<Tick>,
    skipped: &mut Vec<SourceError>,
) -> Result<FileReport, SourceError> {
    let mut rows = CsvRows::new(path, input, opts)?;
    let mut report = FileReport {
        path: path.to_path_buf(),
        layout: rows.layout(),
        rows: 0,
        skipped: 0,
    };
    while let Some(row) = rows.next_row()? {
        match row {
            Ok(tick) => {
                out.push(tick);
                report.rows += 1;
            }
            Err(err) => {
                report.skipped += 1;
                skipped.push(err);
            }
        }
    }
    Ok(report)
}

/// One CSV stream read row by row: the header is read (and the layout detected) up front, then
/// each call to [`CsvRows::next_row`] parses and validates the next row.
pub struct CsvRows<R> {
    path: PathBuf,
    rdr: ::csv::Reader<R>,
    headers: Vec<String>,
    layout: Layout,
    cols: Columns,
    file_symbol: Option<String>,
    on_error: OnError,
    record: ::csv::StringRecord,
}

impl<R: std::io::Read> CsvRows<R> {
    /// Reads the header of `input`; `path` names it in errors and may supply the symbol.
    pub fn new(path: &Path, input: R, opts: &CsvOptions) -> Result<Self, SourceError> {
        let mut rdr = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(::csv::Trim::All)
            .buffer_capacity(64 << 10)
            .from_reader(input);
        let headers = rdr
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        let names: Vec<String> = headers.iter().map(|h| normalise(h)).collect();
        let layout = opts.layout.unwrap_or_else(|| Layout::detect(&names));
        let cols = map_columns(path, &names, layout)?;
        let file_symbol = match cols.symbol {
            Some(_) => None,
            None => Some(symbol_for_file(path, opts.symbol.as_deref())?),
        };
        Ok(CsvRows {
            path: path.to_path_buf(),
            rdr,
            headers,
            layout,
            cols,
            file_symbol,
            on_error: opts.on_error,
            record: ::csv::StringRecord::new(),
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The next row: `None` at the end, `Some(Ok(tick))` for a good row, `Some(Err(e))` for a
    /// malformed row under [`OnError::Skip`]. Under [`OnError::Fail`] a malformed row is the
    /// error; an I/O error always is.
    pub fn next_row(&mut self) -> Result<Option<Result<Tick, SourceError>>, SourceError> {
        let path = self.path.as_path();
        let row = loop {
            match self.rdr.read_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                Err(e) => break Err(csv_error(path, e)),
            }
            let record = &self.record;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() == 1 && record.get(0) == Some("") {
                continue; // a blank line
            }
            // No price file has a field over several lines: a quote that never closes would
            // otherwise take every line after it into one field, unseen.
            if let Some((column, value)) = record
                .iter()
                .enumerate()
                .find(|(_, v)| v.contains(['\n', '\r']))
            {
                let lines = value.matches('\n').count() + 1;
                break Err(SourceError::Row {
                    pos: FilePos {
                        file: path.to_path_buf(),
                        line,
                        column: column + 1,
                        column_name: self.headers.get(column).cloned(),
                    },
                    message: format!(
                        "a quoted field runs over {lines} lines (lines {line} to {}): a quote \
                         that is never closed?",
                        line + lines as u64 - 1
                    ),
                });
            }
            let parsed = parse_row(
                record,
                &self.cols,
                self.file_symbol.as_deref(),
                &self.headers,
            );
            break parsed.map_err(|(column, message)| SourceError::Row {
                pos: FilePos {
                    file: path.to_path_buf(),
                    line,
                    column: column.map_or(0, |c| c + 1),
                    column_name: column.and_then(|c| self.headers.get(c).cloned()),
                },
                message,
            });
        };
        match row {
            Ok(tick) => Ok(Some(Ok(tick))),
            Err(err @ SourceError::Io { .. }) => Err(err),
            Err(err) if self.on_error == OnError::Fail => Err(err),
            Err(err) => Ok(Some(Err(err))),
        }
    }
}

fn csv_error(path: &Path, e: ::csv::Error) -> SourceError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => SourceError::Io {
            path: path.to_path_buf(),
            source,
        },
        ::csv::ErrorKind::Utf8 { err, .. } => SourceError::Row {
            pos: FilePos {
                file: path.to_path_buf(),
                line,
                column: err.field() + 1,
                column_name: None,
            },
            message: "not valid UTF-8".into(),
        },
        other => SourceError::Row {
            pos: FilePos {
                file: path.to_path_buf(),
                line,
                column: 0,
                column_name: None,
            },
            message: format!("{other:?}"),
        },
    }
}

fn map_columns(path: &Path, names: &[String], layout: Layout) -> Result<Columns, SourceError> {
    let mut cols = Columns::default();
    let (mut date, mut close) = (None, None);
    for (i, name) in names.iter().enumerate() {
        let slot = match field_of(name) {
            Some(Field::Symbol) => &mut cols.symbol,
            Some(Field::Date) => &mut date,
            Some(Field::Time) => &mut cols.time,
            Some(Field::Open) => &mut cols.open,
            Some(Field::High) => &mut cols.high,
            Some(Field::Low) => &mut cols.low,
            Some(Field::Close) => &mut close,
            Some(Field::AdjClose) => &mut cols.adj_close,
            Some(Field::Volume) => &mut cols.volume,
            None => continue,
        };
        if slot.is_none() {
            *slot = Some(i);
        }
    }
    let required: &[&str] = match layout {
        Layout::Bokeh => &["ticker", "date", "open", "high", "low", "close", "volume"],
        Layout::Kaggle => &["index", "date", "open", "high", "low", "close", "volume"],
        Layout::Yahoo => &["date", "open", "high", "low", "close", "volume"],
        Layout::Stooq => &[
            "ticker", "per", "date", "time", "open", "high", "low", "close", "vol",
        ],
        Layout::Nasdaq => &["date", "close/last", "volume", "open", "high", "low"],
        Layout::Generic => &["date"],
    };
    let missing: Vec<&str> = required
        .iter()
        .filter(|r| !names.iter().any(|n| n == *r))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(SourceError::Header {
            path: path.to_path_buf(),
            message: format!(
                "the header lacks column(s) {} needed by the {} layout (header: {})",
                missing.join(", "),
                layout.name(),
                names.join(",")
            ),
        });
    }
    cols.date = date.ok_or_else(|| SourceError::Header {
        path: path.to_path_buf(),
        message: "the header has no date column".into(),
    })?;
    cols.close = close.ok_or_else(|| SourceError::Header {
        path: path.to_path_buf(),
        message: "the header has no close column (close, close/last or last)".into(),
    })?;
    Ok(cols)
}

/// The symbol for a file with no symbol column: `--symbol`, or the file name's stem
/// (`AAPL.csv`, `msft.us.txt` → `MSFT.US`).
fn symbol_for_file(path: &Path, given: Option<&str>) -> Result<String, SourceError> {
    if let Some(s) = given {
        return Ok(s.to_string());
    }
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".gz").unwrap_or(n))
        .and_then(|n| n.rsplit_once('.').map_or(Some(n), |(s, _)| Some(s)))
        .unwrap_or("");
    let plausible = !stem.is_empty()
        && stem.len() <= 15
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^' | '='))
        && stem.chars().any(|c| c.is_ascii_alphabetic());
    if plausible {
        Ok(stem.to_ascii_uppercase())
    } else {
        Err(SourceError::Header {
            path: path.to_path_buf(),
            message: format!(
                "the file has no symbol column and its name {stem:?} is not a ticker: pass --symbol"
            ),
        })
    }
}

type RowError = (Option<usize>, String);

fn parse_row(
    rec: &::csv::StringRecord,
    cols: &Columns,
    file_symbol: Option<&str>,
    headers: &[String],
) -> Result<Tick, RowError> {
    if rec.len() != headers.len() {
        return Err((
            None,
            format!(
                "{} fields where the header has {}",
                rec.len(),
                headers.len()
            ),
        ));
    }
    let get = |i: usize| rec.get(i).unwrap_or("");
    let symbol = match (cols.symbol, file_symbol) {
        (Some(i), _) => {
            let s = get(i);
            if s.is_empty() {
                return Err((Some(i), "empty symbol".into()));
            }
            s.to_string()
        }
        (None, Some(s)) => s.to_string(),
        (None, None) => unreachable!("map_columns or symbol_for_file guarantee a symbol"),
    };
    let mut event_time = parse_date(get(cols.date)).map_err(|m| (Some(cols.date), m))?;
    if let Some(i) = cols.time {
        event_time += parse_time(get(i)).map_err(|m| (Some(i), m))?;
    }
    let price = |i: Option<usize>| -> Result<Option<f64>, RowError> {
        match i {
            None => Ok(None),
            Some(i) => parse_price(get(i)).map_err(|m| (Some(i), m)),
        }
    };
    let tick = Tick {
        symbol,
        event_time,
        open: price(cols.open)?,
        high: price(cols.high)?,
        low: price(cols.low)?,
        close: price(Some(cols.close))?,
        adj_close: price(cols.adj_close)?,
        volume: match cols.volume {
            None => None,
            Some(i) => parse_volume(get(i)).map_err(|m| (Some(i), m))?,
        },
    };
    tick.validate().map_err(|e| {
        let col = match &e {
            crate::tick::TickError::Field { field, .. } => match *field {
                "open" => cols.open,
                "high" => cols.high,
                "low" => cols.low,
                "close" => Some(cols.close),
                "adj_close" => cols.adj_close,
                "volume" => cols.volume,
                "symbol" => cols.symbol,
                _ => Some(cols.date),
            },
            _ => None,
        };
        (col, e.to_string())
    })?;
    Ok(tick)
}

fn is_missing(s: &str) -> bool {
    s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.eq_ignore_ascii_case("nan")
        || s.eq_ignore_ascii_case("n/a")
        || s == "-"
}

fn parse_price(s: &str) -> Result<Option<f64>, String> {
    if is_missing(s) {
        return Ok(None);
    }
    let digits = s.strip_prefix('$').unwrap_or(s).trim();
    let cleaned;
    let digits = if digits.contains(',') {
        cleaned = digits.replace(',', "");
        cleaned.as_str()
    } else {
        digits
    };
    match digits.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("{s:?} is not a price")),
    }
}

fn parse_volume(s: &str) -> Result<Option<i64>, String> {
    if is_missing(s) {
        return Ok(None);
    }
    let digits = s.replace(',', "");
    if let Ok(v) = digits.parse::<i64>() {
        return Ok(Some(v));
    }
    // Some layouts write volume as a float ("0.0", "1234.0"): accept whole numbers only.
    match digits.parse::<f64>() {
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(v as i64)),
        _ => Err(format!("{s:?} is not a whole number of shares")),
    }
}

/// Accepts `YYYY-MM-DD` (optionally with a UTC time), `YYYYMMDD` and `MM/DD/YYYY`.
fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date (YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY)");
    let b = s.as_bytes();
    let ymd = |y: &str, m: &str, d: &str| -> Option<i64> {
        let (y, m, d) = (
            y.parse::<i64>().ok()?,
            m.parse::<u32>().ok()?,
            d.parse().ok()?,
        );
        ((1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m))
            .then(|| days_from_civil(y, m, d) * crate::tick::MS_PER_DAY)
    };
    let r = if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        ymd(&s[0..4], &s[4..6], &s[6..8])
    } else if let Some((m, rest)) = s.split_once('/') {
        rest.split_once('/').and_then(|(d, y)| {
            (y.len() == 4 && m.len() <= 2 && d.len() <= 2)
                .then(|| ymd(y, m, d))
                .flatten()
        })
    } else {
        parse_iso_millis(s)
    };
    r.ok_or_else(bad)
}

/// Accepts `HHMMSS`, `HH:MM:SS` and `HH:MM`, as time since midnight in ms.
fn parse_time(s: &str) -> Result<i64, String> {
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    let ok = (digits.len() == 6 || digits.len() == 4) && digits.bytes().all(|c| c.is_ascii_digit());
    let field = |r: std::ops::Range<usize>| digits.get(r).and_then(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (field(0..2), field(2..4), field(4..6).or(Some(0)));
    match (ok, h, m, sec) {
        (true, Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec < 60 => {
            Ok(((h * 60 + m) * 60 + sec) * 1000)
        }
        _ => Err(format!("{s:?} is not a time (HHMMSS or HH:MM:SS)")),
    }
}
