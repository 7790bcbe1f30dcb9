//! Committing a batch: the deletes, then the folders they left empty pruned,
//! then the staged items renamed into place, every call relative to an open
//! folder; an item's own failure is reported and the rest goes in. Also the
//! look-ups that warm the kernel's caches before a commit (`prepare_commit`),
//! and the `syncfs` that makes a batch durable.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, RawFd};

use super::Inner;
use super::errors::{io_err, other};
use crate::store::release::Held;
use crate::store::{
    ItemFailures, ItemPath, StoreResult, check_meta_key, check_writable, module_root,
};

/// A commit keeps at most this many replica folders open at once: a batch can
/// touch thousands, and the usual soft limit is 1,024 open files per process.
const OPEN_FOLDERS: usize = 256;

/// A rename from a staging shard into a replica folder: shard, staged name,
/// folder, leaf name, the item (for errors) and the staged name as a string.
type Rename<'a> = (RawFd, CString, RawFd, CString, &'a ItemPath, &'a str);

/// Whether a commit's failure is the item's own (its name, its folder, its
/// permissions) rather than the store's: the item is then left out of the
/// batch and reported, and the rest of the batch goes in.
fn item_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotADirectory
        || matches!(
            e.raw_os_error(),
            Some(
                libc::EACCES
                    | libc::EPERM
                    | libc::ENAMETOOLONG
                    | libc::EINVAL
                    | libc::EISDIR
                    | libc::ENOTEMPTY
            )
        )
}

impl Inner {
    /// Applies a batch: deletes `deletes`, then moves each staged item of
    /// `moves` to its place. The items refused for reasons of their own are
    /// returned; any other failure fails the commit.
    pub(super) fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<ItemFailures> {
        // Every call below is relative to an open folder: the staging shard
        // and the item's parent, opened without following links and kept
        // open (up to OPEN_FOLDERS of them) for the items that follow. The
        // files replaced or deleted are freed later, on another thread
        // (see release.rs).
        let mut commit = Commit {
            inner: self,
            desc: self.desc(),
            held: Held::default(),
            folders: HashMap::new(),
            failed: ItemFailures::new(),
        };
        // Deletes first, then moves: an item may give way to a folder of
        // the same name, or a folder to an item (the engine puts such
        // deletions in the batch of the copy that needs the room).
        commit.check(moves, deletes)?;
        let emptied = commit.delete(deletes)?;
        commit.held.release();
        commit.prune(emptied);
        commit.move_into_place(moves)?;
        commit.held.release();
        Ok(commit.failed)
    }

