//! One pair's loop in the service: a full scan every `sync_interval` (the
//! safety net, and the only sync of a store that is not watched), and between
//! scans a sync of the paths the watcher saw change, once they settle.
//!
//! The watcher is not trusted where it cannot be: at start, after a queue
//! overflow or a failed watch, and for S3 stores, a full scan runs, and the
//! log says why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::outcome::{self, Outcome, Scan};
use super::pending::{PendingChanges, Taken};
use super::service_lock::{self, NotTaken, ServiceLock};
use super::settings_file::SettingsFile;
use super::watcher::Watcher;
use crate::sync::{CancelFlag, SyncEngine, SyncOptions, WatchTarget};
use crate::topology::Pair;

/// The first retry after a failed cycle; it doubles up to the sync interval.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// How long a pair waits before it ships changes again when its pair lock is
/// busy (a manual sync is running).
const BUSY_PAUSE: Duration = Duration::from_secs(1);

/// The least time from the end of one sync of changed paths to the start of
/// the next: under a steady churn, changes that settle meanwhile go out
/// together instead of one sync each.
const CHANGES_GAP: Duration = Duration::from_millis(400);

/// How often a waiting loop looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// What every pair loop of the service shares.
pub(super) struct Shared {
    pub engine: Arc<SyncEngine>,
    pub settings: Arc<SettingsFile>,
    pub cancel: CancelFlag,
    pub limit: Arc<Semaphore>,
    pub watcher: Option<Arc<Watcher>>,
}

/// One pair's loop.
pub(super) struct PairLoop {
    shared: Arc<Shared>,
    pair: Pair,
    pending: Arc<PendingChanges>,
    lock: Option<ServiceLock>,
    /// What is watched now; `None`: nothing (not set up, or it failed).
    watched: Option<Vec<WatchTarget>>,
    failures: u32,
    next_full: Instant,
    /// No sync of changes before this (the pair lock was busy).
    changes_paused_until: Instant,
    /// No full scan asked for by the watcher before this (after a failure,
    /// the backoff; after a scan, as long as it took).
    rescan_not_before: Instant,
}

impl PairLoop {
    pub(super) fn new(
        shared: Arc<Shared>,
        pair: Pair,
        lock: Option<ServiceLock>,
        capacity: usize,
    ) -> PairLoop {
        let now = Instant::now();
        PairLoop {
            shared,
            pair,
            pending: Arc::new(PendingChanges::new(capacity)),
            lock,
            watched: None,
            failures: 0,
            next_full: now,
            changes_paused_until: now,
            rescan_not_before: now,
        }
    }

    /// Runs until the service is asked to stop.
    pub(super) async fn run(mut self) {
        while !self.shared.cancel.is_cancelled() {
            let now = Instant::now();
            let rescan = self.pending.rescan_reason().is_some() && now >= self.rescan_not_before;
            if now >= self.next_full || rescan {
                if self.full_scan().await.is_break() {
                    break;
                }
                continue;
            }
            if now >= self.changes_paused_until
                && let Some(taken) = self.pending.take_ready(now)
            {
                if self.ship_changes(taken).await.is_break() {
                    break;
                }
                continue;
            }
            self.wait().await;
        }
        if let Some(w) = &self.shared.watcher {
            w.unwatch(&self.pending);
        }
        tracing::info!(pool = %self.pair.pool.fqdn, "stopped");
    }

