//! Mirror an S3 lake into a local folder, incrementally: objects that are new or changed (size or
//! ETag differ from what the last sync copied) are downloaded, local files no longer upstream are
//! deleted. Safe to interrupt and rerun:
//! - every object is written to `<name>.stocklake-part` and renamed into place when complete,
//!   so a half-written file never has the final name; leftovers are removed by the next run;
//! - the manifest `<dest>/.stocklake-sync.json` (key → size, ETag) is written atomically
//!   (temp file + rename) every few files and at the end; an object copied but not yet in the
//!   manifest is copied again by the next run (wasted work, never a wrong file);
//! - a Delta table is never torn: data files are copied before any `_delta_log/` entry, commits
//!   (`<version>.json`) in version order, then checkpoints and other log files, and
//!   `_delta_log/_last_checkpoint` last ([`copy_order`]); files gone upstream (vacuumed data,
//!   expired log entries) are deleted only after a complete run. An interrupted mirror thus
//!   opens at an older complete version: every file its log names is there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// The manifest's file name in the destination folder.
pub const MANIFEST: &str = ".stocklake-sync.json";
/// Suffix of files being downloaded.
pub const PART_SUFFIX: &str = ".stocklake-part";
/// Save the manifest after this many copied files.
const SAVE_EVERY: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
    #[error(
        "{dest} is not empty and was not created by `stocklake sync`; pass --force to mirror \
         into it anyway (files that are not upstream will be deleted)"
    )]
    NotAMirror { dest: PathBuf },
    #[error("{dest} mirrors {previous}, not {source_url}; pass --force to switch")]
    OtherSource {
        dest: PathBuf,
        previous: String,
        source_url: String,
    },
    #[error("interrupted; run the same command again to finish (what was copied is kept)")]
    Interrupted,
}

impl SyncError {
    /// The command line asked for something `sync` will not do without `--force`.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SyncError::NotAMirror { .. } | SyncError::OtherSource { .. }
        )
    }
}

fn io(path: &FsPath) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the last sync copied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    source: String,
    objects: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    etag: Option<String>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Objects upstream.
    pub listed: usize,
    pub copied: usize,
    pub copied_bytes: u64,
    pub unchanged: usize,
    pub deleted: usize,
    /// Keys that cannot be a local file name (`..`, empty segments) and were left out.
    pub skipped: Vec<String>,
    /// Empty objects (S3 "folder" markers), left out.
    pub empty: Vec<String>,
    /// The stop flag ended the run early; rerun to finish.
    pub interrupted: bool,
}

/// Progress events for a progress bar.
#[derive(Debug, Clone)]
pub enum SyncEvent<'a> {
    /// The listing is done: this many objects (bytes) will be copied.
    Plan { files: usize, bytes: u64 },
    /// One object was copied.
    Copied { key: &'a str, bytes: u64 },
}

/// Mirrors `prefix` of `store` (whose URL is `source_url`, for messages and the manifest) into
/// `dest`. `stop` is checked between objects. `force` allows a non-empty, unknown `dest`.
pub async fn sync(
    store: Arc<dyn ObjectStore>,
    prefix: &Path,
    source_url: &str,
    dest: &FsPath,
    force: bool,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(SyncEvent<'_>),
) -> Result<SyncReport, SyncError> {
    tokio::fs::create_dir_all(dest).await.map_err(io(dest))?;
    let manifest_path = dest.join(MANIFEST);
    let mut manifest = match tokio::fs::read(&manifest_path).await {
        Ok(bytes) => serde_json::from_slice::<Manifest>(&bytes).unwrap_or_default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !force && !local_files(dest)?.is_empty() {
                return Err(SyncError::NotAMirror {
                    dest: dest.to_path_buf(),
                });
            }
            Manifest::default()
        }
        Err(e) => return Err(io(&manifest_path)(e)),
    };
    if !manifest.source.is_empty() && manifest.source != source_url && !force {
        return Err(SyncError::OtherSource {
            dest: dest.to_path_buf(),
            previous: manifest.source,
            source_url: source_url.to_string(),
        });
    }
    manifest.source = source_url.to_string();

    // Upstream, keyed by the path relative to the prefix.
    let remote_err = |e: object_store::Error| SyncError::Remote {
        url: source_url.to_string(),
        message: e.to_string(),
    };
    let skip = prefix.parts().count();
    let mut upstream: BTreeMap<String, (Entry, Path)> = BTreeMap::new();
    let mut report = SyncReport::default();
    let mut listing = store.list(Some(prefix));
    while let Some(meta) = listing.try_next().await.map_err(remote_err)? {
        let parts: Vec<String> = meta
            .location
            .parts()
            .skip(skip)
            .map(|p| p.as_ref().to_string())
            .collect();
        let rel = parts.join("/");
        let unsafe_name = parts.iter().any(|p| {
            p.is_empty() || p == "." || p == ".." || p.ends_with(PART_SUFFIX) || p == MANIFEST
        });
        if parts.is_empty() || unsafe_name {
            report.skipped.push(meta.location.to_string());
            continue;
        }
        // An empty object is no piece of a lake (Delta writes none) but may be what the S3
        // console's "Create folder" leaves (`prefix/`, listed without its '/'): as a local file
        // it would block the folder of the same name.
        if meta.size == 0 {
            report.empty.push(meta.location.to_string());
            continue;
        }
        let entry = Entry {
            size: meta.size,
            etag: meta.e_tag.clone(),
        };
        upstream.insert(rel, (entry, meta.location));
    }
    report.listed = upstream.len();

    // Leftovers of an interrupted run. Files deleted upstream go only after the copies: the
    // local log may still name them until the new log entries are in place.
    for rel in local_files(dest)? {
        if rel.ends_with(PART_SUFFIX) {
            let path = dest.join(&rel);
            tokio::fs::remove_file(&path).await.map_err(io(&path))?;
        }
    }
    manifest.objects.retain(|k, _| upstream.contains_key(k));

    // What to copy: unknown, changed, or missing/damaged locally.
    let mut todo = Vec::new();
    for (rel, (entry, location)) in &upstream {
        let local_size = std::fs::metadata(dest.join(rel)).ok().map(|m| m.len());
        if manifest.objects.get(rel) == Some(entry) && local_size == Some(entry.size) {
            report.unchanged += 1;
        } else {
            todo.push((rel, entry, location));
        }
    }
    todo.sort_by_cached_key(|(rel, _, _)| copy_order(rel));
    progress(SyncEvent::Plan {
        files: todo.len(),
        bytes: todo.iter().map(|(_, e, _)| e.size).sum(),
    });

    // The folder is a mirror from here on: a run that fails on its first download (S3 down)
    // leaves a `.stocklake-part` file behind, and the rerun must not take the folder for a
    // foreign one.
    save_manifest(&manifest, &manifest_path).await?;
    let mut since_save = 0;
    for (rel, entry, location) in todo {
        if stop.load(Ordering::SeqCst) {
            report.interrupted = true;
            break;
        }
        let target = dest.join(rel);
        if let Err(e) = download(&*store, location, &target, source_url).await {
            // What was copied stays known, so the rerun copies only the rest; the download's
            // error is the one to report either way.
            let _ = save_manifest(&manifest, &manifest_path).await;
            return Err(e);
        }
        manifest.objects.insert(rel.clone(), entry.clone());
        report.copied += 1;
        report.copied_bytes += entry.size;
        progress(SyncEvent::Copied {
            key: rel,
            bytes: entry.size,
        });
        since_save += 1;
        if since_save >= SAVE_EVERY {
            save_manifest(&manifest, &manifest_path).await?;
            since_save = 0;
        }
    }
    save_manifest(&manifest, &manifest_path).await?;
    if !report.interrupted {
        for rel in local_files(dest)? {
            if !upstream.contains_key(&rel) {
                let path = dest.join(&rel);
                tokio::fs::remove_file(&path).await.map_err(io(&path))?;
                report.deleted += 1;
            }
        }
        remove_empty_dirs(dest)?;
    }
    Ok(report)
}

