//! The notes of a comparison: what a reader should know beyond the differences (types inferred
//! from the values, a local lake that changed after the Athena query ran).

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

/// When the local side saw files newer than the Athena query, say so and offer `--as-of`.
fn lake_notes(a: &SideFacts, b: &SideFacts) -> Vec<String> {
    let mut notes = Vec::new();
    for (local, remote) in [(a, b), (b, a)] {
        let (Some(lake), Some(ran_at)) = (&local.lake, &remote.ran_at) else {
            continue;
        };
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(ran_at) else {
            continue;
        };
        let newer = lake.files_modified_after(t.with_timezone(&chrono::Utc));
        if newer > 0 && lake.as_of.is_none() {
            notes.push(format!(
                "{} saw {newer} file(s) written after the {} query ran ({ran_at}): the engines may \
                 have read different data; pin the local engine to the files of that moment with \
                 --as-of {}",
                local.label,
                remote.label,
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    notes
}
