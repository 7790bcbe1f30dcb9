//! Pool stores: one trait, a native local-disk store and an object-store store.
//!
//! Everything above this module speaks only [`Store`]: item paths are validated
//! [`ItemPath`]s, content moves as byte streams, and the few places where a local
//! disk can do better (one `syncfs` per batch, `rename` into place, a kernel lock)
//! stay inside `local/`.
//!
//! Store layout (a contract):
//! - `data/<module identity>/<item path>`: the pool's own data;
//! - `backup/<partner fqdn>/<module identity>/<item path>`: the replica of its partner;
//!   while the partner is failed over to this pool, it is the partner's active copy;
//! - `quarantine/<folder>/<module identity>/<item path>`: items a failback or a
//!   restore moved aside instead of overwriting them;
//! - `.poolsync/`: the tool's metadata (manifests, journals, status, locks, staging).

mod item_path;
mod local;
mod location;
mod lock_owner;
mod object;
mod registry;
mod release;
mod s3;

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use crate::printable::printable;
pub use item_path::ItemPath;
pub use local::LocalStore;
pub use location::{StoreKey, StoreLocation, StoreOwner};
pub use lock_owner::{lock_owner, owner_is_gone, this_process};
pub use object::{LockMode, ObjectBackedStore};
pub use registry::{memory_backend, open_store};
pub use s3::{RETRY_BUDGET, S3Credentials, S3Location, resolve_credentials};

/// A BLAKE3 content hash.
pub type Hash = [u8; 32];

/// An error from a store, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store}: '{path}' does not exist")]
    NotFound { store: String, path: String },
    #[error("{store}: {action} '{path}': {source}")]
    Io {
        store: String,
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{store}: {message}")]
    Other { store: String, message: String },
}

/// A fault of the storage itself, which no other item would escape: the sync
/// stops at once instead of failing item after item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No space left (ENOSPC) or over quota (EDQUOT).
    NoSpace,
    /// The file system is read-only (EROFS).
    ReadOnly,
    /// The device failed (EIO).
    Io,
    /// The store could not be reached, or kept failing, after the retries
    /// (a stopped server, a network down, 5xx answers).
    Unavailable,
    /// An item could not be staged on its destination's file system, so it
    /// could not be renamed into place atomically (EXDEV, or a mount whose
    /// staging folder cannot be used).
    CrossDevice,
}

/// The room left on the file system of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeSpace {
    /// Bytes an unprivileged writer may still write.
    pub bytes: u64,
    /// Files (inodes) that may still be made, and how many the file system
    /// holds in all; `None` where it does not count them (btrfs, say).
    pub files: Option<u64>,
    pub files_total: Option<u64>,
}

impl StoreError {
    /// The storage fault behind this error, if it is one.
    #[must_use]
    pub fn fault(&self) -> Option<Fault> {
        let StoreError::Io { source, .. } = self else {
            return None;
        };
        match source.kind() {
            std::io::ErrorKind::CrossesDevices => return Some(Fault::CrossDevice),
            std::io::ErrorKind::NotConnected => return Some(Fault::Unavailable),
            _ => {}
        }
        match source.raw_os_error()? {
            libc::ENOSPC | libc::EDQUOT => Some(Fault::NoSpace),
            libc::EROFS => Some(Fault::ReadOnly),
            libc::EIO => Some(Fault::Io),
            _ => None,
        }
    }

    /// The store this error is about (its `describe()`).
    #[must_use]
    pub fn store(&self) -> &str {
        match self {
            StoreError::NotFound { store, .. }
            | StoreError::Io { store, .. }
            | StoreError::Other { store, .. } => store,
        }
    }

    #[must_use]
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::NotFound { .. } => true,
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            StoreError::Other { .. } => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What tells us an item may have changed without reading it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeToken {
    /// Local disks: inode number and inode change time, which no `touch -r` can restore.
    Inode {
        ino: u64,
        ctime_ns: i64,
    },
    /// Object stores: the entity tag.
    ETag(String),
    None,
}

/// One listed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the listed prefix.
    pub path: ItemPath,
    pub size: u64,
    pub mtime_ns: i64,
    pub token: ChangeToken,
}

/// The result of listing a prefix.
#[derive(Debug, Default)]
pub struct Listing {
    /// False when the prefix (folder) does not exist at all.
    pub exists: bool,
    pub entries: Vec<Entry>,
    /// Items skipped (links, special files, unreadable folders), one sentence each.
    pub warnings: Vec<String>,
    /// A folder or an item could not be read, so items may be missing from
    /// `entries` that still exist: nothing missing may be taken as deleted.
    pub incomplete: bool,
}

