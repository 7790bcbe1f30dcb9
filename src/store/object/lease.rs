//! A held object-store lock: its lease (the body names an expiry and the
//! holder), renewed every third of a lease on a background task, and lost,
//! for every write of the store, when a renewal finds it taken or none
//! succeeds in time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::{LockMode, ObjectBackedStore};
use crate::store::{StoreLock, StoreResult, system_time_ns};

/// How long an object-store lock lives without being renewed. A holder
/// renews every third of it; one that has not renewed for two thirds of it
/// takes its lock as lost and commits nothing more. Another process takes an
/// abandoned lock over when its holder has ended (same machine), when it
/// expired more than a lease ago by its own clock (so clocks may differ by up
/// to a lease), or when it has seen the lock unchanged for a whole lease by
/// its own monotonic clock (whatever the clocks say).
pub(super) const LEASE: Duration = Duration::from_mins(1);

static NEXT_LOCK_ID: AtomicU64 = AtomicU64::new(0);

impl ObjectBackedStore {
    /// Fails once a lock this store holds was lost: another sync may have
    /// taken the pair, so nothing more may be written or committed.
    pub(super) fn check_held(&self) -> StoreResult<()> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.values().any(|lost| lost.load(Ordering::SeqCst)) {
            return Err(self.other(format!(
                "the pair lock at this store was lost: it could not be renewed within {} s, so another sync may hold the pair now; this sync stopped before writing more; rerun it",
                self.lease.as_secs()
            )));
        }
        Ok(())
    }

    /// Holds the lock at `key`, written with e-tag `etag`, and renews it.
    pub(super) fn hold(
        &self,
        key: Path,
        owner: &str,
        etag: Option<String>,
        mode: LockMode,
    ) -> Box<dyn StoreLock> {
        self.forget_observed(key.as_ref());
        let id = NEXT_LOCK_ID.fetch_add(1, Ordering::Relaxed);
        let lost = Arc::new(AtomicBool::new(false));
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, lost.clone());
        Box::new(ObjectLock::hold(LockState {
            backend: self.backend.clone(),
            key,
            owner: owner.to_string(),
            lease: self.lease,
            etag,
            mode,
            lost,
            id,
            held: self.held.clone(),
        }))
    }
}

/// The body of a lease of `owner`: when it expires (ns since the epoch), a
/// newline, and the owner.
pub(super) fn lease_body(owner: &str, lease: Duration) -> Bytes {
    let expires = system_time_ns(SystemTime::now() + lease);
    Bytes::from(format!("{expires}\n{owner}"))
}

/// The expiry and the holder a lease body names; `None` if it does not parse.
pub(super) fn parse_lease(text: &str) -> Option<(i64, &str)> {
    text.split_once('\n')
        .and_then(|(expires, holder)| Some((expires.parse::<i64>().ok()?, holder)))
}

/// Who a lease body names.
pub(super) fn lease_holder(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split_once('\n')
        .map_or(text.as_ref(), |(_, h)| h)
        .to_string()
}

/// What a held lock's renewals need.
struct LockState {
    backend: Arc<dyn ObjectStore>,
    key: Path,
    owner: String,
    lease: Duration,
    /// The e-tag of our last write of the lock (conditional mode).
    etag: Option<String>,
    mode: LockMode,
    lost: Arc<AtomicBool>,
    id: u64,
    held: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
}

