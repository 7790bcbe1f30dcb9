//! The native local-disk store.
//!
//! Lists with one `stat` per item and never follows a link; opens items beneath
//! the root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; writes through a
//! staging folder inside `.poolsync/` and `rename`s into place; makes a batch durable
//! with one `syncfs`; locks with `flock`, which the kernel releases if we die.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use rayon::prelude::*;

use super::release::Held;
use super::{
    ByteStream, ChangeToken, Entry, Hash, ItemFailures, ItemPath, Listing, LockHolder,
    StageRequest, StageWriter, Staged, Store, StoreError, StoreLock, StoreResult, check_meta_key,
    check_writable, printable, stream_into,
};

const CHUNK: usize = 256 * 1024;

/// A pool store in a local directory.
pub struct LocalStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    root_dir: File,
    staging: PathBuf,
    /// The staging shard folders, open: staged files are created and moved
    /// relative to them, without walking their path each time.
    shards: Vec<File>,
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
        let mut inner = Inner {
            root: root.to_path_buf(),
            root_dir,
            staging: base.join("staging"),
            shards: Vec::new(),
            meta: base.join("meta"),
            locks: base.join("locks"),
        };
        for dir in [&inner.staging, &inner.meta, &inner.locks] {
            fs::create_dir_all(dir)
                .map_err(|e| io_err(&desc, "create", &dir.display().to_string(), e))?;
        }
        for shard in 0..STAGING_SHARDS {
            let dir = inner.staging.join(format!("{shard:02x}"));
            fs::create_dir_all(&dir)
                .map_err(|e| io_err(&desc, "create", &dir.display().to_string(), e))?;
            let open = File::open(&dir)
                .map_err(|e| io_err(&desc, "open", &dir.display().to_string(), e))?;
            inner.shards.push(open);
        }
        Ok(LocalStore {
            inner: Arc::new(inner),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

fn io_err(store: &str, action: &'static str, path: &str, source: io::Error) -> StoreError {
    if source.kind() == io::ErrorKind::NotFound && !path.is_empty() {
        return StoreError::NotFound {
            store: store.to_string(),
            path: path.to_string(),
        };
    }
    StoreError::Io {
        store: store.to_string(),
        action,
        path: path.to_string(),
        source,
    }
}

fn other(store: &str, message: String) -> StoreError {
    StoreError::Other {
        store: store.to_string(),
        message,
    }
}

async fn blocking<T: Send + 'static>(
    desc: &str,
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| other(desc, format!("a store task failed: {e}")))?
}

/// Staged files are spread over this many folders of `.poolsync/staging`: every
/// create and rename takes its folder's lock, and with one folder the copy
/// threads queue (and spin) on it.
const STAGING_SHARDS: u64 = 32;

impl Inner {
    fn desc(&self) -> String {
        self.root.display().to_string()
    }

