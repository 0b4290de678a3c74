//! No secret from the environment appears in any output or log line, even at trace level and
//! when commands fail.

use crate::harness::moto::{self, Moto};
use crate::harness::{cmd, stderr, stdout};

const SESSION_TOKEN: &str = "FwoGZXIvYXdzSessionTokenThatMustNeverBePrinted0042";

fn run(moto: &Moto, endpoint: Option<&str>, args: &[&str]) -> String {
    let mut command = cmd(args)
        .envs(moto.env())
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("RUST_LOG", "trace");
    if let Some(e) = endpoint {
        command = command.env("AWS_ENDPOINT_URL", e);
    }
    let out = command.output();
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
fn no_secret_appears_in_output_or_logs() {
    let moto = Moto::start();
    moto.create_bucket("secret-lake");
    let dest = tempfile::tempdir().unwrap();
    let dest = dest.path().join("mirror");
    let dest = dest.to_str().unwrap();
    let mut transcript = String::new();
    for (endpoint, args) in [
        (
            None,
            vec![
                "-vvv",
                "catalog",
                "--lake",
                "s3://secret-lake/l",
                "--repair",
            ],
        ),
        (
            None,
            vec!["-vvv", "catalog", "--ddl", "--lake", "s3://secret-lake/l"],
        ),
        (None, vec!["-vvv", "sync", "s3://secret-lake/l", dest]),
        // Failures: a missing bucket, and nothing listening at the endpoint.
        (None, vec!["-vvv", "sync", "s3://no-such-bucket/l", dest]),
        (
            Some("http://127.0.0.1:9"),
            vec!["-vvv", "catalog", "--lake", "s3://x/l"],
        ),
    ] {
        transcript.push_str(&run(&moto, endpoint, &args));
    }
    assert!(
        transcript.len() > 1000,
        "trace logging produced output: {transcript}"
    );
    assert!(transcript.contains("error"), "the failures were reported");
    for secret in [moto::SECRET_KEY, SESSION_TOKEN] {
        assert!(
            !transcript.contains(secret),
            "a secret leaked into the output:\n{}",
            transcript
                .lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
