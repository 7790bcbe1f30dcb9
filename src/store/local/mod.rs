//! The native local-disk store.
//!
//! Lists with one `stat` per item and never follows a link; opens items beneath
//! the root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; writes through a
//! staging folder inside `.poolsync/` and `rename`s into place; makes a batch durable
//! with one `syncfs`; locks with `flock`, which the kernel releases if we die.
//!
//! This file holds the store and its `Store` impl, which hands each call to the
//! file of its part: `beneath.rs` (opening beneath the root), `walk.rs`
//! (listing), `read.rs`, `copy.rs` (local to local), `writer.rs` (a stream into
//! staging), `staging.rs`, `commit.rs`, `meta.rs`, `lock.rs` and `errors.rs`.

mod beneath;
mod commit;
mod copy;
mod errors;
mod lock;
mod meta;
mod read;
mod staging;
mod walk;
mod writer;

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    ByteStream, Hash, ItemFailures, ItemPath, Listing, LockHolder, StageRequest, StageWriter,
    Staged, Store, StoreError, StoreLock, StoreResult, stream_into,
};
use errors::{io_err, other};
use writer::LocalWriter;

/// A pool store in a local directory.
pub struct LocalStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    root_dir: File,
    /// The staging areas: `.poolsync/staging/`, and one at the top of each
    /// mount below the root that holds a destination (see staging.rs).
    stagings: staging::Stagings,
    meta: PathBuf,
    locks: PathBuf,
}

impl LocalStore {
    /// Opens the store at `root`, which must be an existing directory; creates the
    /// metadata area if needed.
    pub fn open(root: &Path) -> StoreResult<LocalStore> {
        let desc = root.display().to_string();
        let md = fs::metadata(root).map_err(|e| StoreError::Other {
            store: desc.clone(),
            message: if e.kind() == io::ErrorKind::NotFound {
                "the store directory does not exist: create it (poolsync init does) or fix `store` in deployment.toml".into()
            } else {
                format!("cannot open the store directory: {e}")
            },
        })?;
        if !md.is_dir() {
            return Err(StoreError::Other {
                store: desc,
                message: "the store is not a directory".into(),
            });
        }
        let root_dir = File::open(root).map_err(|e| io_err(&desc, "open", "", e))?;
        let base = root.join(".poolsync");
        let (meta, locks) = (base.join("meta"), base.join("locks"));
        for dir in [&meta, &locks] {
            fs::create_dir_all(dir)
                .map_err(|e| io_err(&desc, "create", &dir.display().to_string(), e))?;
        }
        let main = staging::Staging::open(&base.join("staging"), &desc)?;
        let inner = Inner {
            root: root.to_path_buf(),
            root_dir,
            stagings: staging::Stagings::new(main),
            meta,
            locks,
        };
        Ok(LocalStore {
            inner: Arc::new(inner),
        })
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The folder below which the metadata documents are kept.
    #[must_use]
    pub fn meta_dir(&self) -> &Path {
        &self.inner.meta
    }

    /// The file of the metadata document `key` (which need not exist).
    pub fn meta_file(&self, key: &str) -> StoreResult<PathBuf> {
        self.inner.meta_path(key)
    }

    /// Runs `f` on the store on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        blocking(&self.describe(), move || f(&inner)).await
    }
}

/// Runs `f` on a blocking thread; a task that fails (panics) is an error of
/// the store `desc`.
async fn blocking<T: Send + 'static>(
    desc: &str,
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| other(desc, format!("a store task failed: {e}")))?
}

impl Inner {
    fn desc(&self) -> String {
        self.root.display().to_string()
    }

    fn abs(&self, path: &ItemPath) -> PathBuf {
        self.root.join(OsStr::from_bytes(path.as_bytes()))
    }

    /// Fails if the store directory cannot be reached, or is no longer the
    /// one opened.
    fn probe(&self) -> StoreResult<()> {
        let desc = self.desc();
        let now = fs::metadata(&self.root)
            .map_err(|e| other(&desc, format!("the store directory is unreachable: {e}")))?;
        let open = self
            .root_dir
            .metadata()
            .map_err(|e| io_err(&desc, "check", "", e))?;
        if now.dev() != open.dev() || now.ino() != open.ino() {
            return Err(other(
                &desc,
                "the store directory was moved or replaced".into(),
            ));
        }
        self.refuse_linked_areas()
    }

