//! `compare`'s normalisation rules through the binary (README: "Normalisation rules"): for each
//! rule a hand-written Athena result (tests/fixtures/athena/rules/<rule>/: the CSV as Athena
//! writes it, the saved-result JSON with Athena's ColumnInfo types, and the local query) must
//! agree with the local engine on the sample lake (exit 0, with the rule's note), and a defect
//! planted in a copy must be caught (exit 1, with the row, column and reason), so that each rule
//! is shown to be neither too loose nor too strict.

use std::path::{Path, PathBuf};

use crate::harness::lake::{lake_arg, sample_lake};
use crate::harness::{cmd, fixture, text};

fn rule_dir(rule: &str) -> PathBuf {
    fixture("athena/rules").join(rule)
}

/// `stocklake compare <query> --against <against> --lake <lake>`: the exit code and stdout.
fn compare(lake: &Path, query: &Path, against: &Path) -> (Option<i32>, String) {
    let out = cmd(&["compare", "--lake"])
        .arg(lake)
        .arg("--against")
        .arg(against)
        .arg(query)
        .output();
    let stdout = text(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    (out.status.code(), stdout)
}

/// A copy of a rule's fixture folder with each `(from, to)` replaced once in its CSV.
fn planted(rule: &str, edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(rule_dir(rule)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let csv = dir.path().join(format!("{rule}.csv"));
    let mut t = std::fs::read_to_string(&csv).unwrap();
    for (from, to) in edits {
        assert!(t.contains(from), "{rule}.csv has no {from:?}");
        t = t.replacen(from, to, 1);
    }
    std::fs::write(&csv, t).unwrap();
    dir
}

/// The rule's fixture agrees with the local engine, with each of `notes` in the report.
fn agrees(lake: &Path, rule: &str, notes: &[&str]) {
    let dir = rule_dir(rule);
    let (code, out) = compare(lake, &dir.join(format!("{rule}.sql")), &dir);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("== {rule}: match")), "{out}");
    for n in notes {
        assert!(
            out.contains(&format!("   note: {n}\n")),
            "no note {n:?}:\n{out}"
        );
    }
}

/// The rule's fixture with `edits` planted disagrees: exit 1, `changed` changed rows, and each
/// of `shown` in the report.
fn caught(lake: &Path, rule: &str, edits: &[(&str, &str)], changed: usize, shown: &[&str]) {
    let dir = planted(rule, edits);
    let query = rule_dir(rule).join(format!("{rule}.sql"));
    let (code, out) = compare(lake, &query, dir.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("== {rule}: MISMATCH")), "{out}");
    let counts = format!("differences: {changed} changed row(s), 0 row(s) only on local");
    assert!(out.contains(&counts), "{out}");
    for s in shown {
        assert!(out.contains(s), "no {s:?}:\n{out}");
    }
}

#[test]
fn decimals_agree_at_the_coarser_scale_rounded_half_up() {
    let lake = sample_lake();
    // 65.155, 50.125 and 45.405 at scale 3 here; 65.16, 50.13, 45.41 on Athena.
    agrees(
        lake.path(),
        "decimal_half_up",
        &["column 2 (half_close): decimals compared at scale 2, rounded half-up"],
    );
    // 50.125 rounded half-even (or from the binary double) is 50.12: not Trino's answer.
    caught(
        lake.path(),
        "decimal_half_up",
        &[("\"50.13\"", "\"50.12\"")],
        1,
        &[
            "local row 2 / athena row 2: differs in half_close",
            "* half_close  50.125",
            "50.12   (value)",
        ],
    );
}

