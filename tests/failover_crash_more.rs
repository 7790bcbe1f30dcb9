//! More kill points: a disaster failover, a failback that must quarantine
//! what the pool changed after its last sync, a restore that overwrites, and
//! the CMS move, planned and in disaster mode. After each kill every item is
//! at its old or its new content, the rerun of the same call completes, and
//! nothing the pool wrote is lost: it is in its new place or in quarantine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::tree;
use crate::failover_crash::{
    MODULE, P, Tree, active, data, kill_after, kill_in, nothing_staged, old_or_new, run_ok, state,
    write_items,
};
use crate::sync_props::{A, pair_deployment};

const CMS: &str = "CentralMgmt.CMSMaster";

/// A copy of the prepared pair in `template`, for one kill.
fn copy_of(template: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", template.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// The pair with 1,200 items at `P`, synced.
fn synced_pair() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), 40);
    write_items(&data(dir.path()), 0);
    run_ok(dir.path(), &format!("invoke_backup_service_sync(\"{P}\")"));
    dir
}

/// What the pool changes after its last sync: a third of its items
/// rewritten, one added, one deleted.
fn diverge(dir: &Path) -> (Tree, String) {
    write_items(&data(dir), 7);
    std::fs::write(data(dir).join("d00/added-after-sync"), "only at home").unwrap();
    let deleted = "d01/item-1".to_string();
    std::fs::remove_file(data(dir).join(&deleted)).unwrap();
    (tree(&data(dir)), deleted)
}

fn quarantined(dir: &Path) -> Tree {
    tree(&dir.join("stores").join(P).join("quarantine"))
}

#[test]
fn kill_9_during_a_disaster_failover_leaves_the_replica_whole_and_a_rerun_promotes_it() {
    let code = format!("invoke_pool_failover(\"{P}\", #{{disaster_mode: true}})");
    let mut landed = 0;
    for delay in [0u64, 5, 10, 15, 20, 30, 45, 70] {
        // A pair of its own each time: a copied store has new inodes, and the
        // loss is told from metadata (a disaster failover reads no content).
        let pair = synced_pair();
        let dir = pair.path();
        diverge(dir);
        let replica = tree(&active(dir));
        landed += u32::from(kill_after(dir, &code, Duration::from_millis(delay)));
        let s = state(dir);
        assert!(
            ["Home", "FailedOver"].contains(&s.as_str()),
            "{delay} ms: {s}"
        );
        assert!(
            tree(&active(dir)) == replica,
            "{delay} ms: the replica changed"
        );
        if s == "Home" {
            run_ok(dir, &code);
        }
        let lost = run_ok(
            dir,
            &format!(
                "let f = get_pool(\"{P}\").failover; `${{f.state}} ${{f.last_failover_items_lost}}`"
            ),
        );
        // 399 rewritten, one added, one deleted after the last sync.
        assert_eq!(lost, "FailedOver 401", "{delay} ms");
        nothing_staged(dir, &format!("disaster failover killed at {delay} ms"));
    }
    assert!(landed >= 2, "only {landed} kills landed mid-failover");
}

