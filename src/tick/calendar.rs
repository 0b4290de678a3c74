//! Calendar arithmetic of the proleptic Gregorian calendar in UTC: days since the epoch and back,
//! and ISO 8601 timestamps in milliseconds.

/// Milliseconds in one day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ` into `buf`, returning its length.
pub fn format_iso_millis(ms: i64, buf: &mut [u8; 32]) -> usize {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    use std::io::Write;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    write!(
        cur,
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
    )
    .expect("32 bytes hold any year 1..9999 timestamp");
    cur.position() as usize
}

/// Parses an ISO 8601 timestamp in UTC (`Z` or `+00:00`), with optional fraction of a second,
/// to milliseconds since the epoch. A bare date (`YYYY-MM-DD`) means midnight UTC.
pub fn parse_iso_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0i64, |acc, c| acc * 10 + (c - b'0') as i64),
        )
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32) as i64 {
        return None;
    }
    let day_ms = days_from_civil(y, mo as u32, d as u32) * MS_PER_DAY;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !(b[10] == b'T' || b[10] == b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds: the first three digits, padded; finer digits are truncated.
        let digits = &b[start..i];
        for k in 0..3 {
            frac_ms = frac_ms * 10 + digits.get(k).map_or(0, |c| (c - b'0') as i64);
        }
    }
    match &b[i..] {
        b"Z" | b"z" | b"+00:00" | b"+0000" | b"" => {}
        _ => return None,
    }
    Some(day_ms + ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms)
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversions_round_trip() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn iso_parsing_accepts_utc_forms_only() {
        let base = parse_iso_millis("2013-03-01T00:00:00Z").unwrap();
        assert_eq!(parse_iso_millis("2013-03-01"), Some(base));
        assert_eq!(parse_iso_millis("2013-03-01 00:00:00"), Some(base));
        assert_eq!(parse_iso_millis("2013-03-01T00:00:00.5Z"), Some(base + 500));
        assert_eq!(
            parse_iso_millis("2013-03-01T00:00:00.123456+00:00"),
            Some(base + 123)
        );
        assert_eq!(parse_iso_millis("2013-02-29"), None);
        assert_eq!(parse_iso_millis("2013-03-01T00:00:00+01:00"), None);
        assert_eq!(parse_iso_millis("2013-03-01T24:00:00Z"), None);
        assert_eq!(parse_iso_millis("garbage"), None);
    }
}
