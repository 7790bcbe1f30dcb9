//! A store over the `object_store` crate: S3-compatible buckets (`s3.rs` builds
//! the client) and, for tests, process memory.
//!
//! Objects have no rename and no durable-batch call, but every PUT (multipart ones
//! too, at completion) replaces an object atomically: readers see the old object
//! or the new one, never a torn one. So an item is written straight to its final
//! key (one request, not PUT + COPY + DELETE) and a batch commits when its
//! manifest log document is written. An item written by a batch that never
//! committed is simply not in the manifest: the next run compares it again.
//!
//! Locks are one create-only object where the server honours conditional
//! writes, and contender keys where it does not (`lock.rs`, `contender.rs`);
//! a held lock is a lease, renewed in the background (`lease.rs`). Listing is
//! in `list.rs`, uploads in `writer.rs`, error wording in `errors.rs`.

mod breaker;
mod contender;
mod errors;
mod lease;
mod list;
mod lock;
#[cfg(test)]
mod test_support;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{
    ByteStream, ItemFailures, ItemPath, Listing, LockHolder, StageWriter, Staged, Store,
    StoreError, StoreLock, StoreResult, check_meta_key, check_writable, stream_into,
};
use breaker::{Breaker, BreakerStore};
use errors::http_status;
pub use lock::LockMode;
use writer::ObjectWriter;

pub struct ObjectBackedStore {
    backend: Arc<dyn ObjectStore>,
    prefix: Path,
    desc: String,
    /// The endpoint of a remote store (`None` in memory).
    remote: Option<String>,
    lock_mode: tokio::sync::OnceCell<LockMode>,
    notices: Mutex<Vec<String>>,
    lease: Duration,
    /// Locks of others as this process first saw them: key -> (e-tag, when).
    observed: Mutex<HashMap<String, (String, Instant)>>,
    /// The locks this store holds, by id: set when one is lost.
    held: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
    /// Set when the endpoint stopped answering (`breaker.rs`).
    breaker: Arc<Breaker>,
}

impl ObjectBackedStore {
    pub fn new(backend: Arc<dyn ObjectStore>, prefix: Path, desc: String) -> Self {
        let breaker = Arc::new(Breaker::default());
        ObjectBackedStore {
            backend: Arc::new(BreakerStore::new(backend, breaker.clone())),
            breaker,
            prefix,
            desc,
            remote: None,
            lock_mode: tokio::sync::OnceCell::new(),
            notices: Mutex::new(Vec::new()),
            lease: lease::LEASE,
            observed: Mutex::new(HashMap::new()),
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A shorter lease than the minute of real stores (tests).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Marks the store as remote (at `endpoint`): `probe` then checks the bucket
    /// and the server's conditional writes.
    #[must_use]
    pub fn remote(mut self, endpoint: String) -> Self {
        self.remote = Some(endpoint);
        self
    }

    /// Forces a lock mode instead of probing (tests use it to run the contender
    /// protocol on a store that would support the other).
    #[must_use]
    pub fn with_lock_mode(self, mode: LockMode) -> Self {
        let _ = self.lock_mode.set(mode);
        self
    }

    fn key(&self, rel: &str) -> StoreResult<Path> {
        let full = if self.prefix.as_ref().is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix.as_ref())
        };
        Path::parse(&full).map_err(|e| self.other(format!("invalid key '{rel}': {e}")))
    }

    /// The object key of an item: each segment percent-encoded by `object_store`
    /// (which also encodes `%`), so any byte string maps to one key and back.
    fn item_key(&self, path: &ItemPath) -> Path {
        let mut key = self.prefix.clone();
        for segment in path.as_bytes().split(|b| *b == b'/') {
            key = key.join(segment);
        }
        key
    }

    fn meta_key(&self, key: &str) -> StoreResult<Path> {
        check_meta_key(key).map_err(|m| self.other(m))?;
        self.key(&format!(".poolsync/meta/{key}"))
    }

    fn staging_key(&self, name: &str) -> StoreResult<Path> {
        check_meta_key(name).map_err(|m| self.other(m))?;
        self.key(&format!(".poolsync/staging/{name}"))
    }

    /// Checks bucket and credentials with one listing request.
    async fn check_bucket(&self) -> StoreResult<()> {
        let base = self.key(".poolsync")?;
        match self.backend.list_with_delimiter(Some(&base)).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e, object_store::Error::NotFound { .. })
                    || http_status(&e) == Some(404) =>
            {
                Err(self.other(
                "the bucket does not exist: create it (e.g. `garage bucket create NAME`, `aws s3 mb`) or fix the store URL in deployment.toml".into(),
                ))
            }
            Err(e) => Err(self.backend_err("list", ".poolsync", e)),
        }
    }

    /// Writes an item's content straight to its final key.
    async fn write_in_place(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        self.check_held()?;
        check_writable(dest).map_err(|m| self.other(m))?;
        let key = self.item_key(dest);
        let writer = Box::new(ObjectWriter::new(
            self.backend.clone(),
            key,
            self.desc.clone(),
            dest.to_string(),
            self.breaker.clone(),
        ));
        stream_into(writer, source, path, name, true).await
    }
}

