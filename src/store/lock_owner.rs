//! Who holds a store lock: the text a lock carries, written and read here only.
//!
//! The format is `poolsync pid N on HOST [BOOT/PIDNS] since TIME`: readable in "waiting for
//! the pair lock" messages, and enough to tell that a holder on this machine has
//! ended (a `kill -9`), so its lock need not be waited out.

use std::time::SystemTime;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".into(), |h| h.trim().to_string())
}

/// Which machine and PID namespace this is: the start of the boot id (two
/// machines, or two boots, differ even under one host name) and the PID
/// namespace (two containers on one kernel differ). Empty parts where /proc
/// does not say, and then no holder is ever judged ended.
fn machine() -> String {
    let boot: String = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().chars().filter(|c| *c != '-').take(12).collect())
        .unwrap_or_default();
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            l.to_str().map(|s| {
                s.trim_start_matches("pid:[")
                    .trim_end_matches(']')
                    .to_string()
            })
        })
        .unwrap_or_default();
    format!("[{boot}/{pid_ns}]")
}

/// This process, in words: `poolsync pid N on HOST`.
#[must_use]
pub fn this_process() -> String {
    format!("poolsync pid {} on {}", std::process::id(), hostname())
}

/// This process, as a lock owner.
#[must_use]
pub fn lock_owner() -> String {
    format!(
        "{} {} since {}",
        this_process(),
        machine(),
        humantime::format_rfc3339_seconds(SystemTime::now())
    )
}

/// Whether `owner` (as [`lock_owner`] wrote it) is a process of this machine,
/// this boot and this PID namespace that has ended. Anything else (another
/// machine, a container, another format, a version that did not record the
/// machine) is not: its lock is waited out.
#[must_use]
pub fn owner_is_gone(owner: &str) -> bool {
    let mut words = owner.split_whitespace();
    let (Some("poolsync"), Some("pid"), Some(pid), Some("on"), Some(host), Some(machine_id)) = (
        words.next(),
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
    let here = machine();
    if host != hostname()
        || machine_id != here
        || here.contains("[/")
        || here.ends_with("/]")
        || pid <= 0
    {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    !alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_holder_is_recognised_only_on_this_machine() {
        // A PID that cannot be running: beyond pid_max.
        let ended = format!(
            "poolsync pid 2147483647 on {} {} since 2026-11-27T08:00:00Z",
            hostname(),
            machine()
        );
        assert!(owner_is_gone(&ended), "{ended}");
        // The same host name and PID on another machine or boot, in another
        // container, or from a version that did not record the machine.
        for other in [
            "[0123456789ab/4026531836]".to_string(),
            format!("{}x", machine()),
            "since".to_string(),
        ] {
            let owner = format!(
                "poolsync pid 2147483647 on {} {other} since 2026-11-27T08:00:00Z",
                hostname()
            );
            assert!(!owner_is_gone(&owner), "{owner}");
        }
        // This process is alive.
        assert!(!owner_is_gone(&lock_owner()));
    }
}
