//! Errors from the lake: opening it, reading and writing its objects, each naming the URL, object
//! key or path it failed on.

/// Errors from the lake: opening it, reading and writing its objects.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("lake object {key}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lake object {key}: {message}")]
    Format { key: String, message: String },
    #[error("writing Parquet for {key}: {message}")]
    Parquet { key: String, message: String },
    /// A data file that cannot be read as Parquet (truncated, overwritten, not Parquet).
    #[error("reading the Parquet file {key}: {message}")]
    ParquetRead { key: String, message: String },
    #[error("{path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Data { location: String, message: String },
    /// A call into the Delta Lake library failed on the table at `table`.
    #[error("Delta table {table}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// The table's log cannot be read at a checkpoint: `object` is the checkpoint (or
    /// `_last_checkpoint`) below the table, `what` what is wrong and what to do.
    #[error("Delta table {table}: {object} {what}")]
    Checkpoint {
        table: String,
        object: String,
        what: &'static str,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// Another writer committed a `txn` for one of this batch's Kafka partitions after the
    /// version this writer last validated: the partition moved, and the batch was not committed.
    #[error(
        "Delta table {table}: Kafka partition(s) {app_ids} were committed by another writer after version {version}, which this writer last validated; they were taken over, and this batch was refused (not committed)"
    )]
    TakenOver {
        table: String,
        app_ids: String,
        version: u64,
    },
    /// The table this writer opened is gone or was replaced (its log no longer has the version
    /// the writer holds): nothing was committed.
    #[error(
        "the Delta table {table} was deleted or replaced while this writer used it (its log no longer holds version {version}); nothing was committed; stop every writer and check the lake"
    )]
    TableGone { table: String, version: u64 },
    /// The table exists with another partition layout or other columns than this writer's.
    #[error(
        "Delta table {table} has {found} but this writer asked for {wanted}; one table has one layout (use another lake)"
    )]
    TableMismatch {
        table: String,
        found: String,
        wanted: String,
    },
}