/// Items a commit left as they were, by path, with the reason.
pub type ItemFailures = Vec<(ItemPath, String)>;

/// A staged item: written under a temporary name, not yet in place, or (on
/// object stores, where one PUT replaces an object atomically) already written
/// to its final name.
#[derive(Debug, Clone)]
pub struct Staged {
    pub name: String,
    pub size: u64,
    pub hash: Hash,
    /// Written straight to its destination: there is nothing to move at commit.
    pub in_place: bool,
}

/// A stream of item content.
pub type ByteStream = BoxStream<'static, StoreResult<Bytes>>;

/// Receives the content of a staged item.
#[async_trait]
pub trait StageWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()>;
    async fn finish(self: Box<Self>) -> StoreResult<()>;
}

/// A held lock; released by [`StoreLock::release`] or on drop (and by the kernel
/// or expiry if the process dies).
#[async_trait]
pub trait StoreLock: Send + Sync {
    /// Releases the lock now, waiting until others can see it is free.
    #[must_use]
    async fn release(self: Box<Self>) {}
}

/// Who holds a lock we could not take.
#[derive(Debug, Clone)]
pub struct LockHolder(pub String);

/// A pool store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Human-readable location (never with credentials).
    fn describe(&self) -> String;

    /// The native local store, for store-to-store fast paths inside this module.
    fn as_local(&self) -> Option<&LocalStore> {
        None
    }

    /// Checks the store is still there and the same one (a local folder that was
    /// moved or replaced, an unreachable endpoint); the engine asks before a sync.
    async fn probe(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Lists every item below `prefix`, recursively, paths relative to it.
    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing>;

    /// Lists the items at or below each of `paths` (relative to `prefix`),
    /// paths relative to `prefix`: what a sync of changed paths looks at
    /// instead of the whole prefix. A path that is gone lists nothing. The
    /// default lists the whole prefix and keeps what was asked for; a store
    /// that can look at one path alone does that instead.
    async fn list_paths(&self, prefix: &ItemPath, paths: &[ItemPath]) -> StoreResult<Listing> {
        let mut listing = self.list(prefix).await?;
        let asked: std::collections::BTreeSet<&ItemPath> = paths.iter().collect();
        listing
            .entries
            .retain(|e| asked.contains(&e.path) || e.path.ancestors().any(|a| asked.contains(&a)));
        Ok(listing)
    }

    /// Streams an item's content.
    async fn read(&self, path: &ItemPath) -> StoreResult<ByteStream>;

    /// Whether [`Store::stage_from`] writes items straight to their final path
    /// (see [`Staged::in_place`]). The engine then records which paths a batch
    /// may write before it stages them, since nothing can be discarded.
    fn writes_in_place(&self) -> bool {
        false
    }

    /// Opens a writer for a new staged item called `name`, to be moved to
    /// `dest` (a store stages it where a rename to `dest` is atomic).
    async fn stage_writer(&self, name: &str, dest: &ItemPath) -> StoreResult<Box<dyn StageWriter>>;

    /// Copies `path` of `source` into a new staged item `name`, hashing as it goes.
    /// A store whose single writes are atomic may write to `dest` (the item's
    /// final path) instead and say so in [`Staged::in_place`].
    async fn stage_from(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        let writer = self.stage_writer(name, dest).await?;
        stream_into(writer, source, path, name, false).await
    }

    /// Like [`Store::stage_from`], for an item whose content hashed to `known` at
    /// the last sync: when it still does, stages nothing and returns `None`. The
    /// content is read once where the store can keep a small item in memory
    /// between hashing and writing it.
    async fn stage_if_changed(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
        known: &Hash,
    ) -> StoreResult<Option<Staged>> {
        hash_then_stage(self, source, path, name, dest, known).await
    }

    /// Stages a group of items, up to `parallelism` at once; one result per
    /// request, in order. A store pair that can copy without the async runtime
    /// (local to local) hands the whole group to its threads at once.
    async fn stage_many(
        &self,
        source: &dyn Store,
        requests: &[StageRequest],
        parallelism: usize,
    ) -> Vec<StoreResult<Option<Staged>>> {
        stage_each(self, source, requests, parallelism).await
    }

    /// The room left where `at` is (its file system), if the store can tell;
    /// the engine checks a batch against it before staging, and words a
    /// failed write with it.
    async fn free_space(&self, _at: &ItemPath) -> Option<FreeSpace> {
        None
    }

    /// Size and BLAKE3 hash of an item's content.
    async fn hash(&self, path: &ItemPath) -> StoreResult<(u64, Hash)> {
        use futures::StreamExt;
        let mut stream = self.read(path).await?;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok((size, *hasher.finalize().as_bytes()))
    }

    /// Makes everything staged and every metadata write so far durable.
    async fn make_durable(&self) -> StoreResult<()>;

    /// Gets ready for `commit(moves, deletes)` without changing anything, for
    /// example by bringing what it will touch into a cache. The engine calls it
    /// while `make_durable` runs, on another thread. A hint: the default does
    /// nothing, and the commit must not depend on it.
    async fn prepare_commit(&self, _moves: &[(String, ItemPath)], _deletes: &[ItemPath]) {}

    /// Deletes items, then moves staged items into place (replacing what is
    /// there). Deletes go first so that an item can give way to a folder of the
    /// same name, or a folder (emptied by the deletes) to an item. Idempotent: a
    /// staged item that is gone was already moved; a missing item to delete is
    /// fine, and so is one whose folder is now an item, or which is now a folder
    /// (what a replayed commit finds). Only paths below `backup/` may be written
    /// or deleted.
    ///
    /// An item the store refuses on its own account (its name, its folder, its
    /// permissions) does not stop the batch: it is left as it was and returned
    /// with the reason, and everything else is committed. An error that is the
    /// store's (I/O, space, a link where a folder should be) is returned as
    /// such, and the batch is then partly done, as after a crash.
    async fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<ItemFailures>;

    /// Removes staged items by name (ignoring missing ones).
    async fn discard_staged(&self, names: &[String]) -> StoreResult<()>;

    /// Removes every staged item whose name starts with `prefix` (left over from a crash).
    async fn clear_staging(&self, prefix: &str) -> StoreResult<()>;

    /// Reads a metadata document (`key` is relative to `.poolsync/`).
    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>>;

    /// Replaces a metadata document atomically: readers see the old or the new one.
    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()>;

    /// Creates a metadata document that must not exist yet: `Ok(false)` when it
    /// does (where the store can tell; see each store).
    async fn meta_create(&self, key: &str, value: Bytes) -> StoreResult<bool> {
        self.meta_put(key, value).await.map(|()| true)
    }

    /// One-time messages about the store (a server feature it lacks, a fallback
    /// in use), taken once: the engine shows them with the next report.
    fn take_notices(&self) -> Vec<String> {
        Vec::new()
    }

    /// Keys of metadata documents below `prefix` (a folder, relative to `.poolsync/`).
    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>>;

    async fn meta_delete(&self, key: &str) -> StoreResult<()>;

    /// A short text that changes whenever the metadata document `key` is
    /// written, created or deleted, read without reading the document (a
    /// local file's inode, change time and size); `None` when the store
    /// cannot tell cheaply. Lets a caller keep a decoded document in memory
    /// and know when another writer replaced it.
    async fn meta_stamp(&self, _key: &str) -> StoreResult<Option<String>> {
        Ok(None)
    }

    /// Tries to take the named lock for `owner`; `Err(holder)` when someone has it.
    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>>;
}

