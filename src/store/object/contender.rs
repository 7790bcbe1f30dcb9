//! The contender-key lock, for servers that ignore conditional writes: each
//! contender writes its own key below the lock's folder and lists the folder.

use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::ObjectBackedStore;
use super::lease::{lease_body, lease_holder};
use super::lock::{Attempt, LockMode};
use crate::store::{LockHolder, owner_is_gone, system_time_ns};

impl ObjectBackedStore {
    /// The contender-key lock: write our own key under the lock's folder, list
    /// the folder, and hold the lock only if no other live contender is there.
    /// Two contenders that both see each other both withdraw and retry later
    /// (after a random pause). It is safe because a listing that starts after a
    /// write has completed shows that write (read-after-write consistency, which
    /// Garage's default `consistent` mode and Amazon S3 give): of two contenders,
    /// the one whose listing starts last sees the other.
    pub(super) async fn try_lock_contender(&self, name: &str, owner: &str) -> Attempt {
        let folder = self.meta_key(&format!("locks/{name}.d"))?;
        let mine = folder.clone().join(crate::store::registry::unique_suffix());
        self.check_held()?;
        self.backend
            .put(&mine, PutPayload::from(lease_body(owner, self.lease)))
            .await
            .map_err(|e| self.backend_err("lock", name, e))?;
        let contenders: Vec<_> = match self.backend.list(Some(&folder)).try_collect().await {
            Ok(c) => c,
            Err(e) => {
                let _ = self.backend.delete(&mine).await;
                return Err(self.backend_err("lock", name, e));
            }
        };
        let now = chrono_now_ms();
        let mut rival = None;
        for c in &contenders {
            if c.location == mine {
                continue;
            }
            let renewed = c.last_modified.timestamp_millis();
            let unchanged = c
                .e_tag
                .as_deref()
                .is_some_and(|tag| self.unchanged_for_a_lease(c.location.as_ref(), tag));
            if renewed + 2 * (self.lease.as_millis() as i64) < now || unchanged {
                // Not renewed for a lease (by the server's clock, allowing a
                // lease of difference from ours, or as seen by us): gone.
                let _ = self.backend.delete(&c.location).await;
                self.forget_observed(c.location.as_ref());
                continue;
            }
            let holder = match self.backend.get(&c.location).await {
                Ok(r) => r.bytes().await.ok().map(|b| lease_holder(&b)),
                Err(object_store::Error::NotFound { .. }) => continue, // withdrew
                Err(_) => None,
            };
            if holder.as_deref().is_some_and(owner_is_gone) {
                // A process of this machine that no longer runs (killed): its
                // key will never be renewed; do not wait for the lease.
                let _ = self.backend.delete(&c.location).await;
                continue;
            }
            rival = Some(holder);
        }
        if let Some(holder) = rival {
            let _ = self.backend.delete(&mine).await;
            // A random pause, so two contenders do not collide in step forever.
            let pause = 20 + u64::from(rand_byte()) * 2;
            tokio::time::sleep(Duration::from_millis(pause)).await;
            return Ok(Err(LockHolder(
                holder.unwrap_or_else(|| "another process".into()),
            )));
        }
        Ok(Ok(self.hold(mine, owner, None, LockMode::Contender)))
    }
}

fn chrono_now_ms() -> i64 {
    system_time_ns(SystemTime::now()) / 1_000_000
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(system_time_ns(SystemTime::now()) as u64);
    h.finish() as u8
}
