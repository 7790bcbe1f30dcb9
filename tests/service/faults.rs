//! The service under faults and load: kill -9, a second service, an
//! untrusted file, its threads, a full disk, a busy pair, failed cycles.

use super::*;

#[test]
fn a_second_service_on_the_same_pair_is_refused() {
    let mut s = Served::new(LONG);
    s.start_seeded();
    let mut second = s.command().spawn().unwrap();
    let refused = wait_for_exit(&mut second, Duration::from_secs(10));
    let out = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(refused, "the second service ran beside the first:\n{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "another poolsync service serves the pair {A} <-> {B}"
        )) && err.contains(&format!("poolsync pid {}", s.pid())),
        "{err}"
    );
    s.stop();
}

#[test]
fn an_untrusted_deployment_file_is_not_reloaded() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = Served::new("sync_interval = \"00:00:05\"");
    s.start_seeded();
    let text = std::fs::read_to_string(&s.file)
        .unwrap()
        .replace("00:00:05", "00:00:07");
    std::fs::write(&s.file, text).unwrap();
    std::fs::set_permissions(&s.file, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The next cycle re-reads the file: within one interval.
    std::thread::sleep(Duration::from_secs(7));
    let log = s.stop();
    assert!(!log.contains("settings changed"), "{log}");
    let warned: Vec<_> = log_events(&log)
        .into_iter()
        .filter(|v| message(v) == "cannot re-read the settings; keeping the current ones")
        .collect();
    assert_eq!(warned.len(), 1, "said once:\n{log}");
    let error = warned[0]["fields"]["error"].as_str().unwrap();
    assert!(error.contains("writable by"), "{error}");
}

/// Whether `child` exits within `limit`; kills it if not.
fn wait_for_exit(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    false
}

/// The service's threads now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[test]
fn the_service_threads_stay_within_the_documented_bound() {
    // The bound of docs/service.md: 2 async workers, 16 for blocking store
    // work, the copy threads (transfer_parallelism), a listing thread per
    // core, and the watcher, signal and file-release threads.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let bound = 2 + 16 + 8 + cores + 3 + 1;
    let mut s = Served::new("sync_interval = \"00:00:05\"");
    s.start();
    let mut most = 0;
    for round in 0..20 {
        for i in 0..50 {
            s.put(&format!("r{round}/f{i}"), &format!("{round} {i}"));
        }
        std::thread::sleep(Duration::from_millis(200));
        most = most.max(threads(s.pid()));
    }
    s.converges("the churn", Duration::from_secs(20));
    most = most.max(threads(s.pid()));
    s.stop();
    assert!(most <= bound, "{most} threads, more than {bound}");
}

#[test]
fn a_churn_with_the_service_killed_at_random_points_converges() {
    let mut s = Served::new("sync_interval = \"00:00:05\"");
    let mut rng = Rng(7);
    for i in 0..100 {
        s.put(&format!("d{}/f{i}", i % 7), &format!("v0 {i}"));
    }
    for round in 0..6 {
        s.start();
        let stop_at = Instant::now() + Duration::from_millis(rng.below(1200) + 300);
        while Instant::now() < stop_at {
            churn_once(&s.source(), &mut rng, round);
            std::thread::sleep(Duration::from_millis(10));
        }
        s.kill();
    }
    s.start();
    s.converges("the replica after six kills", Duration::from_secs(30));
    s.stop();
    let staging = s
        .dir
        .path()
        .join("stores")
        .join(B)
        .join("backup/.poolsync-staging");
    assert!(
        tree(&staging).is_empty(),
        "staging left: {:?}",
        tree(&staging).keys()
    );
}

/// One random change below `src`: a write, a rewrite, a rename or a delete.
fn churn_once(src: &Path, rng: &mut Rng, round: u32) {
    let folder = src.join(format!("d{}", rng.below(7)));
    std::fs::create_dir_all(&folder).unwrap();
    let name = folder.join(format!("f{}", rng.below(150)));
    match rng.below(4) {
        0 | 1 => std::fs::write(&name, format!("v{round} {}", rng.below(1 << 30))).unwrap(),
        2 => {
            let to = folder.join(format!("f{}", rng.below(150)));
            let _ = std::fs::rename(&name, to);
        }
        _ => {
            let _ = std::fs::remove_file(&name);
        }
    }
}

/// A small deterministic random source (xorshift), so a failing run repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_full_replica_disk_shows_in_status_as_an_error_and_the_service_recovers() {
    let mut s = Served::new("sync_interval = \"00:00:05\"");
    let backup = s.dir.path().join("stores").join(B).join("backup");
    let test = "a_full_replica_disk_shows_in_status_as_an_error_and_the_service_recovers";
    let Some(mount) = crate::faults::Mount::tmpfs(&backup, "1m", test) else {
        return;
    };
    let big = "x".repeat(100 * 1024);
    for i in 0..20 {
        s.put(&format!("conf/{i:02}.bin"), &big);
    }
    s.start();
    let status = || {
        let out = poolsync_in(s.dir.path())
            .arg("--deployment")
            .arg(&s.file)
            .args([
                "--json",
                "-c",
                &format!("get_backup_service_status(\"{A}\").backup_modules[0]"),
            ])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    wait_for("ErrorState in status", Duration::from_secs(20), || {
        let m = status();
        m["export_status"] == "ErrorState"
            && m["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("no space left on"))
    });
    mount.remount("size=64m");
    s.converges("the replica once space is freed", Duration::from_secs(30));
    wait_for("FinalState in status", Duration::from_secs(10), || {
        status()["export_status"] == "FinalState"
    });
    let log = s.stop();
    assert!(log.contains("cycle failed"), "{log}");
}

#[test]
fn the_service_keeps_a_pair_in_sync_and_stops_cleanly() {
    let mut s = Served::new("sync_interval = \"00:00:05\"");
    for i in 0..12 {
        s.put(&format!("a{i:03}"), &format!("a {i}"));
    }
    s.start();
    s.converges("the first cycle", Duration::from_secs(30));
    // Users change data; the service picks it up without any manual sync.
    for i in 0..5 {
        s.put(&format!("new{i:03}"), &format!("new {i}"));
    }
    std::fs::remove_file(s.source().join("a000")).unwrap();
    s.converges("the churn to reach the replica", Duration::from_secs(30));
    // Let the cycle that shipped it finish and log before stopping.
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    let log = s.stop();
    // Between cycles it sleeps out the 5 s interval unless the stop cuts it short.
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "the service took {:?} to stop",
        signalled.elapsed()
    );
    let (full, changes) = cycles(&log);
    assert!(full.len() + changes.len() >= 2, "{log}");
    assert!(log.contains("backup service stopped"), "{log}");
}