/// The rank of a lake file in the copy order, so that a Delta table's log never names a file
/// the mirror lacks: `(class, table folder, version, path)` where class 0 is everything outside
/// `_delta_log/` (data files), 1 a commit `_delta_log/<version>.json` (by version), 2 any other
/// log file (checkpoints, `.crc`), 3 `_delta_log/_last_checkpoint`.
pub fn copy_order(rel: &str) -> (u8, String, u64, String) {
    let Some((table, log_file)) = rel
        .split_once("_delta_log/")
        .filter(|(t, _)| t.is_empty() || t.ends_with('/'))
    else {
        return (0, String::new(), 0, rel.to_string());
    };
    let commit = log_file
        .strip_suffix(".json")
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok());
    let (class, version) = match commit {
        Some(v) => (1, v),
        None if log_file == "_last_checkpoint" => (3, 0),
        None => (2, 0),
    };
    (class, table.to_string(), version, rel.to_string())
}

/// Downloads one object to `target` through a `.stocklake-part` file.
async fn download(
    store: &dyn ObjectStore,
    location: &Path,
    target: &FsPath,
    source_url: &str,
) -> Result<(), SyncError> {
    let remote_err = |e: object_store::Error| SyncError::Remote {
        url: format!("{source_url} ({location})"),
        message: e.to_string(),
    };
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io(parent))?;
    }
    let mut part_name = target.as_os_str().to_owned();
    part_name.push(PART_SUFFIX);
    let part = PathBuf::from(part_name);
    let mut file = tokio::fs::File::create(&part).await.map_err(io(&part))?;
    let mut stream = store.get(location).await.map_err(remote_err)?.into_stream();
    while let Some(chunk) = stream.try_next().await.map_err(remote_err)? {
        file.write_all(&chunk).await.map_err(io(&part))?;
    }
    file.sync_all().await.map_err(io(&part))?;
    drop(file);
    tokio::fs::rename(&part, target).await.map_err(io(target))
}

async fn save_manifest(m: &Manifest, path: &FsPath) -> Result<(), SyncError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| io(path)(e.into()))?;
    tokio::fs::write(&tmp, bytes).await.map_err(io(&tmp))?;
    tokio::fs::rename(&tmp, path).await.map_err(io(path))
}

/// Files below `dest` (relative, `/`-separated), without the manifest.
fn local_files(dest: &FsPath) -> Result<BTreeSet<String>, SyncError> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(io(&path))?;
            if ty.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dest) {
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel != MANIFEST && !rel.starts_with(&format!("{MANIFEST}.")) {
                    out.insert(rel);
                }
            }
        }
    }
    Ok(out)
}

/// Removes directories below `dest` that hold nothing (after deletions).
fn remove_empty_dirs(dest: &FsPath) -> Result<(), SyncError> {
    fn walk(dir: &FsPath, is_root: bool) -> Result<bool, SyncError> {
        let mut empty = true;
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            if entry.file_type().map_err(io(&path))?.is_dir() {
                if walk(&path, false)? {
                    std::fs::remove_dir(&path).map_err(io(&path))?;
                } else {
                    empty = false;
                }
            } else {
                empty = false;
            }
        }
        Ok(empty && !is_root)
    }
    walk(dest, true).map(|_| ())
}
