//! Output formats shared by `sql`, `repl` and `compare`: an aligned table for people, CSV with a
//! header, a JSON array, or newline-delimited JSON. Data goes to the writer given (stdout);
//! row counts and timings are the caller's business (stderr).

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table.
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Ndjson => "ndjson",
        })
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown format {s:?} (table, csv, json, ndjson)"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("writing results")]
    Io(#[from] std::io::Error),
    #[error("formatting results")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Every row of `batches` as text, its cells (Arrow's display form) joined with `|`: the form
/// tests compare query results in.
pub fn rows_as_text(batches: &[RecordBatch]) -> Result<Vec<String>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let cells = b
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, row))
                .collect::<Result<Vec<String>, _>>()?;
            out.push(cells.join("|"));
        }
    }
    Ok(out)
}

/// The first `max` rows of `batches` (all when `max` is None).
pub fn limit_rows(batches: &[RecordBatch], max: Option<usize>) -> Vec<RecordBatch> {
    let Some(mut left) = max else {
        return batches.to_vec();
    };
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    out
}

/// Writes a result in `format`, at most `max_rows` rows. Returns the rows written.
pub fn write_result(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
    max_rows: Option<usize>,
) -> Result<usize, PrintError> {
    let shown = limit_rows(batches, max_rows);
    let rows = shown.iter().map(RecordBatch::num_rows).sum();
    match format {
        OutputFormat::Table => {
            let table =
                arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), &shown)?;
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if shown.is_empty() {
                // The header alone, for an empty result.
                w.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in &shown {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut *out);
            for b in &shown {
                w.write(b)?;
            }
            w.finish()?; // writes `[]` for no rows
            drop(w);
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in &shown {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    out.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("AAPL"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
            ],
        )
        .unwrap();
        (schema, b)
    }

    fn render(format: OutputFormat, max: Option<usize>, empty: bool) -> String {
        let (schema, b) = batch();
        let batches = if empty { vec![] } else { vec![b] };
        let mut out = Vec::new();
        write_result(&mut out, &schema, &batches, format, max).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_render_rows_nulls_and_empty_results() {
        assert_eq!(
            render(OutputFormat::Csv, None, false),
            "symbol,n,x\nAAPL,1,1.5\n,2,\n"
        );
        assert_eq!(
            render(OutputFormat::Csv, Some(1), false),
            "symbol,n,x\nAAPL,1,1.5\n"
        );
        assert_eq!(render(OutputFormat::Csv, None, true), "symbol,n,x\n");
        assert_eq!(
            render(OutputFormat::Ndjson, None, false),
            "{\"symbol\":\"AAPL\",\"n\":1,\"x\":1.5}\n{\"n\":2}\n"
        );
        assert_eq!(render(OutputFormat::Json, None, true), "[]\n");
        assert!(render(OutputFormat::Json, None, false).starts_with("[{\"symbol\":\"AAPL\""));
        let t = render(OutputFormat::Table, None, true);
        assert!(t.contains("| symbol | n | x |"), "{t}");
        assert!(render(OutputFormat::Table, None, false).contains("| AAPL   | 1 | 1.5 |"));
    }
}