#[test]
fn a_full_scan_that_finds_the_pair_busy_runs_again_when_it_is_free() {
    // Ten minutes between full scans, and the pair locked by another sync
    // when the service starts: its first scan is skipped, and must not wait
    // an interval for the next try.
    let mut s = Served::new(LONG);
    s.put("waiting.xml", "written before the service started");
    let locks = s.dir.path().join("stores").join(A).join(".poolsync/locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = locks.join(format!("pair-{A}-{B}.lock"));
    std::fs::write(&lock, "a manual sync").unwrap();
    let held = std::fs::File::open(&lock).unwrap();
    held.try_lock().unwrap();
    s.start();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !s.replica().join("waiting.xml").exists(),
        "synced under another's lock"
    );
    drop(held);
    s.converges(
        "the first scan, once the pair is free",
        Duration::from_secs(5),
    );
    let log = s.stop();
    assert!(
        log_events(&log)
            .iter()
            .any(|v| message(v) == "cycle skipped: another sync of this pair is running"),
        "{log}"
    );
}

#[test]
fn the_service_skips_a_busy_pair_and_keeps_serving_the_others() {
    // Two pairs, one sync at a time, and the second pair's lock held by
    // someone else (a long manual sync): the first pair must keep its cycles.
    let mut s = Served::new("sync_interval = \"00:00:05\"\nmax_concurrent_calls = 1");
    let (c, d) = ("c.test.com", "d.test.com");
    let mut text = std::fs::read_to_string(&s.file).unwrap();
    for (pool, partner) in [(c, d), (d, c)] {
        text = text.replace(
            "[backup_service]",
            &format!("[[pool]]\nfqdn = \"{pool}\"\nsite = \"S1\"\nbackup_pool = \"{partner}\"\n[backup_service]"),
        );
        std::fs::create_dir_all(s.dir.path().join("stores").join(pool).join("data").join(PF))
            .unwrap();
    }
    std::fs::write(&s.file, text).unwrap();
    for i in 0..3 {
        s.put(&format!("a{i}"), "a");
    }
    let locks = s.dir.path().join("stores").join(c).join(".poolsync/locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = locks.join(format!("pair-{c}-{d}.lock"));
    std::fs::write(&lock, "a manual sync").unwrap();
    let held = std::fs::File::open(&lock).unwrap();
    held.try_lock().unwrap();
    s.start();
    // Two cycles of a <-> b take at least one interval; give it three.
    std::thread::sleep(Duration::from_secs(12));
    drop(held);
    std::thread::sleep(Duration::from_secs(7));
    let log = s.stop();
    let events = log_events(&log);
    let count = |message: &str, pool: &str| {
        events
            .iter()
            .filter(|v| v["fields"]["message"] == message && v["fields"]["pool"] == pool)
            .count()
    };
    let ab = count("cycle", A) + count("cycle", B);
    assert!(
        ab >= 3,
        "a <-> b ran {ab} cycles while c <-> d was busy:\n{log}"
    );
    let skipped: Vec<_> = events
        .iter()
        .filter(|v| message(v) == "cycle skipped: another sync of this pair is running")
        .collect();
    assert!(!skipped.is_empty(), "{log}");
    assert!(
        skipped
            .iter()
            .all(|v| v["fields"]["holder"] == "a manual sync"
                && (v["fields"]["pool"] == c || v["fields"]["pool"] == d)),
        "{log}"
    );
    // Once the lock is free, the busy pair syncs at its next cycle.
    assert!(count("cycle", c) + count("cycle", d) >= 1, "{log}");
}

#[test]
fn a_failed_service_cycle_logs_its_warnings() {
    // A link in the source (a warning) and a file where the replica's folder
    // goes (fatal): the log must carry both, not only the failure.
    let mut s = Served::new("sync_interval = \"00:00:05\"");
    s.put("a0", "a");
    std::os::unix::fs::symlink("/etc/hostname", s.source().join("link")).unwrap();
    let backup = s.replica();
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
    std::fs::write(&backup, "in the way").unwrap();
    s.start();
    std::thread::sleep(Duration::from_secs(3));
    let log = s.stop();
    let events = log_events(&log);
    assert!(events.iter().any(|v| message(v) == "cycle failed"), "{log}");
    assert!(
        events.iter().any(|v| message(v) == "cycle warning"
            && v["fields"]["warning"]
                .as_str()
                .is_some_and(|w| w.contains("link"))),
        "{log}"
    );
}
