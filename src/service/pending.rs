//! The changes a pair's loop has not shipped yet, as the watcher saw them:
//! each changed path with when it first and last changed. A path is shipped
//! once it has settled (no event for [`SETTLE`]), so a burst of writes to one
//! file goes out once; one that never settles goes out after [`MAX_HOLD`].
//!
//! When the watcher can no longer vouch for what changed (the kernel's queue
//! overflowed, a watch failed, more paths waited than [`PendingChanges`]
//! holds), the paths are dropped and the loop is asked for a full scan
//! instead, with the reason.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::ItemPath;
use crate::sync::ChangeSet;
use crate::topology::{Fqdn, Module};

/// How long a path must go without an event before it is shipped.
pub(super) const SETTLE: Duration = Duration::from_millis(200);

/// The longest a changed path waits for quiet before it is shipped anyway.
pub(super) const MAX_HOLD: Duration = Duration::from_secs(2);

/// Changed paths held for one pair by default; more at once means a flood, and
/// one full scan ships it more cheaply than one look per path.
pub(super) const DEFAULT_CAPACITY: usize = 10_000;

/// When one path first and last changed since it was last shipped.
#[derive(Debug, Clone, Copy)]
struct Times {
    first: Instant,
    last: Instant,
}

#[derive(Debug, Default)]
struct State {
    paths: BTreeMap<(Fqdn, Module, ItemPath), Times>,
    /// Why the next sync must be a full scan (the watcher lost track).
    rescan: Option<String>,
}

/// Changes taken for one sync, with the time of the oldest among them.
#[derive(Debug)]
pub(super) struct Taken {
    pub changes: ChangeSet,
    pub oldest: Instant,
    times: Vec<((Fqdn, Module, ItemPath), Times)>,
}

/// One pair's unshipped changes, shared by the watcher's thread and the loop.
#[derive(Debug)]
pub(super) struct PendingChanges {
    state: Mutex<State>,
    capacity: usize,
    wake: tokio::sync::Notify,
}

impl PendingChanges {
    pub(super) fn new(capacity: usize) -> PendingChanges {
        PendingChanges {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `path` of `module` at `pool` changed at `now`.
    pub(super) fn record(&self, pool: &Fqdn, module: Module, path: ItemPath, now: Instant) {
        {
            let mut state = self.state();
            if state.rescan.is_some() {
                return; // a full scan will find it
            }
            let key = (pool.clone(), module, path);
            state
                .paths
                .entry(key)
                .and_modify(|t| t.last = now)
                .or_insert(Times {
                    first: now,
                    last: now,
                });
            if state.paths.len() > self.capacity {
                state.paths.clear();
                state.rescan = Some(format!(
                    "more than {} changed paths waited at once",
                    self.capacity
                ));
            }
        }
        self.wake.notify_one();
    }

    /// Asks for a full scan in place of the paths held, for `why`.
    pub(super) fn rescan(&self, why: String) {
        {
            let mut state = self.state();
            state.paths.clear();
            state.rescan.get_or_insert(why);
        }
        self.wake.notify_one();
    }

    /// Why a full scan is needed, if one is; cleared by [`Self::clear`].
    pub(super) fn rescan_reason(&self) -> Option<String> {
        self.state().rescan.clone()
    }

    /// Forgets everything held: a full scan that starts now covers it.
    pub(super) fn clear(&self) {
        let mut state = self.state();
        state.paths.clear();
        state.rescan = None;
    }

    /// Takes the paths that have settled at `now` (or waited [`MAX_HOLD`]).
    pub(super) fn take_ready(&self, now: Instant) -> Option<Taken> {
        let mut state = self.state();
        let ready: Vec<(Fqdn, Module, ItemPath)> = state
            .paths
            .iter()
            .filter(|(_, t)| is_ready(t, now))
            .map(|(k, _)| k.clone())
            .collect();
        if ready.is_empty() {
            return None;
        }
        let mut changes = ChangeSet::new();
        let mut times = Vec::with_capacity(ready.len());
        for key in ready {
            if let Some(t) = state.paths.remove(&key) {
                changes.insert(&key.0, key.1, key.2.clone());
                times.push((key, t));
            }
        }
        let oldest = times.iter().map(|(_, t)| t.first).min().unwrap_or(now);
        Some(Taken {
            changes,
            oldest,
            times,
        })
    }

    /// Puts taken changes back (their sync could not run now); a path that
    /// changed again meanwhile keeps its first time.
    pub(super) fn put_back(&self, taken: Taken) {
        {
            let mut state = self.state();
            if state.rescan.is_some() {
                return;
            }
            for (key, t) in taken.times {
                let e = state.paths.entry(key).or_insert(t);
                e.first = e.first.min(t.first);
            }
        }
        self.wake.notify_one();
    }

    /// When the next held path will be ready, if any is held.
    pub(super) fn next_ready(&self) -> Option<Instant> {
        self.state()
            .paths
            .values()
            .map(|t| (t.last + SETTLE).min(t.first + MAX_HOLD))
            .min()
    }

    /// When the oldest held change was seen.
    #[cfg(test)]
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.state().paths.values().map(|t| t.first).min()
    }

    /// Paths held now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.state().paths.len()
    }