impl LockState {
    /// Writes the lease again. `Ok(false)`: the lock is not ours any more.
    async fn renew(&mut self) -> object_store::Result<bool> {
        let body = PutPayload::from(lease_body(&self.owner, self.lease));
        let result = match (self.mode, &self.etag) {
            // Only over our own last write: if another process took the lock
            // (after we failed to renew in time), it stays theirs.
            (LockMode::Conditional, Some(etag)) => {
                let version = UpdateVersion {
                    e_tag: Some(etag.clone()),
                    version: None,
                };
                self.backend
                    .put_opts(&self.key, body, PutOptions::from(PutMode::Update(version)))
                    .await
            }
            // A contender key is ours alone, unless another process judged
            // it dead and deleted it: then the lock may be someone else's.
            (LockMode::Contender, _) => match self.backend.head(&self.key).await {
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e),
                Ok(_) => self.backend.put(&self.key, body).await,
            },
            (LockMode::Conditional, None) => self.backend.put(&self.key, body).await,
        };
        match result {
            Ok(put) => {
                self.etag = put.e_tag;
                Ok(true)
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }
}

/// A held object lock: renewed every third of a lease; lost (and left alone)
/// when a renewal finds it taken or none succeeds for two thirds of a lease.
struct ObjectLock {
    heartbeat: tokio::task::JoinHandle<()>,
    backend: Arc<dyn ObjectStore>,
    key: Path,
    lost: Arc<AtomicBool>,
    id: u64,
    held: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
    released: bool,
}

impl ObjectLock {
    fn hold(mut state: LockState) -> ObjectLock {
        let (backend, key, lost, id, held) = (
            state.backend.clone(),
            state.key.clone(),
            state.lost.clone(),
            state.id,
            state.held.clone(),
        );
        let heartbeat = tokio::spawn(async move {
            let mut renewed = Instant::now();
            let mut pause = state.lease / 3;
            loop {
                tokio::time::sleep(pause).await;
                let started = Instant::now();
                match tokio::time::timeout(state.lease / 6, state.renew()).await {
                    Ok(Ok(true)) => {
                        renewed = started;
                        pause = state.lease / 3;
                    }
                    Ok(Ok(false)) => {
                        state.mark_lost();
                        return;
                    }
                    // Failed or slow: try again soon, but not past the point
                    // where another process could take the lock over.
                    Ok(Err(_)) | Err(_) => {
                        if renewed.elapsed() >= state.lease * 2 / 3 {
                            state.mark_lost();
                            return;
                        }
                        pause = state.lease / 12;
                    }
                }
            }
        });
        ObjectLock {
            heartbeat,
            backend,
            key,
            lost,
            id,
            held,
            released: false,
        }
    }

    fn finish(&mut self) -> Option<(Arc<dyn ObjectStore>, Path)> {
        self.heartbeat.abort();
        self.released = true;
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
        // A lost lock may be someone else's by now: leave it to them.
        (!self.lost.load(Ordering::SeqCst)).then(|| (self.backend.clone(), self.key.clone()))
    }
}

#[async_trait]
impl StoreLock for ObjectLock {
    async fn release(mut self: Box<Self>) {
        if let Some((backend, key)) = self.finish() {
            let _ = backend.delete(&key).await;
        }
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Not released (a panic, a cancelled task): delete in the background; if
        // the process ends first, the lease runs out.
        if let Some((backend, key)) = self.finish()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = backend.delete(&key).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use object_store::ObjectStoreExt;
    use object_store::path::Path;

    use super::super::test_support::{KEY, bucket, process, runtime, seed};
    use crate::store::Store;

    #[test]
    fn a_lock_taken_by_another_process_is_lost_and_left_to_it() {
        runtime().block_on(async {
            let backend = bucket();
            let lease = Duration::from_millis(300);
            let store = process(&backend, lease);
            let lock = store.try_lock("pair", "A").await.unwrap().ok().unwrap();
            assert!(store.meta_create("x/1", Bytes::from("1")).await.unwrap());
            // Another process took the lock over (say this one was stalled).
            seed(&backend, "99999999999999999999\nB").await;
            tokio::time::sleep(lease / 3 + Duration::from_millis(100)).await;
            let err = store
                .meta_create("x/2", Bytes::from("2"))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("pair lock at this store was lost"),
                "{err}"
            );
            // Releasing it must not delete the other process's lock.
            lock.release().await;
            let body = backend
                .get(&Path::from(KEY))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&body[..], b"99999999999999999999\nB");
            // A new lock of this store, once taken, is not affected.
            backend.delete(&Path::from(KEY)).await.unwrap();
            let again = store.try_lock("pair", "A").await.unwrap().ok().unwrap();
            assert!(store.meta_create("x/3", Bytes::from("3")).await.unwrap());
            again.release().await;
        });
    }

    #[test]
    fn a_held_lock_is_renewed_and_not_taken_over() {
        runtime().block_on(async {
            let backend = bucket();
            let lease = Duration::from_millis(300);
            let (a, b) = (process(&backend, lease), process(&backend, lease));
            let lock = a.try_lock("pair", "A").await.unwrap().ok().unwrap();
            // Two leases later, B still finds it held: A kept renewing it.
            let until = Instant::now() + lease * 2;
            while Instant::now() < until {
                assert!(b.try_lock("pair", "B").await.unwrap().is_err());
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            assert!(a.meta_create("x/1", Bytes::from("1")).await.unwrap());
            lock.release().await;
            assert!(b.try_lock("pair", "B").await.unwrap().is_ok());
        });
    }
}
