//! Taking a lock on an object store.
//!
//! Where the server honours conditional writes (`If-None-Match: *`), a lock
//! is one create-only object. Garage (and some others) accept the header and
//! overwrite anyway; a probe finds that out, and such stores use contender keys:
//! each contender writes its own key and lists the lock's folder, and holds the
//! lock only if it is the only live contender (see `contender.rs`). A lock
//! whose holder stopped renewing it is taken over (see `LEASE`); once taken,
//! `lease.rs` keeps it.

use std::time::{Instant, SystemTime};

use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::ObjectBackedStore;
use super::lease::{lease_body, parse_lease};
use crate::store::{LockHolder, StoreLock, StoreResult, owner_is_gone, system_time_ns};

/// How locks are taken on this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// One create-only object (`PutMode::Create`).
    Conditional,
    /// One key per contender plus a listing: for servers that ignore conditions.
    Contender,
}

/// What an attempt to take a lock gives: the lock, or who holds it.
pub(super) type Attempt = StoreResult<Result<Box<dyn StoreLock>, LockHolder>>;

impl ObjectBackedStore {
    /// The lock mode, probed once: create a key twice with `PutMode::Create`; a
    /// server that lets the second through does not honour conditional writes.
    pub async fn lock_mode(&self) -> StoreResult<LockMode> {
        self.lock_mode
            .get_or_try_init(|| async {
                let key = self.meta_key(&format!(
                    "probe/conditional-{}",
                    crate::store::registry::unique_suffix()
                ))?;
                let create = || {
                    self.backend.put_opts(
                        &key,
                        PutPayload::from_static(b"probe"),
                        PutOptions::from(PutMode::Create),
                    )
                };
                let first = create().await;
                let mode = match first {
                    Err(object_store::Error::NotImplemented { .. }) => LockMode::Contender,
                    Err(e) => return Err(self.backend_err("probe conditional writes", "probe", e)),
                    Ok(_) => match create().await {
                        Err(
                            object_store::Error::AlreadyExists { .. }
                            | object_store::Error::Precondition { .. },
                        ) => LockMode::Conditional,
                        Ok(_) | Err(object_store::Error::NotImplemented { .. }) => {
                            LockMode::Contender
                        }
                        Err(e) => {
                            let _ = self.backend.delete(&key).await;
                            return Err(self.backend_err("probe conditional writes", "probe", e));
                        }
                    },
                };
                let _ = self.backend.delete(&key).await;
                if mode == LockMode::Contender {
                    self.notices
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(format!(
                            "{}: the server does not honour conditional writes (If-None-Match); pair locks use one key per contender instead (docs/s3.md)",
                            self.desc
                        ));
                }
                Ok(mode)
            })
            .await
            .copied()
    }

    /// Whether this process has seen the lock at `key` with e-tag `etag`, and
    /// nothing newer, for a whole lease: its holder stopped renewing it.
    pub(super) fn unchanged_for_a_lease(&self, key: &str, etag: &str) -> bool {
        let mut observed = self
            .observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match observed.get(key) {
            Some((seen, since)) if seen == etag => since.elapsed() >= self.lease,
            _ => {
                // Contender keys are new for every attempt: forget the ones
                // not looked at again for many leases, or a long-running
                // service would keep every key it ever waited on.
                let stale = self.lease * 10;
                observed.retain(|_, (_, since)| since.elapsed() < stale);
                observed.insert(key.to_string(), (etag.to_string(), Instant::now()));
                false
            }
        }
    }