    /// Sleeps until the next thing to do, a change, or a tick.
    async fn wait(&self) {
        let now = Instant::now();
        let mut until = self.next_full.min(now + TICK);
        if let Some(ready) = self.pending.next_ready() {
            until = until.min(ready.max(self.changes_paused_until));
        }
        if self.pending.rescan_reason().is_some() {
            until = until.min(self.rescan_not_before);
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.max(now).into()) => {}
            () = self.pending.changed() => {}
        }
    }

    /// A full scan of the pair, then the wait until the next one.
    async fn full_scan(&mut self) -> std::ops::ControlFlow<()> {
        let shared = self.shared.clone();
        let rescan = self.pending.rescan_reason();
        shared.settings.reload(&shared.engine);
        if !self.hold_service_lock().await {
            self.next_full = Instant::now() + shared.engine.settings().sync_interval;
            return std::ops::ControlFlow::Continue(());
        }
        // Everything seen so far is covered by the scan that starts now; a
        // change seen from here on (a failover record rewritten while the
        // plan is read, too) is kept for after it.
        self.pending.clear();
        self.refresh_watch(rescan.is_some()).await;
        let opts = SyncOptions {
            per_cycle: true,
            // A pair another sync holds is skipped this cycle, not waited
            // for: waiting would hold a slot that other pairs need.
            wait_for_lock: false,
            cancel: shared.cancel.clone(),
            ..SyncOptions::default()
        };
        let started = Instant::now();
        let result = {
            let _permit = shared.limit.acquire().await;
            shared.engine.sync_pair(&self.pair, &opts).await
        };
        let scan = Scan::Full {
            reason: rescan.clone(),
        };
        let outcome = outcome::log(&self.pair, &scan, result, started);
        let now = Instant::now();
        self.rescan_not_before = now + started.elapsed().max(FIRST_RETRY);
        let interval = shared.engine.settings().sync_interval;
        if outcome == Outcome::Busy {
            // What this scan was to cover (the changes it cleared, a
            // failover record it was to follow) waits for the holder: the
            // scan runs again soon, not a whole interval later.
            let why = rescan.unwrap_or_else(|| "the last full scan found the pair busy".into());
            self.pending.rescan(why);
            self.rescan_not_before = now + BUSY_PAUSE;
        }
        self.next_full = now
            + match outcome {
                Outcome::Failed(error) => {
                    let wait = self.backoff(interval);
                    outcome::log_failure(&self.pair, &scan, &error, self.failures, wait);
                    wait
                }
                Outcome::Interrupted => return std::ops::ControlFlow::Break(()),
                _ => {
                    self.failures = 0;
                    interval
                }
            };
        std::ops::ControlFlow::Continue(())
    }

    /// A sync of the changed paths in `taken`.
    async fn ship_changes(&mut self, taken: Taken) -> std::ops::ControlFlow<()> {
        let shared = self.shared.clone();
        let opts = SyncOptions {
            // Changes are shipped whole: a flood large enough to need the
            // per-cycle limits becomes a full scan instead (see pending.rs).
            per_cycle: false,
            wait_for_lock: false,
            cancel: shared.cancel.clone(),
            changes: Some(Arc::new(taken.changes.clone())),
            ..SyncOptions::default()
        };
        let started = Instant::now();
        let result = {
            let _permit = shared.limit.acquire().await;
            shared.engine.sync_pair(&self.pair, &opts).await
        };
        let scan = Scan::Changes {
            paths: taken.changes.len(),
            oldest: taken.oldest,
        };
        let outcome = outcome::log(&self.pair, &scan, result, started);
        match outcome {
            Outcome::Interrupted => return std::ops::ControlFlow::Break(()),
            Outcome::Busy => {
                self.pending.put_back(taken);
                self.changes_paused_until = Instant::now() + BUSY_PAUSE;
            }
            Outcome::Failed(error) => {
                // The full scan after the backoff finds what is still to ship.
                let wait = self.backoff(self.shared.engine.settings().sync_interval);
                outcome::log_failure(&self.pair, &scan, &error, self.failures, wait);
                self.rescan_not_before = Instant::now() + wait;
                self.pending
                    .rescan("the last sync of changed paths failed".into());
            }
            Outcome::Synced => {
                self.failures = 0;
                self.changes_paused_until = Instant::now() + CHANGES_GAP;
            }
            Outcome::Refused => {
                // A failover began since the last full scan: plan the pair
                // again, which watches only its failover record until a
                // failback rewrites it.
                self.pending
                    .rescan("a sync of changes was refused: the pair is failing over".into());
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    /// The delay before the next try after a failure: 1 s, doubling up to
    /// the sync interval.
    fn backoff(&mut self, interval: Duration) -> Duration {
        self.failures += 1;
        FIRST_RETRY
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(interval)
    }

    /// Whether this service holds the pair's service lock (taken now if it
    /// could not be at start).
    async fn hold_service_lock(&mut self) -> bool {
        if self.lock.is_some() {
            return true;
        }
        match service_lock::take(&self.shared.engine, &self.pair).await {
            Ok(lock) => {
                self.lock = Some(lock);
                true
            }
            Err(NotTaken::Held(why) | NotTaken::Unreachable(why)) => {
                tracing::warn!(pool = %self.pair.pool.fqdn, reason = %why, "cycle skipped: the service lock of this pair is not held");
                false
            }
        }
    }

    /// Watches what a sync of the pair reads now, when the settings ask for
    /// it: again after a failed watch (`force`), or when that changed (a
    /// failover, a CMS move).
    async fn refresh_watch(&mut self, force: bool) {
        let Some(watcher) = self.shared.watcher.clone() else {
            return;
        };
        let pool = &self.pair.pool.fqdn;
        if !self.shared.engine.settings().watch_changes {
            if self.watched.take().is_some() {
                watcher.unwatch(&self.pending);
                tracing::info!(pool = %pool, "watch_changes is off: full scans every sync_interval only");
            }
            return;
        }
        let mut plan = match self.shared.engine.watch_plan(&self.pair).await {
            Ok(plan) => plan,
            Err(e) => {
                watcher.unwatch(&self.pending);
                self.watched = None;
                tracing::debug!(pool = %pool, error = %e, "not watched until its stores can be reached");
                return;
            }
        };
        // A module folder that does not exist yet is found by the full
        // scans, and watched from the first one after it appears.
        let (present, missing): (Vec<WatchTarget>, Vec<WatchTarget>) =
            plan.targets.into_iter().partition(|t| t.folder.is_dir());
        plan.targets = present;
        plan.unwatched.extend(missing.iter().map(|t| {
            format!(
                "{} from {}: its folder does not exist yet, so it is scanned every sync_interval until it does",
                t.module, t.pool
            )
        }));
        if !force && self.watched.as_ref() == Some(&plan.targets) {
            return;
        }
        // The metadata folder of a store exists once it is in use; until then
        // the full scans find a failover made there.
        plan.records.retain(|r| r.folder.is_dir());
        match watcher.watch(&plan.targets, &plan.records, &self.pending) {
            Ok(()) => {
                tracing::info!(
                    pool = %pool,
                    folders = plan.targets.len(),
                    unwatched = %plan.unwatched.join("; "),
                    "watching for changes"
                );
                self.watched = Some(plan.targets);
                // A failover record rewritten while the plan was read and the
                // watches set up was seen by neither.
                if self.shared.engine.watch_basis(&self.pair).await != plan.basis {
                    self.pending.rescan(
                        "the pair's failover record changed while its watches were set up".into(),
                    );
                }
            }
            Err(why) => {
                self.watched = None;
                tracing::warn!(pool = %pool, reason = %why, "cannot watch for changes: full scans every sync_interval only");
            }
        }
    }
}
