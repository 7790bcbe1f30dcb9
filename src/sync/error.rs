//! The fatal errors of a sync, one sentence each.

use super::SyncReport;
use crate::store::StoreError;
use crate::topology::Fqdn;

/// A fatal sync error; one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "pool '{0}' has no backup pool: set backup_pool for it (and its partner) in deployment.toml before syncing"
    )]
    NoBackupPool(Fqdn),
    #[error("cannot open the store of pool '{pool}': {source}")]
    Store {
        pool: Fqdn,
        #[source]
        source: StoreError,
    },
    #[error(
        "pool '{pool}' is busy: its pair lock is held by {holder}; try again when that sync ends"
    )]
    Busy { pool: Fqdn, holder: String },
    /// The pair's failover state does not allow it; the message says why and
    /// what to do.
    #[error("{0}")]
    Refused(String),
    #[error("sync of {} <-> {} failed: {}", .0.pool, .0.backup_pool, .0.errors().join("; "))]
    Failed(Box<SyncReport>),
    #[error("sync of {} <-> {} interrupted; completed batches are kept", .0.pool, .0.backup_pool)]
    Interrupted(Box<SyncReport>),
}

impl SyncError {
    /// A run stopped by Ctrl-C before it began its work: an empty report.
    pub(super) fn interrupted_before(pool: &Fqdn, backup_pool: &Fqdn, what_if: bool) -> Self {
        SyncError::Interrupted(Box::new(SyncReport::empty(pool, backup_pool, what_if)))
    }
}
