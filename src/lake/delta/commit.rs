//! Committing one flush into a Delta table (an `add` per file, a `txn` per Kafka partition), and
//! what to do when the store never confirmed the commit: S3 may have written the log entry and
//! then dropped the connection, or answered 500 after writing it. Every commit carries a unique
//! id (`stocklakeCommit` in its `commitInfo`); after a failed attempt the log is searched for
//! it, so a commit that landed is taken as done (never written twice) and one that did not is
//! tried again (never lost). The search also tells our own commit from another writer's: the
//! conflict check of a retry that meets our own landed commit sees "our" `txn` in it.

use std::collections::HashMap;
use std::time::Duration;

use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, OutputMode};
use deltalake::{DeltaTable, DeltaTableError};
use object_store::ObjectStoreExt as _;
use object_store::path::Path;

use super::{AppTxn, COMMIT_RETRIES, DataFile, TicksTable, delta_err, writer_id};
use crate::lake::LakeError;

/// Attempts of a commit whose write failed without a clear answer (a dropped connection, a
/// timeout, a 5xx after the store's own retries); each new attempt comes after a search of the
/// log found that the previous one did not land.
const UNCONFIRMED_ATTEMPTS: u32 = 4;

/// How many log entries after the base version the search reads at most.
const SEARCH_LIMIT: u64 = 1000;

/// The `commitInfo` key of a commit's unique id.
pub(super) const COMMIT_ID_KEY: &str = "stocklakeCommit";

/// A new commit id (see [`COMMIT_ID_KEY`]).
pub(super) fn commit_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The version after `base` of `table` (named `name`) whose `commitInfo` has the id `id`, if
/// its log has one: a commit whose answer was lost may be in the log all the same.
pub(super) async fn find_commit(
    table: &DeltaTable,
    name: &str,
    base: u64,
    id: &str,
) -> Result<Option<u64>, LakeError> {
    let store = table.object_store();
    for version in base + 1..=base + SEARCH_LIMIT {
        let path = Path::from(format!("_delta_log/{version:020}.json"));
        let bytes = match store.get(&path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => {
                return Err(LakeError::Store {
                    key: format!("{name}{path}"),
                    source,
                });
            }
        };
        if has_commit_id(&bytes, id) {
            return Ok(Some(version));
        }
    }
    Ok(None)
}

impl TicksTable {
    /// Records one flush as ONE commit: an `add` per file and a `txn` per Kafka partition,
    /// against the version this handle holds. Commits of other writers made since then are
    /// accepted unless one of them has a `txn` of one of `txns`' app ids: then nothing is
    /// committed and the error is [`LakeError::TakenOver`]. Returns the new version, which this
    /// handle then holds. A commit the store did not confirm is looked for in the log before
    /// it is tried again (see the module's text).
    pub async fn commit(&mut self, files: &[DataFile], txns: &[AppTxn]) -> Result<u64, LakeError> {
        let id = commit_id();
        let base = self.version();
        self.check_present(base).await?;
        let mut attempt = 1;
        loop {
            let error = match self.commit_once(files, txns, &id).await {
                Ok(version) => return Ok(version),
                Err(e) => e,
            };
            let found = if may_have_landed(&error) {
                find_commit(&self.table, &self.name, base, &id).await
            } else {
                Ok(None)
            };
            match found {
                Ok(Some(version)) => {
                    tracing::warn!(
                        "{}: the commit's answer was lost ({}), but the log holds it as version \
                         {version}",
                        self.name,
                        crate::report::chain(&error)
                    );
                    self.table
                        .update_incremental(Some(version))
                        .await
                        .map_err(delta_err(&self.name))?;
                    return Ok(version);
                }
                Ok(None) => {}
                Err(search) => {
                    tracing::info!(
                        "{}: cannot tell whether the failed commit landed: {}",
                        self.name,
                        crate::report::chain(&search)
                    );
                    return Err(self.commit_error(error, base));
                }
            }
            match error {
                DeltaTableError::Transaction {
                    source:
                        TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
                } => {
                    return Err(LakeError::TakenOver {
                        table: self.name.clone(),
                        app_ids: txns
                            .iter()
                            .map(|t| t.app_id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        version: base,
                    });
                }
                e if unconfirmed(&e) && attempt < UNCONFIRMED_ATTEMPTS => {
                    let wait = Duration::from_millis(250 << attempt);
                    tracing::warn!(
                        "{}: commit attempt {attempt} failed and did not land ({}); trying \
                         again in {wait:?}",
                        self.name,
                        crate::report::chain(&e)
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                // The table may have gone between the check and the commit: say so if it did.
                e => {
                    return Err(match self.check_present(base).await {
                        Err(gone @ LakeError::TableGone { .. }) => gone,
                        _ => self.commit_error(e, base),
                    });
                }
            }
        }
    }

    /// A failed commit as the lake's error: a failed request of the store names the log entry
    /// (deltalake says "Failed to read delta log object" for a failed write too).
    fn commit_error(&self, e: DeltaTableError, base: u64) -> LakeError {
        match e {
            DeltaTableError::ObjectStore { source }
            | DeltaTableError::Transaction {
                source: TransactionError::ObjectStore { source },
            } => LakeError::Store {
                key: format!("{}_delta_log/ (the commit after version {base})", self.name),
                source,
            },
            e => delta_err(&self.name)(e),
        }
    }

    /// One attempt: deltalake's commit (put-if-absent of the next log entry, with its own
    /// conflict checks and retries against other writers' commits).
    async fn commit_once(
        &mut self,
        files: &[DataFile],
        txns: &[AppTxn],
        id: &str,
    ) -> Result<u64, DeltaTableError> {
        let now = chrono::Utc::now().timestamp_millis();
        let actions = files.iter().map(|f| add(f, now)).collect();
        let properties = CommitProperties::default()
            .with_application_transactions(
                txns.iter()
                    .map(|t| Transaction::new_with_last_update(&t.app_id, t.version, Some(now)))
                    .collect(),
            )
            .with_metadata([
                ("stocklakeWriter".to_string(), writer_id().into()),
                (COMMIT_ID_KEY.to_string(), id.into()),
            ])
            .with_max_retries(COMMIT_RETRIES)
            .with_create_checkpoint(true)
            .with_cleanup_expired_logs(Some(false));
        let operation = DeltaOperation::StreamingUpdate {
            output_mode: OutputMode::Append,
            query_id: "stocklake".into(),
            epoch_id: now,
        };
        let state = self.table.snapshot()?;
        let done = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(state), self.table.log_store(), operation)
            .await?;
        self.table.state = Some(done.snapshot());
        Ok(done.version())
    }

    /// Refuses to commit into a table that was deleted or replaced since this handle loaded it:
    /// the log entry of the version this handle holds must still be there (or, after log
    /// clean-up, a checkpoint). Without this, a commit would write a lone log entry into an
    /// empty folder and readers would find no table.
    async fn check_present(&self, base: u64) -> Result<(), LakeError> {
        let store = self.table.object_store();
        let entry = Path::from(format!("_delta_log/{base:020}.json"));
        let checkpoint = Path::from("_delta_log/_last_checkpoint");
        for path in [entry, checkpoint] {
            match store.head(&path).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(LakeError::Store {
                        key: format!("{}{path}", self.name),
                        source,
                    });
                }
            }
        }
        Err(LakeError::TableGone {
            table: self.name.clone(),
            version: base,
        })
    }
}

