//! The frame every failover operation runs in: the stores it needs open, the
//! pair lock held in each of them (not for a dry run, which changes nothing),
//! released however the operation ends, and the time it took in the report.

use std::time::Instant;

use super::promote::sync_options;
use super::report::{FailoverOptions, FailoverReport};
use crate::store::Store;
use crate::sync::engine::PairStores;
use crate::sync::{SyncEngine, SyncError, pair_lock};
use crate::topology::{Pair, Pool};

impl SyncEngine {
    /// Runs `run` with both stores of `pair` open and the pair lock held in
    /// both. When a store cannot be reached, the operation is refused with
    /// `unreachable(error)`'s words.
    pub(super) async fn with_pair_locked(
        &self,
        pair: &Pair,
        opts: &FailoverOptions,
        unreachable: impl FnOnce(&SyncError) -> String,
        run: impl AsyncFnOnce(&PairStores) -> Result<FailoverReport, SyncError>,
    ) -> Result<FailoverReport, SyncError> {
        let started = Instant::now();
        let stores = self
            .open_pair(pair, &sync_options(opts))
            .await
            .map_err(|e| SyncError::Refused(unreachable(&e)))?;
        let held = [(&pair.pool, &*stores.0), (&pair.partner, &*stores.1)];
        let result = locked_in(pair, &held, opts, async || run(&stores).await).await;
        timed(result, started)
    }

    /// Runs `run` with the pair lock held in the stores given (those of the
    /// pair that can be reached, when one pool is lost).
    pub(super) async fn with_locked_in(
        &self,
        pair: &Pair,
        held: &[(&Pool, &dyn Store)],
        opts: &FailoverOptions,
        run: impl AsyncFnOnce() -> Result<FailoverReport, SyncError>,
    ) -> Result<FailoverReport, SyncError> {
        let started = Instant::now();
        timed(locked_in(pair, held, opts, run).await, started)
    }
}

async fn locked_in(
    pair: &Pair,
    held: &[(&Pool, &dyn Store)],
    opts: &FailoverOptions,
    run: impl AsyncFnOnce() -> Result<FailoverReport, SyncError>,
) -> Result<FailoverReport, SyncError> {
    let locks = if opts.what_if {
        Vec::new()
    } else {
        pair_lock::lock_in(pair, held, &sync_options(opts)).await?
    };
    let result = run().await;
    pair_lock::release(locks).await;
    result
}

/// The report with the time since `started`.
fn timed(
    result: Result<FailoverReport, SyncError>,
    started: Instant,
) -> Result<FailoverReport, SyncError> {
    let mut report = result?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
