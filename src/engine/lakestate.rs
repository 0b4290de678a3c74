//! Which lake state a local query saw: the data files listed (count, newest write) and the
//! committed Kafka offsets (`_stocklake/offsets/<topic>/<partition>.json`); and [`AsOfStore`],
//! an object store view that hides files written after a moment, to pin the local engine to
//! the files that existed when an Athena query ran.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use serde::Serialize;

/// One Kafka partition's committed position in the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

/// The lake as the local engine saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LakeState {
    pub lake: String,
    /// Data files of the table the engine listed (after `as_of`).
    pub files: usize,
    /// Last-modified times of those files (RFC 3339), newest first; not serialised.
    #[serde(skip)]
    pub file_times: Vec<DateTime<Utc>>,
    /// The newest data file's write time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_file: Option<String>,
    pub offsets: Vec<CommittedOffset>,
    /// Files written after this moment were hidden from the engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Files hidden by `as_of`.
    #[serde(skip_serializing_if = "is_zero")]
    pub hidden_files: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl LakeState {
    /// Data files written after `t`.
    pub fn files_modified_after(&self, t: DateTime<Utc>) -> usize {
        self.file_times.iter().filter(|f| **f > t).count()
    }

    /// `5 files, newest 2026-…; offsets ticks/0=120 ticks/1=98`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: {} file{}",
            self.lake,
            self.files,
            if self.files == 1 { "" } else { "s" }
        );
        if let Some(n) = &self.newest_file {
            s.push_str(&format!(", newest written {n}"));
        }
        if let Some(a) = &self.as_of {
            s.push_str(&format!(
                ", as of {a} ({} newer file(s) hidden)",
                self.hidden_files
            ));
        }
        if self.offsets.is_empty() {
            s.push_str("; no committed offsets");
        } else {
            let o: Vec<String> = self
                .offsets
                .iter()
                .map(|o| format!("{}/{}={}", o.topic, o.partition, o.next_offset))
                .collect();
            s.push_str(&format!("; committed offsets {}", o.join(" ")));
        }
        s
    }
}

/// Lists the table's data files and reads the committed offsets of the lake at `prefix`.
pub async fn read_state(
    store: &dyn ObjectStore,
    prefix: &Path,
    lake: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<LakeState> {
    let table = prefix.clone().join(crate::lake::layout::TABLE_DIR);
    let metas: Vec<ObjectMeta> = store.list(Some(&table)).try_collect().await?;
    let mut state = LakeState {
        lake: lake.to_string(),
        as_of: as_of.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        ..LakeState::default()
    };
    for m in metas {
        if !m.location.as_ref().ends_with(".parquet") {
            continue;
        }
        if as_of.is_some_and(|t| m.last_modified > t) {
            state.hidden_files += 1;
            continue;
        }
        state.file_times.push(m.last_modified);
    }
    state.file_times.sort_by(|a, b| b.cmp(a));
    state.files = state.file_times.len();
    state.newest_file = state
        .file_times
        .first()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let offsets = prefix.clone().join("_stocklake").join("offsets");
    let metas: Vec<ObjectMeta> = match store.list(Some(&offsets)).try_collect().await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    for m in metas {
        let parts: Vec<&str> = m.location.as_ref().rsplit('/').take(2).collect();
        let (Some(file), Some(topic)) = (parts.first(), parts.get(1)) else {
            continue;
        };
        let Some(partition) = file
            .strip_suffix(".json")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let bytes = store.get(&m.location).await?.bytes().await?;
        #[derive(serde::Deserialize)]
        struct State {
            next_offset: i64,
        }
        if let Ok(s) = serde_json::from_slice::<State>(&bytes) {
            state.offsets.push(CommittedOffset {
                topic: topic.to_string(),
                partition,
                next_offset: s.next_offset,
            });
        }
    }
    state
        .offsets
        .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(state)
}

/// A read view of a store that lists only objects last modified at or before `as_of`.
#[derive(Debug)]
pub struct AsOfStore {
    inner: Arc<dyn ObjectStore>,
    as_of: DateTime<Utc>,
}

impl AsOfStore {
    pub fn new(inner: Arc<dyn ObjectStore>, as_of: DateTime<Utc>) -> AsOfStore {
        AsOfStore { inner, as_of }
    }
}

impl fmt::Display for AsOfStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AsOf({}, {})", self.inner, self.as_of)
    }
}

#[async_trait]
impl ObjectStore for AsOfStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let as_of = self.as_of;
        self.inner
            .list(prefix)
            .try_filter(move |m| futures::future::ready(m.last_modified <= as_of))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut r = self.inner.list_with_delimiter(prefix).await?;
        r.objects.retain(|m| m.last_modified <= self.as_of);
        Ok(r)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
