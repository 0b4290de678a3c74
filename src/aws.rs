//! AWS access for everything stocklake does on AWS: one SDK configuration (aws-config's standard
//! chain: env, profile, SSO, `AWS_ENDPOINT_URL`) with an explicit rustls/ring HTTP client, and an
//! S3 object store for data that signs with the SAME credential chain. No credential is ever
//! printed or logged: errors carry the provider's message, never key material.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use tokio::sync::Mutex;

/// Region used when the chain finds none (moto and most examples use it).
pub const DEFAULT_REGION: &str = "us-east-1";

/// What to do when no AWS credentials could be loaded, whatever asked for them.
pub const CREDENTIALS_HELP: &str = "set AWS_PROFILE (after `aws sso login` for an SSO profile), \
     or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; -v shows each credential provider's answer";

/// An AWS call's error as one line for a person: when credentials are what is missing, that and
/// what to do; else the error and its causes, each once (no debug structures).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    use aws_credential_types::provider::error::CredentialsError;
    let mut next = Some(e);
    while let Some(cause) = next {
        match cause.downcast_ref::<CredentialsError>() {
            Some(CredentialsError::CredentialsNotLoaded(_)) => {
                return format!("no AWS credentials found: {CREDENTIALS_HELP}");
            }
            Some(c) => {
                // The error's own text ("an error occurred while loading credentials") says
                // nothing; the last provider's reason is in its cause.
                let reason = std::error::Error::source(c)
                    .map_or_else(|| c.to_string(), crate::report::chain);
                return format!(
                    "no AWS credentials could be loaded ({reason}): {CREDENTIALS_HELP}"
                );
            }
            None => next = cause.source(),
        }
    }
    crate::report::chain(e)
}

/// Why an AWS resource could not be reached or named.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{url}: {message}")]
    Url { url: String, message: String },
    #[error("S3 client for bucket {bucket}: {message}")]
    Store { bucket: String, message: String },
}

/// The one HTTP client of every AWS SDK client: hyper + rustls on ring. It speaks plain http
/// too, for endpoints such as `AWS_ENDPOINT_URL=http://127.0.0.1:5000` (moto, LocalStack).
pub fn http_client() -> aws_sdk_glue::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK configuration every AWS client of stocklake is built from.
pub async fn sdk_config() -> SdkConfig {
    load_sdk_config(aws_config::defaults(BehaviorVersion::latest())).await
}

/// Loads `loader` (the standard chain, possibly with overrides, as tests use) with stocklake's
/// HTTP client, and `us-east-1` when no region is configured anywhere.
pub async fn load_sdk_config(loader: aws_config::ConfigLoader) -> SdkConfig {
    let loaded = loader.http_client(http_client()).load().await;
    if loaded.region().is_some() {
        return loaded;
    }
    loaded
        .into_builder()
        .region(aws_config::Region::new(DEFAULT_REGION))
        .build()
}

/// The S3 endpoint override: `AWS_ENDPOINT_URL_S3`, else the configuration's endpoint (from
/// `AWS_ENDPOINT_URL` or the profile's `endpoint_url`).
fn s3_endpoint(config: &SdkConfig) -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| config.endpoint_url().map(str::to_string))
}

/// How the S3 client of the lake retries a request that failed with a 5xx answer (500
/// InternalError, 503 SlowDown), a 429 or a dropped connection: exponential back-off with jitter
/// from `first_backoff` up to `max_backoff`, and no retry once `timeout` has passed since the
/// request first went out. A request that still fails is the error of the command (naming the
/// method and the object), so `timeout` bounds how long S3 may stay down. Defaults: `settings`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct S3Retry {
    pub timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

static S3_RETRY: std::sync::OnceLock<S3Retry> = std::sync::OnceLock::new();

/// Sets the retry policy of every S3 store this process opens from now on (once, at start-up:
/// a second call is ignored). Without it, stores use `S3Retry::default()`.
pub fn set_s3_retry(retry: S3Retry) {
    let _ = S3_RETRY.set(retry);
}

/// object_store's retry configuration for `retry`: the time bounds the retries (the count is
/// as many as the first back-off fits in the time, never the limit).
fn retry_config(retry: &S3Retry) -> RetryConfig {
    let first = retry.first_backoff.as_millis().max(1);
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: retry.first_backoff,
            max_backoff: retry.max_backoff,
            base: 2.0,
        },
        max_retries: usize::try_from(retry.timeout.as_millis() / first)
            .unwrap_or(usize::MAX)
            .max(1),
        retry_timeout: retry.timeout,
    }
}