    /// The shard folder of the staged item `name`, by a hash of the name.
    fn shard(name: &str) -> u64 {
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) % STAGING_SHARDS
    }

    /// Where the staged item `name` lives.
    fn staged(&self, name: &str) -> PathBuf {
        self.staging
            .join(format!("{:02x}", Self::shard(name)))
            .join(name)
    }

    /// Where versions before the shard folders staged the item `name`: in
    /// `.poolsync/staging/` itself. A journal such a version left names files
    /// there.
    fn legacy_staged(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// The open shard folder of the staged item `name`, and the name for the
    /// `*at` calls.
    fn staged_at(&self, name: &str) -> io::Result<(&File, CString)> {
        let shard = self
            .shards
            .get(Self::shard(name) as usize)
            .ok_or_else(|| io::Error::other("staging folder missing"))?;
        let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok((shard, name))
    }

    /// Creates (or truncates) the staged item `name`, readable by the owner only
    /// until the item's own permissions are copied onto it.
    fn create_staged(&self, name: &str) -> io::Result<File> {
        let (dir, name) = self.staged_at(name)?;
        // SAFETY: valid descriptor and NUL-terminated name for the call.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh descriptor that we now own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    fn abs(&self, path: &ItemPath) -> PathBuf {
        self.root.join(OsStr::from_bytes(path.as_bytes()))
    }

    /// Opens an item for reading without leaving the root or following any link.
    fn open_beneath(&self, path: &ItemPath) -> io::Result<File> {
        match self.openat2_beneath(path, libc::O_RDONLY) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                // Kernels before 5.6: the path is validated; refuse a link at the end.
                use std::os::unix::fs::OpenOptionsExt;
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(self.abs(path))
            }
            opened => opened,
        }
    }

    /// `openat2` of `path` with `flags` (plus `O_CLOEXEC | O_NOFOLLOW`), resolved
    /// beneath the root without following any link. `ENOSYS` before Linux 5.6.
    ///
    /// A path the kernel would refuse as too long (`PATH_MAX`, 4,096 bytes with
    /// its NUL) is opened in steps: folders from the root while they fit, then
    /// the rest beneath the last folder opened. Each step resolves beneath a
    /// folder that is itself beneath the root, so nothing can escape either.
    fn openat2_beneath(&self, path: &ItemPath, flags: libc::c_int) -> io::Result<File> {
        let bytes = path.as_bytes();
        let mut dir: Option<File> = None;
        let mut start = 0;
        while bytes.len() - start >= PATH_MAX {
            // The longest run of whole segments that fits, always at least one.
            let window = &bytes[start..start + PATH_MAX];
            let Some(cut) = window.iter().rposition(|b| *b == b'/').filter(|c| *c > 0) else {
                return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
            };
            let prefix = &bytes[start..start + cut];
            let at = dir
                .as_ref()
                .map_or(self.root_dir.as_raw_fd(), File::as_raw_fd);
            dir = Some(openat2_at(at, prefix, libc::O_PATH | libc::O_DIRECTORY)?);
            start += cut + 1;
        }
        let at = dir
            .as_ref()
            .map_or(self.root_dir.as_raw_fd(), File::as_raw_fd);
        openat2_at(at, &bytes[start..], flags)
    }

    /// Looks up every item in `paths` (in path order), and the folders they are
    /// in, without changing anything, so that their entries and inodes are in
    /// the kernel's caches when a commit renames over or deletes them. An item
    /// no sync has touched since the replica was written is usually not: the
    /// engine reads the manifest, never the replica. Errors are ignored; this is
    /// only a hint (see `Store::prepare_commit`).
    fn warm(&self, paths: &[ItemPath]) {
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

    /// Opens the folder `dir` (creating it and its parents when `create`),
    /// one segment at a time from the root, refusing any segment that is a link
    /// or not a folder. Every folder opened is kept in `open` for the next call.
    fn open_folder(
        &self,
        dir: &ItemPath,
        create: bool,
        open: &mut HashMap<ItemPath, File>,
    ) -> io::Result<RawFd> {
        if !open.contains_key(dir) {
            let parent_fd = match dir.parent() {
                Some(parent) => self.open_folder(&parent, create, open)?,
                None => self.root_dir.as_raw_fd(),
            };
            let leaf = CString::new(dir.leaf())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            // SAFETY: valid descriptor and NUL-terminated name for each call.
            let mut fd = unsafe { libc::openat(parent_fd, leaf.as_ptr(), flags) };
            if fd < 0 && create && io::Error::last_os_error().kind() == io::ErrorKind::NotFound {
                // SAFETY: as above.
                let made = unsafe { libc::mkdirat(parent_fd, leaf.as_ptr(), 0o755) };
                if made != 0 && io::Error::last_os_error().kind() != io::ErrorKind::AlreadyExists {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: as above.
                fd = unsafe { libc::openat(parent_fd, leaf.as_ptr(), flags) };
            }
            if fd < 0 {
                let e = io::Error::last_os_error();
                if !matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) {
                    return Err(e);
                }
                // Opening a link with O_DIRECTORY fails with ENOTDIR too. Only a
                // regular file in the way keeps that kind (a commit's deletes
                // take it as "nothing below"); a link is refused outright.
                // SAFETY: `parent_fd` stays open for the duration of the call.
                let parent = unsafe { BorrowedFd::borrow_raw(parent_fd) };
                let file_in_the_way = rustix::fs::statat(
                    parent,
                    leaf.as_c_str(),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::RegularFile
                });
                let kind = if file_in_the_way {
                    io::ErrorKind::NotADirectory
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "'{dir}' is not a plain folder (a link or a file); refusing to write through it"
                    ),
                ));
            }
            // SAFETY: the kernel returned a fresh descriptor that we now own.
            open.insert(dir.clone(), unsafe { File::from_raw_fd(fd) });
        }
        open.get(dir)
            .map(File::as_raw_fd)
            .ok_or_else(|| io::Error::other("folder cache lost an entry"))
    }

    fn meta_path(&self, key: &str) -> StoreResult<PathBuf> {
        check_meta_key(key).map_err(|m| other(&self.desc(), m))?;
        Ok(self.meta.join(key))
    }
}

/// Bytes the kernel accepts in one path, its NUL included.
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// `openat2` of the relative `path` beneath the folder `at`, without following
/// any link (see [`Inner::openat2_beneath`]).
fn openat2_at(at: RawFd, path: &[u8], flags: libc::c_int) -> io::Result<File> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: open_how is a plain C struct for which all-zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: the pointers are valid for the call; `how` has the size we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            at,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh descriptor that we now own.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// A commit keeps at most this many replica folders open at once: a batch can
/// touch thousands, and the usual soft limit is 1,024 open files per process.
const OPEN_FOLDERS: usize = 256;

/// A rename from a staging shard into a replica folder: shard, staged name,
/// folder, leaf name, the item (for errors) and the staged name as a string.
type Rename<'a> = (RawFd, CString, RawFd, CString, &'a ItemPath, &'a str);