/// Copies an item from any store into `writer`, one chunk at a time (memory does
/// not grow with the item's size), hashing as it goes.
pub async fn stream_into(
    mut writer: Box<dyn StageWriter>,
    source: &dyn Store,
    path: &ItemPath,
    name: &str,
    in_place: bool,
) -> StoreResult<Staged> {
    use futures::StreamExt;
    let mut stream = source.read(path).await?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        writer.write(chunk).await?;
    }
    writer.finish().await?;
    Ok(Staged {
        name: name.to_string(),
        size,
        hash: *hasher.finalize().as_bytes(),
        in_place,
    })
}

/// One item to stage with [`Store::stage_many`].
#[derive(Debug, Clone)]
pub struct StageRequest {
    /// The item at the source store.
    pub path: ItemPath,
    /// The staged name at this store.
    pub name: String,
    /// The item's final path at this store.
    pub dest: ItemPath,
    /// Stage it only if its content no longer hashes to this
    /// ([`Store::stage_if_changed`]); `None`: always.
    pub known: Option<Hash>,
}

/// [`Store::stage_many`] one request at a time, up to `parallelism` at once.
pub async fn stage_each<S: Store + ?Sized>(
    store: &S,
    source: &dyn Store,
    requests: &[StageRequest],
    parallelism: usize,
) -> Vec<StoreResult<Option<Staged>>> {
    use futures::StreamExt;
    let each: Vec<_> = requests
        .iter()
        .map(|r| stage_one(store, source, r))
        .collect();
    let mut staged = futures::stream::iter(each).buffered(parallelism.max(1));
    let mut results = Vec::with_capacity(requests.len());
    while let Some(result) = staged.next().await {
        let fault = result.as_ref().err().and_then(StoreError::fault);
        results.push(result);
        if let Some(fault) = fault {
            // The storage itself failed: the items still to go would each
            // fail the same way, an unreachable server only after its own
            // retries. Those in flight are dropped, the rest not begun.
            drop(staged);
            let skipped = requests[results.len()..].iter().map(|r| {
                Err(StoreError::Other {
                    store: store.describe(),
                    message: format!("'{}' not staged: the store failed ({fault:?})", r.path),
                })
            });
            results.extend(skipped);
            break;
        }
    }
    results
}

