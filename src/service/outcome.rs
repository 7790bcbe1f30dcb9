//! How one sync of the service ended, as a log line and as what the pair's
//! loop does next.

use std::time::Instant;

use crate::sync::{SyncError, SyncReport, human_bytes};
use crate::topology::Pair;

/// What a sync of the service looked at.
pub(super) enum Scan {
    /// The whole of both pools; `reason`: why before its time.
    Full { reason: Option<String> },
    /// The paths the watcher saw change, the oldest first seen at `oldest`.
    Changes { paths: usize, oldest: Instant },
}

/// What the loop makes of a sync's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Synced,
    /// Another sync holds the pair lock: try again soon, not a failure.
    Busy,
    /// The pair is failed over (or on its way): nothing to sync until a failback.
    Refused,
    /// The error, for the loop to log with when it retries.
    Failed(String),
    Interrupted,
}

/// Logs how a sync ended (one line, with its warnings) and says what it was.
pub(super) fn log(
    pair: &Pair,
    scan: &Scan,
    result: Result<SyncReport, SyncError>,
    started: Instant,
) -> Outcome {
    let pool = &pair.pool.fqdn;
    match result {
        Ok(report) => {
            log_cycle(&report, scan, started);
            Outcome::Synced
        }
        Err(SyncError::Interrupted(_)) => {
            // The service is stopping: say what the cut-short sync was for.
            tracing::info!(
                pool = %pool,
                scan = scan.kind(),
                reason = scan.reason(),
                duration_ms = started.elapsed().as_millis() as u64,
                "cycle interrupted"
            );
            Outcome::Interrupted
        }
        Err(SyncError::Refused(why)) => {
            // Said once a full cycle: between scans only the pair's failover
            // record is watched, for the failback.
            tracing::warn!(
                pool = %pool,
                reason = %why,
                "cycle skipped: the pair is not in normal operation"
            );
            Outcome::Refused
        }
        Err(SyncError::Busy { pool: at, holder }) => {
            tracing::info!(
                pool = %pool,
                lock_at = %at,
                holder = %holder,
                "cycle skipped: another sync of this pair is running"
            );
            Outcome::Busy
        }
        Err(e) => {
            if let SyncError::Failed(report) = &e {
                log_warnings(report);
            }
            Outcome::Failed(e.to_string())
        }
    }
}

/// Logs a failed sync, how many failed in a row, and when the next try is.
pub(super) fn log_failure(
    pair: &Pair,
    scan: &Scan,
    error: &str,
    failures: u32,
    retry: std::time::Duration,
) {
    tracing::warn!(
        pool = %pair.pool.fqdn,
        scan = scan.kind(),
        error,
        failures,
        retry_in_s = retry.as_secs(),
        "cycle failed"
    );
}

impl Scan {
    fn kind(&self) -> &'static str {
        match self {
            Scan::Full { .. } => "full",
            Scan::Changes { .. } => "changes",
        }
    }

    /// Why a full scan ran before its time, if it did.
    fn reason(&self) -> Option<&str> {
        match self {
            Scan::Full { reason } => reason.as_deref(),
            Scan::Changes { .. } => None,
        }
    }
}

fn log_cycle(report: &SyncReport, scan: &Scan, started: Instant) {
    let states: Vec<String> = report
        .modules
        .iter()
        .map(|m| format!("{}:{}>{}", m.module.short_name(), m.from, m.export_status))
        .collect();
    let reason = scan.reason();
    let (paths, lag_ms) = match scan {
        Scan::Full { .. } => (None, None),
        Scan::Changes { paths, oldest } => {
            (Some(*paths), Some(oldest.elapsed().as_millis() as u64))
        }
    };
    tracing::info!(
        pool = %report.pool,
        backup_pool = %report.backup_pool,
        scan = scan.kind(),
        reason,
        changed_paths = paths,
        lag_ms,
        copied = report.items_copied(),
        bytes = report.bytes_copied(),
        size = %human_bytes(report.bytes_copied()),
        deleted = report.items_deleted(),
        pending = report.modules.iter().map(|m| m.pending_items).sum::<u64>(),
        duration_ms = started.elapsed().as_millis() as u64,
        states = %states.join(" "),
        "cycle"
    );
    log_warnings(report);
}

fn log_warnings(report: &SyncReport) {
    for w in &report.warnings {
        tracing::warn!(pool = %report.pool, warning = %w, "cycle warning");
    }
}
