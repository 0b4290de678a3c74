//! Comparisons that run queries: a statement on Athena and then on the local engine at the
//! table version Athena saw, or the local engine against a saved Athena result (at the version
//! it records); each side's table version, lake state and run time go into the report.

use std::sync::atomic::AtomicBool;

use super::offline::{self, Against};
use super::{
    CompareError, Comparison, Side, SideFacts, Tolerance, check_cut_ties, compare, output_order,
    without_limit,
};
use crate::engine::athena::AthenaEngine;
use crate::engine::{Clock, EngineError, LocalEngine, QueryOutput, Submitted};
use crate::lake::delta::read::AsOf as TableAsOf;

fn failed(what: &str, side: &str, e: EngineError) -> CompareError {
    CompareError::SideFailed {
        what: what.to_string(),
        side: side.to_string(),
        message: e.to_string(),
    }
}

/// Runs `sql` on the local engine at `at` (None: the latest version, or the session's pin),
/// until done or `cancel`, and reads the state of the table it read.
async fn run_local(
    local: &LocalEngine,
    what: &str,
    sql: &str,
    at: Option<TableAsOf>,
    cancel: &AtomicBool,
) -> Result<(QueryOutput, SideFacts), CompareError> {
    let out = crate::engine::cancellable(local.query_at(sql, at), cancel, "local")
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

/// Runs `sql` on Athena (until done or `cancel`), then on the local engine at the table version
/// Athena saw, and compares the results; also returns the local result. Athena cannot be pinned,
/// so its engine records the latest version just before the query started and just after it
/// ended: the local side reads that version when they are equal, else the later one (and the
/// report says the table moved, between which versions). When the versions cannot be read, the
/// local side reads the latest version.
pub async fn run_both(
    local: &LocalEngine,
    athena: &AthenaEngine,
    what: &str,
    sql: &str,
    tol: Tolerance,
    cancel: &AtomicBool,
) -> Result<(Comparison, QueryOutput), CompareError> {
    let client_clock = chrono::Utc::now();
    let aout = athena
        .query(sql, cancel)
        .await
        .map_err(|e| failed(what, "athena", e))?;
    let versions = aout.info.table_versions;
    // Athena's own submission time; this machine's clock only when Athena gave none.
    let submitted = aout.info.submitted.unwrap_or(Submitted {
        at: client_clock,
        clock: Clock::Client,
    });
    let at = versions.map(|v| TableAsOf::Version(v.after));
    let (lout, lfacts) = run_local(local, what, sql, at, cancel).await?;
    let afacts = SideFacts {
        label: "athena".into(),
        engine: "athena".into(),
        query_id: aout.info.query_id.clone(),
        ran_at: Some(submitted.rfc3339()),
        clock: Some(submitted.clock),
        table_versions: versions,
        ..SideFacts::default()
    };
    let mut c = compare(
        what,
        &Side {
            output: &lout,
            facts: lfacts,
        },
        &Side {
            output: &aout,
            facts: afacts,
        },
        &output_order(sql),
        tol,
    );
    check_ties(local, &mut c, sql, cancel).await;
    Ok((c, lout))
}

/// Which table version the local engine reads in an offline comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The latest version.
    Now,
    /// A version, or the last version committed at or before a moment.
    At(TableAsOf),
    /// The version each saved result records (the later one when the table moved during the
    /// query); the latest version for a result that records none.
    Saved,
}

impl std::str::FromStr for AsOf {
    type Err = String;
    fn from_str(s: &str) -> Result<AsOf, String> {
        match s {
            "now" => Ok(AsOf::Now),
            "saved" => Ok(AsOf::Saved),
            other => other
                .parse::<TableAsOf>()
                .map(AsOf::At)
                .map_err(|e| format!("{e}, `saved` or `now`")),
        }
    }
}

/// Runs the query `name` (text `sql`) on the local engine over `lake` (until done or `cancel`)
/// and compares it with its saved result in `against`. The local engine's database is the one
/// the saved result ran in, else `stocklake` (see [`against_saved_in`]).
pub async fn against_saved(
    lake: &str,
    against: &Against,
    name: &str,
    sql: &str,
    as_of: AsOf,
    tol: Tolerance,
    cancel: &AtomicBool,
) -> Result<Comparison, CompareError> {
    let local = Offline {
        lake,
        database: crate::engine::local::DATABASE,
        as_of,
    };
    against_saved_in(&local, against, name, sql, tol, cancel).await
}

/// Where and at which version an offline comparison runs the local side.
#[derive(Debug, Clone, Copy)]
pub struct Offline<'a> {
    pub lake: &'a str,
    /// The database for saved results that do not record theirs (a result's own database is
    /// the one its SQL text was resolved in on Athena, so the local engine takes it).
    pub database: &'a str,
    pub as_of: AsOf,
}

/// [`against_saved`], with the database for results that record none.
pub async fn against_saved_in(
    local: &Offline<'_>,
    against: &Against,
    name: &str,
    sql: &str,
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
    let pin = match local.as_of {
        AsOf::Now => None,
        AsOf::At(a) => Some(a),
        AsOf::Saved => sfacts.table_versions.map(|v| TableAsOf::Version(v.after)),
    };
    let database = entry
        .meta
        .as_ref()
        .map_or(local.database, |m| m.database.as_str());
    let engine = LocalEngine::open_in(local.lake, database, None)
        .await
        .map_err(|e| failed(name, "local", e))?;
    let (lout, lfacts) = run_local(&engine, name, sql, pin, cancel).await?;
    let mut c = compare(
        name,
        &Side {
            output: &lout,
            facts: lfacts,
        },
        &Side {
            output: &saved,
            facts: sfacts,
        },
        &output_order(sql),
        tol,
    );
    check_ties(&engine, &mut c, sql, cancel).await;
    Ok(c)
}

/// Checks the ties a LIMIT or OFFSET cut where the engines kept different rows (see
/// [`check_cut_ties`]): runs `sql` without them on the local engine, at the table version
/// the comparison read.
async fn check_ties(local: &LocalEngine, c: &mut Comparison, sql: &str, cancel: &AtomicBool) {
    if c.cut_ties.is_empty() {
        return;
    }
    let Some(unlimited) = without_limit(sql) else {
        c.notes.push(
            "the rows kept among ties at the cut were not checked: the query could not be \
             rewritten without its LIMIT"
                .into(),
        );
        return;
    };
    let at = c
        .left
        .facts
        .lake
        .as_ref()
        .map(|l| TableAsOf::Version(l.version));
    match crate::engine::cancellable(local.query_at(&unlimited, at), cancel, "local").await {
        Ok(out) => check_cut_ties(c, &out),
        Err(e) => c.notes.push(format!(
            "the rows kept among ties at the cut were not checked: {e}"
        )),
    }
}