    /// Fails, once for the whole store, if one of its top-level folders
    /// (`data/`, `backup/`, `quarantine/`, `.poolsync/`) is a symbolic link:
    /// nothing below a link is read or written, so every module would
    /// otherwise fail on its own ("Too many levels of symbolic links").
    fn refuse_linked_areas(&self) -> StoreResult<()> {
        let areas = crate::store::WRITABLE_AREAS
            .iter()
            .copied()
            .chain([&b".poolsync"[..]]);
        for area in areas {
            let name = OsStr::from_bytes(area);
            let Ok(target) = rustix::fs::readlinkat(&self.root_dir, name, Vec::new()) else {
                continue;
            };
            let area = crate::printable::printable(area);
            let target = crate::printable::printable(target.as_bytes());
            return Err(other(
                &self.desc(),
                format!(
                    "its {area}/ is a symbolic link (to '{target}'), and stores refuse links: nothing below it is read or written. Put the folder itself at {area}/ (move the files into a real folder, or mount their disk there), then sync again"
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        self.inner.desc()
    }

    fn as_local(&self) -> Option<&LocalStore> {
        Some(self)
    }

    async fn probe(&self) -> StoreResult<()> {
        self.blocking(Inner::probe).await
    }

    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        let prefix = prefix.clone();
        self.blocking(move |inner| inner.list(&prefix)).await
    }

    async fn list_paths(&self, prefix: &ItemPath, paths: &[ItemPath]) -> StoreResult<Listing> {
        let (prefix, paths) = (prefix.clone(), paths.to_vec());
        self.blocking(move |inner| Ok(inner.list_paths(&prefix, &paths)))
            .await
    }

    async fn read(&self, path: &ItemPath) -> StoreResult<ByteStream> {
        read::read_stream(self.inner.clone(), path).await
    }

    async fn stage_writer(&self, name: &str, dest: &ItemPath) -> StoreResult<Box<dyn StageWriter>> {
        Ok(Box::new(
            LocalWriter::create(&self.inner, name, dest).await?,
        ))
    }

    async fn stage_from(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        let Some(src) = source.as_local() else {
            let writer = self.stage_writer(name, dest).await?;
            return stream_into(writer, source, path, name, false).await;
        };
        let src = src.inner.clone();
        let (path, name, dest) = (path.clone(), name.to_string(), dest.clone());
        self.blocking(move |dst| copy::copy_local(&src, dst, &path, &name, &dest))
            .await
    }

    async fn stage_if_changed(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
        known: &Hash,
    ) -> StoreResult<Option<Staged>> {
        let Some(src) = source.as_local() else {
            return crate::store::hash_then_stage(self, source, path, name, dest, known).await;
        };
        let src = src.inner.clone();
        let (path, name, known, dest) = (path.clone(), name.to_string(), *known, dest.clone());
        self.blocking(move |dst| {
            copy::copy_local_if_changed(&src, dst, &path, &name, &dest, &known)
        })
        .await
    }

    async fn stage_many(
        &self,
        source: &dyn Store,
        requests: &[StageRequest],
        parallelism: usize,
    ) -> Vec<StoreResult<Option<Staged>>> {
        let Some(src) = source.as_local() else {
            return crate::store::stage_each(self, source, requests, parallelism).await;
        };
        let Some(pool) = copy::copy_pool(parallelism) else {
            return crate::store::stage_each(self, source, requests, parallelism).await;
        };
        copy::copy_group(pool, &src.inner, &self.inner, requests).await
    }

    async fn free_space(&self, at: &ItemPath) -> Option<crate::store::FreeSpace> {
        let at = at.clone();
        self.blocking(move |inner| Ok(inner.free_space(&at)))
            .await
            .ok()
            .flatten()
    }

    async fn hash(&self, path: &ItemPath) -> StoreResult<(u64, Hash)> {
        let path = path.clone();
        self.blocking(move |inner| inner.hash(&path)).await
    }

    async fn make_durable(&self) -> StoreResult<()> {
        self.blocking(Inner::make_durable).await
    }

    async fn prepare_commit(&self, moves: &[(String, ItemPath)], deletes: &[ItemPath]) {
        let inner = self.inner.clone();
        let paths: Vec<ItemPath> = moves
            .iter()
            .map(|(_, dest)| dest.clone())
            .chain(deletes.iter().cloned())
            .collect();
        // A hint: if the thread cannot run, the commit just looks things up itself.
        let _ = tokio::task::spawn_blocking(move || inner.warm(&paths)).await;
    }

    async fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<ItemFailures> {
        let (moves, deletes) = (moves.to_vec(), deletes.to_vec());
        self.blocking(move |inner| inner.commit(&moves, &deletes))
            .await
    }

    async fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        let names = names.to_vec();
        self.blocking(move |inner| inner.discard_staged(&names))
            .await
    }

    async fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        let prefix = prefix.to_string();
        self.blocking(move |inner| inner.clear_staging(&prefix))
            .await
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        self.inner.meta_get(key).await
    }

    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        let key = key.to_string();
        self.blocking(move |inner| inner.meta_put(&key, &value))
            .await
    }

    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let prefix = prefix.to_string();
        self.blocking(move |inner| inner.meta_list(&prefix)).await
    }

    async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        self.inner.meta_delete(key).await
    }

    async fn meta_stamp(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.blocking(move |inner| inner.meta_stamp(&key).map(Some))
            .await
    }

    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.blocking(move |inner| inner.try_lock(&name, &owner))
            .await
    }
}
