//! The normalisation rules a pair of columns is compared under, from the two columns' types
//! (README: "Normalisation rules"): which kinds of value compare at all (a date with a
//! timestamp, Athena's text of an array with an array…) and one note per rule applied, e.g.
//! "decimals compared at scale 2, rounded half-up". The values themselves are compared by
//! [`super::value::Cell::differs`].

use arrow::datatypes::{DataType, Field};

use super::value::class_of;
use crate::engine::athena::convert::{ATHENA_TYPE, TextForm};

/// The Athena text form a column was read from, when it was one.
fn form(f: &Field) -> Option<TextForm> {
    f.metadata().get(ATHENA_TYPE).and_then(|t| TextForm::of(t))
}

/// The scale of a decimal column; `None` for integers (exact: compared as they are), floats
/// and others.
fn scale(ty: &DataType) -> Option<u32> {
    match ty {
        DataType::Decimal32(_, s)
        | DataType::Decimal64(_, s)
        | DataType::Decimal128(_, s)
        | DataType::Decimal256(_, s) => u32::try_from(*s).ok(),
        _ => None,
    }
}

/// A timestamp column's zone, when it has one.
fn zone(ty: &DataType) -> Option<&str> {
    match ty {
        DataType::Timestamp(_, Some(tz)) => Some(tz),
        _ => None,
    }
}

/// A zoned timestamp that is plainly UTC wall time (the lake's `event_time`), as opposed to
/// Athena's `timestamp with time zone` or another zone.
fn plain_utc(f: &Field) -> bool {
    matches!(
        zone(f.data_type()),
        Some("UTC" | "+00:00" | "Z" | "Etc/UTC")
    ) && form(f) != Some(TextForm::TimestampWithZone)
}

/// The notes for comparing column `f` (on side `ln`) with column `g` (on `rn`), or `None` when
/// their kinds of value do not compare (a schema difference).
pub(super) fn column_rules(f: &Field, g: &Field, ln: &str, rn: &str) -> Option<Vec<String>> {
    let (cf, cg) = (class_of(f.data_type()), class_of(g.data_type()));
    let mut notes = Vec::new();
    match (cf, cg) {
        ("null", _) | (_, "null") => {}
        ("date", "timestamp") | ("timestamp", "date") => notes.push(format!(
            "{cf} on {ln}, {cg} on {rn}: compared as dates (a timestamp must be midnight UTC)"
        )),
        ("array" | "map" | "row", "text") | ("text", "array" | "map" | "row") => {
            let (kind, text_side, text_field) = if cf == "text" {
                (cg, ln, f)
            } else {
                (cf, rn, g)
            };
            if form(text_field) != Some(TextForm::Nested) {
                return None;
            }
            notes.push(format!(
                "{kind}s compared {}, {text_side}'s text read back into values",
                match kind {
                    "array" => "element by element",
                    "map" => "by key",
                    _ => "field by field, by position",
                }
            ));
        }
        (a, b) if a != b => return None,
        ("number", _) => {
            if let (Some(a), Some(b)) = (scale(f.data_type()), scale(g.data_type()))
                && a != b
            {
                notes.push(format!(
                    "decimals compared at scale {}, rounded half-up",
                    a.min(b)
                ));
            }
        }
        ("timestamp", _) => notes.extend(zone_note(f, g, ln, rn)),
        ("time", _)
            if form(f) == Some(TextForm::TimeWithZone)
                || form(g) == Some(TextForm::TimeWithZone) =>
        {
            notes.push("times with a time zone compared as the UTC time of day".into());
        }
        ("interval", _)
            if f.data_type() != g.data_type() || form(f).is_some() || form(g).is_some() =>
        {
            notes.push(
                "intervals compared as months plus an exact duration (a day is 24 hours)".into(),
            );
        }
        _ => {}
    }
    Some(notes)
}

