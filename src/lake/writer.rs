//! The Parquet profile of lake files, chosen for Athena, DuckDB, pyarrow and Spark alike:
//! timestamps as INT64 TIMESTAMP(MILLIS, UTC) (never INT96 or NANOS), dates as DATE, zstd,
//! statistics on, one row group per file up to a million rows, dictionary encoding only where
//! values repeat (symbol).

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Largest row group written.
pub const MAX_ROW_GROUP_ROWS: usize = 1_000_000;

pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("level 1 is valid"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("symbol"), true)
        .set_created_by(format!("stocklake {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Encodes batches (all with the same schema) as one Parquet file in memory.
pub fn encode(batches: &[RecordBatch]) -> Result<Bytes, parquet::errors::ParquetError> {
    let Some(first) = batches.first() else {
        return Err(parquet::errors::ParquetError::General(
            "no rows to write".into(),
        ));
    };
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut out = Vec::with_capacity(rows * 40 + 4096);
    let mut writer = ArrowWriter::try_new(&mut out, first.schema(), Some(writer_properties()))?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(Bytes::from(out))
}
