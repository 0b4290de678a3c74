//! What a finished `GetQueryExecution` tells about a query: its statement type, result file, data
//! scanned and bill, Athena's own submission time and the engine version that ran it.

use aws_sdk_athena::types::{QueryExecution, StatementType};
use chrono::{DateTime, Utc};

use super::cost::{Bill, billable};
use crate::engine::saved::EngineVersion;
use crate::engine::{Clock, Submitted};

/// The facts of a finished execution.
#[derive(Debug, Clone)]
pub(super) struct Finished {
    pub statement_type: Option<StatementType>,
    pub output_location: Option<String>,
    pub bill: Bill,
    /// Athena's `Status.SubmissionDateTime`, when it gave one.
    pub submitted: Option<DateTime<Utc>>,
    pub engine_version: Option<EngineVersion>,
}

/// The bytes an execution reports scanned so far.
pub(super) fn scanned(q: &QueryExecution) -> u64 {
    q.statistics()
        .and_then(|s| s.data_scanned_in_bytes())
        .unwrap_or(0)
        .max(0) as u64
}

/// Reads the facts of a finished execution.
pub(super) fn finished(q: &QueryExecution) -> Finished {
    let state = q.status().and_then(|s| s.state());
    let submitted = q
        .status()
        .and_then(|s| s.submission_date_time())
        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
    let engine_version = q.engine_version().map(|v| EngineVersion {
        selected: v.selected_engine_version().map(str::to_string),
        effective: v.effective_engine_version().map(str::to_string),
    });
    Finished {
        statement_type: q.statement_type().cloned(),
        output_location: q
            .result_configuration()
            .and_then(|r| r.output_location())
            .map(str::to_string),
        bill: Bill::new(scanned(q), billable(q.statement_type(), state)),
        submitted,
        engine_version,
    }
}

impl Finished {
    /// When the query was submitted: Athena's time, else `client` (this machine's clock before
    /// StartQueryExecution).
    pub fn submitted_or(&self, client: DateTime<Utc>) -> Submitted {
        match self.submitted {
            Some(at) => Submitted {
                at,
                clock: Clock::Athena,
            },
            None => Submitted {
                at: client,
                clock: Clock::Client,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_athena::primitives::DateTime as SdkTime;
    use aws_sdk_athena::types::{
        EngineVersion as SdkVersion, QueryExecutionState, QueryExecutionStatistics,
        QueryExecutionStatus,
    };

    #[test]
    fn athenas_submission_time_and_engine_version_are_read() {
        let q = QueryExecution::builder()
            .statement_type(StatementType::Dml)
            .status(
                QueryExecutionStatus::builder()
                    .state(QueryExecutionState::Succeeded)
                    .submission_date_time(SdkTime::from_millis(1_764_581_400_250))
                    .build(),
            )
            .statistics(
                QueryExecutionStatistics::builder()
                    .data_scanned_in_bytes(12_345_678)
                    .build(),
            )
            .engine_version(
                SdkVersion::builder()
                    .selected_engine_version("AUTO")
                    .effective_engine_version("Athena engine version 3")
                    .build(),
            )
            .build();
        let f = finished(&q);
        let at = f.submitted.unwrap();
        assert_eq!(at.to_rfc3339(), "2025-12-01T09:30:00.250+00:00");
        let client = DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(f.submitted_or(client).clock, Clock::Athena);
        assert_eq!(f.submitted_or(client).at, at);
        let v = f.engine_version.unwrap();
        assert_eq!(v.selected.as_deref(), Some("AUTO"));
        assert_eq!(v.effective.as_deref(), Some("Athena engine version 3"));
        assert_eq!((f.bill.scanned, f.bill.billed), (12_345_678, 13_000_000));

        // No submission time: the client clock, and said so. A DDL statement is free.
        let q = QueryExecution::builder()
            .statement_type(StatementType::Ddl)
            .build();
        let f = finished(&q);
        assert_eq!(f.submitted_or(client).clock, Clock::Client);
        assert_eq!(f.submitted_or(client).at, client);
        assert!(f.engine_version.is_none());
        assert_eq!(f.bill.billed, 0);
    }
}
