//! Athena's text forms that `compare` normalises (README: "Normalisation rules"): which type
//! names are one ([`TextForm`]), and the parsers of `timestamp with time zone` (the instant),
//! `time with time zone` (the UTC time of day) and intervals, as Athena renders them.

use arrow::datatypes::IntervalDayTime;

use super::{digits, parse_time, parse_timestamp};

/// Athena's text forms that are normalised (or, for arrays, maps and rows, kept as text for
/// `compare` to read): which one a type name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextForm {
    TimestampWithZone,
    TimeWithZone,
    IntervalDaySecond,
    IntervalYearMonth,
    Nested,
}

impl TextForm {
    /// The text form of an Athena type name, if it is one.
    pub fn of(athena_type: &str) -> Option<TextForm> {
        let t = athena_type.to_ascii_lowercase();
        let zoned = t.contains("with time zone");
        Some(if t.starts_with("timestamp") && zoned {
            TextForm::TimestampWithZone
        } else if t.starts_with("time") && zoned {
            TextForm::TimeWithZone
        } else if t.starts_with("interval day to second") {
            TextForm::IntervalDaySecond
        } else if t.starts_with("interval year to month") {
            TextForm::IntervalYearMonth
        } else if ["array", "map", "row"].iter().any(|k| {
            t.strip_prefix(k)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('('))
        }) {
            TextForm::Nested
        } else {
            return None;
        })
    }
}

/// Seconds east of UTC of a zone as Athena names it (`UTC`, `Z`, `+05:30`, `-0800`, `+05`, or an
/// IANA name such as `America/New_York`) at the wall time `wall_ns` (nanoseconds from the epoch
/// read as UTC). A wall time that occurs twice (the hour a clock goes back) is read as the
/// earlier instant; one that does not occur (the hour a clock skips) does not read.
fn zone_offset(zone: &str, wall_ns: i64) -> Option<i64> {
    use chrono::{Offset, TimeZone};
    if matches!(zone, "UTC" | "Z" | "GMT" | "UT") {
        return Some(0);
    }
    if let Some(rest) = zone.strip_prefix(['+', '-']) {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "00"),
        };
        if h.len() > 2 || m.len() != 2 {
            return None;
        }
        let (h, m) = (digits(h)?, digits(m)?);
        if h > 18 || m > 59 {
            return None;
        }
        return Some(sign * (h * 3600 + m * 60));
    }
    let tz: chrono_tz::Tz = zone.parse().ok()?;
    let wall = chrono::DateTime::from_timestamp_nanos(wall_ns).naive_utc();
    let offset = tz.offset_from_local_datetime(&wall).earliest()?;
    Some(offset.fix().local_minus_utc() as i64)
}

/// Splits `<wall time> <zone>` or `<wall time><±offset>` (or a final `Z`); `date_end` is where the
/// date part ends (the offset is looked for after it, so a date's `-` is not taken for one).
fn split_zone(s: &str, date_end: usize) -> Option<(&str, &str)> {
    if let Some(wall) = s.strip_suffix('Z') {
        return Some((wall, "Z"));
    }
    if let Some((wall, zone)) = s.rsplit_once(' ')
        && wall.len() > date_end
        && !zone.is_empty()
    {
        return Some((wall, zone));
    }
    let k = s.get(date_end..)?.rfind(['+', '-'])? + date_end;
    Some((&s[..k], &s[k..]))
}

/// The zone every value of a `timestamp with time zone` column names, when they all name the
/// same one and Arrow knows it: the column keeps it (the values are instants either way).
pub(super) fn common_zone<'a>(mut values: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let zone_of = |s: &'a str| Some(split_zone(s, s.find([' ', 'T'])?)?.1);
    let first = zone_of(values.by_ref().flatten().next()?)?;
    if values.flatten().any(|s| zone_of(s) != Some(first)) {
        return None;
    }
    first
        .parse::<arrow::array::timezone::Tz>()
        .is_ok()
        .then(|| first.to_string())
}

/// `YYYY-MM-DD HH:MM:SS[.f…] <zone>` (Athena's `timestamp with time zone`, the zone a name such
/// as `UTC` or `America/New_York`, or an offset `+05:30`) → the instant, in nanoseconds since
/// the epoch (UTC).
pub fn parse_timestamp_tz(s: &str) -> Option<i64> {
    let (wall, zone) = split_zone(s, s.find([' ', 'T'])?)?;
    let wall_ns = parse_timestamp(wall.trim_end())?;
    wall_ns.checked_sub(zone_offset(zone, wall_ns)?.checked_mul(1_000_000_000)?)
}

/// `HH:MM:SS[.f…]±HH:MM` (or with a space before the offset; Athena's `time with time zone`) →
/// the UTC time of day, in nanoseconds since midnight.
pub fn parse_time_tz(s: &str) -> Option<i64> {
    let (time, zone) = split_zone(s, 0)?;
    let local = parse_time(time.trim_end())?;
    if !zone.starts_with(['+', '-']) && !matches!(zone, "UTC" | "Z") {
        return None;
    }
    let offset = zone_offset(zone, 0)? * 1_000_000_000;
    Some((local - offset).rem_euclid(86_400_000_000_000))
}

