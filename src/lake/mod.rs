//! The lake: object store from a URL, partition layout and escaping, the Parquet writer profile,
//! the exactly-once commit protocol (docs/exactly-once.md) and quarantined events.

pub mod commit;
pub mod delta;
pub mod error;
pub mod layout;
pub mod rejects;
pub mod store;
pub mod upgrade;
pub mod writer;

pub use error::LakeError;
pub use layout::{PartitionKey, TableLayout};
pub use store::{Lake, lake_location};

/// The table's saved layout, if any writer has saved one.
pub async fn load_layout(lake: &Lake) -> Result<Option<TableLayout>, LakeError> {
    match lake.get_opt(layout::LAYOUT_FILE).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LakeError::Format {
                key: lake.display(layout::LAYOUT_FILE),
                message: e.to_string(),
            }),
    }
}

/// The layout a writer uses: the saved one, which `wanted` must match when given; or `wanted`
/// (else the default), saved for readers.
pub async fn ensure_layout(
    lake: &Lake,
    wanted: Option<TableLayout>,
) -> Result<TableLayout, LakeError> {
    match (load_layout(lake).await?, wanted) {
        (Some(saved), Some(w)) if saved != w => Err(LakeError::Format {
            key: lake.display(layout::LAYOUT_FILE),
            message: format!(
                "the table is partitioned by {} but --partition-by asks for {}; one table has one layout (use another lake)",
                describe(&saved),
                describe(&w)
            ),
        }),
        (Some(saved), _) => Ok(saved),
        (None, wanted) => {
            let layout = wanted.unwrap_or_default();
            let bytes = serde_json::to_vec_pretty(&layout).expect("layout serialises");
            lake.put(layout::LAYOUT_FILE, bytes.into()).await?;
            Ok(layout)
        }
    }
}

fn describe(l: &TableLayout) -> String {
    l.partition_by
        .iter()
        .map(|k| k.column())
        .collect::<Vec<_>>()
        .join(",")
}
