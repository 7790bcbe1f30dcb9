//! The staging area, `.poolsync/staging/`: items are written there, spread
//! over shard folders kept open, before a commit moves them into place.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use super::Inner;
use super::errors::{io_err, other};
use crate::store::{StoreResult, check_meta_key};

/// Staged files are spread over this many folders of `.poolsync/staging`: every
/// create and rename takes its folder's lock, and with one folder the copy
/// threads queue (and spin) on it.
const STAGING_SHARDS: u64 = 32;

/// Creates (if needed) and opens the shard folders of the staging folder
/// `staging`, in shard order.
pub(super) fn open_shards(staging: &Path, desc: &str) -> StoreResult<Vec<File>> {
    let mut shards = Vec::new();
    for shard in 0..STAGING_SHARDS {
        let dir = staging.join(format!("{shard:02x}"));
        fs::create_dir_all(&dir)
            .map_err(|e| io_err(desc, "create", &dir.display().to_string(), e))?;
        let open =
            File::open(&dir).map_err(|e| io_err(desc, "open", &dir.display().to_string(), e))?;
        shards.push(open);
    }
    Ok(shards)
}

impl Inner {
    /// The shard folder of the staged item `name`, by a hash of the name.
    fn shard(name: &str) -> u64 {
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) % STAGING_SHARDS
    }

    /// Where the staged item `name` lives.
    pub(super) fn staged(&self, name: &str) -> PathBuf {
        self.staging
            .join(format!("{:02x}", Self::shard(name)))
            .join(name)
    }

    /// Where versions before the shard folders staged the item `name`: in
    /// `.poolsync/staging/` itself. A journal such a version left names files
    /// there.
    pub(super) fn legacy_staged(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// The open shard folder of the staged item `name`, and the name for the
    /// `*at` calls.
    pub(super) fn staged_at(&self, name: &str) -> io::Result<(&File, CString)> {
        let shard = self
            .shards
            .get(Self::shard(name) as usize)
            .ok_or_else(|| io::Error::other("staging folder missing"))?;
        let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok((shard, name))
    }

    /// Creates (or truncates) the staged item `name`, readable by the owner only
    /// until the item's own permissions are copied onto it.
    pub(super) fn create_staged(&self, name: &str) -> io::Result<File> {
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

    /// Removes the staged items `names`; one already gone is no error.
    pub(super) fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        for name in names {
            check_meta_key(name).map_err(|m| other(&self.desc(), m))?;
            match fs::remove_file(self.staged(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&self.desc(), "remove", name, e)),
            }
        }
        Ok(())
    }

    /// Removes every staged item whose name starts with `prefix`.
    pub(super) fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        // The shard folders, and the folder itself (earlier versions staged
        // there directly).
        let read =
            fs::read_dir(&self.staging).map_err(|e| io_err(&self.desc(), "list", "staging", e))?;
        let mut folders = vec![self.staging.clone()];
        for item in read.flatten() {
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(item.path());
            }
        }
        for folder in folders {
            let read =
                fs::read_dir(&folder).map_err(|e| io_err(&self.desc(), "list", "staging", e))?;
            for item in read.flatten() {
                if item.file_type().is_ok_and(|t| t.is_file())
                    && item.file_name().as_bytes().starts_with(prefix.as_bytes())
                {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        Ok(())
    }
}
