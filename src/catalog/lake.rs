//! Reading the lake for the catalog: its layout file and the partitions its objects sit in.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::CatalogError;
use crate::aws::LakeRoot;
use crate::lake::layout::{LAYOUT_FILE, TABLE_DIR, unescape_value};
use crate::lake::{PartitionKey, TableLayout};

/// The lake's layout from `_stocklake/table.json`, or the default when the file is missing.
pub async fn read_layout(lake: &LakeRoot) -> Result<TableLayout, CatalogError> {
    let path = Path::from(format!("{}/{LAYOUT_FILE}", lake.root).trim_start_matches('/'));
    let err = |message: String| CatalogError::Lake {
        url: lake.location(LAYOUT_FILE),
        message,
    };
    match lake.store.get(&path).await {
        Ok(r) => {
            let bytes = r.bytes().await.map_err(|e| err(e.to_string()))?;
            serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(TableLayout::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// The partitions the lake holds: UNESCAPED values → escaped directory (relative to `ticks/`,
/// with a trailing slash). Objects outside a well-formed `key=value/…` directory are ignored.
pub async fn lake_partitions(
    lake: &LakeRoot,
    layout: &TableLayout,
) -> Result<BTreeMap<Vec<String>, String>, CatalogError> {
    let table = Path::from(format!("{}/{TABLE_DIR}", lake.root).trim_start_matches('/'));
    let prefix_len = table.parts().count();
    let mut listing = lake.store.list(Some(&table));
    let mut out = BTreeMap::new();
    while let Some(meta) = listing.try_next().await.map_err(|e| CatalogError::Lake {
        url: lake.location(TABLE_DIR),
        message: e.to_string(),
    })? {
        let parts: Vec<String> = meta
            .location
            .parts()
            .skip(prefix_len)
            .map(|p| p.as_ref().to_string())
            .collect();
        if let Some((values, dir)) = partition_of(&parts, &layout.partition_by) {
            out.entry(values).or_insert(dir);
        }
    }
    Ok(out)
}

/// The partition of an object whose path below `ticks/` is `parts`, if it is a data file.
fn partition_of(parts: &[String], keys: &[PartitionKey]) -> Option<(Vec<String>, String)> {
    let file = parts.last()?;
    if parts.len() != keys.len() + 1 || file.starts_with('_') || file.starts_with('.') {
        return None;
    }
    let mut values = Vec::with_capacity(keys.len());
    let mut dir = String::new();
    for (part, key) in parts.iter().zip(keys) {
        let (k, v) = part.split_once('=')?;
        if k != key.column() {
            return None;
        }
        values.push(unescape_value(v)?);
        dir.push_str(part);
        dir.push('/');
    }
    Some((values, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_are_parsed_and_unescaped() {
        let keys = [PartitionKey::Symbol, PartitionKey::Year];
        let p = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            partition_of(&p("symbol=A%2FB/year=2013/part-x.parquet"), &keys),
            Some((
                vec!["A/B".to_string(), "2013".to_string()],
                "symbol=A%2FB/year=2013/".to_string()
            ))
        );
        assert_eq!(partition_of(&p("symbol=A/part.parquet"), &keys), None);
        assert_eq!(partition_of(&p("year=1/symbol=A/p"), &keys), None);
        assert_eq!(partition_of(&p("symbol=A/year=1/_tmp"), &keys), None);
        assert_eq!(partition_of(&p("symbol=%ZZ/year=1/p"), &keys), None);
    }
}