    pub(super) fn forget_observed(&self, key: &str) {
        self.observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// The conditional lock: create the lock's object if there is none; else
    /// take it over if its holder abandoned it.
    pub(super) async fn try_lock_conditional(&self, name: &str, owner: &str) -> Attempt {
        self.check_held()?;
        let key = self.meta_key(&format!("locks/{name}"))?;
        let body = PutPayload::from(lease_body(owner, self.lease));
        match self
            .backend
            .put_opts(&key, body, PutOptions::from(PutMode::Create))
            .await
        {
            Ok(put) => return Ok(Ok(self.hold(key, owner, put.e_tag, LockMode::Conditional))),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {}
            Err(e) => return Err(self.backend_err("lock", name, e)),
        }
        self.take_over_if_abandoned(name, owner, key).await
    }

    /// Reads the lock at `key`, held by someone, and takes it over if its
    /// holder abandoned it.
    async fn take_over_if_abandoned(&self, name: &str, owner: &str, key: Path) -> Attempt {
        let found = match self.backend.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                return held_by_another("the lock changed hands");
            }
            Err(e) => return Err(self.backend_err("lock", name, e)),
        };
        let meta = found.meta.clone();
        // A lock that cannot be read, or does not parse, is held by someone:
        // only an expiry actually read, or a lock seen unchanged for a whole
        // lease, lets us take it over.
        let Ok(bytes) = found.bytes().await else {
            return held_by_another("its lock could not be read");
        };
        let (abandoned, holder) = self.abandoned(&key, &meta, &bytes);
        if !abandoned {
            return Ok(Err(LockHolder(holder)));
        }
        // Take it over only if it is still what we read: of two processes
        // that find it abandoned at once, one wins and the other waits.
        let Some(etag) = meta.e_tag else {
            return Ok(Err(LockHolder(holder)));
        };
        let version = UpdateVersion {
            e_tag: Some(etag),
            version: meta.version,
        };
        let body = PutPayload::from(lease_body(owner, self.lease));
        match self
            .backend
            .put_opts(&key, body, PutOptions::from(PutMode::Update(version)))
            .await
        {
            Ok(put) => Ok(Ok(self.hold(key, owner, put.e_tag, LockMode::Conditional))),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => held_by_another("the lock changed hands"),
            Err(e) => Err(self.backend_err("lock", name, e)),
        }
    }

    /// Whether the lock read at `key` (its `meta` and `body`) is abandoned:
    /// its holder has ended, it expired more than a lease ago, or this process
    /// has seen it unchanged for a whole lease. And who holds it.
    fn abandoned(&self, key: &Path, meta: &ObjectMeta, body: &[u8]) -> (bool, String) {
        let text = String::from_utf8_lossy(body).into_owned();
        let parsed = parse_lease(&text);
        let stale_by_body = parsed.is_some_and(|(expires, holder)| {
            owner_is_gone(holder)
                || expires.saturating_add(self.lease.as_nanos() as i64)
                    < system_time_ns(SystemTime::now())
        });
        let stale = stale_by_body
            || meta
                .e_tag
                .as_deref()
                .is_some_and(|tag| self.unchanged_for_a_lease(key.as_ref(), tag));
        let holder = parsed.map_or(
            "another process (an unreadable lock)".to_string(),
            |(_, h)| h.to_string(),
        );
        (stale, holder)
    }
}

/// The lock is held by another process, which cannot be named: `why`. An
/// [`Attempt`], as the other steps of taking the lock return.
#[expect(
    clippy::unnecessary_wraps,
    reason = "one of the lock steps, which return an Attempt"
)]
fn held_by_another(why: &str) -> Attempt {
    Ok(Err(LockHolder(format!("another process ({why})"))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::lease::LEASE;
    use super::super::test_support::{bucket, process, runtime, seed};
    use crate::store::Store;

    #[test]
    fn two_processes_never_both_take_an_abandoned_lock() {
        runtime().block_on(async {
            for round in 0..10 {
                let backend = bucket();
                // Expired long ago, by a process of another machine.
                seed(
                    &backend,
                    "1000\npoolsync pid 7 on elsewhere [x/y] since then",
                )
                .await;
                let (a, b) = (process(&backend, LEASE), process(&backend, LEASE));
                // B starts 0-9 ms after A: a different interleaving of their
                // requests each round.
                let b_later = async {
                    tokio::time::sleep(Duration::from_millis(round)).await;
                    b.try_lock("pair", "B").await
                };
                let (ra, rb) = tokio::join!(a.try_lock("pair", "A"), b_later);
                let winners = [ra.unwrap(), rb.unwrap()]
                    .into_iter()
                    .filter_map(std::result::Result::ok)
                    .collect::<Vec<_>>();
                assert_eq!(winners.len(), 1, "round {round}: both took the lock");
                for lock in winners {
                    lock.release().await;
                }
            }
        });
    }

    #[test]
    fn an_unreadable_lock_is_waited_out_not_taken() {
        runtime().block_on(async {
            let backend = bucket();
            seed(&backend, "garbage").await;
            let lease = Duration::from_millis(300);
            let store = process(&backend, lease);
            let first = store.try_lock("pair", "A").await.unwrap();
            assert!(
                first.is_err(),
                "a lock that does not parse was taken at once"
            );
            // Seen unchanged for a whole lease: its holder is gone.
            tokio::time::sleep(lease + Duration::from_millis(50)).await;
            let lock = store.try_lock("pair", "A").await.unwrap();
            assert!(lock.is_ok(), "an abandoned lock was never taken");
        });
    }

    #[test]
    fn keys_seen_long_ago_are_forgotten() {
        let store = process(&bucket(), Duration::from_millis(10));
        assert!(!store.unchanged_for_a_lease("locks/x.d/1", "e1"));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!store.unchanged_for_a_lease("locks/x.d/2", "e2"));
        let observed = store.observed.lock().unwrap();
        assert_eq!(observed.keys().collect::<Vec<_>>(), vec!["locks/x.d/2"]);
    }
}
