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
    #[error("{path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Data { location: String, message: String },
}
