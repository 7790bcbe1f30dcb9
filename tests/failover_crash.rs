//! Kills a real `poolsync` (SIGKILL) at many points of a failover, a failback
//! and a restore, and checks that every item is at its old or its new
//! content, the pair's state is one it can be in, and rerunning the same call
//! completes it with nothing left staged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{poolsync_in, tree};
use crate::sync_props::{A, B, pair_deployment};

pub(crate) const MODULE: &str = "UserServices.PresenceFocus";
pub(crate) type Tree = BTreeMap<String, Vec<u8>>;

/// The pool failed over and back: not the CMS master (`A`), which a
/// failover refuses while it holds the active CMS.
pub(crate) const P: &str = B;

pub(crate) fn data(dir: &Path) -> PathBuf {
    dir.join("stores").join(P).join("data").join(MODULE)
}

pub(crate) fn active(dir: &Path) -> PathBuf {
    dir.join("stores")
        .join(A)
        .join("backup")
        .join(P)
        .join(MODULE)
}

/// Writes (round 0) or rewrites a third of (later rounds) 1,200 items below `at`.
pub(crate) fn write_items(at: &Path, round: u32) {
    for i in 0..1200u32 {
        if round == 0 || i % 3 == round % 3 {
            let f = at.join(format!("d{:02}/item-{i}", i % 30));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(
                f,
                format!("round {round} item {i} ").repeat(30 + i as usize % 40),
            )
            .unwrap();
        }
    }
}