/// An S3 object store for `bucket`, with the region, endpoint and credentials of `config`, and
/// the retry policy of [`set_s3_retry`].
pub fn s3_store(config: &SdkConfig, bucket: &str) -> Result<Arc<dyn ObjectStore>, AwsError> {
    let region = config
        .region()
        .map_or(DEFAULT_REGION.to_string(), ToString::to_string);
    let retry = S3_RETRY.get().copied().unwrap_or_default();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_retry(retry_config(&retry));
    if let Some(endpoint) = s3_endpoint(config) {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_endpoint(endpoint);
    }
    if let Some(provider) = config.credentials_provider() {
        builder = builder.with_credentials(Arc::new(SdkCredentials {
            provider,
            cached: Mutex::new(None),
        }));
    }
    let store = builder.build().map_err(|e| AwsError::Store {
        bucket: bucket.to_string(),
        message: e.to_string(),
    })?;
    Ok(Arc::new(store))
}

/// Bridges aws-config's credential chain to object_store, caching until 5 minutes before expiry.
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl std::fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkCredentials(aws-config chain)")
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((cred, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|t| {
                t.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > Duration::from_secs(300))
            });
            if fresh {
                return Ok(cred.clone());
            }
        }
        let c = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Generic {
                store: "S3",
                source: describe(&e).into(),
            }
        })?;
        let cred = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((cred.clone(), c.expiry()));
        Ok(cred)
    }
}

/// A location `s3://bucket/key/prefix` split into its parts (prefix without slashes at the ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    pub fn parse(url: &str) -> Result<S3Url, AwsError> {
        let err = |message: &str| AwsError::Url {
            url: url.to_string(),
            message: message.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .or_else(|| url.strip_prefix("s3a://"))
            .ok_or_else(|| err("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("no bucket name"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The prefix as an object_store path.
    pub fn path(&self) -> Path {
        Path::from_iter(self.prefix.split('/').filter(|s| !s.is_empty()))
    }

    /// `s3://bucket/prefix/` followed by `rest` (no double slashes).
    pub fn join(&self, rest: &str) -> String {
        let mut s = format!("s3://{}/", self.bucket);
        if !self.prefix.is_empty() {
            s.push_str(&self.prefix);
            s.push('/');
        }
        s.push_str(rest.trim_start_matches('/'));
        s
    }
}

/// An opened lake root: the store, the root path inside it, and the root as a URL (`s3://…` or
/// `file:///abs/path`), without a trailing slash.
pub struct LakeRoot {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    pub url: String,
}

impl LakeRoot {
    /// The URL of a path below the root, e.g. `location("ticks/")`.
    pub fn location(&self, rest: &str) -> String {
        format!("{}/{}", self.url, rest.trim_start_matches('/'))
    }
}

/// Opens a lake given as `s3://bucket/prefix`, `file:///path` or a local folder. Only S3 needs
/// `config` (the SDK configuration is loaded by the caller once).
pub fn open_lake(url: &str, config: Option<&SdkConfig>) -> Result<LakeRoot, AwsError> {
    if url.starts_with("s3://") || url.starts_with("s3a://") {
        let s3 = S3Url::parse(url)?;
        let fallback;
        let config = match config {
            Some(c) => c,
            None => {
                fallback = SdkConfig::builder().build();
                &fallback
            }
        };
        let store = s3_store(config, &s3.bucket)?;
        let url = s3.join("");
        return Ok(LakeRoot {
            store,
            root: s3.path(),
            url: url.trim_end_matches('/').to_string(),
        });
    }
    let local = url.strip_prefix("file://").unwrap_or(url);
    let err = |message: String| AwsError::Url {
        url: url.to_string(),
        message,
    };
    std::fs::create_dir_all(local).map_err(|e| err(e.to_string()))?;
    let abs = std::fs::canonicalize(local).map_err(|e| err(e.to_string()))?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(&abs)
        .map_err(|e| err(e.to_string()))?;
    let abs_str = abs.to_string_lossy().trim_end_matches('/').to_string();
    Ok(LakeRoot {
        store: Arc::new(store),
        root: Path::default(),
        url: format!("file://{abs_str}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_time_bounds_the_s3_retries() {
        let retry = S3Retry {
            timeout: Duration::from_secs(2),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        };
        let config = retry_config(&retry);
        assert_eq!(config.retry_timeout, Duration::from_secs(2));
        assert_eq!(config.max_retries, 20);
        assert_eq!(config.backoff.init_backoff, Duration::from_millis(100));
        let none = retry_config(&S3Retry {
            timeout: Duration::ZERO,
            ..retry
        });
        assert_eq!(none.max_retries, 1);
    }

    #[test]
    fn s3_urls_split_and_join() {
        let u = S3Url::parse("s3://b/stock/lake/").unwrap();
        assert_eq!(u.bucket, "b");
        assert_eq!(u.prefix, "stock/lake");
        assert_eq!(u.join("ticks/"), "s3://b/stock/lake/ticks/");
        assert_eq!(S3Url::parse("s3://b").unwrap().join("x"), "s3://b/x");
        assert!(S3Url::parse("s3:///x").is_err());
        assert!(S3Url::parse("/tmp/x").is_err());
    }
}
