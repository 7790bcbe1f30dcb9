//! `poolsync service`: the Backup Service itself. Every pair syncs once per
//! `sync_interval`, shipping at most the per-cycle batch limits (so a backlog
//! shows as NonSteadyState until it drains); independent pairs run in parallel
//! up to `max_concurrent_calls`; a failed cycle is retried with backoff; setting
//! changes in the deployment file apply at the next cycle; SIGINT or SIGTERM
//! stops at a batch boundary and exits 0.
//!
//! Knows the sync engine and the deployment; nothing of scripts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use tracing_subscriber::filter::LevelFilter;

use crate::error::Error;
use crate::log::LogFormat;
use crate::rbac::Access;
use crate::sync::{CancelFlag, SyncEngine, SyncError, SyncOptions, human_bytes};
use crate::topology::{self, Deployment, Pair};

/// The first retry after a failed cycle; it doubles up to the sync interval.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The pairs to serve, each once, each checked against the operator's rights.
fn pairs_to_serve(d: &Deployment, access: &Access, pools: &[String]) -> Result<Vec<Pair>, Error> {
    const CMDLET: &str = "Invoke-CsBackupServiceSync";
    let named: Vec<&crate::topology::Pool> = if pools.is_empty() {
        // Every pair, served if the operator may sync either of its pools.
        d.pairs()
            .into_iter()
            .map(|(a, b)| if access.may(d, CMDLET, a) { a } else { b })
            .collect()
    } else {
        pools
            .iter()
            .map(|p| d.require_pool(p).map_err(Error::Usage))
            .collect::<Result<_, _>>()?
    };
    let mut chosen: Vec<Pair> = Vec::new();
    for pool in named {
        let Some(pair) = d.pair_of(pool) else {
            return Err(Error::Usage(format!(
                "--pool {}: it has no backup pool, so there is nothing to serve",
                pool.fqdn
            )));
        };
        // The right is checked on the pool named, as for a script's sync.
        access.check_pool(d, CMDLET, pool).map_err(Error::Usage)?;
        // One loop per pair, however it was named.
        if !chosen.iter().any(|c| c.key() == pair.key()) {
            chosen.push(pair);
        }
    }
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "deployment '{}' has no backup pairs to serve",
            d.name
        )));
    }
    Ok(chosen)
}

/// Re-reads the settings from the deployment file; logs and applies a change.
fn reload_settings(engine: &SyncEngine, path: &std::path::Path) {
    match topology::load(path) {
        Ok(d) => {
            if d.settings != engine.settings() {
                tracing::info!(
                    sync_interval = %topology::settings::format_interval(d.settings.sync_interval),
                    "settings changed; applying from the next cycle"
                );
                engine.set_settings(d.settings);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot re-read the settings; keeping the current ones")
        }
    }
}

async fn sleep_unless_cancelled(duration: Duration, cancel: &CancelFlag) {
    let until = Instant::now() + duration;
    while Instant::now() < until && !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
    }
}

async fn serve_pair(
    engine: Arc<SyncEngine>,
    pair: Pair,
    path: PathBuf,
    cancel: CancelFlag,
    limit: Arc<Semaphore>,
) {
    let mut failures: u32 = 0;
    let pool = &pair.pool.fqdn;
    while !cancel.is_cancelled() {
        reload_settings(&engine, &path);
        let opts = SyncOptions {
            per_cycle: true,
            // A pair another sync holds is skipped this cycle, not waited
            // for: waiting would hold a slot that other pairs need.
            wait_for_lock: false,
            cancel: cancel.clone(),
            ..SyncOptions::default()
        };
        let (result, ms) = {
            let _permit = limit.acquire().await;
            let started = Instant::now();
            let result = engine.sync_pair(&pair, &opts).await;
            (result, started.elapsed().as_millis() as u64)
        };
        let interval = engine.settings().sync_interval;
        let wait = match result {
            Ok(report) => {
                failures = 0;
                let states: Vec<String> = report
                    .modules
                    .iter()
                    .map(|m| format!("{}:{}>{}", m.module.short_name(), m.from, m.export_status))
                    .collect();
                tracing::info!(
                    pool = %report.pool,
                    backup_pool = %report.backup_pool,
                    copied = report.items_copied(),
                    bytes = report.bytes_copied(),
                    size = %human_bytes(report.bytes_copied()),
                    deleted = report.items_deleted(),
                    pending = report.modules.iter().map(|m| m.pending_items).sum::<u64>(),
                    duration_ms = ms,
                    states = %states.join(" "),
                    "cycle"
                );
                for w in &report.warnings {
                    tracing::warn!(pool = %report.pool, warning = %w, "cycle warning");
                }
                interval
            }
            Err(SyncError::Interrupted(_)) => break,
            Err(SyncError::Refused(why)) => {
                // A pair with a pool failed over (or on its way there or
                // back) is not synced until a failback; said once a cycle.
                tracing::warn!(
                    pool = %pool,
                    reason = %why,
                    retry_in_s = interval.as_secs(),
                    "cycle skipped: the pair is not in normal operation"
                );
                interval
            }
            Err(SyncError::Busy { pool: at, holder }) => {
                tracing::info!(
                    pool = %pool,
                    lock_at = %at,
                    holder = %holder,
                    retry_in_s = interval.as_secs(),
                    "cycle skipped: another sync of this pair is running"
                );
                interval
            }
            Err(e) => {
                if let SyncError::Failed(report) = &e {
                    for w in &report.warnings {
                        tracing::warn!(pool = %report.pool, warning = %w, "cycle warning");
                    }
                }
                failures += 1;
                let backoff = FIRST_RETRY
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(interval);
                tracing::warn!(
                    pool = %pool,
                    error = %e,
                    failures,
                    retry_in_s = backoff.as_secs(),
                    "cycle failed"
                );
                backoff
            }
        };
        sleep_unless_cancelled(wait, &cancel).await;
    }
    tracing::info!(pool = %pool, "stopped");
}

/// Runs the service in the foreground until SIGINT or SIGTERM.
pub fn run(
    path: PathBuf,
    deployment: Arc<Deployment>,
    access: &Access,
    pools: &[String],
    format: LogFormat,
) -> Result<(), Error> {
    let level = crate::log::level_from_env()?.unwrap_or(LevelFilter::INFO);
    crate::log::init(format, level);
    let pairs = pairs_to_serve(&deployment, access, pools)?;
    crate::interrupt::install();
    let cancel = CancelFlag::from_shared(crate::interrupt::flag());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the I/O runtime: {e}")))?;
    let engine = Arc::new(SyncEngine::new(deployment.clone()));
    let limit = Arc::new(Semaphore::new(
        engine.settings().max_concurrent_calls.max(1) as usize,
    ));
    tracing::info!(
        deployment = %deployment.name,
        operator = %access.operator,
        pairs = pairs.len(),
        sync_interval = %topology::settings::format_interval(engine.settings().sync_interval),
        "backup service started"
    );
    // The pair loops run concurrently on one task; their store work runs on the
    // runtime's blocking pool, so independent pairs still proceed in parallel.
    runtime.block_on(futures::future::join_all(pairs.into_iter().map(|pair| {
        serve_pair(
            engine.clone(),
            pair,
            path.clone(),
            cancel.clone(),
            limit.clone(),
        )
    })));
    tracing::info!("backup service stopped");
    Ok(())
}
