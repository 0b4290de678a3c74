//! A moto server (S3, Glue, Athena) for one test: started from the suite's Python venv on a
//! random port of 127.0.0.1, killed on drop.
//! A missing venv FAILS the test (with the command that creates it): these tests never skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cmd::{Cmd, Running, venv};

/// Dummy credentials, also used by the secrets test to look for leaks.
pub const ACCESS_KEY: &str = "AKIAMOTOTESTKEY00001";
pub const SECRET_KEY: &str = "motoSecretKeyThatMustNeverBePrinted0001";
pub const REGION: &str = "us-east-1";

/// The server; dropping it kills it.
pub struct Moto {
    _server: Running,
    pub port: u16,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = venv().join("bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run `bash scripts/python-env.sh` (or set STOCKLAKE_VENV to a venv \
             with requirements.txt installed) before `cargo test`",
            bin.display()
        );
        let mut child = Cmd::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(p) = port.parse::<u16>() {
                        let _ = tx.send(p);
                        sent = true;
                    }
                }
                // Keep draining so the server never blocks on a full pipe.
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => panic!("moto_server did not report its port within 30 s"),
        };
        Moto {
            _server: child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Environment for a stocklake process talking to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/stocklake-test".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/stocklake-test".into(),
            ),
        ]
    }

    /// An SDK configuration for this server through stocklake's own loader (no process env).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds =
            aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "moto-test");
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(creds);
        stocklake::aws::load_sdk_config(loader).await
    }

    /// A raw HTTP request to the server; returns (status, body).
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        super::http(&format!("127.0.0.1:{}", self.port), method, path, body)
    }

    fn post_ok(&self, path: &str, body: &str) {
        let (status, text) = self.request("POST", path, body);
        assert!((200..300).contains(&status), "{path}: {status} {text}");
    }

    /// Queues Athena results: `results` is the JSON array of `{"rows":…,"column_info":…}`.
    pub fn queue_athena_results(&self, results: &serde_json::Value) {
        let body = serde_json::json!({"region": REGION, "results": results});
        self.post_ok("/moto-api/static/athena/query-results", &body.to_string());
    }

    /// Executions move one state every `times` GetQueryExecution calls (QUEUED→RUNNING→…).
    pub fn athena_manual_transitions(&self, times: u32) {
        let body = serde_json::json!({"model_name": "athena::execution",
            "transition": {"progression": "manual", "times": times}});
        self.post_ok("/moto-api/state-manager/set-transition", &body.to_string());
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, text) = self.request("PUT", &format!("/{bucket}"), "");
        assert!(
            (200..300).contains(&status),
            "create bucket: {status} {text}"
        );
    }

    /// Waits until the server answers (it is usually ready when it prints its port).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto on port {} does not accept connections", self.port);
    }
}

/// An S3 lake read back through its Delta log, replayed here (see [`super::lake::replay`]).
pub struct S3Lake {
    /// Every row of the active files.
    pub rows: Vec<super::lake::Row>,
    /// The active files' keys, sorted.
    pub keys: Vec<String>,
    /// The `txn` versions by application id.
    pub txns: std::collections::HashMap<String, i64>,
}

impl Moto {
    /// Reads the ticks table of the lake at `s3://bucket/prefix` straight from this server.
    pub fn read_lake(&self, bucket: &str, prefix: &str) -> S3Lake {
        use futures::TryStreamExt;
        use object_store::ObjectStoreExt;
        super::rt().block_on(async {
            let config = self.sdk_config().await;
            let store = stocklake::aws::s3_store(&config, bucket).expect("an S3 store");
            let log = object_store::path::Path::from(format!("{prefix}/ticks/_delta_log"));
            let entries: Vec<_> = store.list(Some(&log)).try_collect().await.expect("list");
            let mut commits = Vec::new();
            for o in entries {
                let bytes = store.get(&o.location).await.expect("get").bytes().await;
                let name = o.location.filename().unwrap_or_default().to_string();
                commits.push((name, String::from_utf8_lossy(&bytes.expect("read")).into()));
            }
            let (paths, txns, _) = super::lake::replay(commits);
            let mut lake = S3Lake {
                rows: Vec::new(),
                keys: Vec::new(),
                txns,
            };
            for rel in paths {
                let key = format!("{prefix}/ticks/{rel}");
                let location = object_store::path::Path::parse(&key).expect("a key");
                let bytes = store.get(&location).await.expect("get").bytes().await;
                let file = std::path::Path::new(&key);
                let rows = super::lake::read_parquet(bytes.expect("read"), &rel, file);
                lake.rows.extend(rows);
                lake.keys.push(key);
            }
            lake.keys.sort();
            lake
        })
    }
}

/// Athena's `ColumnInfo` of a column, as the moto API takes it.
pub fn athena_column(
    name: impl Into<Value>,
    ty: impl Into<Value>,
    precision: impl Into<Value>,
    scale: impl Into<Value>,
) -> Value {
    let (name, ty, precision, scale) = (name.into(), ty.into(), precision.into(), scale.into());
    json!({"Name": name, "Label": name, "Type": ty, "Precision": precision, "Scale": scale,
           "Nullable": "UNKNOWN", "CaseSensitive": false})
}

/// Athena's `Row` of values (`None`: NULL, no `VarCharValue`).
pub fn athena_row<S: AsRef<str>>(values: &[Option<S>]) -> Value {
    let data: Vec<Value> = values
        .iter()
        .map(|v| match v {
            Some(s) => json!({"VarCharValue": s.as_ref()}),
            None => json!({}),
        })
        .collect();
    json!({"Data": data})
}

/// (name, type) of a Glue table's columns and partition keys, and the table.
pub async fn glue_table(
    glue: &aws_sdk_glue::Client,
    db: &str,
    name: &str,
) -> (
    Vec<(String, String)>,
    Vec<(String, String)>,
    aws_sdk_glue::types::Table,
) {
    let t = glue
        .get_table()
        .database_name(db)
        .name(name)
        .send()
        .await
        .expect("table exists")
        .table()
        .cloned()
        .expect("a table");
    let pair = |c: &aws_sdk_glue::types::Column| {
        (c.name().to_string(), c.r#type().unwrap_or("").to_string())
    };
    let cols = t
        .storage_descriptor()
        .expect("a storage descriptor")
        .columns()
        .iter()
        .map(pair)
        .collect();
    let keys = t.partition_keys().iter().map(pair).collect();
    (cols, keys, t)
}

/// The partitions of a Glue table: values -> location.
pub async fn glue_partitions(
    glue: &aws_sdk_glue::Client,
    db: &str,
    table: &str,
) -> BTreeMap<Vec<String>, String> {
    glue.get_partitions()
        .database_name(db)
        .table_name(table)
        .send()
        .await
        .expect("partitions")
        .partitions()
        .iter()
        .map(|p| {
            let loc = p
                .storage_descriptor()
                .and_then(|s| s.location())
                .unwrap_or("");
            (p.values().to_vec(), loc.to_string())
        })
        .collect()
}
