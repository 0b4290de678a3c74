//! What a Delta table's log says about it, read without creating anything: its version, its
//! columns (with their Delta types) and its partition columns. The catalog registers the lake's
//! tables in Glue from this.

use url::Url;

use super::read::exists;
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

/// Reads the latest version of the Delta table at `url` (see [`super::read::table_url`]); None
/// when there is no table there (no `_delta_log`). A local folder is never created.
pub async fn describe_table(url: &Url) -> Result<Option<TableDescription>, LakeError> {
    if !exists(url).await? {
        return Ok(None);
    }
    let name = url.to_string();
    let mut table = table_at(url).await?;
    super::read::load(&mut table, &name).await?;
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
