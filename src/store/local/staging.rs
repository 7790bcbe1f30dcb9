//! The staging areas: items are written there, spread over shard folders kept
//! open, before a commit renames them into place.
//!
//! A rename is atomic only within one file system, so an item is staged on
//! the file system of its destination: in `.poolsync/staging/` when that is
//! the store root's, and otherwise in `.poolsync-staging/` at the top of the
//! mount that holds the destination (a replica folder on a disk of its own,
//! say `backup/` or `data/`). Those are found again after a crash through the
//! mounts below the store root (`/proc/self/mountinfo`).

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use super::Inner;
use super::errors::{io_err, other};
use crate::store::{FreeSpace, ItemPath, StoreResult, check_meta_key};

/// Staged files are spread over this many folders of a staging area: every
/// create and rename takes its folder's lock, and with one folder the copy
/// threads queue (and spin) on it.
const STAGING_SHARDS: u64 = 32;

/// The name of a staging area at the top of a mount below the store root.
pub(super) const MOUNT_STAGING: &str = ".poolsync-staging";

/// One staging area: its folder, its file system, its shard folders, each
/// made and opened the first time an item is staged in it (a file system
/// short of inodes is not handed 32 empty folders up front).
pub(super) struct Staging {
    dir: PathBuf,
    dev: u64,
    shards: Vec<OnceLock<File>>,
}

