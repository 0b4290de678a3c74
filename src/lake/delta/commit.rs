//! Committing one flush into a Delta table (an `add` per file, a `txn` per Kafka partition), and
//! what to do when the store never confirmed the commit: S3 may have written the log entry and
//! then dropped the connection, or answered 500 after writing it. Every commit carries a unique
//! id (`stocklakeCommit` in its `commitInfo`); after a failed attempt the log is searched for
//! it, so a commit that landed is taken as done (never written twice) and one that did not is
//! tried again (never lost). The search also tells our own commit from another writer's: the
//! conflict check of a retry that meets our own landed commit sees "our" `txn` in it.
//!
//! The log entry is written here, put-if-absent through deltalake's log store, not through
//! deltalake's commit builder: that one needs the table's loaded state (every active file) and
//! keeps it up to date after each commit, which made a long-running consumer grow with the
//! table (issue 16's soak). The conflict rule is the one the builder applied to a streaming
//! append: other writers' commits in between are read, and only a `txn` of one of our
//! partitions (taken over) or a change of the table's metadata or protocol refuses the commit.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use deltalake::kernel::transaction::TransactionError;
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use serde_json::json;

use super::checkpoint::{HINT, entry_path, read_object};
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
        let Some(bytes) = read_object(&store, name, &entry_path(version)).await? else {
            return Ok(None);
        };
        if has_commit_id(&bytes, id) {
            return Ok(Some(version));
        }
    }
    Ok(None)
}

/// Why an attempt ended without a commit.
enum Failure {
    /// Final: nothing was committed and a new attempt cannot change that.
    Refused(LakeError),
    /// The store's request failed; the entry may or may not be in the log.
    Store(DeltaTableError),
}

