//! What Athena bills for one execution: $5 per TB scanned, the bytes rounded up to the next MB
//! with a 10 MB minimum, for DML queries; DDL and utility statements and failed queries are
//! free. (A cancelled query is billed for what it scanned before it stopped.) MB and TB are
//! decimal (10^6 and 10^12 bytes), as Athena's console and pricing page count them.

use aws_sdk_athena::types::{QueryExecutionState, StatementType};
use serde::{Deserialize, Serialize};

/// Athena's price per TB scanned, in US dollars (most regions).
pub const USD_PER_TB: f64 = 5.0;
/// Bytes in a billed MB.
pub const MB: u64 = 1_000_000;
/// The least a billed query pays for, in MB.
pub const MIN_BILLED_MB: u64 = 10;

/// The bytes an execution scanned and the bytes Athena bills for it (0: free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub scanned: u64,
    pub billed: u64,
}

/// Whether Athena bills an execution of `statement` that ended in `state`: DML (or a statement
/// of unknown type) that succeeded, or was cancelled; never DDL, utility statements
/// (SHOW, DESCRIBE, EXPLAIN) or failed queries.
pub fn billable(statement: Option<&StatementType>, state: Option<&QueryExecutionState>) -> bool {
    let dml = matches!(statement, Some(StatementType::Dml) | None);
    let ran = matches!(
        state,
        Some(QueryExecutionState::Succeeded | QueryExecutionState::Cancelled) | None
    );
    dml && ran
}

impl Bill {
    /// The bill of an execution that scanned `scanned` bytes; `billable`: see [`billable`].
    pub fn new(scanned: u64, billable: bool) -> Bill {
        let billed = if billable {
            scanned.div_ceil(MB).max(MIN_BILLED_MB) * MB
        } else {
            0
        };
        Bill { scanned, billed }
    }

    /// A DML query that succeeded.
    pub fn dml(scanned: u64) -> Bill {
        Bill::new(scanned, true)
    }

    pub fn cost_usd(&self) -> f64 {
        self.billed as f64 / 1e12 * USD_PER_TB
    }

    /// `data scanned: 1.23 MB, billed 10 MB, cost: $0.00005` (or `…, not billed` when free).
    pub fn summary(&self) -> String {
        let scanned = format!("data scanned: {:.2} MB", self.scanned as f64 / 1e6);
        if self.billed == 0 {
            return format!("{scanned}, not billed");
        }
        format!(
            "{scanned}, billed {} MB, cost: ${}",
            self.billed / MB,
            dollars(self.cost_usd())
        )
    }
}

/// Dollars to the millionth (one billed MB is $0.000005), without trailing zeros.
fn dollars(usd: f64) -> String {
    let text = format!("{usd:.6}");
    let text = text.trim_end_matches('0');
    text.strip_suffix('.').unwrap_or(text).to_string()
}

/// The cost in US dollars of a DML query that scanned `bytes` (see [`Bill`]).
pub fn cost_usd(bytes: u64) -> f64 {
    Bill::dml(bytes).cost_usd()
}

/// The summary line of a DML query that scanned `bytes` (see [`Bill::summary`]).
pub fn scanned_summary(bytes: u64) -> String {
    Bill::dml(bytes).summary()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_dml_query_pays_for_10_mb() {
        for scanned in [0, 1, 999_999, 10_000_000] {
            assert_eq!(Bill::dml(scanned).billed, 10 * MB, "{scanned}");
        }
        assert_eq!(cost_usd(0), 10.0 * 1e6 / 1e12 * 5.0);
        assert!(scanned_summary(123).ends_with("billed 10 MB, cost: $0.00005"));
        assert_eq!(dollars(5.0), "5");
        assert_eq!(dollars(0.000005), "0.000005");
    }

    #[test]
    fn bytes_round_up_to_the_next_mb() {
        assert_eq!(Bill::dml(10_000_001).billed, 11 * MB);
        assert_eq!(Bill::dml(25_500_000).billed, 26 * MB);
        assert_eq!(Bill::dml(26_000_000).billed, 26 * MB);
        assert_eq!(cost_usd(1_000_000_000_000), 5.0);
        assert_eq!(
            cost_usd(1_000_000_000_001),
            (1_000_001.0 * 1e6) / 1e12 * 5.0
        );
        let s = scanned_summary(2_000_000_000);
        assert!(
            s.contains("2000.00 MB") && s.ends_with("cost: $0.01"),
            "{s}"
        );
    }

    #[test]
    fn ddl_utility_and_failed_queries_are_free() {
        use QueryExecutionState as S;
        use StatementType as T;
        let ok = Some(&S::Succeeded);
        assert!(billable(Some(&T::Dml), ok));
        assert!(billable(None, ok), "an unknown statement type is billed");
        assert!(!billable(Some(&T::Ddl), ok));
        assert!(!billable(Some(&T::Utility), ok));
        assert!(!billable(Some(&T::Dml), Some(&S::Failed)));
        assert!(billable(Some(&T::Dml), Some(&S::Cancelled)));
        let free = Bill::new(5_000_000_000, billable(Some(&T::Ddl), ok));
        assert_eq!(
            (free.scanned, free.billed, free.cost_usd()),
            (5_000_000_000, 0, 0.0)
        );
        assert!(free.summary().ends_with("not billed"), "{}", free.summary());
        let failed = Bill::new(42, billable(Some(&T::Dml), Some(&S::Failed)));
        assert_eq!(failed.cost_usd(), 0.0);
    }
}