#[test]
fn kill_9_during_a_failback_that_quarantines_loses_nothing_the_pool_wrote() {
    let template = synced_pair();
    let synced = tree(&active(template.path()));
    let (home, deleted) = diverge(template.path());
    let disaster = format!("invoke_pool_failover(\"{P}\", #{{disaster_mode: true}})");
    run_ok(template.path(), &disaster);
    write_items(&active(template.path()), 20);
    let served = tree(&active(template.path()));
    let code = format!("invoke_pool_failback(\"{P}\")");
    let mut phases = Vec::new();
    let kills: Vec<Option<u64>> =
        [None, Some(20), Some(60), Some(120), Some(200), Some(300)].into();
    for kill in kills {
        let copy = copy_of(template.path());
        let dir = copy.path();
        match kill {
            // Killed as soon as the failback begins: in the quarantine step.
            None => {
                kill_in(dir, &code, "FailingBack");
            }
            Some(ms) => {
                kill_after(dir, &code, Duration::from_millis(ms));
            }
        }
        let s = state(dir);
        phases.push(s.clone());
        let what = format!("failback killed at {kill:?} ms ({s})");
        old_or_new(&tree(&data(dir)), &home, &served, &what);
        every_home_version_kept(dir, &home, &[&served, &synced], &what);
        if s != "Home" {
            run_ok(dir, &code);
        }
        assert!(
            tree(&data(dir)) == served,
            "{what}: home is not the active copy"
        );
        every_home_version_kept(dir, &home, &[&served, &synced], &what);
        let named = run_ok(
            dir,
            &format!("get_pool(\"{P}\").failover.quarantines.map(|q| q.deleted_at_home_paths)"),
        );
        assert!(
            named.contains(&format!("{MODULE}/{deleted}")),
            "{what}: the deletion is not named: {named}"
        );
        nothing_staged(dir, &what);
    }
    assert!(
        phases.iter().any(|p| p == "FailingBack"),
        "no kill landed in FailingBack: {phases:?}"
    );
}

/// Every version of an item the pool held is kept: at home, in one of
/// `elsewhere` (the active copy, or what its last sync shipped), or in
/// quarantine with the content it had. Nothing the pool wrote is lost.
fn every_home_version_kept(dir: &Path, home: &Tree, elsewhere: &[&Tree], what: &str) {
    let aside = quarantined(dir);
    let now = tree(&data(dir));
    for (path, content) in home {
        let found = |t: &Tree| t.get(path) == Some(content);
        if found(&now) || elsewhere.iter().any(|t| found(t)) {
            continue;
        }
        let kept = aside
            .iter()
            .any(|(q, c)| q.ends_with(&format!("{MODULE}/{path}")) && c == content);
        assert!(kept, "{what}: the pool's {path} is lost");
    }
}

#[test]
fn kill_9_during_a_restore_that_overwrites_keeps_every_version() {
    let template = synced_pair();
    let replica = tree(&active(template.path()));
    write_items(&data(template.path()), 5);
    for i in (0..1200).step_by(4) {
        let _ =
            std::fs::remove_file(data(template.path()).join(format!("d{:02}/item-{i}", i % 30)));
    }
    let home = tree(&data(template.path()));
    let code = format!("restore_pool_data(\"{P}\", #{{overwrite: true}})");
    let mut landed = 0;
    for delay in [10u64, 40, 80, 140, 220] {
        let copy = copy_of(template.path());
        let dir = copy.path();
        landed += u32::from(kill_after(dir, &code, Duration::from_millis(delay)));
        let what = format!("restore killed at {delay} ms");
        old_or_new(&tree(&data(dir)), &home, &replica, &what);
        every_home_version_kept(dir, &home, &[&replica], &what);
        run_ok(dir, &code);
        assert!(
            tree(&data(dir)) == replica,
            "{what}: the rerun did not complete"
        );
        every_home_version_kept(dir, &home, &[&replica], &what);
        nothing_staged(dir, &what);
        let deleted = run_ok(
            dir,
            &format!("invoke_backup_service_sync(\"{P}\").items_deleted"),
        );
        assert_eq!(deleted, "0", "{what}");
    }
    assert!(landed >= 2, "only {landed} kills landed mid-restore");
}

fn cms_home(dir: &Path) -> PathBuf {
    dir.join("stores").join(A).join("data").join(CMS)
}

fn cms_replica(dir: &Path) -> PathBuf {
    dir.join("stores").join(P).join("backup").join(A).join(CMS)
}

fn cms_at(dir: &Path) -> String {
    run_ok(dir, &format!("get_pool(\"{A}\").failover.cms_active_at"))
}

/// The pair with 1,200 CMS items at the master `A`, synced.
fn synced_cms() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), 40);
    write_items(&cms_home(dir.path()), 0);
    run_ok(dir.path(), &format!("invoke_backup_service_sync(\"{A}\")"));
    dir
}