/// What a log entry written by someone else means for our commit.
enum Verdict {
    /// It is our own commit, landed by an earlier attempt whose answer was lost.
    Ours,
    /// It holds a `txn` of one of our app ids: the partitions were taken over.
    TakenOver,
    /// It changed the table's metadata or protocol (what it says).
    Changed(&'static str),
    /// Another writer's commit that does not touch ours.
    Fine,
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
        let entry = entry(files, txns, &id, chrono::Utc::now().timestamp_millis());
        let mut attempt = 1;
        loop {
            let error = match self.commit_once(&entry, txns, &id, base).await {
                Ok(version) => return Ok(self.committed(version).await),
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Store(e)) => e,
            };
            match find_commit(&self.table, &self.name, base, &id).await {
                Ok(Some(version)) => {
                    tracing::warn!(
                        "{}: the commit's answer was lost ({}), but the log holds it as version \
                         {version}",
                        self.name,
                        crate::report::chain(&error)
                    );
                    return Ok(self.committed(version).await);
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
            if unconfirmed(&error) && attempt < UNCONFIRMED_ATTEMPTS {
                let wait = Duration::from_millis(250 << attempt);
                tracing::warn!(
                    "{}: commit attempt {attempt} failed and did not land ({}); trying again in \
                     {wait:?}",
                    self.name,
                    crate::report::chain(&error)
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            // The table may have gone between the check and the commit: say so if it did.
            return Err(match self.check_present(base).await {
                Err(gone @ LakeError::TableGone { .. }) => gone,
                _ => self.commit_error(error, base),
            });
        }
    }

    /// This handle now holds `version`, its commit: the checkpoint follows when one is due.
    async fn committed(&mut self, version: u64) -> u64 {
        self.version = version;
        self.after_commit().await;
        version
    }

    /// A failed commit as the lake's error: a failed request of the store names the log entry.
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

    /// One attempt: the log entry put-if-absent as the version after `base`; when another
    /// writer has it, every entry up to the newest is checked for a conflict (and for our own
    /// commit, landed by an earlier attempt), and the entry goes after the newest.
    async fn commit_once(
        &self,
        entry: &Bytes,
        txns: &[AppTxn],
        id: &str,
        base: u64,
    ) -> Result<u64, Failure> {
        let log_store = self.table.log_store();
        let ours: HashSet<&str> = txns.iter().map(|t| t.app_id.as_str()).collect();
        let mut version = base + 1;
        for _ in 0..=COMMIT_RETRIES {
            let written = log_store
                .write_commit_entry(
                    version,
                    CommitOrBytes::LogBytes(entry.clone()),
                    uuid::Uuid::new_v4(),
                )
                .await;
            match written {
                Ok(()) => return Ok(version),
                Err(TransactionError::VersionAlreadyExists(_)) => {}
                Err(e) => return Err(Failure::Store(e.into())),
            }
            let latest = log_store
                .get_latest_version(version)
                .await
                .map_err(Failure::Store)?;
            let mut entries = futures::stream::iter(version..=latest)
                .map(|v| {
                    let log_store = &log_store;
                    async move { (v, log_store.read_commit_entry(v).await) }
                })
                .buffered(8);
            while let Some((v, read)) = entries.next().await {
                let Some(other) = read.map_err(Failure::Store)? else {
                    return Err(Failure::Refused(LakeError::Data {
                        location: format!("{}{}", self.name, entry_path(v)),
                        message: format!(
                            "the log entry of version {v} is missing while version {latest} \
                             exists; nothing was committed"
                        ),
                    }));
                };
                match judge(&other, id, &ours) {
                    Verdict::Ours => {
                        // An earlier send landed and its answer never came; the store (or
                        // its client, resending) then found the version taken by it.
                        tracing::warn!(
                            "{}: the commit's answer was lost (version {version} was taken \
                             when it was sent again), but the log holds it as version {v}",
                            self.name
                        );
                        return Ok(v);
                    }
                    Verdict::Fine => {}
                    Verdict::TakenOver => {
                        return Err(Failure::Refused(LakeError::TakenOver {
                            table: self.name.clone(),
                            app_ids: txns
                                .iter()
                                .map(|t| t.app_id.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            version: base,
                        }));
                    }
                    Verdict::Changed(what) => {
                        return Err(Failure::Refused(LakeError::Data {
                            location: self.name.clone(),
                            message: format!(
                                "version {v} changed the table's {what} while this writer was \
                                 committing; nothing was committed; restart the writer"
                            ),
                        }));
                    }
                }
            }
            version = latest + 1;
        }
        Err(Failure::Refused(LakeError::Data {
            location: self.name.clone(),
            message: format!(
                "{} attempts in a row met newer commits of other writers; nothing was committed",
                COMMIT_RETRIES + 1
            ),
        }))
    }

    /// Refuses to commit into a table that was deleted or replaced since this handle loaded it:
    /// the log entry of the version this handle holds must still be there (or, after log
    /// clean-up, a checkpoint). Without this, a commit would write a lone log entry into an
    /// empty folder and readers would find no table.
    async fn check_present(&self, base: u64) -> Result<(), LakeError> {
        let store = self.table.object_store();
        for path in [entry_path(base), Path::from(HINT)] {
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

/// The log entry of a flush: its `commitInfo` (with the commit id), a `txn` per Kafka
/// partition, an `add` per file, one JSON action a line as the protocol has it.
fn entry(files: &[DataFile], txns: &[AppTxn], id: &str, now: i64) -> Bytes {
    let mut out = Vec::with_capacity(512 + files.len() * 640);
    let mut line = |value: serde_json::Value| {
        serde_json::to_writer(&mut out, &value).expect("JSON to memory");
        out.push(b'\n');
    };
    line(json!({"commitInfo": {
        "timestamp": now,
        "operation": "STREAMING UPDATE",
        "operationParameters": {
            "outputMode": "Append",
            "queryId": "stocklake",
            "epochId": now.to_string(),
        },
        "isBlindAppend": true,
        "engineInfo": concat!("stocklake/", env!("CARGO_PKG_VERSION")),
        "clientVersion": concat!("stocklake.", env!("CARGO_PKG_VERSION")),
        "stocklakeWriter": writer_id(),
        COMMIT_ID_KEY: id,
    }}));
    for t in txns {
        let txn = Transaction::new_with_last_update(&t.app_id, t.version, Some(now));
        line(serde_json::to_value(Action::Txn(txn)).expect("a txn action as JSON"));
    }
    // deltalake's own serialisation of `add`: it percent-encodes the path as the protocol
    // wants (`symbol=x y` is `symbol=x%20y` in the log).
    for f in files {
        line(serde_json::to_value(add(f, now)).expect("an add action as JSON"));
    }
    Bytes::from(out)
}

/// What another writer's log entry means for a commit with id `id` of the app ids `ours`.
fn judge(entry: &[u8], id: &str, ours: &HashSet<&str>) -> Verdict {
    let mut verdict = Verdict::Fine;
    for line in String::from_utf8_lossy(entry).lines() {
        let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(info) = action.get("commitInfo") {
            if info.get(COMMIT_ID_KEY).and_then(serde_json::Value::as_str) == Some(id) {
                return Verdict::Ours;
            }
        } else if let Some(txn) = action.get("txn") {
            if txn
                .get("appId")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|app| ours.contains(app))
            {
                verdict = Verdict::TakenOver;
            }
        } else if action.get("metaData").is_some() {
            if matches!(verdict, Verdict::Fine) {
                verdict = Verdict::Changed("metadata");
            }
        } else if action.get("protocol").is_some() && matches!(verdict, Verdict::Fine) {
            verdict = Verdict::Changed("protocol");
        }
    }
    verdict
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
    matches!(judge(entry, id, &HashSet::new()), Verdict::Ours)
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
    fn another_writers_entry_is_judged_by_its_commit_id_txns_and_metadata() {
        let ours: HashSet<&str> = ["stocklake:t:0", "stocklake:t:1"].into_iter().collect();
        let entry = |lines: &[&str]| lines.join("\n").into_bytes();
        let info = |id: &str| format!("{{\"commitInfo\":{{\"stocklakeCommit\":\"{id}\"}}}}");
        let txn = |app: &str| format!("{{\"txn\":{{\"appId\":\"{app}\",\"version\":3}}}}");
        let add = "{\"add\":{\"path\":\"stocklake:t:0.parquet\"}}";
        let judged = |e: Vec<u8>| match judge(&e, "abc", &ours) {
            Verdict::Ours => "ours",
            Verdict::TakenOver => "taken over",
            Verdict::Changed(what) => what,
            Verdict::Fine => "fine",
        };
        // Our own commit carries our txns: it is ours, not a take-over.
        assert_eq!(
            judged(entry(&[&info("abc"), &txn("stocklake:t:0")])),
            "ours"
        );
        assert_eq!(
            judged(entry(&[&info("xyz"), &txn("stocklake:t:1")])),
            "taken over"
        );
        // Other partitions' offsets and files are no conflict, whatever their paths say.
        assert_eq!(
            judged(entry(&[&info("xyz"), &txn("stocklake:t:2"), add])),
            "fine"
        );
        assert_eq!(
            judged(entry(&[&info("xyz"), "{\"metaData\":{\"id\":\"m\"}}"])),
            "metadata"
        );
        assert_eq!(
            judged(entry(&[
                &info("xyz"),
                "{\"protocol\":{\"minReaderVersion\":3}}"
            ])),
            "protocol"
        );
        // A take-over wins over a metadata change in the same entry.
        assert_eq!(
            judged(entry(&[
                "{\"metaData\":{\"id\":\"m\"}}",
                &txn("stocklake:t:0")
            ])),
            "taken over"
        );
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