/// Moves staged items into place, one at a time: a rename between two folders
/// takes the file system's rename mutex, and a second thread only spins on it
/// (5% of a 1% change's CPU in a profile, for no gain in wall time). The file
/// each one replaces is held in `held` and freed later (see release.rs).
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

/// `backup/<pool>/<module>`, the folder of the replica `path` belongs to.
fn module_folder(path: &ItemPath) -> Option<ItemPath> {
    let bytes = path.as_bytes();
    let end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .nth(2)
        .map(|(i, _)| i)?;
    ItemPath::parse(&bytes[..end]).ok()
}

fn rename_all(
    inner: &Inner,
    desc: &str,
    renames: &mut Vec<Rename<'_>>,
    held: &mut Held,
    failed: &mut ItemFailures,
) -> StoreResult<()> {
    for (shard, staged, parent_fd, leaf, dest, name) in renames.drain(..) {
        held.hold(parent_fd, &leaf);
        // SAFETY: open descriptors and NUL-terminated names for the call.
        let mut moved = unsafe { libc::renameat(shard, staged.as_ptr(), parent_fd, leaf.as_ptr()) };
        if moved != 0 && io::Error::last_os_error().kind() == io::ErrorKind::NotFound {
            // Not in its shard: moved already, or staged by a version before
            // the shards, whose journal is being replayed. Taking it as moved
            // would record content the replica never got.
            if let Ok(from) = CString::new(inner.legacy_staged(name).as_os_str().as_bytes()) {
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
                failed.push((
                    dest.clone(),
                    format!(
                        "cannot move '{dest}' into place: a folder of that name holds items the replica's manifest does not list; move them out of the replica"
                    ),
                ));
            } else if item_error(&e) {
                let message = io_err(desc, "move into place", &dest.to_string(), e).to_string();
                failed.push((dest.clone(), message));
            } else if e.kind() != io::ErrorKind::NotFound {
                return Err(io_err(desc, "move into place", &dest.to_string(), e));
            }
        }
    }
    Ok(())
}

/// A `statx` time in nanoseconds since the epoch, saturating: a time past
/// the year 2262 (any user can set one) must not overflow.
fn statx_ns(t: &rustix::fs::StatxTimestamp) -> i64 {
    t.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.tv_nsec))
}

/// Lists the open folder `dir` recursively, sub-folders in parallel, into `out`:
/// the entries in the byte order of their full paths (the order the sync engine
/// merges in), a warning per item skipped, and `incomplete` when a folder or an
/// item could not be read. `rel` is the folder's path below the listed prefix
/// (empty at the top), `shown` its path for warnings.
///
/// Sorting each folder's children by name, with a `/` appended to folder names,
/// gives that order without sorting the whole listing: every path below folder
/// `d` starts with `d/`, and no file name contains a `/`.
///
/// Per file this costs one `statx` relative to the open folder and one
/// allocation (its path): names are read in place from the `getdents64`
/// buffer, and sub-folders are opened relative to their parent without
/// following links.
fn walk(dir: &File, shown: &Path, rel: &[u8], out: &mut Listing) {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, StatxFlags};
    use rustix::io::Errno;
    let show = |name: &[u8]| printable(shown.join(OsStr::from_bytes(name)).as_os_str().as_bytes());
    let mut children: Vec<Child> = Vec::new();
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut items = RawDir::new(dir, buf.spare_capacity_mut());
    while let Some(item) = items.next() {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                out.warnings.push(format!(
                    "cannot list '{}': {e}",
                    printable(shown.as_os_str().as_bytes())
                ));
                out.incomplete = true;
                break;
            }
        };
        let name = item.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let mut kind = item.file_type();
        let mut stat = None;
        if matches!(kind, FileType::RegularFile | FileType::Unknown) {
            match rustix::fs::statx(
                dir,
                name,
                AtFlags::SYMLINK_NOFOLLOW,
                StatxFlags::TYPE
                    | StatxFlags::SIZE
                    | StatxFlags::MTIME
                    | StatxFlags::CTIME
                    | StatxFlags::INO,
            ) {
                Ok(st) => {
                    // The entry may have changed since it was listed.
                    kind = FileType::from_raw_mode(u32::from(st.stx_mode));
                    stat = Some(st);
                }
                // Deleted since it was listed.
                Err(Errno::NOENT) => continue,
                Err(e) => {
                    out.warnings
                        .push(format!("cannot read '{}': {e}", show(bytes)));
                    out.incomplete = true;
                    continue;
                }
            }
        }
        match (kind, stat) {
            (FileType::Directory, _) => match ItemPath::child_of(rel, bytes) {
                Ok(path) => children.push(Child::Folder(name.to_owned(), path)),
                Err(m) => out.warnings.push(format!("skipped a folder: {m}")),
            },
            (FileType::RegularFile, Some(st)) => match ItemPath::child_of(rel, bytes) {
                Ok(path) => children.push(Child::File(Entry {
                    path,
                    size: st.stx_size,
                    mtime_ns: statx_ns(&st.stx_mtime),
                    token: ChangeToken::Inode {
                        ino: st.stx_ino,
                        ctime_ns: statx_ns(&st.stx_ctime),
                    },
                })),
                Err(m) => out.warnings.push(format!("skipped an item: {m}")),
            },
            (FileType::Symlink, _) => out.warnings.push(format!(
                "skipped '{}': symbolic links are not followed or copied",
                show(bytes)
            )),
            _ => out
                .warnings
                .push(format!("skipped '{}': not a regular file", show(bytes))),
        }
    }
    // Every child's path is `rel/` (nothing at the top) and then its name.
    let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
    children.sort_unstable_by(|a, b| Child::order(a, b, skip));
    let folders = children
        .iter()
        .filter(|c| matches!(c, Child::Folder(..)))
        .count();
    let walk_folder = |name: &CStr, rel: &[u8], out: &mut Listing| {
        let shown = shown.join(OsStr::from_bytes(name.to_bytes()));
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => walk(&File::from(fd), &shown, rel, out),
            // Deleted since it was listed.
            Err(Errno::NOENT) => {}
            Err(e) => {
                out.warnings.push(format!(
                    "cannot list '{}': {e}",
                    printable(shown.as_os_str().as_bytes())
                ));
                out.incomplete = true;
            }
        }
    };
    // Walk the sub-folders (in parallel when there are several), then splice
    // their listings in between the files, in order.
    let mut walked: std::vec::IntoIter<Listing> = if folders > 1 {
        children
            .par_iter()
            .filter_map(|c| match c {
                Child::Folder(name, rel) => Some((name, rel)),
                Child::File(_) => None,
            })
            .map(|(name, rel)| {
                let mut listing = Listing::default();
                walk_folder(name, rel.as_bytes(), &mut listing);
                listing
            })
            .collect::<Vec<_>>()
            .into_iter()
    } else {
        Vec::new().into_iter()
    };
    for child in children {
        match child {
            Child::File(entry) => out.entries.push(entry),
            Child::Folder(name, rel) => match walked.next() {
                Some(listing) => {
                    out.entries.extend(listing.entries);
                    out.warnings.extend(listing.warnings);
                    out.incomplete |= listing.incomplete;
                }
                None => walk_folder(&name, rel.as_bytes(), out),
            },
        }
    }
}

