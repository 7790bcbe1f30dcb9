//! A store that fails on purpose: the `n`-th operation of one kind returns an
//! error, a message of its own or an operating-system error (ENOSPC, EIO,
//! EROFS, EDQUOT), so that the engine's handling of each can be tested
//! through the library API.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use poolsync::store::{
    ByteStream, FreeSpace, Hash, ItemFailures, ItemPath, Listing, LocalStore, LockHolder,
    StageWriter, Staged, Store, StoreError, StoreLock, StoreResult,
};
use poolsync::sync::SyncEngine;
use poolsync::topology::{self, Deployment};

/// Which operation of a store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    List,
    /// A listing that could not read the folder `g` (and says so).
    PartialList,
    Read,
    Stage,
    Commit,
    MetaPut,
    Durable,
}

/// A store that fails its `n`-th operation of one kind: once with a message
/// of its own, or, given an operating-system error, from then on (a disk that
/// filled up or failed stays so).
pub(crate) struct FaultyStore {
    inner: Arc<dyn Store>,
    fault: Fault,
    at: u64,
    errno: Option<i32>,
    count: AtomicU64,
}

impl FaultyStore {
    pub(crate) fn wrap(inner: Arc<dyn Store>, fault: Fault, at: u64) -> Arc<FaultyStore> {
        FaultyStore::failing(inner, fault, at, None)
    }

    /// `inner`, whose `at`-th operation of kind `fault` and every one after
    /// it fail with the system error `errno` (`None`: the `at`-th alone
    /// fails, with a message).
    pub(crate) fn failing(
        inner: Arc<dyn Store>,
        fault: Fault,
        at: u64,
        errno: Option<i32>,
    ) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            fault,
            at,
            errno,
            count: AtomicU64::new(0),
        })
    }

    /// An engine for `d` whose store of `pool` (under `dir`) fails its `at`-th
    /// operation of kind `fault`.
    pub(crate) fn engine(
        d: &Arc<Deployment>,
        dir: &Path,
        pool: &str,
        fault: Fault,
        at: u64,
    ) -> SyncEngine {
        FaultyStore::engine_with(d, dir, pool, fault, at, None)
    }

    /// As [`FaultyStore::engine`], failing with the system error `errno`
    /// from the `at`-th operation on.
    pub(crate) fn engine_with(
        d: &Arc<Deployment>,
        dir: &Path,
        pool: &str,
        fault: Fault,
        at: u64,
        errno: Option<i32>,
    ) -> SyncEngine {
        let engine = SyncEngine::new(d.clone());
        let inner = Arc::new(LocalStore::open(&dir.join("stores").join(pool)).unwrap());
        engine.set_store(
            &topology::Fqdn::parse(pool).unwrap(),
            FaultyStore::failing(inner, fault, at, errno),
        );
        engine
    }

    fn hit(&self, kind: Fault) -> StoreResult<()> {
        if kind != self.fault {
            return Ok(());
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        match self.errno {
            Some(errno) if n >= self.at => Err(StoreError::Io {
                store: self.inner.describe(),
                action: "write",
                path: format!("injected {kind:?} fault"),
                source: std::io::Error::from_raw_os_error(errno),
            }),
            None if n == self.at => Err(StoreError::Other {
                store: "faulty".into(),
                message: format!("injected {kind:?} fault"),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        self.hit(Fault::List)?;
        let mut listing = self.inner.list(prefix).await?;
        if self.hit(Fault::PartialList).is_err() {
            listing
                .entries
                .retain(|e| !e.path.as_bytes().starts_with(b"g/"));
            listing
                .warnings
                .push("cannot list 'g': injected PartialList fault".into());
            listing.incomplete = true;
        }
        Ok(listing)
    }
    async fn read(&self, path: &ItemPath) -> StoreResult<ByteStream> {
        self.hit(Fault::Read)?;
        self.inner.read(path).await
    }
    async fn hash(&self, path: &ItemPath) -> StoreResult<(u64, Hash)> {
        self.hit(Fault::Read)?;
        self.inner.hash(path).await
    }
    fn writes_in_place(&self) -> bool {
        self.inner.writes_in_place()
    }
    async fn free_space(&self, at: &ItemPath) -> Option<FreeSpace> {
        self.inner.free_space(at).await
    }
    async fn stage_writer(&self, name: &str, dest: &ItemPath) -> StoreResult<Box<dyn StageWriter>> {
        self.hit(Fault::Stage)?;
        self.inner.stage_writer(name, dest).await
    }
    async fn stage_from(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        self.hit(Fault::Stage)?;
        self.inner.stage_from(source, path, name, dest).await
    }
    async fn make_durable(&self) -> StoreResult<()> {
        self.hit(Fault::Durable)?;
        self.inner.make_durable().await
    }
    async fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<ItemFailures> {
        self.hit(Fault::Commit)?;
        // Fail half-way too: move the first half, then fail.
        self.inner.commit(moves, deletes).await
    }
    async fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        self.inner.discard_staged(names).await
    }
    async fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        self.inner.clear_staging(prefix).await
    }
    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        self.inner.meta_get(key).await
    }
    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        self.hit(Fault::MetaPut)?;
        self.inner.meta_put(key, value).await
    }
    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        self.inner.meta_list(prefix).await
    }
    async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        self.inner.meta_delete(key).await
    }
    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        self.inner.try_lock(name, owner).await
    }
}
