//! `poolsync service`: the Backup Service itself. Every pair is scanned in
//! full once per `sync_interval`, shipping at most the per-cycle batch limits
//! (so a backlog shows as `NonSteadyState` until it drains); between scans the
//! watcher ships each change of a local store within about a second.
//! Independent pairs run in parallel up to `max_concurrent_calls`; a failed
//! cycle is retried with backoff; setting changes in the deployment file
//! apply at the next cycle; SIGINT or SIGTERM stops at a batch boundary and
//! exits 0.
//!
//! Knows the sync engine and the deployment; nothing of scripts.

mod outcome;
mod pair_loop;
mod pairs;
mod pending;
mod service_lock;
mod settings_file;
mod watcher;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing_subscriber::filter::LevelFilter;

use crate::error::Error;
use crate::log::LogFormat;
use crate::rbac::Access;
use crate::sync::{CancelFlag, SyncEngine};
use crate::topology::{self, Deployment, Pair};
use pair_loop::{PairLoop, Shared};
use service_lock::{NotTaken, ServiceLock};

/// The runtime's threads for blocking store work (file-system calls). With
/// the two async workers, the copy threads (`transfer_parallelism`), the
/// listing threads (one per core), the watcher, the signal handler and the
/// file releaser, this bounds the service's threads (see docs/service.md).
pub const BLOCKING_THREADS: usize = 16;

/// The async worker threads.
pub const WORKER_THREADS: usize = 2;

/// The environment variable that sets how many changed paths a pair holds
/// before it falls back to a full scan (see docs/service.md).
pub const WATCH_QUEUE_ENV: &str = "POOLSYNC_WATCH_QUEUE";

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
    let capacity = watch_queue()?;
    let pairs = pairs::to_serve(&deployment, access, pools)?;
    crate::interrupt::install();
    let cancel = CancelFlag::from_shared(crate::interrupt::flag());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("poolsync-service")
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the I/O runtime: {e}")))?;
    let engine = Arc::new(SyncEngine::new(deployment.clone()).keeping_manifests());
    let locks = runtime.block_on(take_service_locks(&engine, &pairs))?;
    let watcher = start_watcher(&engine);
    let shared = Arc::new(Shared {
        limit: Arc::new(Semaphore::new(
            engine.settings().max_concurrent_calls.max(1) as usize,
        )),
        settings: Arc::new(settings_file::SettingsFile::new(path)),
        engine,
        cancel,
        watcher,
    });
    tracing::info!(
        deployment = %deployment.name,
        operator = %access.operator,
        pairs = pairs.len(),
        sync_interval = %topology::settings::format_interval(shared.engine.settings().sync_interval),
        watch_changes = shared.engine.settings().watch_changes,
        "backup service started"
    );
    // The pair loops run concurrently on one task; their store work runs on the
    // runtime's blocking pool, so independent pairs still proceed in parallel.
    let loops = pairs
        .into_iter()
        .zip(locks)
        .map(|(pair, lock)| PairLoop::new(shared.clone(), pair, lock, capacity).run());
    runtime.block_on(futures::future::join_all(loops));
    tracing::info!("backup service stopped");
    Ok(())
}

/// How many changed paths a pair holds: [`WATCH_QUEUE_ENV`], or the default.
fn watch_queue() -> Result<usize, Error> {
    let Some(value) = std::env::var_os(WATCH_QUEUE_ENV) else {
        return Ok(pending::DEFAULT_CAPACITY);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Usage(format!(
            "{WATCH_QUEUE_ENV} must be a whole number of paths above 0, not '{}'",
            crate::store::printable(text.as_bytes())
        ))),
    }
}

/// The file-system watcher, unless it cannot start (the service then scans
/// every `sync_interval` only, and says so).
fn start_watcher(engine: &SyncEngine) -> Option<Arc<watcher::Watcher>> {
    match watcher::Watcher::new() {
        Ok(w) => Some(Arc::new(w)),
        Err(why) => {
            if engine.settings().watch_changes {
                tracing::warn!(reason = %why, "full scans every sync_interval only");
            }
            None
        }
    }
}

/// The service lock of every pair, in the order of `pairs`: `None` for a pair
/// whose stores cannot be reached now (its loop takes it later). A pair that
/// another service serves stops the start.
async fn take_service_locks(
    engine: &SyncEngine,
    pairs: &[Pair],
) -> Result<Vec<Option<ServiceLock>>, Error> {
    let mut locks = Vec::with_capacity(pairs.len());
    for pair in pairs {
        match service_lock::take(engine, pair).await {
            Ok(lock) => locks.push(Some(lock)),
            Err(NotTaken::Held(why)) => return Err(Error::Usage(why)),
            Err(NotTaken::Unreachable(why)) => {
                tracing::warn!(pool = %pair.pool.fqdn, reason = %why, "the service lock is taken when the stores can be reached");
                locks.push(None);
            }
        }
    }
    Ok(locks)
}