/// One child of a folder being walked: a file's entry, or a folder to walk
/// (its name and its path below the listed prefix).
enum Child {
    File(Entry),
    Folder(CString, ItemPath),
}

impl Child {
    /// Orders children of one folder by name, a folder's name taken as
    /// followed by `/`. `skip` is the length of their common `rel/` prefix.
    fn order(a: &Child, b: &Child, skip: usize) -> std::cmp::Ordering {
        let (a, a_folder) = a.name(skip);
        let (b, b_folder) = b.name(skip);
        let n = a.len().min(b.len());
        a[..n].cmp(&b[..n]).then_with(|| {
            // One name starts with the other: compare the byte after it, where
            // a folder's name has its `/` and a file's name has nothing.
            let next = |s: &[u8], folder: bool| s.get(n).copied().or(folder.then_some(b'/'));
            next(a, a_folder).cmp(&next(b, b_folder))
        })
    }

    fn name(&self, skip: usize) -> (&[u8], bool) {
        match self {
            Child::File(entry) => (entry.path.as_bytes().get(skip..).unwrap_or_default(), false),
            Child::Folder(_, rel) => (rel.as_bytes().get(skip..).unwrap_or_default(), true),
        }
    }
}

struct LocalWriter {
    file: Option<tokio::fs::File>,
    desc: String,
    name: String,
}

#[async_trait]
impl StageWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        use tokio::io::AsyncWriteExt;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| other(&self.desc, "write after finish".into()))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| io_err(&self.desc, "write", &self.name, e))
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        use tokio::io::AsyncWriteExt;
        if let Some(mut file) = self.file.take() {
            file.flush()
                .await
                .map_err(|e| io_err(&self.desc, "write", &self.name, e))?;
        }
        Ok(())
    }
}

struct LocalLock {
    _file: File,
}

/// The kernel releases the `flock` when the file closes.
impl StoreLock for LocalLock {}

thread_local! {
    /// One copy buffer per I/O thread: most items are a few KiB, and zeroing a
    /// fresh 256 KiB buffer for each was a seventh of an initial sync's CPU.
    static COPY_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; CHUNK]);
}

/// Gives `dst` the permission bits (never set-id bits) and times of `src`, so a
/// replica restores as the item was.
fn copy_attributes(src: &File, dst: &File) -> io::Result<()> {
    let md = src.metadata()?;
    use std::os::unix::fs::PermissionsExt;
    dst.set_permissions(fs::Permissions::from_mode(md.mode() & 0o777))?;
    dst.set_times(
        fs::FileTimes::new()
            .set_accessed(md.accessed()?)
            .set_modified(md.modified()?),
    )
}