/// Timestamps with a zone are instants: compared in UTC. One with a zone and one without: the
/// one without is read as UTC wall time (no note when the zone is plainly UTC).
fn zone_note(f: &Field, g: &Field, ln: &str, rn: &str) -> Option<String> {
    let (zf, zg) = (zone(f.data_type()), zone(g.data_type()));
    match (zf.is_some(), zg.is_some()) {
        (true, true) if !(plain_utc(f) && plain_utc(g)) => {
            Some("timestamps with a time zone compared as instants, in UTC".into())
        }
        (true, false) | (false, true) => {
            let (zoned, zoned_on, naive_on) = if zf.is_some() {
                (f, ln, rn)
            } else {
                (g, rn, ln)
            };
            (!plain_utc(zoned)).then(|| {
                format!(
                    "timestamp with a time zone on {zoned_on}, without on {naive_on}: the one \
                     without is read as UTC"
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{IntervalUnit, TimeUnit};

    use super::*;

    fn athena(name: &str, ty: DataType, athena_type: &str) -> Field {
        Field::new(name, ty, true).with_metadata(
            [(ATHENA_TYPE.to_string(), athena_type.to_string())]
                .into_iter()
                .collect(),
        )
    }

    fn rules(f: &Field, g: &Field) -> Option<Vec<String>> {
        column_rules(f, g, "local", "athena")
    }

    #[test]
    fn each_rule_is_noted_only_where_it_applies() {
        let dec = |s| Field::new("d", DataType::Decimal128(10, s), true);
        assert_eq!(
            rules(&dec(3), &dec(2)).unwrap(),
            vec!["decimals compared at scale 2, rounded half-up"]
        );
        assert!(rules(&dec(2), &dec(2)).unwrap().is_empty());
        let int = Field::new("i", DataType::Int64, true);
        // An integer against a decimal: compared exactly, no rounding.
        assert!(rules(&int, &dec(2)).unwrap().is_empty());
        let float = Field::new("f", DataType::Float64, true);
        assert!(rules(&float, &dec(2)).unwrap().is_empty());

        let ts = |tz: Option<&str>| {
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Millisecond, tz.map(Into::into)),
                true,
            )
        };
        let athena_tz = athena(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            "timestamp with time zone",
        );
        // The lake's event_time (UTC) against Athena's naive timestamp: nothing to say.
        assert!(rules(&ts(Some("UTC")), &ts(None)).unwrap().is_empty());
        assert_eq!(
            rules(&ts(Some("UTC")), &athena_tz).unwrap(),
            vec!["timestamps with a time zone compared as instants, in UTC"]
        );
        assert_eq!(
            rules(&ts(None), &athena_tz).unwrap(),
            vec![
                "timestamp with a time zone on athena, without on local: the one without is read as UTC"
            ]
        );
        assert_eq!(
            rules(&ts(Some("America/New_York")), &ts(None))
                .unwrap()
                .len(),
            1
        );

        let date = Field::new("d", DataType::Date32, true);
        assert_eq!(
            rules(&ts(None), &date).unwrap(),
            vec![
                "timestamp on local, date on athena: compared as dates (a timestamp must be midnight UTC)"
            ]
        );
        let iv = Field::new("i", DataType::Interval(IntervalUnit::MonthDayNano), true);
        let athena_iv = athena(
            "i",
            DataType::Interval(IntervalUnit::YearMonth),
            "interval year to month",
        );
        assert_eq!(rules(&iv, &athena_iv).unwrap().len(), 1);
        assert!(rules(&iv, &iv).unwrap().is_empty());
    }

    #[test]
    fn text_compares_with_an_array_only_when_athena_says_it_is_one() {
        let list = Field::new(
            "a",
            DataType::List(std::sync::Arc::new(Field::new(
                "item",
                DataType::Int64,
                true,
            ))),
            true,
        );
        let varchar = Field::new("a", DataType::Utf8, true);
        assert_eq!(rules(&list, &varchar), None);
        let text = athena("a", DataType::Utf8, "array(bigint)");
        assert_eq!(
            rules(&list, &text).unwrap(),
            vec!["arrays compared element by element, athena's text read back into values"]
        );
        assert_eq!(
            rules(&varchar, &Field::new("n", DataType::Int64, true)),
            None
        );
        let date = Field::new("d", DataType::Date32, true);
        assert_eq!(rules(&date, &varchar), None);
    }
}
