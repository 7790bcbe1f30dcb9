//! What a failover, a failback, a restore or a CMS move did (or, with
//! `what_if`, would do).

use serde::Serialize;

use super::state::{Mode, ModuleLoss, Phase, Quarantine};
use crate::sync::{CancelFlag, DirectionReport, Progress};
use crate::topology::Fqdn;

/// How a failover, failback, restore or CMS move is to be made.
#[derive(Clone, Default)]
pub struct FailoverOptions {
    /// Invoke-CsPoolFailOver -`DisasterMode`: promote the partner's replica at
    /// once, without touching the lost pool.
    pub disaster_mode: bool,
    /// Work out what would happen; change nothing.
    pub what_if: bool,
    /// Override what is documented as overridable (see each operation).
    pub force: bool,
    /// `restore_pool_data`: also replace items that differ from the replica
    /// (the pool's version is quarantined first).
    pub overwrite: bool,
    /// `restore_pool_data`: the modules to restore (empty: every module).
    pub modules: Vec<crate::topology::Module>,
    pub cancel: CancelFlag,
    pub progress: Option<std::sync::Arc<dyn Progress>>,
}

/// The outcome of one failover operation.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    /// `failover`, `failback`, `restore` or `cms_failover`.
    pub action: &'static str,
    /// The pool whose data moved (the CMS master's pool for a CMS move).
    pub pool: Fqdn,
    pub backup_pool: Fqdn,
    pub what_if: bool,
    pub mode: Option<Mode>,
    /// The pair's failover epoch after the operation.
    pub epoch: u64,
    /// Where the pool's data is in its failover cycle now.
    pub phase: Phase,
    /// The pool whose store holds the active copy now.
    pub active_at: Fqdn,
    /// The folder or URL of the active copy.
    pub active_copy: String,
    pub duration_ms: u64,
    /// The recovery point: items that may be lost (0 for a planned failover;
    /// `None` when the lost pool could not be read to count them).
    pub items_lost: Option<u64>,
    pub loss: Vec<ModuleLoss>,
    /// What each transfer did: the final sync, the failback, the restore.
    pub modules: Vec<DirectionReport>,
    /// Items moved aside instead of being overwritten.
    pub quarantine: Option<Quarantine>,
    /// With `what_if`: items that would be quarantined, and restored.
    pub would_quarantine: Vec<String>,
    pub would_restore: Vec<String>,
    pub warnings: Vec<String>,
}

impl FailoverReport {
    pub(super) fn new(
        action: &'static str,
        pool: &Fqdn,
        backup_pool: &Fqdn,
        what_if: bool,
    ) -> Self {
        FailoverReport {
            action,
            pool: pool.clone(),
            backup_pool: backup_pool.clone(),
            what_if,
            mode: None,
            epoch: 0,
            phase: Phase::Home,
            active_at: pool.clone(),
            active_copy: String::new(),
            duration_ms: 0,
            items_lost: None,
            loss: Vec::new(),
            modules: Vec::new(),
            quarantine: None,
            would_quarantine: Vec::new(),
            would_restore: Vec::new(),
            warnings: Vec::new(),
        }
    }
}