/// What [`read_small`] found.
enum SmallRead {
    /// The whole item, `size` bytes, is in the buffer; its hash.
    Whole { size: usize, hash: Hash },
    /// The item does not fit in the buffer.
    TooLarge,
}

/// Reads `src` whole into `buf` and hashes it, if it fits.
fn read_small(src: &mut File, buf: &mut [u8]) -> io::Result<SmallRead> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Ok(SmallRead::TooLarge);
        }
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(SmallRead::Whole {
        size: filled,
        hash: *blake3::hash(&buf[..filled]).as_bytes(),
    })
}

/// Copies `src` to `dst`, hashing on the way, then gives `dst` the source's
/// permission bits and times.
fn copy_hashing(src: &mut File, dst: &mut File) -> io::Result<(u64, Hash)> {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    COPY_BUFFER.with_borrow_mut(|buf| -> io::Result<()> {
        loop {
            let n = match src.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            dst.write_all(&buf[..n])?;
            size += n as u64;
        }
    })?;
    copy_attributes(src, dst)?;
    Ok((size, *hasher.finalize().as_bytes()))
}

/// The threads that copy between local stores: as many as the
/// `transfer_parallelism` of the first sync that needs them. `None` when no
/// thread could be started (the copies then go one by one through the runtime).
fn copy_pool(parallelism: usize) -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(parallelism.clamp(1, 64))
            .thread_name(|i| format!("poolsync-copy-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Copies `path` of a local store into the staged item `name` of another.
fn copy_local(src: &Inner, dst: &Inner, path: &ItemPath, name: &str) -> StoreResult<Staged> {
    check_meta_key(name).map_err(|m| other(&dst.desc(), m))?;
    let mut input = src
        .open_beneath(path)
        .map_err(|e| io_err(&src.desc(), "open", &path.to_string(), e))?;
    let mut output = dst
        .create_staged(name)
        .map_err(|e| io_err(&dst.desc(), "create", name, e))?;
    let (size, hash) = copy_hashing(&mut input, &mut output)
        .map_err(|e| io_err(&dst.desc(), "copy", &path.to_string(), e))?;
    Ok(Staged {
        name: name.to_string(),
        size,
        hash,
        in_place: false,
    })
}

/// [`copy_local`] for an item whose content hashed to `known`: nothing is staged
/// (`None`) when it still does.
fn copy_local_if_changed(
    src: &Inner,
    dst: &Inner,
    path: &ItemPath,
    name: &str,
    known: &Hash,
) -> StoreResult<Option<Staged>> {
    check_meta_key(name).map_err(|m| other(&dst.desc(), m))?;
    let src_err = |action, e| io_err(&src.desc(), action, &path.to_string(), e);
    let dst_err = |action, e| io_err(&dst.desc(), action, name, e);
    let mut input = src.open_beneath(path).map_err(|e| src_err("open", e))?;
    // A small item is read once: hashed in the buffer, and written from it only
    // if it changed.
    let small = COPY_BUFFER.with_borrow_mut(|buf| -> StoreResult<Option<Option<Staged>>> {
        let SmallRead::Whole { size, hash } =
            read_small(&mut input, buf).map_err(|e| src_err("read", e))?
        else {
            return Ok(None);
        };
        if hash == *known {
            return Ok(Some(None));
        }
        let mut output = dst.create_staged(name).map_err(|e| dst_err("create", e))?;
        output
            .write_all(&buf[..size])
            .and_then(|()| copy_attributes(&input, &output))
            .map_err(|e| dst_err("write", e))?;
        Ok(Some(Some(Staged {
            name: name.to_string(),
            size: size as u64,
            hash,
            in_place: false,
        })))
    })?;
    if let Some(result) = small {
        return Ok(result);
    }
    // A larger one: hash it, then copy it from the start if it changed.
    let mut hasher = blake3::Hasher::new();
    input.rewind().map_err(|e| src_err("read", e))?;
    io::copy(&mut input, &mut hasher).map_err(|e| src_err("read", e))?;
    if hasher.finalize().as_bytes() == known {
        return Ok(None);
    }
    input.rewind().map_err(|e| src_err("read", e))?;
    let mut output = dst.create_staged(name).map_err(|e| dst_err("create", e))?;
    let (size, hash) = copy_hashing(&mut input, &mut output).map_err(|e| src_err("copy", e))?;
    Ok(Some(Staged {
        name: name.to_string(),
        size,
        hash,
        in_place: false,
    }))
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
        let inner = self.inner.clone();
        blocking(&self.describe(), move || {
            let desc = inner.desc();
            let now = fs::metadata(&inner.root)
                .map_err(|e| other(&desc, format!("the store directory is unreachable: {e}")))?;
            let open = inner
                .root_dir
                .metadata()
                .map_err(|e| io_err(&desc, "check", "", e))?;
            if now.dev() != open.dev() || now.ino() != open.ino() {
                return Err(other(
                    &desc,
                    "the store directory was moved or replaced".into(),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        let inner = self.inner.clone();
        let prefix = prefix.clone();
        blocking(&self.describe(), move || {
            let abs = inner.abs(&prefix);
            match fs::symlink_metadata(&abs) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => {
                    return Ok(Listing {
                        exists: false,
                        entries: Vec::new(),
                        warnings: vec![format!("'{prefix}' is not a plain folder; nothing listed")],
                        incomplete: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
                Err(e) => return Err(io_err(&inner.desc(), "list", &prefix.to_string(), e)),
            }
            let mut listing = Listing {
                exists: true,
                ..Listing::default()
            };
            let dir = match inner.openat2_beneath(&prefix, libc::O_RDONLY | libc::O_DIRECTORY) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => File::open(&abs),
                opened => opened,
            }
            .map_err(|e| io_err(&inner.desc(), "list", &prefix.to_string(), e))?;
            walk(&dir, &abs, b"", &mut listing);
            Ok(listing)
        })
        .await
    }

    async fn read(&self, path: &ItemPath) -> StoreResult<ByteStream> {
        let inner = self.inner.clone();
        let p = path.clone();
        let desc = self.describe();
        let file = blocking(&desc, move || {
            inner
                .open_beneath(&p)
                .map_err(|e| io_err(&inner.desc(), "open", &p.to_string(), e))
        })
        .await?;
        let name = path.to_string();
        let stream = futures::stream::try_unfold(Some(file), move |file| {
            let desc = desc.clone();
            let name = name.clone();
            async move {
                let Some(mut file) = file else {
                    return Ok(None);
                };
                let d2 = desc.clone();
                let (file, chunk) = blocking(&desc, move || {
                    let mut buf = vec![0u8; CHUNK];
                    let n = file
                        .read(&mut buf)
                        .map_err(|e| io_err(&d2, "read", &name, e))?;
                    buf.truncate(n);
                    Ok((file, buf))
                })
                .await?;
                if chunk.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some((Bytes::from(chunk), Some(file))))
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn stage_writer(&self, name: &str) -> StoreResult<Box<dyn StageWriter>> {
        check_meta_key(name).map_err(|m| other(&self.describe(), m))?;
        let path = self.inner.staged(name);
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io_err(&self.describe(), "create", name, e))?;
        Ok(Box::new(LocalWriter {
            file: Some(file),
            desc: self.describe(),
            name: name.to_string(),
        }))
    }

    async fn stage_from(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        _dest: &ItemPath,
    ) -> StoreResult<Staged> {
        let Some(src) = source.as_local() else {
            let writer = self.stage_writer(name).await?;
            return stream_into(writer, source, path, name, false).await;
        };
        let (src, dst) = (src.inner.clone(), self.inner.clone());
        let (path, name) = (path.clone(), name.to_string());
        blocking(&self.describe(), move || {
            copy_local(&src, &dst, &path, &name)
        })
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
        let (src, dst) = (src.inner.clone(), self.inner.clone());
        let (path, name, known) = (path.clone(), name.to_string(), *known);
        blocking(&self.describe(), move || {
            copy_local_if_changed(&src, &dst, &path, &name, &known)
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
        let Some(pool) = copy_pool(parallelism) else {
            return crate::store::stage_each(self, source, requests, parallelism).await;
        };
        // Local to local: the whole group in one hand-over to a pool of copy
        // threads, not one thread hand-over per item.
        let (src, dst) = (src.inner.clone(), self.inner.clone());
        let requests = requests.to_vec();
        let count = requests.len();
        let result = blocking(&self.describe(), move || {
            Ok(pool.install(|| {
                requests
                    .par_iter()
                    .with_max_len(1)
                    .map(|r| match &r.known {
                        Some(known) => copy_local_if_changed(&src, &dst, &r.path, &r.name, known),
                        None => copy_local(&src, &dst, &r.path, &r.name).map(Some),
                    })
                    .collect::<Vec<_>>()
            }))
        })
        .await;
        match result {
            Ok(results) => results,
            Err(e) => {
                // The copy task itself failed (it panicked): every item of the
                // group fails with that reason.
                let message = match &e {
                    StoreError::Other { message, .. } => message.clone(),
                    e => e.to_string(),
                };
                (0..count)
                    .map(|_| Err(other(&self.describe(), message.clone())))
                    .collect()
            }
        }
    }

    async fn hash(&self, path: &ItemPath) -> StoreResult<(u64, Hash)> {
        let inner = self.inner.clone();
        let path = path.clone();
        blocking(&self.describe(), move || {
            let mut file = inner
                .open_beneath(&path)
                .map_err(|e| io_err(&inner.desc(), "open", &path.to_string(), e))?;
            let mut hasher = blake3::Hasher::new();
            let size = io::copy(&mut file, &mut hasher)
                .map_err(|e| io_err(&inner.desc(), "read", &path.to_string(), e))?;
            Ok((size, *hasher.finalize().as_bytes()))
        })
        .await
    }

    async fn make_durable(&self) -> StoreResult<()> {
        let inner = self.inner.clone();
        blocking(&self.describe(), move || {
            // SAFETY: the descriptor is open for the lifetime of `inner`.
            if unsafe { libc::syncfs(inner.root_dir.as_raw_fd()) } != 0 {
                return Err(io_err(
                    &inner.desc(),
                    "syncfs",
                    "",
                    io::Error::last_os_error(),
                ));
            }
            Ok(())
        })
        .await
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
        let inner = self.inner.clone();
        let moves = moves.to_vec();
        let deletes = deletes.to_vec();
        blocking(&self.describe(), move || {
            let desc = inner.desc();
            // Every call below is relative to an open folder: the staging shard
            // and the item's parent, opened without following links and kept
            // open (up to OPEN_FOLDERS of them) for the items that follow. The
            // files replaced or deleted are freed later, on another thread
            // (see release.rs).
            let mut folders = HashMap::new();
            let mut held = Held::default();
            let mut failed = ItemFailures::new();
            // Deletes first, then moves: an item may give way to a folder of
            // the same name, or a folder to an item (the engine puts such
            // deletions in the batch of the copy that needs the room).
            for (name, dest) in &moves {
                check_writable(dest).map_err(|m| other(&desc, m))?;
                check_meta_key(name).map_err(|m| other(&desc, m))?;
            }
            for path in &deletes {
                check_writable(path).map_err(|m| other(&desc, m))?;
            }
            let mut emptied = BTreeSet::new();
            for path in &deletes {
                let refused = |e| io_err(&desc, "delete", &path.to_string(), e).to_string();
                let Some(parent) = path.parent() else {
                    continue;
                };
                if folders.len() >= OPEN_FOLDERS && !folders.contains_key(&parent) {
                    folders.clear();
                }
                let parent_fd = match inner.open_folder(&parent, false, &mut folders) {
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
                        failed.push((path.clone(), refused(e)));
                        continue;
                    }
                    Err(e) => return Err(io_err(&desc, "delete", &path.to_string(), e)),
                };
                let leaf = CString::new(path.leaf())
                    .map_err(|_| other(&desc, format!("'{path}' holds a NUL byte")))?;
                held.hold(parent_fd, &leaf);
                // SAFETY: an open descriptor and a NUL-terminated name for the call.
                if unsafe { libc::unlinkat(parent_fd, leaf.as_ptr(), 0) } != 0 {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        // Gone already, or a folder in its place: one a replayed
                        // commit made for the items moved in below it.
                        io::ErrorKind::NotFound | io::ErrorKind::IsADirectory => {}
                        _ if item_error(&e) => {
                            failed.push((path.clone(), refused(e)));
                            continue;
                        }
                        _ => return Err(io_err(&desc, "delete", &path.to_string(), e)),
                    }
                }
                emptied.insert(parent);
            }
            held.release();
            // Prune folders the deletes left empty, each before its parent, down to (not
            // including) the module folder `backup/<pool>/<module>`.
            while let Some(folder) = emptied.pop_last() {
                let Some(parent) = folder.parent() else {
                    continue;
                };
                if folder.as_bytes().iter().filter(|b| **b == b'/').count() < 3 {
                    continue;
                }
                folders.remove(&folder);
                let Ok(parent_fd) = inner.open_folder(&parent, false, &mut folders) else {
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
            let mut renames = Vec::new();
            for (name, dest) in &moves {
                let fail = |action, e| io_err(&desc, action, &dest.to_string(), e);
                let parent = dest
                    .parent()
                    .ok_or_else(|| other(&desc, format!("'{dest}' has no folder")))?;
                if folders.len() >= OPEN_FOLDERS && !folders.contains_key(&parent) {
                    rename_all(&inner, &desc, &mut renames, &mut held, &mut failed)?;
                    folders.clear();
                }
                let parent_fd = match inner.open_folder(&parent, true, &mut folders) {
                    Ok(fd) => fd,
                    // The item's own folders only: if the module folder itself
                    // cannot be opened, the whole replica is in the way.
                    Err(e)
                        if item_error(&e)
                            && module_folder(dest).is_some_and(|m| {
                                inner.open_folder(&m, false, &mut folders).is_ok()
                            }) =>
                    {
                        failed.push((dest.clone(), fail("create folders for", e).to_string()));
                        continue;
                    }
                    Err(e) => return Err(fail("create folders for", e)),
                };
                let (shard, staged) = inner
                    .staged_at(name)
                    .map_err(|e| fail("move into place", e))?;
                let leaf = CString::new(dest.leaf())
                    .map_err(|_| other(&desc, format!("'{dest}' holds a NUL byte")))?;
                renames.push((
                    shard.as_raw_fd(),
                    staged,
                    parent_fd,
                    leaf,
                    dest,
                    name.as_str(),
                ));
            }
            rename_all(&inner, &desc, &mut renames, &mut held, &mut failed)?;
            held.release();
            Ok(failed)
        })
        .await
    }

    async fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        let inner = self.inner.clone();
        let names = names.to_vec();
        blocking(&self.describe(), move || {
            for name in names {
                check_meta_key(&name).map_err(|m| other(&inner.desc(), m))?;
                match fs::remove_file(inner.staged(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&inner.desc(), "remove", &name, e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        let inner = self.inner.clone();
        let prefix = prefix.to_string();
        blocking(&self.describe(), move || {
            // The shard folders, and the folder itself (earlier versions staged
            // there directly).
            let read = fs::read_dir(&inner.staging)
                .map_err(|e| io_err(&inner.desc(), "list", "staging", e))?;
            let mut folders = vec![inner.staging.clone()];
            for item in read.flatten() {
                if item.file_type().is_ok_and(|t| t.is_dir()) {
                    folders.push(item.path());
                }
            }
            for folder in folders {
                let read = fs::read_dir(&folder)
                    .map_err(|e| io_err(&inner.desc(), "list", "staging", e))?;
                for item in read.flatten() {
                    if item.file_type().is_ok_and(|t| t.is_file())
                        && item.file_name().as_bytes().starts_with(prefix.as_bytes())
                    {
                        let _ = fs::remove_file(item.path());
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let path = self.inner.meta_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&self.describe(), "read", key, e)),
        }
    }

    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        let path = self.inner.meta_path(key)?;
        let inner = self.inner.clone();
        let key = key.to_string();
        blocking(&self.describe(), move || {
            let desc = inner.desc();
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| io_err(&desc, "create", &key, e))?;
            }
            let tmp = inner.staged(&format!(
                "meta-{}-{}",
                std::process::id(),
                super::registry::unique_suffix()
            ));
            fs::write(&tmp, &value).map_err(|e| io_err(&desc, "write", &key, e))?;
            fs::rename(&tmp, &path).map_err(|e| io_err(&desc, "write", &key, e))
        })
        .await
    }

    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let dir = self.inner.meta_path(prefix)?;
        let prefix = prefix.to_string();
        let desc = self.describe();
        blocking(&desc.clone(), move || {
            let read = match fs::read_dir(&dir) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_err(&desc, "list", &prefix, e)),
            };
            let mut keys: Vec<String> = read
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().to_str().map(|n| format!("{prefix}/{n}")))
                .collect();
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        let path = self.inner.meta_path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.describe(), "delete", key, e)),
        }
    }

    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        check_meta_key(name).map_err(|m| other(&self.describe(), m))?;
        let path = self.inner.locks.join(format!("{name}.lock"));
        let owner = owner.to_string();
        let desc = self.describe();
        blocking(&desc.clone(), move || {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_err(&desc, "open lock", &path.display().to_string(), e))?;
            match file.try_lock() {
                Ok(()) => {
                    file.set_len(0)
                        .map_err(|e| io_err(&desc, "write lock", "", e))?;
                    file.write_all(owner.as_bytes())
                        .map_err(|e| io_err(&desc, "write lock", "", e))?;
                    Ok(Ok(Box::new(LocalLock { _file: file }) as Box<dyn StoreLock>))
                }
                Err(fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    Ok(Err(LockHolder(holder)))
                }
                Err(fs::TryLockError::Error(e)) => {
                    Err(io_err(&desc, "lock", &path.display().to_string(), e))
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_in_full_path_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // `a.b` sorts before `a/x` ('.' < '/') though the folder `a` sorts
        // before the name `a.b`; `a0` sorts after both ('0' > '/').
        // Below `c`, the file `d` is a prefix of the file `d.x` and of the
        // folders `dd` and `de`, which sort after `d.x` ('.' < 'd').
        for name in [
            "a/x", "a/y/z", "a/y.1", "a.b", "a0", "b", "#1", "a/y/z2", "c/de/f", "c/d", "c/d.x",
            "c/dd/e/f",
        ] {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, name).unwrap();
        }
        let mut listing = Listing::default();
        walk(&File::open(root).unwrap(), root, b"", &mut listing);
        assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
        assert!(!listing.incomplete);
        let listed: Vec<ItemPath> = listing.entries.into_iter().map(|e| e.path).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted);
        assert_eq!(listed.len(), 12);
    }

    #[test]
    fn a_time_past_2262_is_listed_without_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("far");
        fs::write(&path, "x").unwrap();
        let year_2300 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(10_413_792_000);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(year_2300)
            .unwrap();
        let mut listing = Listing::default();
        walk(
            &File::open(dir.path()).unwrap(),
            dir.path(),
            b"",
            &mut listing,
        );
        assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
        assert_eq!(listing.entries.len(), 1);
        assert_eq!(listing.entries[0].mtime_ns, i64::MAX);
    }

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
                let mut w = store.stage_writer(name).await.unwrap();
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
