//! What a Delta table's log says about it, read without creating anything: its version, its
//! columns (with their Delta types) and its partition columns. The catalog registers the lake's
//! tables in Glue from this.

use url::Url;

use super::{delta_err, table_at};
use crate::lake::error::LakeError;

/// A Delta table as its latest log version describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDescription {
    /// The table's URL, with a trailing slash.
    pub url: Url,
    /// The latest version of the log.
    pub version: u64,
    /// Every column in schema order: name and Delta type (`long`, `timestamp`, `decimal(9,2)`,
    /// `array<string>`, …), partition columns included.
    pub columns: Vec<(String, String)>,
    /// The partition columns, in order.
    pub partition_columns: Vec<String>,
}

/// The URL of the table in folder `dir` under a lake (`<lake>/<dir>/`), from a folder,
/// `file://` or `s3://` URL.
pub fn table_url(lake: &str, dir: &str) -> Result<Url, LakeError> {
    let (_, root) = crate::lake::lake_location(lake)?;
    root.join(&format!("{dir}/")).map_err(|e| LakeError::Url {
        url: lake.to_string(),
        message: e.to_string(),
    })
}

/// Reads the latest version of the Delta table at `url`; None when there is no table there
/// (no `_delta_log`). A local folder that does not exist is not created.
pub async fn describe_table(url: &Url) -> Result<Option<TableDescription>, LakeError> {
    let name = url.to_string();
    if url.scheme() == "file" {
        let dir = url.to_file_path().map_err(|()| LakeError::Url {
            url: name.clone(),
            message: "not a local path".into(),
        })?;
        if !dir.join("_delta_log").is_dir() {
            return Ok(None);
        }
    }
    let mut table = table_at(url).await?;
    if !table
        .verify_deltatable_existence()
        .await
        .map_err(delta_err(&name))?
    {
        return Ok(None);
    }
    table.load().await.map_err(delta_err(&name))?;
    let state = table.snapshot().map_err(delta_err(&name))?;
    let columns = state
        .schema()
        .fields()
        .map(|f| (f.name().to_string(), f.data_type().to_string()))
        .collect();
    Ok(Some(TableDescription {
        url: url.clone(),
        version: table.version().unwrap_or_default(),
        columns,
        partition_columns: state.metadata().partition_columns().to_vec(),
    }))
}