/// The binary on the pair deployment in `dir`, through the tests' one
/// cleared environment (`common::poolsync_in`).
pub(crate) fn poolsync(dir: &Path, code: &str) -> Command {
    let mut c = poolsync_in(dir);
    c.arg("--deployment")
        .arg(dir.join("deployment.toml"))
        .args(["-c", code])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub(crate) fn run_ok(dir: &Path, code: &str) -> String {
    let out = poolsync(dir, code).output().unwrap();
    assert!(
        out.status.success(),
        "{code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts `code`, kills it after `delay`; whether it was still running.
pub(crate) fn kill_after(dir: &Path, code: &str, delay: Duration) -> bool {
    let mut child = poolsync(dir, code).spawn().unwrap();
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

pub(crate) fn state(dir: &Path) -> String {
    run_ok(dir, &format!("get_pool(\"{P}\").failover.state"))
}

/// Every item of `now` is at its content in `old` or in `new`.
pub(crate) fn old_or_new(now: &Tree, old: &Tree, new: &Tree, what: &str) {
    for (path, content) in now {
        assert!(
            old.get(path) == Some(content) || new.get(path) == Some(content),
            "{what}: {path} is torn or foreign"
        );
    }
}

/// The phase of `P`'s data as the newest record in the two stores says, read
/// from the files (fast enough to catch a phase as it begins).
pub(crate) fn record_phase(dir: &Path) -> Option<String> {
    let newest = [A, B]
        .iter()
        .filter_map(|pool| {
            let file = dir
                .join("stores")
                .join(pool)
                .join(format!(".poolsync/meta/failover/pair-{A}-{B}"));
            let text = std::fs::read_to_string(file).ok()?;
            serde_json::from_str::<serde_json::Value>(&text).ok()
        })
        .max_by_key(|r| r["epoch"].as_u64())?;
    newest["pools"]
        .as_array()?
        .iter()
        .find(|p| p["pool"] == P)
        .and_then(|p| p["phase"].as_str().map(str::to_string))
}

/// Starts `code` and kills it (SIGKILL) as soon as the record says the
/// phase is `phase`; the phase it was killed in, or `None` if it ended first.
pub(crate) fn kill_in(dir: &Path, code: &str, phase: &str) -> Option<String> {
    let mut child = poolsync(dir, code).spawn().unwrap();
    let started = Instant::now();
    let landed = loop {
        if child.try_wait().unwrap().is_some() {
            break None;
        }
        if record_phase(dir).as_deref() == Some(phase) {
            let _ = child.kill();
            break Some(phase.to_string());
        }
        assert!(started.elapsed() < Duration::from_mins(1), "{code} hangs");
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = child.wait();
    landed
}

/// Holds the writers' fence of `P` in the store of `at`, as a writer would:
/// a switch there waits until it is dropped.
pub(crate) fn hold_fence(dir: &Path, at: &str) -> std::fs::File {
    crate::common::hold_writers_fence(&dir.join("stores").join(at), P)
}

pub(crate) fn nothing_staged(dir: &Path, what: &str) {
    for pool in [A, B] {
        let left = tree(&dir.join("stores").join(pool).join(".poolsync/staging"));
        assert!(
            left.is_empty(),
            "{what}: {pool} has temporaries left: {:?}",
            left.keys()
        );
    }
}

/// Round `round` of the failover crash test: changes the final sync must
/// ship, a failover killed after `delay`, the checks, and its rerun; whether
/// the kill landed mid-operation.
fn killed_failover(dir: &Path, round: u32, delay: Duration) -> bool {
    let old = tree(&active(dir));
    write_items(&data(dir), round);
    let new = tree(&data(dir));
    let landed = kill_after(dir, &format!("invoke_pool_failover(\"{P}\")"), delay);
    let s = state(dir);
    assert!(
        ["Home", "SwitchingOver", "FailedOver"].contains(&s.as_str()),
        "round {round}: {s}"
    );
    old_or_new(
        &tree(&active(dir)),
        &old,
        &new,
        "the replica after a killed failover",
    );
    if s != "FailedOver" {
        run_ok(dir, &format!("invoke_pool_failover(\"{P}\")"));
    }
    assert_eq!(state(dir), "FailedOver");
    assert!(
        tree(&active(dir)) == new,
        "round {round}: a planned failover lost changes"
    );
    landed
}

/// The failback of that round: the active copy written while failed over, a
/// failback killed after `delay`, the checks, and its rerun; whether the kill
/// landed mid-operation.
fn killed_failback(dir: &Path, round: u32, delay: Duration) -> bool {
    let home = tree(&data(dir));
    write_items(&active(dir), round + 10);
    let served = tree(&active(dir));
    let landed = kill_after(dir, &format!("invoke_pool_failback(\"{P}\")"), delay);
    let s = state(dir);
    assert!(
        ["FailedOver", "FailingBack", "SwitchingBack", "Home"].contains(&s.as_str()),
        "round {round}: {s}"
    );
    old_or_new(
        &tree(&data(dir)),
        &home,
        &served,
        "home after a killed failback",
    );
    if s != "Home" {
        run_ok(dir, &format!("invoke_pool_failback(\"{P}\")"));
    }
    assert_eq!(state(dir), "Home");
    assert!(
        tree(&data(dir)) == served,
        "round {round}: the failback lost changes"
    );
    assert!(tree(&active(dir)) == served);
    assert!(
        !dir.join("stores").join(P).join("quarantine").exists(),
        "round {round}: nothing diverged, nothing may be quarantined"
    );
    landed
}

#[test]
fn kill_9_during_failover_and_failback_leaves_old_or_new_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), 40);
    write_items(&data(dir.path()), 0);
    run_ok(dir.path(), &format!("invoke_backup_service_sync(\"{P}\")"));
    let mut landed = 0;
    for (round, delay) in [10u64, 30, 60, 100, 150, 220, 320].into_iter().enumerate() {
        let round = round as u32 + 1;
        let delay = Duration::from_millis(delay);
        landed += u32::from(killed_failover(dir.path(), round, delay));
        landed += u32::from(killed_failback(dir.path(), round, delay));
        nothing_staged(dir.path(), &format!("round {round}"));
        let copied = run_ok(
            dir.path(),
            &format!("invoke_backup_service_sync(\"{P}\").items_copied"),
        );
        assert_eq!(
            copied, "0",
            "round {round}: the pair is in sync after the failback"
        );
    }
    assert!(landed >= 4, "only {landed} kills landed mid-operation");
}

#[test]
fn kill_9_during_a_restore_leaves_whole_items_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), 40);
    write_items(&data(dir.path()), 0);
    run_ok(dir.path(), &format!("invoke_backup_service_sync(\"{P}\")"));
    let replica = tree(&active(dir.path()));
    let mut landed = 0;
    for delay in [10u64, 40, 80, 140, 220] {
        std::fs::remove_dir_all(data(dir.path())).unwrap();
        std::fs::create_dir_all(data(dir.path())).unwrap();
        let code = format!("restore_pool_data(\"{P}\")");
        landed += u32::from(kill_after(dir.path(), &code, Duration::from_millis(delay)));
        old_or_new(
            &tree(&data(dir.path())),
            &Tree::new(),
            &replica,
            "after a killed restore",
        );
        run_ok(dir.path(), &code);
        assert!(
            tree(&data(dir.path())) == replica,
            "the rerun did not complete the restore"
        );
        nothing_staged(dir.path(), "restore");
        let deleted = run_ok(
            dir.path(),
            &format!("invoke_backup_service_sync(\"{P}\").items_deleted"),
        );
        assert_eq!(deleted, "0");
    }
    assert!(landed >= 2, "only {landed} kills landed mid-restore");
}