#[test]
fn doubles_cast_to_a_decimal_round_half_up_from_their_decimal_text() {
    let lake = sample_lake();
    let l = lake_arg(lake.path());
    // Trino's answers; arrow's cast of the binary double gives 1.00, 2.67, -1.00 and 0.12 for
    // the first four (0.125 is exact in binary: 12.5 rounds away from zero there too).
    let sql = "SELECT CAST(CAST(1.005 AS DOUBLE) AS DECIMAL(10, 2)) AS a, \
               CAST(CAST(2.675 AS DOUBLE) AS DECIMAL(10, 2)) AS b, \
               CAST(CAST(-1.005 AS DOUBLE) AS DECIMAL(10, 2)) AS c, \
               CAST(CAST(0.125 AS DOUBLE) AS DECIMAL(10, 2)) AS d, \
               CAST(CAST(1e-7 AS DOUBLE) AS DECIMAL(10, 2)) AS e, \
               CAST(CAST(1.005 AS REAL) AS DECIMAL(10, 2)) AS f, \
               TRY_CAST(CAST(1e20 AS DOUBLE) AS DECIMAL(10, 2)) AS g";
    let out = cmd(&["-q", "sql", "--lake", &l, "--format", "csv", "-c", sql]).output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "a,b,c,d,e,f,g\n1.01,2.68,-1.01,0.13,0.00,1.01,\n"
    );
    // From the lake: AAPL's and GOOG's halves are ties at the third decimal.
    let sql = "SELECT symbol, CAST(close / 2 AS DECIMAL(10, 2)) AS half_close FROM ticks \
               WHERE trade_date = DATE '2012-06-28' AND symbol IN ('AAPL', 'GOOG') ORDER BY 1";
    let out = cmd(&["-q", "sql", "--lake", &l, "--format", "csv", "-c", sql]).output();
    assert_eq!(
        text(&out.stdout),
        "symbol,half_close\nAAPL,284.53\nGOOG,282.16\n"
    );
    // Beyond the precision: an error naming the value as Trino does, exit 1.
    let sql = "SELECT CAST(close * 1000000 AS DECIMAL(10, 2)) FROM ticks \
               WHERE trade_date = DATE '2012-06-28' AND symbol = 'AAPL'";
    let out = cmd(&["-q", "sql", "--lake", &l, "-c", sql]).output();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("Cannot cast DOUBLE '5.6905E8' to DECIMAL(10, 2)"),
        "{err}"
    );
}

#[test]
fn decimals_at_the_same_scale_agree_when_both_round_as_trino() {
    let lake = sample_lake();
    agrees(lake.path(), "decimal_same_scale", &[]);
    let (_, out) = compare(
        lake.path(),
        &rule_dir("decimal_same_scale").join("decimal_same_scale.sql"),
        &rule_dir("decimal_same_scale"),
    );
    assert!(
        !out.contains("decimals compared at scale"),
        "same scale: {out}"
    );
    // The binary double's rounding (arrow's cast): 284.52 and 282.15.
    caught(
        lake.path(),
        "decimal_same_scale",
        &[("\"284.53\"", "\"284.52\""), ("\"282.16\"", "\"282.15\"")],
        2,
        &[
            "local row 1 / athena row 1: differs in half_close",
            "284.52   (value)",
            "local row 3 / athena row 3: differs in half_close",
            "282.15   (value)",
        ],
    );
}

#[test]
fn decimal_38_0_compares_exactly() {
    let lake = sample_lake();
    let (code, out) = compare(
        lake.path(),
        &rule_dir("decimal_38_0").join("decimal_38_0.sql"),
        &rule_dir("decimal_38_0"),
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("decimals compared at scale"),
        "same scale: {out}"
    );
    caught(
        lake.path(),
        "decimal_38_0",
        &[("\"191267108750\"", "\"191267108751\"")],
        1,
        &[
            "local row 5 / athena row 5: differs in total_volume",
            "191267108750",
            "191267108751   (value)",
        ],
    );
}

#[test]
fn timestamps_with_time_zone_in_utc_compare_as_instants() {
    let lake = sample_lake();
    agrees(
        lake.path(),
        "tz_utc",
        &["column 2 (first_bar): timestamps with a time zone compared as instants, in UTC"],
    );
    // An hour off is a different instant.
    caught(
        lake.path(),
        "tz_utc",
        &[("2012-05-18 00:00:00.000 UTC", "2012-05-18 01:00:00.000 UTC")],
        1,
        &[
            "local row 2 / athena row 2: differs in first_bar",
            "2012-05-18 01:00:00.000   (value)",
        ],
    );
}

#[test]
fn timestamps_with_a_named_zone_compare_as_instants() {
    let lake = sample_lake();
    agrees(
        lake.path(),
        "tz_named",
        &["column 2 (first_bar_ny): timestamps with a time zone compared as instants, in UTC"],
    );
    // FB's first bar at EST's offset (-5) in May, when New York keeps EDT (-4): an hour off; and
    // GOOG's midnight UTC written as New York wall time: four hours off.
    caught(
        lake.path(),
        "tz_named",
        &[
            ("2012-05-17 20:00:00.000", "2012-05-17 19:00:00.000"),
            ("2004-08-18 20:00:00.000", "2004-08-19 00:00:00.000"),
        ],
        2,
        &[
            "local row 2 / athena row 2: differs in first_bar_ny",
            "2012-05-17 23:00:00.000   (value)",
            "local row 3 / athena row 3: differs in first_bar_ny",
            "2004-08-19 04:00:00.000   (value)",
        ],
    );
}

