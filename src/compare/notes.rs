//! The notes of a comparison: what a reader should know beyond the differences (types inferred
//! from the values, the table versions each side read, and for a result that records no
//! version, whether the local version was committed after Athena's submission time).

use super::types::SideFacts;

/// The notes for a comparison of `left` with `right`.
pub(super) fn notes(left: &SideFacts, right: &SideFacts) -> Vec<String> {
    let mut notes = Vec::new();
    for s in [left, right] {
        if s.types_inferred {
            notes.push(format!(
                "{}: no column metadata; types were inferred from the values",
                s.label
            ));
        }
    }
    notes.extend(lake_notes(left, right));
    notes
}

/// Which table versions the two sides read: the table moving while Athena ran, sides that read
/// different versions, or (for a result that records no version) a local version committed
/// after the Athena query ran, with the `--as-of` that pins the local engine to that moment.
fn lake_notes(a: &SideFacts, b: &SideFacts) -> Vec<String> {
    let mut notes = Vec::new();
    for (local, remote) in [(a, b), (b, a)] {
        let Some(lake) = &local.lake else {
            continue;
        };
        if let Some(v) = remote.table_versions {
            if v.moved() {
                notes.push(format!(
                    "the table moved during the {} query: version {} just before it started, {} \
                     just after it ended; {} read version {}",
                    remote.label, v.before, v.after, local.label, lake.version
                ));
            } else if lake.version != v.before {
                notes.push(format!(
                    "{} read version {} of the table, the {} query ran on version {}: the \
                     engines read different data",
                    local.label, lake.version, remote.label, v.before
                ));
            }
            continue;
        }
        let Some(ran_at) = &remote.ran_at else {
            continue;
        };
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(ran_at) else {
            continue;
        };
        let t = t.with_timezone(&chrono::Utc);
        if lake.committed_after(t) && lake.as_of.is_none() {
            let clock = remote.clock.map_or(String::new(), |c| format!(" by {c}"));
            notes.push(format!(
                "{} read version {} of the table, committed after the {} query was submitted \
                 ({ran_at}{clock}), which records no table version: the engines may have read \
                 different data; pin the local engine to that moment with --as-of {}",
                local.label,
                lake.version,
                remote.label,
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    notes
}
