//! Opening items and folders beneath the store's root without following any
//! link: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, in steps for paths
//! past `PATH_MAX`, and folders opened (or created) one segment at a time.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io;
use std::os::unix::io::{AsRawFd, BorrowedFd, FromRawFd, RawFd};

use super::Inner;
use crate::store::ItemPath;

/// Bytes the kernel accepts in one path, its NUL included.
const PATH_MAX: usize = libc::PATH_MAX as usize;

impl Inner {
    /// Opens an item for reading without leaving the root or following any link.
    pub(super) fn open_beneath(&self, path: &ItemPath) -> io::Result<File> {
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
    pub(super) fn openat2_beneath(&self, path: &ItemPath, flags: libc::c_int) -> io::Result<File> {
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

    /// Opens the folder `dir` (creating it and its parents when `create`),
    /// one segment at a time from the root, refusing any segment that is a link
    /// or not a folder. Every folder opened is kept in `open` for the next call.
    pub(super) fn open_folder(
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
                return Err(not_a_folder(parent_fd, &leaf, dir));
            }
            // SAFETY: the kernel returned a fresh descriptor that we now own.
            open.insert(dir.clone(), unsafe { File::from_raw_fd(fd) });
        }
        open.get(dir)
            .map(File::as_raw_fd)
            .ok_or_else(|| io::Error::other("folder cache lost an entry"))
    }
}

/// The error for the folder `dir`, entry `leaf` of the open folder `parent_fd`,
/// that could not be opened as a folder (`ENOTDIR` or `ELOOP`).
///
/// Opening a link with `O_DIRECTORY` fails with ENOTDIR too. Only a regular file
/// in the way keeps that kind (a commit's deletes take it as "nothing below");
/// a link is refused outright.
fn not_a_folder(parent_fd: RawFd, leaf: &CStr, dir: &ItemPath) -> io::Error {
    // SAFETY: `parent_fd` stays open for the duration of the call.
    let parent = unsafe { BorrowedFd::borrow_raw(parent_fd) };
    let file_in_the_way = rustix::fs::statat(parent, leaf, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        });
    let kind = if file_in_the_way {
        io::ErrorKind::NotADirectory
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(
        kind,
        format!("'{dir}' is not a plain folder (a link or a file); refusing to write through it"),
    )
}

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
            &raw const how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh descriptor that we now own.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}
