//! Lake URLs to object stores: a bare path or `file://` URL is a local folder, `s3://bucket/prefix`
//! is S3 (or an S3-compatible server) configured from the environment.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

/// Why a lake could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("lake {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Data { location: String, message: String },
}

/// Opens the lake at `url`: the store, the lake root's path inside the store, and the root as a
/// URL that ends with `/` (`file:///abs/dir/` or `s3://bucket/prefix/`).
///
/// S3 settings come from the environment (`AmazonS3Builder::from_env`): `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …
pub fn open_lake(url: &str) -> Result<(Arc<dyn ObjectStore>, Path, Url), LakeError> {
    let bad = |message: String| LakeError::Url {
        url: url.to_string(),
        message,
    };
    let store_err = |source| LakeError::Store {
        location: url.to_string(),
        source,
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
            let store = object_store::local::LocalFileSystem::new();
            Ok((Arc::new(store), prefix, root))
        }
        "s3" | "s3a" => {
            if root.host_str().is_none_or(str::is_empty) {
                return Err(bad("no bucket name".into()));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_url(root.as_str())
                .build()
                .map_err(store_err)?;
            let prefix = Path::from_url_path(root.path()).map_err(|e| bad(e.to_string()))?;
            if prefix.as_ref().is_empty() {
                return Err(bad(
                    "the lake must be a prefix inside the bucket (s3://bucket/stocklake), not the bucket root"
                        .into(),
                ));
            }
            Ok((Arc::new(store), prefix, root))
        }
        other => Err(bad(format!(
            "unsupported scheme {other}:// (use a folder, file:// or s3://)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_urls_become_directory_urls() {
        let (_, prefix, url) = open_lake("/tmp/some lake").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/some%20lake/");
        assert_eq!(prefix.as_ref(), "tmp/some lake");
        let (_, _, url) = open_lake("file:///tmp/x").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/x/");
        let (_, _, url) = open_lake("rel/dir").unwrap();
        assert!(url.as_str().ends_with("/rel/dir/"), "{url}");
    }

    #[test]
    fn s3_needs_a_prefix_and_other_schemes_are_refused() {
        let (_, prefix, url) = open_lake("s3://bucket/stock/lake").unwrap();
        assert_eq!(url.as_str(), "s3://bucket/stock/lake/");
        assert_eq!(prefix.as_ref(), "stock/lake");
        assert!(open_lake("s3://bucket").is_err());
        assert!(open_lake("gs://bucket/x").is_err());
    }
}
