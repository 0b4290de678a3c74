//! The exactly-once commit protocol (docs/exactly-once.md), one state object per Kafka partition:
//! `<lake>/_stocklake/offsets/<topic>/<partition>.json`.
//!
//! A flush of Kafka offsets `first..=last` of one partition:
//! 1. writes the state with `pending` = the batch and every object it is about to write;
//! 2. writes the data files (names derived from topic, partition and `first`) and rejects;
//! 3. writes the state with `next_offset = last + 1` and no `pending` (the commit point);
//! 4. commits `last + 1` to Kafka (a convenience: the lake, not Kafka, is the truth).
//!
//! On assignment, [`recover`] deletes whatever a pending batch may have written, so a crash at
//! any moment leaves either the whole batch (state committed) or none of it.

use serde::{Deserialize, Serialize};

use super::error::LakeError;
use super::layout::STATE_DIR;
use super::store::Lake;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The first Kafka offset not yet in the lake.
    pub next_offset: i64,
    /// A batch being written: what to remove if it never committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingBatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    /// Objects (relative to the lake root) the batch writes.
    pub objects: Vec<String>,
}

/// The state object of one Kafka partition, relative to the lake root.
pub fn state_key(topic: &str, partition: i32) -> String {
    format!(
        "{STATE_DIR}/offsets/{}/{partition}.json",
        super::layout::escape_value(topic)
    )
}

pub async fn load(
    lake: &Lake,
    topic: &str,
    partition: i32,
) -> Result<Option<PartitionState>, LakeError> {
    let key = state_key(topic, partition);
    match lake.get_opt(&key).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LakeError::Format {
                key: lake.display(&key),
                message: e.to_string(),
            }),
    }
}

pub async fn store(
    lake: &Lake,
    topic: &str,
    partition: i32,
    state: &PartitionState,
) -> Result<(), LakeError> {
    let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
    lake.put(&state_key(topic, partition), bytes.into()).await
}

/// Rolls back a pending batch of this partition, if any, and returns the first offset the lake
/// does not hold (None: the lake has never seen this partition).
pub async fn recover(lake: &Lake, topic: &str, partition: i32) -> Result<Option<i64>, LakeError> {
    let Some(state) = load(lake, topic, partition).await? else {
        return Ok(None);
    };
    if let Some(pending) = &state.pending {
        tracing::info!(
            "{topic}/{partition}: rolling back uncommitted batch {}..={} ({} objects)",
            pending.first_offset,
            pending.last_offset,
            pending.objects.len()
        );
        for object in &pending.objects {
            lake.delete(object).await?;
        }
        if lake.is_local() {
            remove_staged_leftovers(lake, &pending.objects).await?;
        }
        store(
            lake,
            topic,
            partition,
            &PartitionState {
                next_offset: state.next_offset,
                pending: None,
            },
        )
        .await?;
    }
    Ok(Some(state.next_offset))
}

/// A local write that died mid-way can leave `<name>#<n>` staging files beside the target.
async fn remove_staged_leftovers(lake: &Lake, objects: &[String]) -> Result<(), LakeError> {
    let mut dirs: Vec<&str> = objects
        .iter()
        .filter_map(|o| o.rsplit_once('/').map(|(d, _)| d))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        for name in lake.list(dir).await? {
            if let Some((base, _)) = name.rsplit_once('#')
                && objects.iter().any(|o| o == base)
            {
                lake.delete(&name).await?;
            }
        }
    }
    Ok(())
}
