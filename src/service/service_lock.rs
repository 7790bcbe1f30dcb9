//! One service per pair: a running `poolsync service` holds a lock named
//! after each pair it serves in both of the pair's stores, for as long as it
//! runs. A second service on the same pairs (on this machine or another that
//! reaches the same stores) is refused at start and names the first. Manual
//! syncs are not held up: they take the pair lock, not this one.

use crate::store::{LockHolder, StoreLock};
use crate::sync::SyncEngine;
use crate::topology::Pair;

/// The service locks of one pair, held until dropped.
pub(super) struct ServiceLock {
    _held: Vec<Box<dyn StoreLock>>,
}

/// Why the service lock of a pair could not be taken.
pub(super) enum NotTaken {
    /// Another service holds it: a reason to refuse to start.
    Held(String),
    /// A store could not be reached or locked: retried at the next cycle.
    Unreachable(String),
}

fn lock_name(pair: &Pair) -> String {
    let (a, b) = pair.key();
    format!("service-{a}-{b}")
}

/// Takes the service lock of `pair` in both of its stores.
pub(super) async fn take(engine: &SyncEngine, pair: &Pair) -> Result<ServiceLock, NotTaken> {
    let owner = crate::store::lock_owner();
    let name = lock_name(pair);
    let mut held = Vec::new();
    let mut ends = [&pair.pool, &pair.partner];
    ends.sort_by(|a, b| a.fqdn.cmp(&b.fqdn));
    for pool in ends {
        let store = engine
            .reachable(pool)
            .await
            .map_err(|e| NotTaken::Unreachable(e.to_string()))?;
        match store.try_lock(&name, &owner).await {
            Ok(Ok(lock)) => held.push(lock),
            Ok(Err(LockHolder(holder))) => {
                return Err(NotTaken::Held(format!(
                    "another poolsync service serves the pair {} <-> {}: its lock at {} is held by {holder}; stop that service first, or serve other pairs with --pool",
                    pair.pool.fqdn, pair.partner.fqdn, pool.fqdn
                )));
            }
            Err(e) => {
                return Err(NotTaken::Unreachable(format!(
                    "cannot take the service lock at {}: {e}",
                    pool.fqdn
                )));
            }
        }
    }
    Ok(ServiceLock { _held: held })
}