/// Athena's `interval day to second`, `[-]D HH:MM:SS.fff` → days and milliseconds (both carrying
/// the sign).
pub fn parse_interval_day_second(s: &str) -> Option<IntervalDayTime> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (days, time) = rest.split_once(' ')?;
    let (days, ms) = (digits(days)?, parse_time(time)? / 1_000_000);
    let (days, ms) = (i32::try_from(days).ok()?, ms as i32);
    Some(if neg {
        IntervalDayTime::new(-days, -ms)
    } else {
        IntervalDayTime::new(days, ms)
    })
}

/// Athena's `interval year to month`, `[-]Y-M` → months.
pub fn parse_interval_year_month(s: &str) -> Option<i32> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (y, m) = rest.split_once('-')?;
    let (y, m) = (digits(y)?, digits(m)?);
    if m > 11 {
        return None;
    }
    let months = i32::try_from(y.checked_mul(12)?.checked_add(m)?).ok()?;
    Some(if neg { -months } else { months })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_timestamps_read_as_instants() {
        let utc = parse_timestamp("2018-10-16 00:03:00.000").unwrap();
        assert_eq!(parse_timestamp_tz("2018-10-16 00:03:00.000 UTC"), Some(utc));
        assert_eq!(parse_timestamp_tz("2018-10-16 00:03:00.000 Z"), Some(utc));
        assert_eq!(parse_timestamp_tz("2018-10-16T00:03:00Z"), Some(utc));
        // New York is 4 hours behind UTC in October (daylight time), 5 in March.
        assert_eq!(
            parse_timestamp_tz("2018-10-15 20:03:00.000 America/New_York"),
            Some(utc)
        );
        let march = parse_timestamp("2000-03-01 00:00:00.000").unwrap();
        assert_eq!(
            parse_timestamp_tz("2000-02-29 19:00:00.000 America/New_York"),
            Some(march)
        );
        assert_eq!(
            parse_timestamp_tz("2018-10-16 05:33:00.000 +05:30"),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp_tz("2018-10-16 05:33:00.000+05:30"),
            Some(utc)
        );
        assert_eq!(
            parse_timestamp_tz("2018-10-15 16:03:00.000 -0800"),
            Some(utc)
        );
        assert_eq!(parse_timestamp_tz("2018-10-16 02:03:00.000 +02"), Some(utc));
        // 01:30 happens twice when New York goes back to standard time: the earlier instant.
        let first = parse_timestamp("2018-11-04 05:30:00.000").unwrap();
        assert_eq!(
            parse_timestamp_tz("2018-11-04 01:30:00.000 America/New_York"),
            Some(first)
        );
        assert_eq!(
            parse_timestamp_tz("2018-11-04 01:30:00.000 -04:00"),
            Some(first),
            "the earlier one is still daylight time"
        );
        // 02:30 does not happen when it goes forward; no zone, or an unknown one, does not read.
        for bad in [
            "2018-03-11 02:30:00.000 America/New_York",
            "2018-10-16 00:03:00.000",
            "2018-10-16 00:03:00.000 Mars/Olympus",
            "2018-10-16 00:03:00.000 +25:00",
            "2018-10-16 00:03:00.000 +5:3",
        ] {
            assert_eq!(parse_timestamp_tz(bad), None, "{bad}");
        }
    }

    #[test]
    fn zoned_times_read_as_utc_time_of_day() {
        let at = |s| parse_time(s).unwrap();
        assert_eq!(
            parse_time_tz("01:02:03.456+05:30"),
            Some(at("19:32:03.456"))
        );
        assert_eq!(
            parse_time_tz("01:02:03.456 +05:30"),
            Some(at("19:32:03.456"))
        );
        assert_eq!(parse_time_tz("20:00:00.000-08:00"), Some(at("04:00:00")));
        assert_eq!(parse_time_tz("12:00:00.000 UTC"), Some(at("12:00:00")));
        assert_eq!(parse_time_tz("12:00:00.000"), None);
        assert_eq!(parse_time_tz("12:00:00.000 America/New_York"), None);
    }

    #[test]
    fn intervals_read_as_athena_renders_them() {
        assert_eq!(
            parse_interval_day_second("2 03:04:05.000"),
            Some(IntervalDayTime::new(2, 11_045_000))
        );
        assert_eq!(
            parse_interval_day_second("-2 03:04:05.500"),
            Some(IntervalDayTime::new(-2, -11_045_500))
        );
        assert_eq!(
            parse_interval_day_second("0 00:00:00.000"),
            Some(IntervalDayTime::new(0, 0))
        );
        assert_eq!(parse_interval_day_second("2 days"), None);
        assert_eq!(parse_interval_year_month("1-2"), Some(14));
        assert_eq!(parse_interval_year_month("-1-2"), Some(-14));
        assert_eq!(parse_interval_year_month("0-0"), Some(0));
        assert_eq!(parse_interval_year_month("1-12"), None);
        assert_eq!(parse_interval_year_month("14"), None);
    }
}
