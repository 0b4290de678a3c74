//! Comparisons that run queries: a statement on both engines at once, or the local engine
//! against a saved Athena result; each side's lake state and run time go into the report.

use std::sync::atomic::AtomicBool;

use super::offline::{self, Against};
use super::{CompareError, Comparison, Side, SideFacts, Tolerance, compare, orders_output};
use crate::engine::athena::AthenaEngine;
use crate::engine::{EngineError, LocalEngine, QueryOutput};

fn failed(what: &str, side: &str, e: EngineError) -> CompareError {
    CompareError::SideFailed {
        what: what.to_string(),
        side: side.to_string(),
        message: e.to_string(),
    }
}

/// Runs `sql` on the local engine (until done or `cancel`) and reads the lake state it saw.
async fn run_local(
    local: &LocalEngine,
    what: &str,
    sql: &str,
    cancel: &AtomicBool,
) -> Result<(QueryOutput, SideFacts), CompareError> {
    let out = crate::engine::cancellable(local.query(sql), cancel, "local")
        .await
        .map_err(|e| failed(what, "local", e))?;
    let lake = match local.lake_state().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("reading the lake state: {}", crate::report::chain(&e));
            None
        }
    };
    let facts = SideFacts {
        label: "local".into(),
        engine: "local".into(),
        ran_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        lake,
        ..SideFacts::default()
    };
    Ok((out, facts))
}

/// Runs `sql` on both engines at once (until done or `cancel`) and compares the results; also
/// returns the local result.
pub async fn run_both(
    local: &LocalEngine,
    athena: &AthenaEngine,
    what: &str,
    sql: &str,
    tol: Tolerance,
    cancel: &AtomicBool,
) -> Result<(Comparison, QueryOutput), CompareError> {
    let submitted = chrono::Utc::now();
    let (l, a) = tokio::join!(
        run_local(local, what, sql, cancel),
        athena.query(sql, cancel)
    );
    let (lout, lfacts) = l?;
    let aout = a.map_err(|e| failed(what, "athena", e))?;
    let afacts = SideFacts {
        label: "athena".into(),
        engine: "athena".into(),
        query_id: aout.info.query_id.clone(),
        ran_at: Some(submitted.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        ..SideFacts::default()
    };
    let c = compare(
        what,
        &Side {
            output: &lout,
            facts: lfacts,
        },
        &Side {
            output: &aout,
            facts: afacts,
        },
        orders_output(sql),
        tol,
    );
    Ok((c, lout))
}

/// How the local engine is pinned for an offline comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The lake as it is now.
    Now,
    /// Files last modified at or before this moment.
    At(chrono::DateTime<chrono::Utc>),
    /// Each saved result's own run time.
    Saved,
}

impl std::str::FromStr for AsOf {
    type Err = String;
    fn from_str(s: &str) -> Result<AsOf, String> {
        match s {
            "now" => Ok(AsOf::Now),
            "saved" => Ok(AsOf::Saved),
            t => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| AsOf::At(t.with_timezone(&chrono::Utc)))
                .map_err(|e| {
                    format!("--as-of {t:?}: expected an RFC 3339 time, `saved` or `now`: {e}")
                }),
        }
    }
}

/// Runs the query `name` (text `sql`) on the local engine over `lake` (until done or `cancel`)
/// and compares it with its saved result in `against`.
pub async fn against_saved(
    lake: &str,
    against: &Against,
    name: &str,
    sql: &str,
    as_of: AsOf,
    tol: Tolerance,
    cancel: &AtomicBool,
) -> Result<Comparison, CompareError> {
    let entry = against
        .find(name, sql)
        .ok_or_else(|| CompareError::NoSavedResult {
            query: name.to_string(),
            against: against.location.display().to_string(),
            looked: format!("{name}.csv"),
        })?;
    let (saved, sfacts) = offline::load(entry)?;
    let pin = match as_of {
        AsOf::Now => None,
        AsOf::At(t) => Some(t),
        AsOf::Saved => {
            let t = sfacts
                .ran_at
                .as_deref()
                .ok_or_else(|| CompareError::SideFailed {
                    what: name.to_string(),
                    side: "athena".into(),
                    message: format!(
                        "--as-of saved: {} does not say when its query ran",
                        entry.csv.display()
                    ),
                })?;
            let t =
                chrono::DateTime::parse_from_rfc3339(t).map_err(|e| CompareError::SideFailed {
                    what: name.to_string(),
                    side: "athena".into(),
                    message: format!("{}: submitted_at {t:?}: {e}", entry.csv.display()),
                })?;
            Some(t.with_timezone(&chrono::Utc))
        }
    };
    let local = LocalEngine::open_as_of(lake, pin)
        .await
        .map_err(|e| failed(name, "local", e))?;
    let (lout, lfacts) = run_local(&local, name, sql, cancel).await?;
    Ok(compare(
        name,
        &Side {
            output: &lout,
            facts: lfacts,
        },
        &Side {
            output: &saved,
            facts: sfacts,
        },
        orders_output(sql),
        tol,
    ))
}