#[test]
fn kill_9_during_a_planned_cms_move_leaves_old_or_new_and_a_rerun_completes_it() {
    let template = synced_cms();
    let old = tree(&cms_replica(template.path()));
    write_items(&cms_home(template.path()), 3);
    let new = tree(&cms_home(template.path()));
    let code = "invoke_management_server_failover().active_at";
    let mut landed = 0;
    for delay in [10u64, 30, 60, 100, 160, 250] {
        let copy = copy_of(template.path());
        let dir = copy.path();
        landed += u32::from(kill_after(dir, code, Duration::from_millis(delay)));
        let what = format!("CMS move killed at {delay} ms");
        old_or_new(&tree(&cms_replica(dir)), &old, &new, &what);
        let at = cms_at(dir);
        if at == A || lagging(dir) {
            // Not moved, or recorded in one store only: the rerun moves it,
            // or finishes the move (it does not move it back).
            assert_eq!(run_ok(dir, code), P, "{what}");
        }
        assert_eq!(cms_at(dir), P, "{what}");
        assert!(!lagging(dir), "{what}: a store has not heard of the move");
        assert!(
            tree(&cms_replica(dir)) == new,
            "{what}: a planned move lost changes"
        );
        nothing_staged(dir, &what);
        run_ok(dir, &format!("invoke_backup_service_sync(\"{A}\")"));
        let in_sync = run_ok(
            dir,
            &format!("debug_inter_pool_replication(\"{A}\", #{{module: \"CMSMaster\"}}).in_sync"),
        );
        assert_eq!(in_sync, "true", "{what}");
    }
    assert!(landed >= 2, "only {landed} kills landed mid-move");
}

/// Whether the two stores hold records of different epochs.
fn lagging(dir: &Path) -> bool {
    let epochs: Vec<Option<u64>> = [A, P]
        .iter()
        .map(|pool| {
            let file = dir
                .join("stores")
                .join(pool)
                .join(format!(".poolsync/meta/failover/pair-{A}-{P}"));
            let text = std::fs::read_to_string(file).ok()?;
            serde_json::from_str::<serde_json::Value>(&text).ok()?["epoch"].as_u64()
        })
        .collect();
    epochs[0] != epochs[1]
}

#[test]
fn kill_9_during_a_disaster_cms_move_and_the_old_master_loses_nothing_at_its_return() {
    let template = synced_cms();
    let active = tree(&cms_replica(template.path()));
    // The master changes after its last sync, then is taken for lost.
    write_items(&cms_home(template.path()), 4);
    let master = tree(&cms_home(template.path()));
    let code = "invoke_management_server_failover(#{disaster_mode: true}).active_at";
    for delay in [0u64, 10, 20, 40, 80] {
        let copy = copy_of(template.path());
        let dir = copy.path();
        kill_after(dir, code, Duration::from_millis(delay));
        let what = format!("disaster CMS move killed at {delay} ms");
        assert!(
            tree(&cms_replica(dir)) == active,
            "{what}: the replica changed"
        );
        if cms_at(dir) == A {
            assert_eq!(run_ok(dir, code), P, "{what}");
        }
        // The old master is back: its first sync moves its changes aside,
        // then the active CMS flows to it.
        run_ok(dir, &format!("invoke_backup_service_sync(\"{A}\")"));
        assert!(
            tree(&cms_home(dir)) == active,
            "{what}: the old master is not the active CMS"
        );
        let aside = tree(&dir.join("stores").join(A).join("quarantine"));
        for (path, content) in &master {
            if active.get(path) != Some(content) {
                assert!(
                    aside
                        .iter()
                        .any(|(q, c)| q.ends_with(&format!("{CMS}/{path}")) && c == content),
                    "{what}: the old master's {path} is lost"
                );
            }
        }
        nothing_staged(dir, &what);
    }
}
