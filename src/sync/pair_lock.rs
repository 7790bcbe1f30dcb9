//! The pair lock: one sync of a pair at a time. Taken in both stores, in the
//! order of the pools' FQDNs (so two syncs of one pair can never each hold one
//! half), and polled, not queued: a lock is a file or an object.

use std::time::{Duration, Instant};

use super::{SyncError, SyncOptions};
use crate::store::{LockHolder, Store, StoreLock};
use crate::topology::{Pair, Pool};

/// The longest pause between two tries of a busy lock.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Takes the pair lock in both stores (`stores` in the order of `pair`'s pool
/// and partner), waiting for a sync that holds it unless
/// `opts.wait_for_lock` is off.
pub(super) async fn lock(
    pair: &Pair,
    stores: (&dyn Store, &dyn Store),
    opts: &SyncOptions,
) -> Result<Vec<Box<dyn StoreLock>>, SyncError> {
    lock_in(
        pair,
        &[(&pair.pool, stores.0), (&pair.partner, stores.1)],
        opts,
    )
    .await
}

/// Takes the pair lock in the stores given (one of them, when the other pool
/// is lost), in the order of the pools' FQDNs.
pub(super) async fn lock_in(
    pair: &Pair,
    stores: &[(&Pool, &dyn Store)],
    opts: &SyncOptions,
) -> Result<Vec<Box<dyn StoreLock>>, SyncError> {
    let mut ordered = stores.to_vec();
    ordered.sort_by(|a, b| a.0.fqdn.cmp(&b.0.fqdn));
    let (a, b) = pair.key();
    let name = format!("pair-{a}-{b}");
    let owner = crate::store::lock_owner();
    let mut held = Vec::new();
    for (pool, store) in ordered {
        match take(pair, (pool, store), &name, "the pair lock", &owner, opts).await {
            Ok(guard) => held.push(guard),
            Err(e) => {
                release(held).await;
                return Err(e);
            }
        }
    }
    Ok(held)
}

/// Releases held locks, waiting until others can see them free.
pub(super) async fn release(held: Vec<Box<dyn StoreLock>>) {
    for lock in held {
        lock.release().await;
    }
}

/// Takes the lock `name` (`what`, in the note of a wait) in the store of
/// `pool`. Short pauses at first (a sync that is just ending), then up to
/// [`MAX_PAUSE`] apart, so a long wait costs a remote store a request every
/// few seconds at most.
pub(super) async fn take(
    pair: &Pair,
    (pool, store): (&Pool, &dyn Store),
    name: &str,
    what: &str,
    owner: &str,
    opts: &SyncOptions,
) -> Result<Box<dyn StoreLock>, SyncError> {
    let mut told = false;
    let mut pause = Duration::from_millis(100);
    loop {
        let holder = match store.try_lock(name, owner).await {
            Ok(Ok(guard)) => return Ok(guard),
            Ok(Err(LockHolder(holder))) => holder,
            Err(source) => {
                return Err(SyncError::Store {
                    pool: pool.fqdn.clone(),
                    source,
                });
            }
        };
        if !opts.wait_for_lock {
            return Err(SyncError::Busy {
                pool: pool.fqdn.clone(),
                holder,
            });
        }
        if !told && let Some(p) = &opts.progress {
            p.note(&format!(
                "waiting for {what} at {}: held by {holder}",
                pool.fqdn
            ));
        }
        told = true;
        if opts.cancel.is_cancelled() {
            return Err(SyncError::interrupted_before(
                &pair.pool.fqdn,
                &pair.partner.fqdn,
                false,
            ));
        }
        let until = Instant::now() + pause;
        while Instant::now() < until && !opts.cancel.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