#[async_trait]
impl Store for ObjectBackedStore {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    async fn probe(&self) -> StoreResult<()> {
        // A new sync tries an endpoint that stopped answering before.
        self.breaker.reset();
        if self.remote.is_some() {
            self.check_bucket().await?;
            self.lock_mode().await?;
        }
        Ok(())
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .notices
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        self.list_objects(prefix).await
    }

    async fn read(&self, path: &ItemPath) -> StoreResult<ByteStream> {
        let key = self.item_key(path);
        let result = self
            .backend
            .get(&key)
            .await
            .map_err(|e| self.backend_err("read", &path.to_string(), e))?;
        let desc = self.desc.clone();
        let name = path.to_string();
        Ok(Box::pin(result.into_stream().map_err(move |e| {
            StoreError::Other {
                store: desc.clone(),
                message: format!("read '{name}': {e}"),
            }
        })))
    }

    async fn stage_writer(
        &self,
        name: &str,
        _dest: &ItemPath,
    ) -> StoreResult<Box<dyn StageWriter>> {
        let key = self.staging_key(name)?;
        Ok(Box::new(ObjectWriter::new(
            self.backend.clone(),
            key,
            self.desc.clone(),
            name.to_string(),
            self.breaker.clone(),
        )))
    }

    async fn stage_from(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        self.write_in_place(source, path, name, dest).await
    }

    fn writes_in_place(&self) -> bool {
        true
    }

    async fn make_durable(&self) -> StoreResult<()> {
        Ok(()) // a completed PUT is durable
    }

    async fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<ItemFailures> {
        self.check_held()?;
        for path in deletes.iter().chain(moves.iter().map(|(_, dest)| dest)) {
            check_writable(path).map_err(|m| self.other(m))?;
        }
        for path in deletes {
            let key = self.item_key(path);
            match self.backend.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_err("delete", &path.to_string(), e)),
            }
        }
        for (name, dest) in moves {
            let from = self.staging_key(name)?;
            let to = self.item_key(dest);
            match self.backend.copy(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.backend_err("copy into place", &dest.to_string(), e)),
            }
            let _ = self.backend.delete(&from).await;
        }
        Ok(ItemFailures::new())
    }

    async fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        for name in names {
            let key = self.staging_key(name)?;
            match self.backend.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_err("delete", name, e)),
            }
        }
        Ok(())
    }

    async fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        let base = self.key(".poolsync/staging")?;
        let metas: Vec<_> = self
            .backend
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.backend_err("list", "staging", e))?;
        for meta in metas {
            if meta
                .location
                .filename()
                .is_some_and(|f| f.starts_with(prefix))
            {
                let _ = self.backend.delete(&meta.location).await;
            }
        }
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let path = self.meta_key(key)?;
        match self.backend.get(&path).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.backend_err("read", key, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend_err("read", key, e)),
        }
    }

    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        self.check_held()?;
        let path = self.meta_key(key)?;
        self.backend
            .put(&path, PutPayload::from(value))
            .await
            .map(|_| ())
            .map_err(|e| self.backend_err("write", key, e))
    }

    /// Create-only where the server honours it (the manifest log of a batch is
    /// written this way: one conditional write commits the batch); elsewhere a
    /// plain write, and the pair lock is what keeps writers apart.
    async fn meta_create(&self, key: &str, value: Bytes) -> StoreResult<bool> {
        self.check_held()?;
        let path = self.meta_key(key)?;
        let mode = match self.lock_mode().await? {
            LockMode::Conditional => PutMode::Create,
            LockMode::Contender => PutMode::Overwrite,
        };
        match self
            .backend
            .put_opts(&path, PutPayload::from(value), PutOptions::from(mode))
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.backend_err("write", key, e)),
        }
    }

    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let base = self.meta_key(prefix)?;
        let metas: Vec<_> = self
            .backend
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.backend_err("list", prefix, e))?;
        let mut keys: Vec<String> = metas
            .iter()
            .filter_map(|m| m.location.filename().map(|f| format!("{prefix}/{f}")))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        let path = self.meta_key(key)?;
        match self.backend.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend_err("delete", key, e)),
        }
    }

    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        match self.lock_mode().await? {
            LockMode::Contender => self.try_lock_contender(name, owner).await,
            LockMode::Conditional => self.try_lock_conditional(name, owner).await,
        }
    }
}
