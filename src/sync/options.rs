//! What a caller asks of a sync: which modules, a dry run or not, how to wait
//! for the pair lock, and the hooks it watches (Ctrl-C, progress).

use super::changes::ChangeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::topology::ModuleSelection;

/// Set by Ctrl-C; the engine stops at the next clean point.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    pub fn from_shared(flag: Arc<AtomicBool>) -> Self {
        CancelFlag(flag)
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Receives progress; the command line draws a bar with it.
pub trait Progress: Send + Sync {
    /// More work was found: `items` items of `bytes` bytes to copy.
    fn add_work(&self, items: u64, bytes: u64);
    /// Work was done.
    fn advance(&self, items: u64, bytes: u64);
    /// A one-line notice (e.g. waiting for a lock).
    fn note(&self, message: &str);
}

/// What to sync and how.
#[derive(Clone)]
pub struct SyncOptions {
    pub modules: ModuleSelection,
    /// Compute what would be copied and deleted; change nothing.
    pub what_if: bool,
    /// Let a sync wipe (or delete more than half of) a replica.
    pub allow_mass_delete: bool,
    /// Ship at most the per-cycle batch limits of the settings
    /// (`max_batches_per_user_store_sync`, `max_batches_per_cms_sync)`: the service's
    /// cycle. A manual sync drains the whole backlog.
    pub per_cycle: bool,
    /// When another sync holds the pair lock: wait for it (`true`, a manual
    /// sync), or give up at once with [`super::SyncError::Busy`] (the service,
    /// which tries again next cycle instead of holding a concurrency slot idle).
    pub wait_for_lock: bool,
    pub cancel: CancelFlag,
    pub progress: Option<Arc<dyn Progress>>,
    /// Look only at these changed paths (the service's watcher saw them
    /// change), and only at the directions they are in; `None`: walk every
    /// selected direction's whole source.
    pub changes: Option<Arc<ChangeSet>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            modules: ModuleSelection::All,
            what_if: false,
            allow_mass_delete: false,
            per_cycle: false,
            wait_for_lock: true,
            cancel: CancelFlag::new(),
            progress: None,
            changes: None,
        }
    }
}

impl SyncOptions {
    /// Tells the progress receiver, if any, that work was done.
    pub(super) fn advance(&self, items: u64, bytes: u64) {
        if let Some(p) = &self.progress {
            p.advance(items, bytes);
        }
    }
}