    /// Looks up every item in `paths` (in path order), and the folders they are
    /// in, without changing anything, so that their entries and inodes are in
    /// the kernel's caches when a commit renames over or deletes them. An item
    /// no sync has touched since the replica was written is usually not: the
    /// engine reads the manifest, never the replica. Errors are ignored; this is
    /// only a hint (see `Store::prepare_commit`).
    pub(super) fn warm(&self, paths: &[ItemPath]) {
        let mut folder: Option<(ItemPath, Option<File>)> = None;
        for path in paths {
            let Some(parent) = path.parent() else {
                continue;
            };
            if folder.as_ref().is_none_or(|(open, _)| *open != parent) {
                let fd = self
                    .openat2_beneath(&parent, libc::O_PATH | libc::O_DIRECTORY)
                    .ok();
                folder = Some((parent, fd));
            }
            let (Some((_, Some(dir))), Ok(leaf)) = (&folder, CString::new(path.leaf())) else {
                continue;
            };
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: an open descriptor, a NUL-terminated name and room for the
            // result; the result is not read.
            unsafe {
                libc::fstatat(
                    dir.as_raw_fd(),
                    leaf.as_ptr(),
                    st.as_mut_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
        }
    }

    /// Makes everything written to the store's file system durable: `syncfs`.
    pub(super) fn make_durable(&self) -> StoreResult<()> {
        // SAFETY: the descriptor is open for the lifetime of `self`.
        if unsafe { libc::syncfs(self.root_dir.as_raw_fd()) } != 0 {
            return Err(io_err(
                &self.desc(),
                "syncfs",
                "",
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

/// One commit in progress.
struct Commit<'a> {
    inner: &'a Inner,
    desc: String,
    /// The files replaced or deleted so far, freed later (see release.rs).
    held: Held,
    /// The replica folders open, at most `OPEN_FOLDERS`.
    folders: HashMap<ItemPath, File>,
    /// The items refused so far, with the reason.
    failed: ItemFailures,
}

impl Commit<'_> {
    /// Refuses the whole batch if any path may not be written or any staged
    /// name is not one.
    fn check(&self, moves: &[(String, ItemPath)], deletes: &[ItemPath]) -> StoreResult<()> {
        for (name, dest) in moves {
            check_writable(dest).map_err(|m| other(&self.desc, m))?;
            check_meta_key(name).map_err(|m| other(&self.desc, m))?;
        }
        for path in deletes {
            check_writable(path).map_err(|m| other(&self.desc, m))?;
        }
        Ok(())
    }

    /// Deletes `deletes`; returns the folders they were in.
    fn delete(&mut self, deletes: &[ItemPath]) -> StoreResult<BTreeSet<ItemPath>> {
        let desc = &self.desc;
        let mut emptied = BTreeSet::new();
        for path in deletes {
            let refused = |e| io_err(desc, "delete", &path.to_string(), e).to_string();
            let Some(parent) = path.parent() else {
                continue;
            };
            if self.folders.len() >= OPEN_FOLDERS && !self.folders.contains_key(&parent) {
                self.folders.clear();
            }
            let parent_fd = match self.inner.open_folder(&parent, false, &mut self.folders) {
                Ok(fd) => fd,
                // No folder there (any more): nothing to delete below it. A
                // file in its place is one a replayed commit moved in.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    continue;
                }
                Err(e) if item_error(&e) => {
                    self.failed.push((path.clone(), refused(e)));
                    continue;
                }
                Err(e) => return Err(io_err(desc, "delete", &path.to_string(), e)),
            };
            let leaf = CString::new(path.leaf())
                .map_err(|_| other(desc, format!("'{path}' holds a NUL byte")))?;
            self.held.hold(parent_fd, &leaf);
            // SAFETY: an open descriptor and a NUL-terminated name for the call.
            if unsafe { libc::unlinkat(parent_fd, leaf.as_ptr(), 0) } != 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    // Gone already, or a folder in its place: one a replayed
                    // commit made for the items moved in below it.
                    io::ErrorKind::NotFound | io::ErrorKind::IsADirectory => {}
                    _ if item_error(&e) => {
                        self.failed.push((path.clone(), refused(e)));
                        continue;
                    }
                    _ => return Err(io_err(desc, "delete", &path.to_string(), e)),
                }
            }
            emptied.insert(parent);
        }
        Ok(emptied)
    }

    /// Prunes the folders in `emptied` that the deletes left empty, each before
    /// its parent, down to (not including) the module folder
    /// `backup/<pool>/<module>`.
    fn prune(&mut self, mut emptied: BTreeSet<ItemPath>) {
        while let Some(folder) = emptied.pop_last() {
            let Some(parent) = folder.parent() else {
                continue;
            };
            // Folders below the module folder only (`store::module_root`).
            if module_root(&folder)
                .is_none_or(|root| root.as_bytes().len() >= folder.as_bytes().len())
            {
                continue;
            }
            self.folders.remove(&folder);
            let Ok(parent_fd) = self.inner.open_folder(&parent, false, &mut self.folders) else {
                continue;
            };
            let Ok(leaf) = CString::new(folder.leaf()) else {
                continue;
            };
            // SAFETY: a valid descriptor and a NUL-terminated name for the call.
            if unsafe { libc::unlinkat(parent_fd, leaf.as_ptr(), libc::AT_REMOVEDIR) } == 0 {
                emptied.insert(parent);
            }
        }
    }

    /// Moves each staged item of `moves` to its place, creating its folders.
    fn move_into_place(&mut self, moves: &[(String, ItemPath)]) -> StoreResult<()> {
        let desc = self.desc.clone();
        let desc = desc.as_str();
        let mut renames = Vec::new();
        for (name, dest) in moves {
            let fail = |action, e| io_err(desc, action, &dest.to_string(), e);
            let parent = dest
                .parent()
                .ok_or_else(|| other(desc, format!("'{dest}' has no folder")))?;
            if self.folders.len() >= OPEN_FOLDERS && !self.folders.contains_key(&parent) {
                self.rename_all(&mut renames)?;
                self.folders.clear();
            }
            let parent_fd = match self.inner.open_folder(&parent, true, &mut self.folders) {
                Ok(fd) => fd,
                // The item's own folders only: if the module folder itself
                // cannot be opened, the whole replica is in the way.
                Err(e)
                    if item_error(&e)
                        && module_root(dest).is_some_and(|m| {
                            self.inner.open_folder(&m, false, &mut self.folders).is_ok()
                        }) =>
                {
                    let message = fail("create folders for", e).to_string();
                    self.failed.push((dest.clone(), message));
                    continue;
                }
                Err(e) => return Err(fail("create folders for", e)),
            };
            let (shard, staged) = self
                .inner
                .staged_at(name, dest)
                .map_err(|e| fail("move into place", e))?;
            let leaf = CString::new(dest.leaf())
                .map_err(|_| other(desc, format!("'{dest}' holds a NUL byte")))?;
            renames.push((shard, staged, parent_fd, leaf, dest, name.as_str()));
        }
        self.rename_all(&mut renames)
    }

    /// Moves staged items into place, one at a time: a rename between two folders
    /// takes the file system's rename mutex, and a second thread only spins on it
    /// (5% of a 1% change's CPU in a profile, for no gain in wall time). The file
    /// each one replaces is held in `held` and freed later (see release.rs).
    fn rename_all(&mut self, renames: &mut Vec<Rename<'_>>) -> StoreResult<()> {
        let desc = self.desc.as_str();
        for (shard, staged, parent_fd, leaf, dest, name) in renames.drain(..) {
            self.held.hold(parent_fd, &leaf);
            // SAFETY: open descriptors and NUL-terminated names for the call.
            let mut moved =
                unsafe { libc::renameat(shard, staged.as_ptr(), parent_fd, leaf.as_ptr()) };
            if moved != 0 && io::Error::last_os_error().kind() == io::ErrorKind::NotFound {
                // Not in its shard: moved already, or staged by a version before
                // the shards, whose journal is being replayed. Taking it as moved
                // would record content the replica never got.
                if let Ok(from) =
                    CString::new(self.inner.legacy_staged(name).as_os_str().as_bytes())
                {
                    // SAFETY: a NUL-terminated absolute path, an open descriptor and a
                    // NUL-terminated name for the call.
                    moved = unsafe {
                        libc::renameat(libc::AT_FDCWD, from.as_ptr(), parent_fd, leaf.as_ptr())
                    };
                }
            }
            if moved != 0 {
                let e = io::Error::last_os_error();
                // NotFound: moved by an earlier, interrupted run.
                if matches!(e.raw_os_error(), Some(libc::EISDIR | libc::ENOTEMPTY)) {
                    // The engine deleted what the manifest lists below it: the rest
                    // is not poolsync's.
                    self.failed.push((
                        dest.clone(),
                        format!(
                            "cannot move '{dest}' into place: a folder of that name holds items the replica's manifest does not list; move them out of the replica"
                        ),
                    ));
                } else if item_error(&e) {
                    let message = io_err(desc, "move into place", &dest.to_string(), e).to_string();
                    self.failed.push((dest.clone(), message));
                } else if e.kind() != io::ErrorKind::NotFound {
                    return Err(io_err(desc, "move into place", &dest.to_string(), e));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use bytes::Bytes;

    use crate::store::{ItemPath, LocalStore, Store};

    /// Every file and folder below `root` outside `.poolsync/`, with contents.
    fn tree(root: &Path) -> std::collections::BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut found = std::collections::BTreeMap::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for item in fs::read_dir(&dir).unwrap() {
                let path = item.unwrap().path();
                if path.ends_with(".poolsync") {
                    continue;
                }
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                if path.is_dir() {
                    found.insert(rel, None);
                    todo.push(path);
                } else {
                    found.insert(rel, Some(fs::read(&path).unwrap()));
                }
            }
        }
        found
    }

    #[test]
    fn preparing_a_commit_changes_nothing_and_the_commit_still_applies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["backup/p/m/a/kept", "backup/p/m/a/old", "backup/p/m/b/gone"] {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, name).unwrap();
        }
        let store = LocalStore::open(root).unwrap();
        let p = |s: &str| ItemPath::parse(s.as_bytes()).unwrap();
        // A replacement, an item in a folder that does not exist yet, an item
        // whose folder is missing, and a delete.
        let moves = vec![
            ("t-1".to_string(), p("backup/p/m/a/old")),
            ("t-2".to_string(), p("backup/p/m/new/item")),
        ];
        let deletes = vec![p("backup/p/m/b/gone"), p("backup/p/m/nowhere/x")];
        let before = tree(root);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for (name, body) in [("t-1", "new content"), ("t-2", "new item")] {
                let dest = moves
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, d)| d.clone())
                    .unwrap();
                let mut w = store.stage_writer(name, &dest).await.unwrap();
                w.write(Bytes::from(body)).await.unwrap();
                w.finish().await.unwrap();
            }
            store.prepare_commit(&moves, &deletes).await;
        });
        assert_eq!(tree(root), before, "prepare_commit changed the replica");

        rt.block_on(store.commit(&moves, &deletes)).unwrap();
        let after = tree(root);
        let content = |s: &str| after.get(Path::new(s)).cloned().flatten();
        assert_eq!(
            content("backup/p/m/a/old").as_deref(),
            Some(&b"new content"[..])
        );
        assert_eq!(
            content("backup/p/m/new/item").as_deref(),
            Some(&b"new item"[..])
        );
        assert_eq!(
            content("backup/p/m/a/kept").as_deref(),
            Some(&b"backup/p/m/a/kept"[..])
        );
        assert!(!after.contains_key(Path::new("backup/p/m/b/gone")));
    }
}
