//! The lake's object store, opened from a URL: a bare path or `file://` URL (local folder) or
//! `s3://bucket/prefix` (any S3-compatible server, configured by aws-config's standard chain:
//! `AWS_ENDPOINT_URL`, `AWS_REGION`, keys, profiles; see `aws::s3_store`).

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use super::error::LakeError;
use url::Url;

/// An opened lake: the store and the root prefix inside it.
#[derive(Debug, Clone)]
pub struct Lake {
    pub store: Arc<dyn ObjectStore>,
    /// Root of the lake inside the store (empty for a local folder).
    pub root: Path,
    /// The lake as a URL (`file:///abs/path/` or `s3://bucket/prefix/`).
    pub url: url::Url,
    local: bool,
}

impl Lake {
    /// Opens the lake at `location`. A local folder is created when missing; an S3 bucket must
    /// exist (checked with one listing request).
    pub async fn open(location: &str) -> Result<Lake, LakeError> {
        let url_err = |message: String| LakeError::Url {
            url: location.to_string(),
            message,
        };
        if location.starts_with("s3://") || location.starts_with("s3a://") {
            let url = url::Url::parse(location).map_err(|e| url_err(e.to_string()))?;
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| url_err("no bucket name".into()))?
                .to_string();
            // One S3 client configuration for the whole tool: aws-config's standard chain.
            let config = crate::aws::sdk_config().await;
            let store =
                crate::aws::s3_store(&config, &bucket).map_err(|e| url_err(e.to_string()))?;
            let root =
                Path::parse(url.path().trim_matches('/')).map_err(|e| url_err(e.to_string()))?;
            if root.as_ref().is_empty() {
                return Err(url_err(BUCKET_ROOT.into()));
            }
            let lake = Lake {
                store,
                url: url::Url::parse(&format!(
                    "s3://{bucket}/{}{}",
                    root,
                    if root.as_ref().is_empty() { "" } else { "/" }
                ))
                .map_err(|e| url_err(e.to_string()))?,
                root,
                local: false,
            };
            lake.check_reachable(&bucket).await?;
            return Ok(lake);
        }
        let path = match location.strip_prefix("file://") {
            Some(p) => std::path::PathBuf::from(p),
            None if location.contains("://") => {
                return Err(url_err(
                    "only local paths, file:// and s3:// are supported".into(),
                ));
            }
            None => std::path::PathBuf::from(location),
        };
        std::fs::create_dir_all(&path)
            .map_err(|e| url_err(format!("cannot create the folder: {e}")))?;
        let abs = std::fs::canonicalize(&path).map_err(|e| url_err(e.to_string()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&abs)
            .map_err(|e| url_err(e.to_string()))?
            .with_automatic_cleanup(true);
        let url = url::Url::from_directory_path(&abs)
            .map_err(|_| url_err("not an absolute path".into()))?;
        Ok(Lake {
            store: Arc::new(store),
            root: Path::default(),
            url,
            local: true,
        })
    }

    async fn check_reachable(&self, bucket: &str) -> Result<(), LakeError> {
        let mut listing = self.store.list(Some(&self.root));
        match listing.try_next().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e, object_store::Error::NotFound { .. })
                    || e.to_string().contains("NoSuchBucket") =>
            {
                Err(LakeError::Url {
                    url: self.url.to_string(),
                    message: format!("bucket {bucket} does not exist (create it first)"),
                })
            }
            Err(source) => Err(LakeError::Store {
                key: self.url.to_string(),
                source,
            }),
        }
    }

    pub fn is_local(&self) -> bool {
        self.local
    }

    /// The file of `rel` on a local lake (its name on disk is the escaped text itself).
    pub fn local_path(&self, rel: &str) -> std::path::PathBuf {
        let mut path = self.url.to_file_path().unwrap_or_default();
        path.extend(rel.split('/').filter(|p| !p.is_empty()));
        path
    }

    /// The object path of `rel` (a `/`-separated path under the lake root whose parts are
    /// already escaped). On S3 the key is that text; on a local disk the file name is.
    pub fn path(&self, rel: &str) -> Path {
        let joined = std::iter::once(self.root.as_ref())
            .chain(rel.split('/'))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        // Our names hold only [A-Za-z0-9._-%], which parse takes as they are.
        Path::parse(&joined).unwrap_or_else(|_| Path::from(joined))
    }

    /// The text of `path` relative to the lake root, in the escaped form [`Lake::path`] takes.
    pub fn rel(&self, path: &Path) -> String {
        let parts: Vec<String> = path
            .prefix_match(&self.root)
            .map(|it| {
                // object_store 0.13 names local files by the raw text of their path parts,
                // as on S3: nothing to decode (decoding turned `A%2FB` into `A/B`).
                it.map(|p| p.as_ref().to_string()).collect()
            })
            .unwrap_or_default();
        parts.join("/")
    }

    /// A readable name of an object for messages.
    pub fn display(&self, rel: &str) -> String {
        format!("{}{rel}", self.url)
    }

    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&self.path(rel), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|source| LakeError::Store {
                key: self.display(rel),
                source,
            })
    }

    /// The object's bytes, or None when it does not exist.
    pub async fn get_opt(&self, rel: &str) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|source| LakeError::Store {
                    key: self.display(rel),
                    source,
                }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(LakeError::Store {
                key: self.display(rel),
                source,
            }),
        }
    }

    /// Deletes an object; a missing one is fine.
    pub async fn delete(&self, rel: &str) -> Result<(), LakeError> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(LakeError::Store {
                key: self.display(rel),
                source,
            }),
        }
    }

    /// Every object under `rel_prefix` (relative names), recursively.
    pub async fn list(&self, rel_prefix: &str) -> Result<Vec<String>, LakeError> {
        let prefix = self.path(rel_prefix);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                source => Err(LakeError::Store {
                    key: self.display(rel_prefix),
                    source,
                }),
            })?;
        Ok(objects.iter().map(|o| self.rel(&o.location)).collect())
    }
}

