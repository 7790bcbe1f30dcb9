//! `poolsync service` with its watcher: each change reaches the replica
//! within seconds, a flood or a lost watch falls back to a full scan, an idle
//! service walks nothing between intervals, a kill -9 loses nothing, and the
//! service under faults (a second service, an untrusted file, its threads).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PairToml, poolsync_in, tree};

const A: &str = "a.test.com";
const B: &str = "b.test.com";
const PF: &str = "UserServices.PresenceFocus";

/// A two-pool deployment in a temporary folder, and its service.
pub(crate) struct Served {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    child: Option<Child>,
}

/// The JSON log lines of a service.
pub(crate) fn log_events(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

/// The message of a log event.
fn message(v: &serde_json::Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or_default()
}

/// Waits up to `limit` for `ok`, failing with `what`.
pub(crate) fn wait_for(what: &str, limit: Duration, ok: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

impl Served {
    /// The pair a.test.com <-> b.test.com with `settings` in its
    /// `[backup_service]`, not started.
    pub(crate) fn new(settings: &str) -> Served {
        Served::with(PairToml::new(A, B).backup_service(settings))
    }

    /// The deployment `toml`, not started.
    pub(crate) fn with(toml: PairToml) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let file = toml.write(dir.path());
        Served {
            dir,
            file,
            child: None,
        }
    }

    /// The source folder of `PresenceFocus` at a.test.com.
    pub(crate) fn source(&self) -> PathBuf {
        self.dir.path().join("stores").join(A).join("data").join(PF)
    }

    /// Its replica at b.test.com.
    pub(crate) fn replica(&self) -> PathBuf {
        self.dir
            .path()
            .join("stores")
            .join(B)
            .join("backup")
            .join(A)
            .join(PF)
    }

    /// Writes `text` to `rel` below the source folder.
    pub(crate) fn put(&self, rel: &str, text: &str) {
        let p = self.source().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The command that runs the service, logging JSON.
    pub(crate) fn command(&self) -> std::process::Command {
        let mut c = poolsync_in(self.dir.path());
        c.arg("--deployment")
            .arg(&self.file)
            .args(["service", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Starts the service with `env` set.
    pub(crate) fn start_with(&mut self, env: &[(&str, &str)]) {
        let mut c = self.command();
        for (k, v) in env {
            c.env(k, v);
        }
        self.child = Some(c.spawn().unwrap());
    }

    pub(crate) fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts the service on a source of one item and waits until its first
    /// scan has shipped it.
    pub(crate) fn start_seeded(&mut self) {
        self.put("seed.xml", "seed");
        self.start();
        self.converges("the first scan", Duration::from_secs(20));
    }

    /// The service's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// Waits until the replica equals the source, up to `limit`.
    pub(crate) fn converges(&self, what: &str, limit: Duration) -> Duration {
        wait_for(what, limit, || {
            tree(&self.replica()) == tree(&self.source())
        })
    }

    /// Stops the service with SIGTERM; returns its log. It must exit 0.
    pub(crate) fn stop(&mut self) -> String {
        let child = self.child.take().expect("started");
        // SAFETY: a signal to the child we started.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{log}");
        log
    }

    /// Kills the service with SIGKILL.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("started");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `cycle` events of a log, split into full scans and syncs of changes.
fn cycles(log: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    log_events(log)
        .into_iter()
        .filter(|v| message(v) == "cycle")
        .partition(|v| v["fields"]["scan"] == "full")
}

/// Ten minutes between full scans: anything that reaches the replica sooner
/// was shipped by the watcher.
const LONG: &str = "sync_interval = \"00:10:00\"";

#[test]
fn each_kind_of_change_reaches_the_replica_within_seconds() {
    let mut s = Served::new(LONG);
    s.put("keep.xml", "kept");
    s.start();
    s.converges("the first full scan", Duration::from_secs(20));
    let src = s.source();
    let limit = Duration::from_secs(5);
    s.put("new.xml", "written");
    s.converges("a new file", limit);
    s.put("new.xml", "rewritten, longer");
    s.converges("a rewritten file", limit);
    std::fs::rename(src.join("new.xml"), src.join("renamed.xml")).unwrap();
    s.converges("a renamed file", limit);
    std::fs::remove_file(src.join("renamed.xml")).unwrap();
    s.converges("a deleted file", limit);
    std::fs::create_dir_all(src.join("folder/deeper")).unwrap();
    for i in 0..5 {
        s.put(&format!("folder/deeper/f{i}"), &format!("file {i}"));
    }
    s.converges("a folder created with files in it", limit);
    std::fs::rename(src.join("folder"), src.join("moved")).unwrap();
    s.converges("a renamed folder", limit);
    std::fs::remove_dir_all(src.join("moved")).unwrap();
    s.converges("a removed folder", limit);
    let log = s.stop();
    let (full, changes) = cycles(&log);
    assert_eq!(full.len(), 1, "only the start's full scan:\n{log}");
    assert!(changes.len() >= 7, "{log}");
    assert_eq!(tree(&s.replica()).len(), 1, "only keep.xml is left");
}

#[test]
fn a_burst_of_writes_to_one_file_is_shipped_once_after_it_settles() {
    let mut s = Served::new(LONG);
    s.start_seeded();
    std::thread::sleep(Duration::from_millis(500));
    // Fifty appends 20 ms apart: a writer that takes a second.
    let path = s.source().join("log.txt");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!("line {i}\n"));
        std::fs::write(&path, &text).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    s.converges("the settled file", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let log = s.stop();
    let (_, changes) = cycles(&log);
    let copied: u64 = changes
        .iter()
        .map(|v| v["fields"]["copied"].as_u64().unwrap())
        .sum();
    assert_eq!(copied, 1, "one copy of the file, after it settled:\n{log}");
}

#[test]
fn an_idle_service_walks_nothing_between_intervals_and_a_change_looks_at_its_paths_only() {
    let mut s = Served::new(LONG);
    for i in 0..300 {
        s.put(&format!("u{}/doc{i}.xml", i % 10), "x");
    }
    s.start_with(&[("POOLSYNC_LOG", "debug")]);
    s.converges("the first full scan", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    s.put("u3/doc3.xml", "changed");
    s.converges("the change", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    let log = s.stop();
    let events = log_events(&log);
    let (full, changes) = cycles(&log);
    assert_eq!(full.len(), 1, "idle: no full scan after the first:\n{log}");
    assert_eq!(changes.len(), 1, "{log}");
    // What each direction's plan listed: the whole source once (the 300
    // items of PresenceFocus at a), then the one changed item.
    let listed: Vec<u64> = events
        .iter()
        .filter(|v| {
            message(v) == "planned"
                && v["fields"]["from"] == A
                && v["fields"]["module"] == "PresenceFocus"
        })
        .map(|v| v["fields"]["listed"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [300, 1], "{log}");
}

#[test]
fn a_flood_past_the_watch_queue_falls_back_to_a_full_scan_and_converges() {
    let mut s = Served::new(LONG);
    // The folder exists and is watched before the flood, so every file in it
    // is an event of its own (in a new folder, most would be found by
    // listing the folder).
    s.put("flood/seed.xml", "seed");
    s.start_with(&[("POOLSYNC_WATCH_QUEUE", "5")]);
    s.converges("the first scan", Duration::from_secs(20));
    for i in 0..200 {
        s.put(&format!("flood/{i:03}"), "f");
    }
    s.converges("the flood", Duration::from_secs(10));
    let log = s.stop();
    // The rescan may still be running its other direction when the service
    // is stopped: an interrupted cycle is logged with its reason too.
    let reasons: Vec<String> = log_events(&log)
        .into_iter()
        .filter(|v| v["fields"]["scan"] == "full")
        .filter_map(|v| v["fields"]["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("more than 5 changed paths waited at once")),
        "{log}"
    );
}

/// Runs `code` against the served deployment in a process of its own, as an
/// administrator would beside the service; it must succeed.
fn admin(s: &Served, code: &str) {
    crate::common::Run::of(poolsync_in(s.dir.path()))
        .arg("--deployment")
        .arg(&s.file)
        .args(["-c", code])
        .run();
}

#[test]
fn a_failover_and_failback_by_another_process_are_followed_at_once() {
    // Ten minutes between full scans: what happens sooner, the service did
    // because it saw the pair's failover record change.
    let mut s = Served::new(LONG);
    s.start_seeded();
    // The first failover of these stores, written once (a disaster
    // failover): its record is the first file in a new folder, which the
    // service must notice too.
    admin(
        &s,
        &format!("invoke_pool_failover(\"{B}\", #{{disaster_mode: true}})"),
    );
    std::thread::sleep(Duration::from_secs(2));
    // A's own data changes while the pair is failed over: nothing is synced.
    s.put("during.xml", "written while failed over");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !s.replica().join("during.xml").exists(),
        "synced while failed over"
    );
    admin(&s, &format!("invoke_pool_failback(\"{B}\")"));
    s.converges("the change made while failed over", Duration::from_secs(10));
    // Once the service has planned the pair again, its folders are watched.
    std::thread::sleep(Duration::from_secs(2));
    s.put("after.xml", "written after the failback");
    s.converges("the change after the failback", Duration::from_secs(5));
    let log = s.stop();
    let reasons: Vec<&str> = log_events(&log)
        .iter()
        .filter_map(|v| v["fields"]["reason"].as_str())
        .map(|r| {
            if r.contains("failover record changed") {
                "record"
            } else if r.contains("was refused") {
                "refused"
            } else {
                "other"
            }
        })
        .collect();
    assert!(reasons.contains(&"record"), "{log}");
    assert!(
        !reasons.contains(&"refused"),
        "the failover was noticed by its record, before a change was refused: {log}"
    );
    let (_, changes) = cycles(&log);
    assert!(
        changes
            .iter()
            .any(|v| v["fields"]["copied"].as_u64() >= Some(1)),
        "a sync of changes shipped the change after the failback: {log}"
    );
}

#[test]
fn a_replaced_watched_folder_is_scanned_and_watched_again() {
    let mut s = Served::new(LONG);
    s.put("old.xml", "old");
    s.start();
    s.converges("the first full scan", Duration::from_secs(20));
    // The folder swapped for a new one, as a restore from elsewhere would.
    let src = s.source();
    let fresh = src.with_file_name("incoming");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("new.xml"), "new").unwrap();
    std::fs::write(fresh.join("old.xml"), "old").unwrap();
    std::fs::rename(&src, src.with_file_name("retired")).unwrap();
    std::fs::rename(&fresh, &src).unwrap();
    s.converges("the swapped folder", Duration::from_secs(10));
    // And the new folder is watched: a change in it arrives too.
    s.put("after.xml", "after");
    s.converges("a change in the new folder", Duration::from_secs(10));
    let log = s.stop();
    assert!(log.contains("was removed or replaced"), "{log}");
}

#[test]
fn with_watch_changes_off_only_the_interval_ships_changes() {
    let mut s = Served::new(&format!("{LONG}\nwatch_changes = false"));
    s.start_seeded();
    s.put("late.xml", "late");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!s.replica().join("late.xml").exists());
    let log = s.stop();
    assert!(!log.contains("watching for changes"), "{log}");
}

#[test]
fn stores_that_are_not_local_folders_are_scanned_at_the_interval_and_the_log_says_so() {
    let mut s = Served::with(
        PairToml::new(A, B)
            .stores(None, Some("memory://b"))
            .backup_service(LONG),
    );
    s.start();
    std::thread::sleep(Duration::from_secs(2));
    let log = s.stop();
    let watching: Vec<_> = log_events(&log)
        .into_iter()
        .filter(|v| message(v) == "watching for changes")
        .collect();
    assert_eq!(watching.len(), 1, "{log}");
    let unwatched = watching[0]["fields"]["unwatched"].as_str().unwrap();
    assert!(
        unwatched.contains(&format!(
            "from {B}: memory://b is not a local folder, so it is scanned every sync_interval"
        )),
        "{unwatched}"
    );
}

#[test]
fn status_shows_the_replication_lag_the_live_recovery_point() {
    // No service: a change waits, and its age is the lag.
    let s = Served::new(LONG);
    s.put("a.xml", "a");
    let sync = |code: &str| {
        let out = poolsync_in(s.dir.path())
            .arg("--deployment")
            .arg(&s.file)
            .args(["--json", "-c", code])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let status = format!("get_backup_service_status(\"{A}\").backup_modules[0]");
    sync(&format!("invoke_backup_service_sync(\"{A}\")"));
    let m = sync(&status);
    assert_eq!(m["export_lag_ms"], 0, "in sync: {m}");
    assert_eq!(m["pending_items"], 0, "{m}");
    s.put("b.xml", "b");
    std::thread::sleep(Duration::from_millis(1500));
    let m = sync(&status);
    let lag = m["export_lag_ms"].as_u64().unwrap();
    assert!((1400..10_000).contains(&lag), "a change 1.5 s old: {m}");
    assert_eq!(m["pending_items"], 1, "{m}");
    // A deletion is dated when the replica was last complete (the sync above).
    std::fs::remove_file(s.source().join("a.xml")).unwrap();
    let m = sync(&status);
    assert!(m["export_lag_ms"].as_u64().unwrap() >= lag, "{m}");
    // The partner gone: what is pending cannot be told, and is not 0.
    let b = s.dir.path().join("stores").join(B);
    std::fs::rename(&b, b.with_file_name("away")).unwrap();
    let m = sync(&status);
    assert!(m["pending_items"].is_null(), "{m}");
    assert!(m["export_lag_ms"].is_null(), "{m}");
    let text = poolsync_in(s.dir.path())
        .arg("--deployment")
        .arg(&s.file)
        .args(["-c", &format!("get_backup_service_status(\"{A}\")")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with(PF))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("ErrorState") && row.contains("unknown"),
        "{row}"
    );
}

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
