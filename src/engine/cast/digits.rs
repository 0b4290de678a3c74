//! Trino's float-to-decimal arithmetic on text: a float's shortest round-trip decimal digits
//! (what Java's `Double.toString` / `Float.toString` give since JDK 19, and Rust's `{:e}`),
//! rounded half-up (away from zero) at a decimal scale; and Java's rendering of a float, for the
//! error that names it.

/// A finite float's shortest round-trip digits: `-1.005` is negative, digits `1005`, exponent
/// 0 (the first digit's power of ten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortest {
    pub negative: bool,
    /// Without leading zeros, except zero itself (`0`).
    pub digits: String,
    pub exponent: i32,
}

impl Shortest {
    /// Reads Rust's `{:e}` text (`-1.005e0`, `1e-7`, `0e0`).
    fn parse(text: &str) -> Option<Self> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = text.split_once('e')?;
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Shortest {
            negative,
            digits,
            exponent: exponent.parse().ok()?,
        })
    }

    /// A double's shortest digits; None for NaN and the infinities.
    pub fn of_f64(v: f64) -> Option<Self> {
        if v.is_finite() {
            Self::parse(&format!("{v:e}"))
        } else {
            None
        }
    }

    /// A real's (float32's) shortest digits, as `Float.toString` picks them (not the double's).
    pub fn of_f32(v: f32) -> Option<Self> {
        if v.is_finite() {
            Self::parse(&format!("{v:e}"))
        } else {
            None
        }
    }

    /// The unscaled value at `scale`, rounded half-up (a tie goes away from zero): the sign and
    /// the magnitude's digits without leading zeros (empty for zero). `max_digits` bounds the
    /// work: a magnitude longer than that comes back as None (it overflows any precision up to
    /// `max_digits`).
    pub fn unscaled(&self, scale: i8, max_digits: usize) -> Option<(bool, String)> {
        let n = self.digits.len() as i64;
        // value = digits × 10^(exponent - (n - 1)); unscaled = value × 10^scale.
        let shift = i64::from(self.exponent) - (n - 1) + i64::from(scale);
        let magnitude = if shift >= 0 {
            if n + shift > max_digits as i64 + 1 {
                return None;
            }
            let mut m = self.digits.clone();
            m.extend(std::iter::repeat_n('0', shift as usize));
            m
        } else {
            let dropped = -shift;
            if dropped > n {
                // Below a tenth of the last kept unit: rounds to zero.
                String::new()
            } else {
                let keep = (n - dropped) as usize;
                let round_up = self.digits.as_bytes()[keep] >= b'5';
                let mut m = self.digits[..keep].to_string();
                if round_up {
                    m = increment(&m);
                }
                m
            }
        };
        let magnitude = magnitude.trim_start_matches('0').to_string();
        if magnitude.len() > max_digits {
            return None;
        }
        let negative = self.negative && !magnitude.is_empty();
        Some((negative, magnitude))
    }

    /// Java's `Double.toString` / `Float.toString` text of these digits: plain from 10^-3 up to
    /// 10^7 (`1.005`, `100.0`, `0.001`), computerized scientific notation otherwise (`1.0E20`,
    /// `1.0E-7`).
    pub fn java_text(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let d = self.digits.as_str();
        let e = self.exponent;
        if (-3..7).contains(&e) {
            if e < 0 {
                let zeros = "0".repeat((-e - 1) as usize);
                return format!("{sign}0.{zeros}{d}");
            }
            let int_len = e as usize + 1;
            let (int, frac) = if d.len() > int_len {
                (d[..int_len].to_string(), d[int_len..].to_string())
            } else {
                (format!("{d:0<int_len$}"), "0".to_string())
            };
            return format!("{sign}{int}.{frac}");
        }
        let frac = if d.len() > 1 { &d[1..] } else { "0" };
        format!("{sign}{}.{frac}E{e}", &d[..1])
    }
}

/// A decimal digit string plus one (`"" + 1 = "1"`, `"99" + 1 = "100"`).
fn increment(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    let mut out = String::with_capacity(bytes.len() + 1);
    out.push('1');
    out.push_str(&String::from_utf8_lossy(&bytes));
    out
}

/// Java's text of a double, `NaN` and `Infinity` included.
pub fn java_f64(v: f64) -> String {
    match Shortest::of_f64(v) {
        Some(s) => s.java_text(),
        None => non_finite(v.is_nan(), v < 0.0),
    }
}

/// Java's text of a real (`Float.toString`).
pub fn java_f32(v: f32) -> String {
    match Shortest::of_f32(v) {
        Some(s) => s.java_text(),
        None => non_finite(v.is_nan(), v < 0.0),
    }
}