/// Where the lake at `url` is: the lake root's path inside its store, and the root as a URL
/// that ends with `/` (`file:///abs/dir/` or `s3://bucket/prefix/`). An S3 lake must be a
/// prefix inside its bucket, never the bucket root.
pub fn lake_location(url: &str) -> Result<(Path, Url), LakeError> {
    let bad = |message: String| LakeError::Url {
        url: url.to_string(),
        message,
    };
    let parsed = match Url::parse(url) {
        Ok(u) if u.scheme().len() > 1 => u,
        // A bare path (a one-letter "scheme" is a Windows drive letter).
        _ => {
            let abs = std::path::absolute(url).map_err(|e| bad(e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|()| bad("not an absolute path".into()))?
        }
    };
    let mut root = parsed.clone();
    if !root.path().ends_with('/') {
        let with_slash = format!("{}/", root.path());
        root.set_path(&with_slash);
    }
    match root.scheme() {
        "file" => {
            root.to_file_path()
                .map_err(|()| bad("not a local path".into()))?;
            // From the URL, not the file system: the folder need not exist yet.
            let prefix = Path::from_url_path(root.path()).map_err(|e| bad(e.to_string()))?;
            Ok((prefix, root))
        }
        "s3" | "s3a" => {
            if root.host_str().is_none_or(str::is_empty) {
                return Err(bad("no bucket name".into()));
            }
            let prefix = Path::from_url_path(root.path()).map_err(|e| bad(e.to_string()))?;
            if prefix.as_ref().is_empty() {
                return Err(bad(BUCKET_ROOT.into()));
            }
            Ok((prefix, root))
        }
        other => Err(bad(format!(
            "unsupported scheme {other}:// (use a folder, file:// or s3://)"
        ))),
    }
}

const BUCKET_ROOT: &str =
    "the lake must be a prefix inside the bucket (s3://bucket/stocklake), not the bucket root";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_urls_become_directory_urls() {
        let (prefix, url) = lake_location("/tmp/some lake").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/some%20lake/");
        assert_eq!(prefix.as_ref(), "tmp/some lake");
        let (_, url) = lake_location("file:///tmp/x").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/x/");
        let (_, url) = lake_location("rel/dir").unwrap();
        assert!(url.as_str().ends_with("/rel/dir/"), "{url}");
    }

    #[test]
    fn s3_needs_a_prefix_and_other_schemes_are_refused() {
        let (prefix, url) = lake_location("s3://bucket/stock/lake").unwrap();
        assert_eq!(url.as_str(), "s3://bucket/stock/lake/");
        assert_eq!(prefix.as_ref(), "stock/lake");
        assert!(lake_location("s3://bucket").is_err());
        assert!(lake_location("s3://bucket/").is_err());
        assert!(lake_location("gs://bucket/x").is_err());
    }

    #[test]
    fn listing_a_local_lake_gives_back_the_names_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let lake = Lake::open(dir.path().to_str().unwrap()).await.unwrap();
            let names = [
                "ticks/symbol=A%2FB%20x/f.parquet",
                "ticks/symbol=ünï/g.parquet",
            ];
            for n in names {
                lake.put(n, bytes::Bytes::from_static(b"x")).await.unwrap();
                assert!(lake.local_path(n).is_file(), "{n}");
            }
            let mut listed = lake.list("ticks").await.unwrap();
            listed.sort();
            assert_eq!(listed, names);
        });
    }
}
