//! The service's watcher: what it ships, how fast, and when it falls back
//! to a full scan.

use super::*;

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
