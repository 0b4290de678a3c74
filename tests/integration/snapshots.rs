//! What users read, pinned: `--help` of every command, the errors of typical mistakes (each
//! cause said once, the credential error on one line), and the summaries of `produce`,
//! `consume` and `demo`. `STOCKLAKE_BLESS=1 cargo test --test integration snapshots` rewrites
//! them after a deliberate change; review the diff.

use std::path::Path;

use crate::harness::kafka::{SESSION, broker_with_topic, consume, produce_file};
use crate::harness::lake::sample_lake;
use crate::harness::snapshot::{assert_snapshot, render};
use crate::harness::{cmd, sample_csv, stderr, unique};

const COMMANDS: &[&str] = &[
    "produce", "consume", "demo", "broker", "bench", "catalog", "compact", "sync", "sql", "repl",
    "compare", "status", "audit",
];

#[test]
fn help_of_every_command() {
    let top = cmd(&["--help"]).output();
    assert_snapshot("help", &render("stocklake --help", &top, &[]));
    for c in COMMANDS {
        let out = cmd(&[c, "--help"]).output();
        assert!(out.status.success(), "{c} --help: {}", stderr(&out));
        assert_snapshot(
            &format!("help-{c}"),
            &render(&format!("stocklake {c} --help"), &out, &[]),
        );
    }
}

/// Runs `stocklake args` and pins what it says; `names` are replaced by placeholders.
fn pin(name: &str, args: &[&str], names: &[(&str, &str)]) {
    let out = cmd(args).output();
    assert!(!out.status.success(), "{args:?} should fail");
    let title = format!("stocklake {}", args.join(" "));
    assert_snapshot(name, &render(&title, &out, names));
}

#[test]
fn typical_mistakes_say_what_and_where_once() {
    let lake = sample_lake();
    let lake_s = lake.path().display().to_string();
    let names = [(lake_s.as_str(), "lake")];
    pin(
        "error-unknown-column",
        &[
            "sql",
            "--lake",
            &lake_s,
            "-c",
            "SELECT nope FROM stocklake.ticks",
        ],
        &names,
    );
    let missing = lake.path().join("no-such-lake").display().to_string();
    pin(
        "error-missing-lake",
        &["sql", "--lake", &missing, "-c", "SELECT 1"],
        &names,
    );
    pin("error-bad-flag", &["sql", "--nope"], &[]);
    pin(
        "error-bad-setting",
        &["sql", "--engine", "everywhere", "-c", "SELECT 1"],
        &[],
    );

    let csv = lake.path().join("no-such.csv").display().to_string();
    pin("error-missing-csv", &["produce", &csv], &names);
    let bad = lake.path().join("bad.csv");
    std::fs::write(
        &bad,
        "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n\
         AAPL,2000-03-01,118.56,132.06,118.5,130.31,9616100,4.19\n\
         AAPL,2000-03-02,127,128.94,abc,122,6983200,3.92\n",
    )
    .unwrap();
    let bad_s = bad.display().to_string();
    pin("error-bad-csv-row", &["produce", &bad_s], &names);
    let config = lake.path().join("stocklake.toml");
    std::fs::write(&config, "[kafka]\nbrokerz = \"k:1\"\n").unwrap();
    let config_s = config.display().to_string();
    pin(
        "error-bad-settings-file",
        &["--config", &config_s, "sql", "-c", "SELECT 1"],
        &names,
    );
}

/// No credential anywhere the AWS SDK looks (and no network: the endpoint is a closed port).
fn without_aws_credentials(args: &[&str]) -> std::process::Output {
    let mut c = cmd(args)
        .env("AWS_CONFIG_FILE", "/nonexistent/stocklake-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/stocklake-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        c = c.env_remove(var);
    }
    c.output()
}

#[test]
fn a_missing_aws_credential_is_one_line() {
    for (name, args) in [
        (
            "error-no-credentials-athena",
            &["sql", "--engine", "athena", "-c", "SELECT 1"][..],
        ),
        (
            "error-no-credentials-s3",
            &["catalog", "--lake", "s3://some-bucket/lake"][..],
        ),
    ] {
        let out = without_aws_credentials(args);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(err.matches("AWS_ACCESS_KEY_ID").count(), 1, "{err}");
        assert_snapshot(
            name,
            &render(&format!("stocklake {}", args.join(" ")), &out, &[]),
        );
    }
}

#[test]
fn produce_consume_and_demo_summaries() {
    let (broker, topic) = broker_with_topic(3);
    let bootstrap = broker.bootstrap_servers().to_string();
    let names = [(topic.as_str(), "topic")];
    let produced = produce_file(&sample_csv(), &bootstrap, &topic).output_ok();
    assert_snapshot(
        "summary-produce",
        &render("stocklake produce data/stocks.csv", &produced, &names),
    );

    let lake = tempfile::tempdir().unwrap();
    let group = unique("g");
    let consumed = consume(&bootstrap, &topic, &group, lake.path())
        .args(["--exit-when-idle", "1500ms"])
        .args(SESSION)
        .output_ok();
    let lake_s = lake.path().display().to_string();
    let names = [
        (lake_s.as_str(), "lake"),
        (topic.as_str(), "topic"),
        (group.as_str(), "group"),
    ];
    // Files and flushes depend on how the stream met the flush timer.
    let text = render("stocklake consume", &consumed, &names);
    let text = regex::Regex::new(r"in \d+ files \(<n> MiB\) and 0 rejects in \d+ flushes")
        .unwrap()
        .replace(&text, "in <n> files (<n> MiB) and 0 rejects in <n> flushes")
        .into_owned();
    assert_snapshot("summary-consume", &text);

    demo_summary(lake.path());
}

fn demo_summary(scratch: &Path) {
    let lake = scratch.join("demo-lake");
    let lake_s = lake.display().to_string();
    let out = cmd(&["demo", "--lake", &lake_s, "--maxrows", "3"]).output_ok();
    // One file per symbol per flush: more than one flush only on a very slow machine.
    let text = render(
        "stocklake demo --maxrows 3",
        &out,
        &[(lake_s.as_str(), "lake")],
    );
    let text = regex::Regex::new(r"12154 rows in \d+ Parquet files")
        .unwrap()
        .replace(&text, "12154 rows in <n> Parquet files")
        .into_owned();
    assert_snapshot("summary-demo", &text);
}