/// The `add` action of a data file.
fn add(f: &DataFile, now: i64) -> Action {
    Action::Add(Add {
        path: f.path.clone(),
        partition_values: f
            .partition_values
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect::<HashMap<_, _>>(),
        size: f.size as i64,
        modification_time: now,
        data_change: true,
        stats: Some(
            f.stats
                .clone()
                .unwrap_or_else(|| format!("{{\"numRecords\":{}}}", f.rows)),
        ),
        ..Default::default()
    })
}

/// Whether a log entry's `commitInfo` carries the commit id `id`.
fn has_commit_id(entry: &[u8], id: &str) -> bool {
    String::from_utf8_lossy(entry).lines().any(|line| {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|action| {
            action
                .get("commitInfo")
                .and_then(|info| info.get(COMMIT_ID_KEY))
                .and_then(serde_json::Value::as_str)
                == Some(id)
        })
    })
}

/// Whether a failed commit may be in the log all the same: not when deltalake ran out of
/// attempts (each one met a version already taken, a definite "not written").
pub(super) fn may_have_landed(e: &DeltaTableError) -> bool {
    !matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::MaxCommitAttempts(_)
        }
    )
}

/// Whether a failed commit may have failed for want of an answer (the store's request failed:
/// a dropped connection, a timeout, 5xx answers until the retries ran out) rather than for a
/// reason a new attempt cannot change.
fn unconfirmed(e: &DeltaTableError) -> bool {
    let store_error = match e {
        DeltaTableError::ObjectStore { source } => source,
        DeltaTableError::Transaction {
            source: TransactionError::ObjectStore { source },
        } => source,
        _ => return false,
    };
    matches!(store_error, object_store::Error::Generic { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_found_by_its_id_only() {
        let entry = concat!(
            "{\"txn\":{\"appId\":\"stocklake:t:0\",\"version\":9}}\n",
            "{\"commitInfo\":{\"timestamp\":1,\"stocklakeCommit\":\"abc\",\"stocklakeWriter\":\"h:1\"}}\n",
            "{\"add\":{\"path\":\"stocklakeCommit-abc.parquet\"}}\n"
        );
        assert!(has_commit_id(entry.as_bytes(), "abc"));
        assert!(!has_commit_id(entry.as_bytes(), "abd"));
        assert!(!has_commit_id(b"not json", "abc"));
    }

    #[test]
    fn only_failed_requests_are_unconfirmed() {
        let generic = || object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        };
        assert!(unconfirmed(&DeltaTableError::ObjectStore {
            source: generic()
        }));
        assert!(unconfirmed(&DeltaTableError::Transaction {
            source: TransactionError::ObjectStore { source: generic() }
        }));
        let denied = object_store::Error::PermissionDenied {
            path: "x".into(),
            source: "403".into(),
        };
        assert!(!unconfirmed(&DeltaTableError::ObjectStore {
            source: denied
        }));
        assert!(!unconfirmed(&DeltaTableError::Transaction {
            source: TransactionError::MaxCommitAttempts(15)
        }));
    }
}