    /// Waits until something is recorded (or a rescan asked for).
    pub(super) async fn changed(&self) {
        self.wake.notified().await;
    }
}

fn is_ready(t: &Times, now: Instant) -> bool {
    now.saturating_duration_since(t.last) >= SETTLE
        || now.saturating_duration_since(t.first) >= MAX_HOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fqdn() -> Fqdn {
        Fqdn::parse("a.example.com").unwrap()
    }

    fn path(p: &str) -> ItemPath {
        ItemPath::parse(p).unwrap()
    }

    #[test]
    fn a_burst_to_one_path_is_taken_once_after_it_settles() {
        let pending = PendingChanges::new(10);
        let t0 = Instant::now();
        for i in 0..50 {
            let at = t0 + Duration::from_millis(i * 10);
            pending.record(&fqdn(), Module::PresenceFocus, path("u/doc"), at);
        }
        let last = t0 + Duration::from_millis(490);
        // Still being written: not ready just after the last write.
        assert!(pending.take_ready(last + SETTLE / 2).is_none());
        assert_eq!(pending.next_ready(), Some(last + SETTLE));
        let taken = pending.take_ready(last + SETTLE).expect("settled");
        assert_eq!(taken.changes.len(), 1);
        assert_eq!(taken.oldest, t0);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn a_path_that_never_settles_goes_out_after_the_longest_hold() {
        let pending = PendingChanges::new(10);
        let t0 = Instant::now();
        let mut at = t0;
        while at < t0 + MAX_HOLD {
            pending.record(&fqdn(), Module::DataConf, path("big"), at);
            at += Duration::from_millis(50);
        }
        assert!(
            pending
                .take_ready(
                    (t0 + MAX_HOLD)
                        .checked_sub(Duration::from_millis(1))
                        .unwrap()
                )
                .is_none()
        );
        assert!(pending.take_ready(t0 + MAX_HOLD).is_some());
    }

    #[test]
    fn a_flood_past_the_capacity_asks_for_a_full_scan_and_holds_nothing() {
        let pending = PendingChanges::new(3);
        let now = Instant::now();
        for i in 0..4 {
            pending.record(&fqdn(), Module::PresenceFocus, path(&format!("f{i}")), now);
        }
        assert_eq!(pending.len(), 0);
        let why = pending.rescan_reason().expect("a rescan");
        assert!(why.contains("more than 3 changed paths"), "{why}");
        // Further changes are left to the scan, until it starts.
        pending.record(&fqdn(), Module::PresenceFocus, path("g"), now);
        assert_eq!(pending.len(), 0);
        pending.clear();
        assert!(pending.rescan_reason().is_none());
        pending.record(&fqdn(), Module::PresenceFocus, path("g"), now);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn changes_put_back_keep_their_first_time() {
        let pending = PendingChanges::new(10);
        let t0 = Instant::now();
        pending.record(&fqdn(), Module::PresenceFocus, path("a"), t0);
        let taken = pending.take_ready(t0 + SETTLE).unwrap();
        let t1 = t0 + Duration::from_secs(1);
        pending.record(&fqdn(), Module::PresenceFocus, path("a"), t1);
        pending.put_back(taken);
        assert_eq!(pending.oldest(), Some(t0));
        assert_eq!(pending.len(), 1);
    }
}
