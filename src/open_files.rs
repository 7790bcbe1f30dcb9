//! The process's limit on open files.
//!
//! The soft limit is often 1,024 while the hard limit allows far more. A sync
//! keeps folders and, for a while, replaced files open (see
//! `store/release.rs`), so the binary raises its soft limit to the hard one at
//! start, as Go programs do by default. The store code stays within whatever
//! limit it finds, so a library user who does not call this only loses speed.

/// The current soft limit on open files, if it can be read.
#[must_use]
pub fn soft_limit() -> Option<u64> {
    read_limit().map(|limit| limit.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit. Failure is ignored:
/// the limit then stays what it was.
pub fn raise_soft_limit() {
    let Some(mut limit) = read_limit() else {
        return;
    };
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: a valid pointer for the call.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) };
    }
}

fn read_limit() -> Option<libc::rlimit> {
    // SAFETY: rlimit is plain data; all-zero is a valid starting value.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer for the call.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0).then_some(limit)
}