#[test]
fn a_date_meets_a_midnight_timestamp() {
    let lake = sample_lake();
    agrees(
        lake.path(),
        "date_vs_timestamp",
        &[
            "column 2 (first_month): timestamp on local, date on athena: compared as dates (a \
             timestamp must be midnight UTC)",
        ],
    );
    caught(
        lake.path(),
        "date_vs_timestamp",
        &[("\"2004-08-01\"", "\"2004-09-01\"")],
        1,
        &[
            "local row 3 / athena row 3: differs in first_month",
            "2004-09-01   (value)",
        ],
    );
    // A timestamp that is not midnight is not a date.
    let work = tempfile::tempdir().unwrap();
    let query = work.path().join("date_vs_timestamp.sql");
    let sql = std::fs::read_to_string(rule_dir("date_vs_timestamp").join("date_vs_timestamp.sql"))
        .unwrap()
        .replace(
            "date_trunc('month', min(trade_date))",
            "date_trunc('month', min(trade_date)) + INTERVAL '1 hour'",
        );
    std::fs::write(&query, sql).unwrap();
    let (code, out) = compare(lake.path(), &query, &rule_dir("date_vs_timestamp"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("differences: 5 changed row(s)")
            && out.contains("(date vs timestamp not at midnight)"),
        "{out}"
    );
}

#[test]
fn null_empty_string_and_nan_stay_distinct() {
    let lake = sample_lake();
    agrees(lake.path(), "null_empty_nan", &[]);
    // AAPL's NULL label written as '', GOOG's NaN as NULL, MSFT's 0.0 as NaN.
    caught(
        lake.path(),
        "null_empty_nan",
        &[
            ("\"AAPL\",,", "\"AAPL\",\"\","),
            ("\"GOOG\",\"NaN\"", "\"GOOG\","),
            ("\"MSFT\",\"0.0\"", "\"MSFT\",\"NaN\""),
        ],
        3,
        &[
            "local row 1 / athena row 1: differs in label",
            "* label   NULL    ''   (NULL vs value)",
            "local row 3 / athena row 3: differs in x",
            "* x       NaN     NULL   (NULL vs value)",
            "local row 5 / athena row 5: differs in x",
            "* x       0.0     NaN   (value beyond tolerance)",
        ],
    );
}

#[test]
fn intervals_compare_as_months_and_exact_durations() {
    let lake = sample_lake();
    agrees(
        lake.path(),
        "intervals",
        &[
            "column 2 (span): intervals compared as months plus an exact duration (a day is 24 \
             hours)",
            "column 3 (fourteen_months): intervals compared as months plus an exact duration (a \
             day is 24 hours)",
        ],
    );
    // A millisecond off (Athena's precision) and one month more are caught.
    caught(
        lake.path(),
        "intervals",
        &[
            ("\"3116 00:00:00.000\"", "\"3116 00:00:00.001\""),
            (
                "\"IBM\",\"4748 00:00:00.000\",\"1-2\"",
                "\"IBM\",\"4748 00:00:00.000\",\"1-3\"",
            ),
        ],
        2,
        &[
            "local row 3 / athena row 3: differs in span",
            "3116 00:00:00.001   (value)",
            "local row 4 / athena row 4: differs in fourteen_months",
            "1-3   (value)",
        ],
    );
}

#[test]
fn arrays_maps_and_rows_compare_element_by_element() {
    let lake = sample_lake();
    let read_back = "athena's text read back into values";
    agrees(
        lake.path(),
        "nested",
        &[
            &format!("column 2 (tags): arrays compared element by element, {read_back}"),
            &format!("column 3 (low_high): arrays compared element by element, {read_back}"),
            &format!("column 4 (by_name): maps compared by key, {read_back}"),
            &format!("column 5 (summary): rows compared field by field, by position, {read_back}"),
        ],
    );
    // One element, one map value, one row field, and a NULL element written as a string.
    caught(
        lake.path(),
        "nested",
        &[
            ("[17.55, 45.0]", "[17.55, 45.1]"),
            ("{low=95.96, high=808.97}", "{low=95.96, high=809.97}"),
            ("days=2148", "days=2147"),
            ("[MSFT, null]", "[MSFT, NULL]"),
        ],
        3,
        &[
            "local row 2 / athena row 2: differs in low_high",
            "(array element)",
            "local row 3 / athena row 3: differs in by_name, summary",
            "(map value)",
            "(row field)",
            "local row 5 / athena row 5: differs in tags",
        ],
    );
}