impl Staging {
    /// Creates (if needed) and opens the staging area `dir`.
    pub(super) fn open(dir: &Path, desc: &str) -> StoreResult<Staging> {
        fs::create_dir_all(dir)
            .map_err(|e| io_err(desc, "create", &dir.display().to_string(), e))?;
        let dev = fs::metadata(dir)
            .map_err(|e| io_err(desc, "check", &dir.display().to_string(), e))?
            .dev();
        Ok(Staging {
            dir: dir.to_path_buf(),
            dev,
            shards: (0..STAGING_SHARDS).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The open shard folder `shard`, made and opened on first use.
    fn shard_dir(&self, shard: u64) -> io::Result<&File> {
        let cell = self
            .shards
            .get(shard as usize)
            .ok_or_else(|| io::Error::other("no such staging folder"))?;
        if let Some(open) = cell.get() {
            return Ok(open);
        }
        let sub = self.dir.join(format!("{shard:02x}"));
        match fs::create_dir(&sub) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        // Two threads may open it at once: one keeps its descriptor.
        let _ = cell.set(File::open(&sub)?);
        cell.get()
            .ok_or_else(|| io::Error::other("staging folder lost"))
    }

    /// The shard folder of the staged item `name`, by a hash of the name.
    fn shard(name: &str) -> u64 {
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) % STAGING_SHARDS
    }

    /// Where the staged item `name` lives.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{:02x}", Self::shard(name)))
            .join(name)
    }

    /// Where the staged item `name` is to be written: its shard folder is
    /// made if it is not there yet.
    pub(super) fn path_to_write(&self, name: &str) -> io::Result<PathBuf> {
        self.shard_dir(Self::shard(name))?;
        Ok(self.path(name))
    }

    /// The open shard folder of `name`, and the name for the `*at` calls.
    /// The descriptor lives as long as the store (areas are never dropped).
    pub(super) fn at(&self, name: &str) -> io::Result<(RawFd, CString)> {
        let shard = self.shard_dir(Self::shard(name))?;
        let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok((shard.as_raw_fd(), name))
    }

    /// Creates (or truncates) the staged item `name`, readable by the owner
    /// only until the item's own permissions are copied onto it.
    fn create(&self, name: &str) -> io::Result<File> {
        let (dir, name) = self.at(name)?;
        // SAFETY: valid descriptor and NUL-terminated name for the call.
        let fd = unsafe {
            libc::openat(
                dir,
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

    /// Removes every staged item whose name starts with `prefix` (and, in
    /// the main area, what earlier versions staged in the folder itself).
    fn clear(&self, prefix: &str) {
        let mut folders = vec![self.dir.clone()];
        if let Ok(read) = fs::read_dir(&self.dir) {
            folders.extend(
                read.flatten()
                    .filter(|i| i.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|i| i.path()),
            );
        }
        for folder in folders {
            let Ok(read) = fs::read_dir(&folder) else {
                continue;
            };
            for item in read.flatten() {
                if item.file_type().is_ok_and(|t| t.is_file())
                    && item.file_name().as_bytes().starts_with(prefix.as_bytes())
                {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
    }
}

/// The staging areas of one store: the main one and those found on mounts.
pub(super) struct Stagings {
    main: Arc<Staging>,
    mounts: RwLock<Vec<Arc<Staging>>>,
}

impl Stagings {
    pub(super) fn new(main: Staging) -> Self {
        Stagings {
            main: Arc::new(main),
            mounts: RwLock::new(Vec::new()),
        }
    }

    pub(super) fn main(&self) -> &Arc<Staging> {
        &self.main
    }

    fn known(&self) -> Vec<Arc<Staging>> {
        let mut all = vec![self.main.clone()];
        all.extend(
            self.mounts
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        all
    }
}

impl Inner {
    /// The staging area on the file system of `dest` (its nearest existing
    /// folder), opened and kept the first time it is needed.
    pub(super) fn staging_for(&self, dest: &ItemPath) -> io::Result<Arc<Staging>> {
        let Some((dev, folder)) = self.device_of(dest) else {
            return Ok(self.stagings.main.clone());
        };
        if dev == self.stagings.main.dev {
            return Ok(self.stagings.main.clone());
        }
        if let Some(found) = self.stagings.known().into_iter().find(|s| s.dev == dev) {
            return Ok(found);
        }
        let top = self.mount_top(&folder, dev);
        let dir = top.join(MOUNT_STAGING);
        let staging = self.open_mount_staging(&dir, dev).map_err(|e| {
            // The file system's own fault (read-only, full, failing) as it
            // is: the engine words those.
            if matches!(
                e.raw_os_error(),
                Some(libc::EROFS | libc::ENOSPC | libc::EDQUOT | libc::EIO)
            ) {
                return e;
            }
            // Anything else: a copy could not be renamed into place
            // atomically, so the sync stops at once (see `Fault`).
            io::Error::new(
                io::ErrorKind::CrossesDevices,
                format!(
                    "cannot stage on the file system of '{dest}': it is a mount of its own at {}, apart from the store root {}, and its staging folder {} cannot be used ({e}); a rename into place is atomic only within one file system, so nothing was copied: remove what is in the way at {} and sync again",
                    top.display(),
                    self.root.display(),
                    dir.display(),
                    dir.display()
                ),
            )
        })?;
        let staging = Arc::new(staging);
        let mut mounts = self
            .stagings
            .mounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        mounts.push(staging.clone());
        Ok(staging)
    }

    /// Opens (making it if needed) the staging area `dir` at the top of a
    /// mount on device `dev`: a real folder on that same file system.
    fn open_mount_staging(&self, dir: &Path, dev: u64) -> io::Result<Staging> {
        if let Ok(md) = fs::symlink_metadata(dir)
            && !md.is_dir()
        {
            return Err(io::Error::other("a file or a link is in the way"));
        }
        let staging = Staging::open(dir, &self.desc()).map_err(|e| match e {
            crate::store::StoreError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        if staging.dev != dev {
            return Err(io::Error::other("it is on another file system"));
        }
        Ok(staging)
    }

    /// The device and the absolute path of the nearest existing folder of
    /// `dest` below the root (`None`: none but the root itself).
    fn device_of(&self, dest: &ItemPath) -> Option<(u64, PathBuf)> {
        let mut folder = dest.parent();
        while let Some(f) = folder {
            let abs = self.abs(&f);
            if let Ok(md) = fs::symlink_metadata(&abs)
                && md.is_dir()
            {
                return Some((md.dev(), abs));
            }
            folder = f.parent();
        }
        None
    }

    /// The top folder of the mount `folder` is on (device `dev`), below the root.
    fn mount_top(&self, folder: &Path, dev: u64) -> PathBuf {
        let mut top = folder.to_path_buf();
        while let Some(parent) = top.parent() {
            if parent == self.root || fs::metadata(parent).map(|m| m.dev()).ok() != Some(dev) {
                break;
            }
            top = parent.to_path_buf();
        }
        top
    }

    /// Every staging area: the main one, those in use, and any a crashed run
    /// left at the top of a mount below the root.
    fn all_stagings(&self) -> Vec<Arc<Staging>> {
        let mut all = self.stagings.known();
        for mount in mounts_below(&self.root) {
            let dir = mount.join(MOUNT_STAGING);
            if dir.is_dir()
                && !all.iter().any(|s| s.dir == dir)
                && let Ok(s) = Staging::open(&dir, &self.desc())
            {
                all.push(Arc::new(s));
            }
        }
        all
    }

    /// The room an unprivileged writer has on the file system of `dest`
    /// (its staging area's, which is the same): bytes, and files where the
    /// file system counts them.
    pub(super) fn free_space(&self, dest: &ItemPath) -> Option<FreeSpace> {
        let area = self
            .staging_for(&dest.join(&ItemPath::segment("x").ok()?))
            .ok()?;
        let st = rustix::fs::statvfs(&area.dir).ok()?;
        let counted = st.f_files > 0;
        Some(FreeSpace {
            bytes: st.f_bavail.saturating_mul(st.f_frsize),
            files: counted.then_some(st.f_favail),
            files_total: counted.then_some(st.f_files),
        })
    }

    /// Where the staged item `name` for `dest` lives.
    pub(super) fn staged(&self, name: &str, dest: &ItemPath) -> io::Result<PathBuf> {
        self.staging_for(dest)?.path_to_write(name)
    }

    /// Where versions before the shard folders staged the item `name`: in
    /// `.poolsync/staging/` itself. A journal such a version left names files
    /// there.
    pub(super) fn legacy_staged(&self, name: &str) -> PathBuf {
        self.stagings.main.dir.join(name)
    }

    /// The shard folder of the staged item `name` for `dest`, and the name for
    /// the `*at` calls.
    pub(super) fn staged_at(&self, name: &str, dest: &ItemPath) -> io::Result<(RawFd, CString)> {
        self.staging_for(dest)?.at(name)
    }

    /// Creates (or truncates) the staged item `name` for `dest`.
    pub(super) fn create_staged(&self, name: &str, dest: &ItemPath) -> io::Result<File> {
        self.staging_for(dest)?.create(name)
    }

    /// Removes the staged items `names` from every area; one already gone is
    /// no error.
    pub(super) fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        let areas = self.stagings.known();
        for name in names {
            check_meta_key(name).map_err(|m| other(&self.desc(), m))?;
            for area in &areas {
                match fs::remove_file(area.path(name)) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&self.desc(), "remove", name, e)),
                }
            }
        }
        Ok(())
    }

    /// Removes every staged item whose name starts with `prefix`, in every area.
    pub(super) fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        fs::read_dir(&self.stagings.main.dir)
            .map_err(|e| io_err(&self.desc(), "list", "staging", e))?;
        for area in self.all_stagings() {
            area.clear(prefix);
        }
        Ok(())
    }
}

/// The mount points strictly below `root`, from `/proc/self/mountinfo`
/// (none where it cannot be read).
fn mounts_below(root: &Path) -> Vec<PathBuf> {
    let Ok(root) = root.canonicalize() else {
        return Vec::new();
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount)
        .filter(|p| p.starts_with(&root) && *p != root)
        .collect()
}

/// A mount point as mountinfo writes it: space, tab, newline and backslash
/// as octal escapes.
fn unescape_mount(field: &str) -> PathBuf {
    let mut out = Vec::new();
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_points_are_unescaped_as_mountinfo_writes_them() {
        assert_eq!(
            super::unescape_mount("/stores/my\\040backup\\011x"),
            std::path::PathBuf::from("/stores/my backup\tx")
        );
        assert_eq!(
            super::unescape_mount("/plain"),
            std::path::PathBuf::from("/plain")
        );
    }
}