#[test]
fn kill_9_in_each_intermediate_phase_leaves_that_phase_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    pair_deployment(dir, 40);
    write_items(&data(dir), 0);
    run_ok(dir, &format!("invoke_backup_service_sync(\"{P}\")"));
    let failover = format!("invoke_pool_failover(\"{P}\")");
    let failback = format!("invoke_pool_failback(\"{P}\")");

    // SwitchingOver: a writer at home holds the switch there while it is killed.
    let old = tree(&active(dir));
    write_items(&data(dir), 1);
    let new = tree(&data(dir));
    let fence = hold_fence(dir, P);
    assert_eq!(
        kill_in(dir, &failover, "SwitchingOver").as_deref(),
        Some("SwitchingOver")
    );
    drop(fence);
    assert_eq!(state(dir), "SwitchingOver");
    old_or_new(&tree(&active(dir)), &old, &new, "killed in SwitchingOver");
    run_ok(dir, &failover);
    assert_eq!(state(dir), "FailedOver");
    assert!(tree(&active(dir)) == new, "the rerun shipped every change");

    // FailingBack: killed as soon as the record says so.
    write_items(&active(dir), 11);
    let home = tree(&data(dir));
    let served = tree(&active(dir));
    assert_eq!(
        kill_in(dir, &failback, "FailingBack").as_deref(),
        Some("FailingBack")
    );
    assert_eq!(state(dir), "FailingBack");
    old_or_new(&tree(&data(dir)), &home, &served, "killed in FailingBack");

    // SwitchingBack: the rerun is held there by a writer at the active copy.
    let fence = hold_fence(dir, A);
    assert_eq!(
        kill_in(dir, &failback, "SwitchingBack").as_deref(),
        Some("SwitchingBack")
    );
    drop(fence);
    assert_eq!(state(dir), "SwitchingBack");
    old_or_new(&tree(&data(dir)), &home, &served, "killed in SwitchingBack");
    run_ok(dir, &failback);
    assert_eq!(state(dir), "Home");
    assert!(tree(&data(dir)) == served, "the failback lost changes");
    assert!(tree(&active(dir)) == served);
    nothing_staged(dir, "after the phases");
    let copied = run_ok(
        dir,
        &format!("invoke_backup_service_sync(\"{P}\").items_copied"),
    );
    assert_eq!(copied, "0", "the pair is in sync after the failback");
}
