//! Who holds a store lock: the text a lock carries, written and read here only.
//!
//! The format is `poolsync pid N on HOST since TIME`: readable in "waiting for
//! the pair lock" messages, and enough to tell that a holder on this machine has
//! ended (a `kill -9`), so its lock need not be waited out.

use std::time::SystemTime;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// This process, as a lock owner.
pub fn lock_owner() -> String {
    format!(
        "poolsync pid {} on {} since {}",
        std::process::id(),
        hostname(),
        humantime::format_rfc3339_seconds(SystemTime::now())
    )
}

/// Whether `owner` (as [`lock_owner`] wrote it) is a process of this machine
/// that has ended. Anything else (another machine, another format) is not.
pub fn owner_is_gone(owner: &str) -> bool {
    let mut words = owner.split_whitespace();
    let (Some("poolsync"), Some("pid"), Some(pid), Some("on"), Some(host)) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if host != hostname() || pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    !alive
}
