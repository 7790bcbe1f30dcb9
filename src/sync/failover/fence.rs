//! The writers' fence: what keeps a write from landing in a copy that is no
//! longer active. Whoever writes a pool's data (here `demo churn`, playing the
//! users) holds the lock `writers-<pool>` in the store of the active copy
//! while it writes, having read under that lock that writes are allowed
//! there. A switch (a planned failover's `SwitchingOver`, a failback's
//! `SwitchingBack`) first records in both stores that writes are stopped, then
//! takes that lock once and lets it go: every write begun before the switch
//! has then ended, and every writer after it reads that writes are stopped.
//! So the switch's last round ships every write made before it.

use super::promote::sync_options;
use super::report::FailoverOptions;
use super::state::Phase;
use crate::store::{Store, StoreLock};
use crate::sync::{SyncEngine, SyncError, SyncOptions, pair_lock};
use crate::topology::{Fqdn, Pair, Pool};

/// Writes to a pool's data held allowed where they are active: no switch
/// completes while this lives (dropping it lets go).
pub struct WriteHold {
    /// `None` for a pool without a backup pool: its data never moves.
    _lock: Option<Box<dyn StoreLock>>,
    /// Where the data is in its failover cycle (a phase that allows writes).
    pub phase: Phase,
    /// The pool whose store holds the active copy.
    pub active_at: Fqdn,
}

fn lock_name(pool: &Pool) -> String {
    format!("writers-{}", pool.fqdn)
}

fn what(pool: &Pool) -> String {
    format!("the writers' fence of {}", pool.fqdn)
}

impl SyncEngine {
    /// Holds writes to `pool`'s data allowed where its data is active now,
    /// waiting while a switch drains the writers; refused while writes are
    /// stopped (a switch is under way).
    pub async fn hold_writes(
        &self,
        pool: &Pool,
        opts: &SyncOptions,
    ) -> Result<WriteHold, SyncError> {
        let Some(pair) = self.deployment().pair_of(pool) else {
            return Ok(WriteHold {
                _lock: None,
                phase: Phase::Home,
                active_at: pool.fqdn.clone(),
            });
        };
        // A failover or failback can move the data between the read and the
        // lock: then the lock is of the wrong store, and it is read again.
        for _ in 0..5 {
            let phase = self.writable_phase(&pair).await?;
            let at = if phase.at_partner() {
                &pair.partner
            } else {
                &pair.pool
            };
            let store = self.reachable(at).await?;
            let lock = take(&pair, (at, &*store), opts).await?;
            let now = self.writable_phase(&pair).await?;
            if now.at_partner() == phase.at_partner() {
                return Ok(WriteHold {
                    _lock: Some(lock),
                    phase: now,
                    active_at: at.fqdn.clone(),
                });
            }
            lock.release().await;
        }
        Err(SyncError::Refused(format!(
            "pool '{}': its data kept moving between its pool and its backup pool; try again",
            pool.fqdn
        )))
    }

    /// The pool's phase, refused unless it allows writes.
    async fn writable_phase(&self, pair: &Pair) -> Result<Phase, SyncError> {
        let view = self.pair_view(pair).await;
        let phase = view.state.phase(&pair.pool.fqdn);
        if phase.writable() {
            return Ok(phase);
        }
        Err(SyncError::Refused(format!(
            "pool '{}' is {phase}: writes to its data are stopped while it switches (epoch {}); write again when the failover or failback is done",
            pair.pool.fqdn, view.state.epoch
        )))
    }

    /// Waits until every writer of `pair.pool`'s data at `at` (the store of
    /// the copy that was active) has finished: called once a switch has
    /// recorded that writes are stopped.
    pub(super) async fn drain_writers(
        &self,
        pair: &Pair,
        at: (&Pool, &dyn Store),
        opts: &FailoverOptions,
    ) -> Result<(), SyncError> {
        let lock = take(pair, at, &sync_options(opts)).await?;
        lock.release().await;
        Ok(())
    }
}

async fn take(
    pair: &Pair,
    at: (&Pool, &dyn Store),
    opts: &SyncOptions,
) -> Result<Box<dyn StoreLock>, SyncError> {
    let owner = crate::store::lock_owner();
    let (name, what) = (lock_name(&pair.pool), what(&pair.pool));
    pair_lock::take(pair, at, &name, &what, &owner, opts).await
}
