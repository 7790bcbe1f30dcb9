//! Deferred release of the files a local commit replaces or deletes.
//!
//! On ext4 most of the cost of a `rename` that replaces a file, and of an
//! `unlink`, is freeing the old file: its blocks and its inode. The kernel does
//! that when the last reference to the file goes, which is normally inside the
//! call itself. Measured here on 4 KiB files: a replacing rename cost about
//! 50 µs, of which about 40 µs was the freeing.
//!
//! A commit therefore first opens the file it is about to replace or delete as an
//! `O_PATH` descriptor (a reference, no read access, no link followed), does the
//! rename or unlink (now cheap), and hands the descriptors to one background
//! thread that closes them. The freeing then happens there, while the sync goes
//! on, much of it during the next batch's `syncfs`, which leaves the CPU idle.
//!
//! Nothing about durability changes: the name is already gone or replaced when
//! the call returns; only the space comes back a little later. The number of
//! descriptors held at once is bounded (see `Releaser::budget`); past it, or if
//! the thread cannot be started, a commit simply frees inline as before.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};

/// Held files go to the background thread in groups of this many, so that it
/// frees the first ones while a commit is still renaming the rest.
const GROUP: usize = 128;

struct Releaser {
    sender: Sender<Vec<OwnedFd>>,
    /// At most this many files are held at once, across all stores of the
    /// process: half of what the open-file limit leaves after a reserve for
    /// everything else (folders a commit keeps open, copies, sockets), and no
    /// more than 8,192. With the usual soft limit of 1,024, that is 256.
    budget: usize,
}

fn budget() -> usize {
    let Some(soft) = crate::open_files::soft_limit() else {
        return 0;
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    (soft.saturating_sub(512) / 2).min(8192)
}

/// Descriptors held and not yet closed.
static HELD: AtomicUsize = AtomicUsize::new(0);

fn releaser() -> Option<&'static Releaser> {
    static RELEASER: OnceLock<Option<Releaser>> = OnceLock::new();
    RELEASER
        .get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<Vec<OwnedFd>>();
            std::thread::Builder::new()
                .name("poolsync-release".into())
                .spawn(move || {
                    for fds in receiver {
                        let n = fds.len();
                        drop(fds);
                        HELD.fetch_sub(n, Ordering::AcqRel);
                    }
                })
                .ok()
                .map(|_| Releaser {
                    sender,
                    budget: budget(),
                })
        })
        .as_ref()
}

/// The files one commit holds for release. Dropping it hands them to the
/// background thread, on every path out of a commit, errors included.
#[derive(Default)]
pub(super) struct Held {
    fds: Vec<OwnedFd>,
}

impl Held {
    /// Holds the file `leaf` in the folder `dir`, about to be replaced or
    /// removed, so that it outlives its name. Does nothing when there is nothing
    /// there, when the budget is spent, or when it cannot be opened: the kernel
    /// then frees the file inline, as without this.
    pub(super) fn hold(&mut self, dir: RawFd, leaf: &CStr) {
        let Some(releaser) = releaser() else {
            return;
        };
        if HELD.fetch_add(1, Ordering::AcqRel) >= releaser.budget {
            HELD.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        // SAFETY: a valid descriptor and a NUL-terminated name for the call.
        let fd = unsafe {
            libc::openat(
                dir,
                leaf.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            HELD.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        // SAFETY: the kernel returned a fresh descriptor that we now own.
        self.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        if self.fds.len() >= GROUP {
            self.release();
        }
    }

    /// Hands the files held so far to the background thread, which closes them
    /// (and so frees the ones whose names are gone).
    pub(super) fn release(&mut self) {
        if self.fds.is_empty() {
            return;
        }
        let fds = std::mem::take(&mut self.fds);
        let n = fds.len();
        let unsent = match releaser() {
            Some(r) => r.sender.send(fds).err().map(|mpsc::SendError(fds)| fds),
            None => Some(fds),
        };
        if let Some(fds) = unsent {
            drop(fds);
            HELD.fetch_sub(n, Ordering::AcqRel);
        }
    }

    #[cfg(test)]
    fn files(&self) -> &[OwnedFd] {
        &self.fds
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    fn links(fd: &OwnedFd) -> u64 {
        // SAFETY: stat is plain data; all-zero is a valid starting value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a pointer to a stat for the call.
        assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &raw mut st) }, 0);
        st.st_nlink as u64
    }

    #[test]
    fn a_held_file_outlives_its_name_until_released() {
        crate::open_files::raise_soft_limit();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), b"old content").unwrap();
        std::fs::write(dir.path().join("new"), b"new").unwrap();
        let folder = File::open(dir.path()).unwrap();

        let mut held = Held::default();
        held.hold(folder.as_raw_fd(), &CString::new("old").unwrap());
        assert_eq!(held.files().len(), 1, "an existing file is held");
        assert!(HELD.load(Ordering::Acquire) >= 1);
        std::fs::rename(dir.path().join("new"), dir.path().join("old")).unwrap();
        // The replaced file has no name left but is still there, through `held`.
        assert_eq!(links(&held.files()[0]), 0);
        assert_eq!(std::fs::read(dir.path().join("old")).unwrap(), b"new");

        drop(held);
        let start = Instant::now();
        while HELD.load(Ordering::Acquire) > 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never released");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn nothing_is_held_for_a_missing_name_and_a_link_is_held_as_itself() {
        crate::open_files::raise_soft_limit();
        let dir = tempfile::tempdir().unwrap();
        let folder = File::open(dir.path()).unwrap();
        let mut held = Held::default();
        held.hold(folder.as_raw_fd(), &CString::new("absent").unwrap());
        assert!(held.files().is_empty());
        std::fs::write(dir.path().join("target"), b"t").unwrap();
        std::os::unix::fs::symlink(dir.path().join("target"), dir.path().join("link")).unwrap();
        held.hold(folder.as_raw_fd(), &CString::new("link").unwrap());
        // SAFETY: as in `links`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as in `links`.
        let rc = unsafe { libc::fstat(held.files()[0].as_raw_fd(), &raw mut st) };
        assert_eq!(rc, 0);
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
    }

    #[test]
    fn files_go_to_the_thread_in_groups_as_they_are_held() {
        crate::open_files::raise_soft_limit();
        let dir = tempfile::tempdir().unwrap();
        for i in 0..GROUP + 3 {
            std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
        }
        let folder = File::open(dir.path()).unwrap();
        let mut held = Held::default();
        for i in 0..GROUP + 3 {
            held.hold(folder.as_raw_fd(), &CString::new(format!("f{i}")).unwrap());
        }
        assert_eq!(held.files().len(), 3);
    }
}