fn stage_one<'a, S: Store + ?Sized>(
    store: &'a S,
    source: &'a dyn Store,
    r: &'a StageRequest,
) -> futures::future::BoxFuture<'a, StoreResult<Option<Staged>>> {
    Box::pin(async move {
        match &r.known {
            Some(known) => {
                store
                    .stage_if_changed(source, &r.path, &r.name, &r.dest, known)
                    .await
            }
            None => store
                .stage_from(source, &r.path, &r.name, &r.dest)
                .await
                .map(Some),
        }
    })
}

/// [`Store::stage_if_changed`] in two passes: hash the source, then copy it if
/// the hash differs.
pub async fn hash_then_stage<S: Store + ?Sized>(
    store: &S,
    source: &dyn Store,
    path: &ItemPath,
    name: &str,
    dest: &ItemPath,
    known: &Hash,
) -> StoreResult<Option<Staged>> {
    let (_, hash) = source.hash(path).await?;
    if hash == *known {
        return Ok(None);
    }
    store.stage_from(source, path, name, dest).await.map(Some)
}

/// Nanoseconds since the Unix epoch (negative before it).
#[must_use]
pub fn system_time_ns(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// Checks a metadata key: `/`-separated segments of letters, digits and `.-_@`.
pub fn check_meta_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("invalid metadata key '{key}'"))
    }
}

/// The top-level folders a commit may write or delete in: replicas
/// (`backup/`), a pool's own data (`data/`, written only by a failback or a
/// restore), and items moved aside (`quarantine/`). Never `.poolsync/`.
pub const WRITABLE_AREAS: &[&[u8]] = &[b"backup", b"data", b"quarantine"];

/// The module folder a written item belongs to: `backup/<pool>/<module>`,
/// `quarantine/<folder>/<module>` or `data/<module>` (`None` outside them).
/// A commit never removes it, however empty, nor anything above it.
#[must_use]
pub fn module_root(path: &ItemPath) -> Option<ItemPath> {
    let segments = match path.first_segment() {
        b"data" => 2,
        b"backup" | b"quarantine" => 3,
        _ => return None,
    };
    let bytes = path.as_bytes();
    let end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .nth(segments - 1)
        .map(|(i, _)| i)?;
    ItemPath::parse(&bytes[..end]).ok()
}

/// Checks that a write or delete stays below one of [`WRITABLE_AREAS`], and
/// is not that folder itself.
pub fn check_writable(path: &ItemPath) -> Result<(), String> {
    if WRITABLE_AREAS.contains(&path.first_segment()) && path.parent().is_some() {
        Ok(())
    } else {
        Err(format!(
            "refusing to write '{path}': only items below backup/, data/ and quarantine/ are written"
        ))
    }
}

#[cfg(test)]
mod module_root_tests {
    use super::{ItemPath, module_root};

    #[test]
    fn the_module_folder_of_each_writable_area() {
        let p = |s: &str| ItemPath::parse(s).unwrap();
        let root = |s: &str| module_root(&p(s)).map(|r| r.to_string());
        assert_eq!(
            root("backup/a.b.c/M/x/y").as_deref(),
            Some("backup/a.b.c/M")
        );
        assert_eq!(root("data/M/x/y").as_deref(), Some("data/M"));
        assert_eq!(
            root("quarantine/epoch-3/M/x").as_deref(),
            Some("quarantine/epoch-3/M")
        );
        assert_eq!(
            root("data/M"),
            None,
            "the module folder itself has no root above it"
        );
        assert_eq!(root(".poolsync/meta/x"), None);
    }
}