fn non_finite(nan: bool, negative: bool) -> String {
    match (nan, negative) {
        (true, _) => "NaN".into(),
        (false, true) => "-Infinity".into(),
        (false, false) => "Infinity".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decimal text of `v` at `scale`, as the unscaled digits say.
    fn at(v: f64, scale: i8) -> String {
        let (neg, m) = Shortest::of_f64(v).unwrap().unscaled(scale, 76).unwrap();
        let m = format!("{m:0>width$}", width = scale.max(0) as usize + 1);
        let (int, frac) = m.split_at(m.len() - scale.max(0) as usize);
        let sign = if neg { "-" } else { "" };
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    #[test]
    fn halves_round_up_from_the_decimal_text_not_the_binary_double() {
        // 1.005 is 1.00499999999999989… in binary; Trino reads "1.005".
        assert_eq!(at(1.005, 2), "1.01");
        assert_eq!(at(2.675, 2), "2.68");
        assert_eq!(at(0.125, 2), "0.13");
        assert_eq!(at(284.525, 2), "284.53");
        assert_eq!(at(1.004, 2), "1.00");
        assert_eq!(at(1.0049999, 2), "1.00");
    }

    #[test]
    fn negative_ties_round_away_from_zero() {
        assert_eq!(at(-1.005, 2), "-1.01");
        assert_eq!(at(-0.125, 2), "-0.13");
        assert_eq!(at(-1.004, 2), "-1.00");
        // Rounds to zero: no negative zero.
        assert_eq!(at(-0.001, 2), "0.00");
    }

    #[test]
    fn tiny_and_large_values_and_other_scales() {
        assert_eq!(at(1e-7, 2), "0.00");
        assert_eq!(at(0.005, 2), "0.01");
        assert_eq!(at(0.0049, 2), "0.00");
        assert_eq!(at(1e20, 0), "100000000000000000000");
        assert_eq!(at(123.456, 0), "123");
        assert_eq!(at(0.5, 0), "1");
        assert_eq!(at(-2.5, 0), "-3");
        assert_eq!(at(99.995, 2), "100.00");
        assert_eq!(at(0.0, 3), "0.000");
        assert_eq!(at(1.5, 5), "1.50000");
        // A negative scale (arrow allows it): 1250 at scale -2 is 13 hundreds.
        assert_eq!(at(1250.0, -2), "13");
    }

    #[test]
    fn magnitudes_are_bounded_by_the_digits_allowed() {
        // DECIMAL(10, 2) holds 99999999.99 at most.
        let s = Shortest::of_f64(99_999_999.994).unwrap();
        assert_eq!(s.unscaled(2, 10), Some((false, "9999999999".into())));
        // Rounding up adds a digit: 100000000.00 needs 11.
        let s = Shortest::of_f64(99_999_999.995).unwrap();
        assert_eq!(s.unscaled(2, 10), None);
        assert_eq!(
            Shortest::of_f64(-99_999_999.995).unwrap().unscaled(2, 10),
            None
        );
        assert_eq!(Shortest::of_f64(1e300).unwrap().unscaled(2, 76), None);
        assert_eq!(
            Shortest::of_f64(-1e20).unwrap().unscaled(2, 38),
            Some((true, format!("1{}", "0".repeat(22))))
        );
    }

    #[test]
    fn reals_use_their_own_shortest_digits() {
        // 1.005f32 is 1.00499999523… as a double ("1.0049999952316284"); Float.toString says
        // "1.005".
        let s = Shortest::of_f32(1.005).unwrap();
        assert_eq!(s.unscaled(2, 10), Some((false, "101".into())));
        let widened = Shortest::of_f64(f64::from(1.005f32)).unwrap();
        assert_eq!(widened.unscaled(2, 10), Some((false, "100".into())));
        assert_eq!(java_f32(0.1), "0.1");
        assert_eq!(java_f32(3.4e38), "3.4E38");
    }

    #[test]
    fn non_finite_values_have_no_digits() {
        assert_eq!(Shortest::of_f64(f64::NAN), None);
        assert_eq!(Shortest::of_f64(f64::INFINITY), None);
        assert_eq!(Shortest::of_f32(f32::NEG_INFINITY), None);
    }

    #[test]
    fn java_text_matches_double_to_string() {
        for (v, java) in [
            (1.005, "1.005"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1e-7, "1.0E-7"),
            (1234567.0, "1234567.0"),
            (12345678.0, "1.2345678E7"),
            (1e20, "1.0E20"),
            (-1.5e300, "-1.5E300"),
            (1.8622061957186546e7, "1.8622061957186546E7"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_f64(v), java, "{v:e}");
        }
    }
}
