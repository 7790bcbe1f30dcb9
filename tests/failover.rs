//! `invoke_pool_failover`, `invoke_pool_failback`, `restore_pool_data` and
//! `invoke_management_server_failover` through the real binary, on the demo.

use crate::common::{ATL1, ATL2, DAL1, Env, RED1, RED3, tree};

/// `ATL2`'s data as its home holds it, and as its replica at `RED1` does.
fn home_and_replica(
    env: &Env,
) -> (
    std::collections::BTreeMap<String, Vec<u8>>,
    std::collections::BTreeMap<String, Vec<u8>>,
) {
    (
        tree(&env.store(ATL2).join("data")),
        tree(&env.store(RED1).join("backup").join(ATL2)),
    )
}

fn churn(env: &Env, pool: &str, percent: &str) -> String {
    env.cmd()
        .args(["demo", "churn", "--pool", pool, "--percent", percent])
        .ok()
        .stdout()
}

#[test]
fn a_planned_failover_loses_nothing_and_failback_brings_every_change_home() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    // A change after the last sync: the failover's final sync must ship it.
    let late = env
        .store(ATL2)
        .join("data/ConfServices.DataConf/late-change.txt");
    std::fs::write(&late, "written just before the failover").unwrap();
    let out = env.demo(&format!(
        "let r = invoke_pool_failover(\"{ATL2}\"); `${{r.phase}} ${{r.active_at}} ${{r.items_lost}} ${{r.mode}}`"
    ));
    assert_eq!(out.stdout().trim(), format!("FailedOver {RED1} 0 Planned"));
    let active = env.store(RED1).join("backup").join(ATL2);
    assert!(
        active
            .join("ConfServices.DataConf/late-change.txt")
            .exists()
    );
    let out = env.demo(&format!("get_pool(\"{ATL2}\").active_copy"));
    assert_eq!(out.stdout().trim(), active.display().to_string());

    // While failed over: syncs of the pair are refused, writes go to the active copy.
    let err = env.demo_error(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    assert!(
        err.contains("is failed over") && err.contains("invoke_pool_failback"),
        "{err}"
    );
    let before = tree(&env.store(ATL2).join("data"));
    assert!(churn(&env, ATL2, "10").contains("modified"));
    assert_eq!(
        before,
        tree(&env.store(ATL2).join("data")),
        "churn wrote to the fenced home"
    );

    let out = env.demo(&format!(
        "let r = invoke_pool_failback(\"{ATL2}\"); `${{r.phase}} ${{r.active_at}} ${{r.quarantine}}`"
    ));
    assert_eq!(out.stdout().trim(), format!("Home {ATL2}"), "no quarantine");
    let (home, replica) = home_and_replica(&env);
    assert!(
        home == replica,
        "home and replica differ after the failback"
    );
    assert!(
        !env.store(ATL2).join("quarantine").exists(),
        "a planned failover diverges nothing"
    );
    let out = env.demo(&format!(
        "let r = invoke_backup_service_sync(\"{ATL2}\"); `${{r.items_copied}} ${{r.items_deleted}}`"
    ));
    assert_eq!(
        out.stdout().trim(),
        "0 0",
        "the next sync has nothing to do"
    );
    let out = env.demo(&format!("debug_inter_pool_replication(\"{ATL2}\").in_sync"));
    assert_eq!(out.stdout().trim(), "true");
}

#[test]
fn a_disaster_failover_says_what_may_be_lost_and_failback_quarantines_it() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let diverged = env
        .store(ATL2)
        .join("data/ConfServices.DataConf/after-last-sync.txt");
    std::fs::write(&diverged, "the replica never saw this").unwrap();
    let out = env.demo(&format!(
        "let r = invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}}); `${{r.phase}} ${{r.items_lost}} ${{r.loss.filter(|l| l.changed_items > 0).map(|l| l.changed)}}`"
    ));
    assert_eq!(
        out.stdout().trim(),
        "FailedOver 1 [[\"after-last-sync.txt\"]]",
        "{}",
        out.stderr()
    );
    // The pool comes back, still holding its divergent item: fenced.
    let err = env.demo_error(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    assert!(err.contains("is failed over"), "{err}");
    churn(&env, ATL2, "5");
    let out = env.demo(&format!(
        "let r = invoke_pool_failback(\"{ATL2}\"); `${{r.quarantine.items}} ${{r.quarantine.folder}}`"
    ));
    let line = out.stdout();
    let (items, folder) = line.trim().split_once(' ').unwrap();
    assert_eq!(items, "1");
    let kept = env
        .store(ATL2)
        .join(folder)
        .join("ConfServices.DataConf/after-last-sync.txt");
    assert_eq!(
        std::fs::read_to_string(kept).unwrap(),
        "the replica never saw this"
    );
    assert!(
        !diverged.exists(),
        "the divergent item was moved aside, not left in data/"
    );
    let (home, replica) = home_and_replica(&env);
    assert!(home == replica);
    let out = env.demo(&format!(
        "get_backup_service_status(\"{ATL2}\").failover.quarantines.map(|q| q.items)"
    ));
    assert_eq!(out.stdout().trim(), "[1]", "status lists the quarantine");
}

#[test]
fn a_lost_store_fails_over_and_comes_back_from_the_partner() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let replica = tree(&env.store(RED1).join("backup").join(ATL2));
    std::fs::remove_dir_all(env.store(ATL2)).unwrap();
    let err = env.demo_error(&format!("invoke_pool_failover(\"{ATL2}\")"));
    assert!(
        err.contains("disaster_mode: true"),
        "the planned failover names the fix: {err}"
    );
    let out = env.demo(&format!(
        "let r = invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}}); `${{r.phase}} ${{r.items_lost}}`"
    ));
    assert_eq!(
        out.stdout().trim(),
        "FailedOver",
        "an unreadable pool's loss is unknown: {}",
        out.stdout()
    );
    std::fs::create_dir_all(env.store(ATL2)).unwrap();
    env.demo(&format!("invoke_pool_failback(\"{ATL2}\")"));
    assert_eq!(
        tree(&env.store(ATL2).join("data")),
        replica,
        "the pool has its data back"
    );
}

#[test]
fn failovers_that_cannot_be_done_safely_say_why() {
    let env = Env::with_demo();
    for (code, expected) in [
        (
            format!("invoke_pool_failover(\"{RED3}\")"),
            "has no backup pool",
        ),
        (
            "invoke_pool_failover(\"nope.litwareinc.com\")".to_string(),
            "no pool 'nope.litwareinc.com'",
        ),
        (
            format!("invoke_pool_failback(\"{ATL2}\")"),
            "is not failed over",
        ),
        (
            format!("invoke_pool_failover(\"{ATL2}\", #{{disaster: true}})"),
            "unknown option 'disaster'",
        ),
        (
            format!("invoke_pool_failover(\"{ATL2}\", #{{what_if: 1}})"),
            "must be true or false, not int",
        ),
        (
            format!("invoke_pool_failover(\"{ATL1}\")"),
            "holds the active Central Management Store",
        ),
        (
            format!("invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}})"),
            "never completed a sync",
        ),
        (
            format!("restore_pool_data(\"{ATL2}\", #{{module: \"Nope\"}})"),
            "Nope",
        ),
    ] {
        let err = env.demo_error(&code);
        assert!(err.contains(expected), "{code}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            3,
            "one line, the source line and a caret: {err}"
        );
    }
    // force overrides the replica check only: the failover then goes ahead.
    let out = env.demo(&format!(
        "invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true, force: true}}).phase"
    ));
    assert_eq!(out.stdout().trim(), "FailedOver");
    let err = env.demo_error(&format!(
        "invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}})"
    ));
    assert!(err.contains("already failed over"), "{err}");
    let err = env.demo_error(&format!("invoke_pool_failover(\"{RED1}\")"));
    assert!(err.contains("is itself FailedOver"), "{err}");
}

#[test]
fn what_if_changes_nothing() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let stores = tree(&env.demo_dir().join("stores"));
    let out = env.demo(&format!(
        "let r = invoke_pool_failover(\"{ATL2}\", #{{what_if: true}}); `${{r.what_if}} ${{r.phase}}`"
    ));
    assert_eq!(out.stdout().trim(), "true FailedOver");
    std::fs::remove_dir_all(env.store(ATL2).join("data/ConfServices.DataConf")).unwrap();
    let before = tree(&env.demo_dir().join("stores"));
    let out = env.demo(&format!(
        "restore_pool_data(\"{ATL2}\", #{{what_if: true}}).would_restore.len()"
    ));
    assert_eq!(out.stdout().trim(), "10");
    assert_eq!(
        before,
        tree(&env.demo_dir().join("stores")),
        "what_if wrote nothing"
    );
    assert!(stores.len() > before.len());
}

#[test]
fn restore_brings_back_lost_items_and_keeps_what_the_pool_has() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let data = env.store(ATL2).join("data/ConfServices.DataConf");
    let replica = tree(
        &env.store(RED1)
            .join("backup")
            .join(ATL2)
            .join("ConfServices.DataConf"),
    );
    std::fs::remove_dir_all(&data).unwrap();
    let err = env.demo_error(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    assert!(
        err.contains(&format!("restore_pool_data(\"{ATL2}\")")),
        "the guard names the fix: {err}"
    );
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("kept.txt"), "made after the loss").unwrap();
    let out = env.demo(&format!(
        "restore_pool_data(\"{ATL2}\", #{{module: \"DataConf\"}}).modules[0].items_copied"
    ));
    assert_eq!(out.stdout().trim(), replica.len().to_string());
    let mut expected = replica.clone();
    expected.insert("kept.txt".into(), b"made after the loss".to_vec());
    assert_eq!(tree(&data), expected);
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL2}\", #{{module: \"DataConf\"}}).items_deleted"
    ));
    assert_eq!(
        out.stdout().trim(),
        "0",
        "after a restore the next sync deletes nothing"
    );

    // overwrite: a changed item goes back to the replica's version, the
    // pool's own is quarantined.
    let (name, original) = replica.iter().next().unwrap();
    std::fs::write(data.join(name), "local edit").unwrap();
    env.demo(&format!(
        "restore_pool_data(\"{ATL2}\", #{{module: \"DataConf\"}})"
    ));
    assert_eq!(
        std::fs::read_to_string(data.join(name)).unwrap(),
        "local edit",
        "kept without overwrite"
    );
    let out = env.demo(&format!(
        "restore_pool_data(\"{ATL2}\", #{{module: \"DataConf\", overwrite: true}}).quarantine.folder"
    ));
    let folder = out.stdout().trim().to_string();
    assert_eq!(std::fs::read(data.join(name)).unwrap(), *original);
    let aside = env
        .store(ATL2)
        .join(folder)
        .join("ConfServices.DataConf")
        .join(name);
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "local edit");
}

#[test]
fn the_cms_moves_to_its_partner_flows_back_and_moves_home_again() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let out =
        env.demo("let r = invoke_management_server_failover(); `${r.active_at} ${r.items_lost}`");
    assert_eq!(out.stdout().trim(), format!("{DAL1} 0"));
    // The active CMS is now DAL1's copy; a change there flows to ATL1.
    let active = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("CentralMgmt.CMSMaster");
    std::fs::write(active.join("moved-change.xml"), "<Change/>").unwrap();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let home = env.store(ATL1).join("data/CentralMgmt.CMSMaster");
    assert_eq!(
        std::fs::read_to_string(home.join("moved-change.xml")).unwrap(),
        "<Change/>"
    );
    let out = env.demo(&format!(
        "get_backup_service_status(\"{DAL1}\").failover.cms_active_at"
    ));
    assert_eq!(out.stdout().trim(), DAL1);
    let err = env.demo_error(&format!("invoke_pool_failover(\"{DAL1}\")"));
    assert!(
        err.contains("holds the active Central Management Store"),
        "{err}"
    );
    // The same call again moves it home; it flows from ATL1 again.
    let out = env.demo("invoke_management_server_failover().active_at");
    assert_eq!(out.stdout().trim(), ATL1);
    std::fs::write(home.join("home-again.xml"), "<Home/>").unwrap();
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"CMSMaster\"}}).items_copied"
    ));
    assert_eq!(out.stdout().trim(), "1");
    assert!(active.join("home-again.xml").exists());
    let out = env.demo(&format!("debug_inter_pool_replication(\"{ATL1}\").in_sync"));
    assert_eq!(out.stdout().trim(), "true");
}

#[test]
fn the_service_does_not_sync_a_failed_over_pair_and_says_why() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    env.demo(&format!("invoke_pool_failover(\"{ATL2}\")"));
    let mut child = env
        .cmd()
        .args(["--demo", "service", "--pool", ATL2, "--log-format", "json"])
        .start();
    let started = std::time::Instant::now();
    let mut log = String::new();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    while !log.contains("cycle skipped: the pair is not in normal operation") {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{log}"
        );
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        log.push_str(&line);
    }
    // SAFETY: a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    assert!(
        log.contains("invoke_pool_failback"),
        "the log names the fix: {log}"
    );
    assert!(!log.contains("\"cycle\""), "no cycle ran: {log}");
}

/// The object-store path (writes in place, no rename), through the library on
/// in-process memory stores: a disaster failover of B to A, writes at the
/// active copy, a divergent item at B, and the failback.
#[test]
#[expect(
    clippy::many_single_char_names,
    reason = "a and b are the two pools' stores, as A and B are their names"
)]
fn object_stores_fail_over_and_back_with_quarantine() {
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload, path::Path as Key};
    use poolsync::sync::{FailoverOptions, SyncEngine, SyncOptions};
    use std::sync::Arc;
    const A: &str = "a.fo.test";
    const B: &str = "b.fo.test";
    const PF: &str = "UserServices.PresenceFocus";
    let text = crate::common::PairToml::new(A, B)
        .one_site("S")
        .stores(Some("memory://fo-a"), Some("memory://fo-b"))
        .text();
    let path = std::path::Path::new("m.toml");
    let d = Arc::new(poolsync::topology::parse(&text, path, std::path::Path::new(".")).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b) = (
        poolsync::store::memory_backend("fo-a"),
        poolsync::store::memory_backend("fo-b"),
    );
    let put = |store: &InMemory, key: String, body: String| {
        rt.block_on(store.put(&Key::from(key), PutPayload::from(body)))
            .unwrap();
    };
    let tree = |store: &InMemory, prefix: &str| {
        rt.block_on(crate::common::object_tree(store, &Key::from(prefix)))
    };
    for i in 0..30 {
        put(
            &b,
            format!("data/{PF}/u/{i:02}.json"),
            format!("b item {i}"),
        );
    }
    let engine = SyncEngine::new(d.clone());
    let pair = crate::common::pair(&engine, B);
    rt.block_on(engine.sync_pair(&pair, &SyncOptions::default()))
        .unwrap();
    // A change B makes after its last sync, then B is lost.
    put(&b, format!("data/{PF}/u/late.json"), "never synced".into());
    let disaster = FailoverOptions {
        disaster_mode: true,
        ..FailoverOptions::default()
    };
    let r = rt.block_on(engine.fail_over(&pair, &disaster)).unwrap();
    assert_eq!(r.items_lost, Some(1), "the late change is named as at risk");
    assert_eq!(r.active_copy, format!("memory://fo-a/backup/{B}"));
    // Users write at the active copy.
    put(
        &a,
        format!("backup/{B}/{PF}/u/03.json"),
        "changed while failed over".into(),
    );
    put(
        &a,
        format!("backup/{B}/{PF}/u/new.json"),
        "added while failed over".into(),
    );
    rt.block_on(a.delete(&Key::from(format!("backup/{B}/{PF}/u/04.json"))))
        .unwrap();
    let r = rt
        .block_on(engine.fail_back(&pair, &FailoverOptions::default()))
        .unwrap();
    let q = r.quarantine.expect("the late change is quarantined");
    assert_eq!(q.paths, vec![format!("{PF}/u/late.json")]);
    assert_eq!(
        tree(&b, &format!("{}/{PF}", q.folder))
            .get("u/late.json")
            .map(Vec::as_slice),
        Some(&b"never synced"[..])
    );
    let home = tree(&b, &format!("data/{PF}"));
    assert_eq!(home, tree(&a, &format!("backup/{B}/{PF}")));
    assert_eq!(
        home.get("u/03.json").map(Vec::as_slice),
        Some(&b"changed while failed over"[..])
    );
    assert!(!home.contains_key("u/04.json") && !home.contains_key("u/late.json"));
    let again = rt
        .block_on(engine.sync_pair(&pair, &SyncOptions::default()))
        .unwrap();
    assert_eq!(again.items_copied() + again.items_deleted(), 0);
}

#[test]
fn a_disaster_cms_move_quarantines_what_the_old_master_changed_at_its_first_sync() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let home = env.store(ATL1).join("data/CentralMgmt.CMSMaster");
    std::fs::write(home.join("unsynced.xml"), "<Lost/>").unwrap();
    let out = env.demo("let r = invoke_management_server_failover(#{disaster_mode: true}); `${r.active_at} ${r.mode} ${r.items_lost} ${r.loss[0].module} ${r.loss[0].changed}`");
    assert_eq!(
        out.stdout().trim(),
        format!("{DAL1} Disaster 1 CentralMgmt.CMSMaster [\"unsynced.xml\"]"),
        "the report names what the old master changed after its last sync"
    );
    let active = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("CentralMgmt.CMSMaster");
    std::fs::write(active.join("new-master.xml"), "<New/>").unwrap();
    // The old master is back: its first sync moves its own change aside,
    // then the active CMS flows to it.
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    assert!(!home.join("unsynced.xml").exists());
    assert_eq!(
        std::fs::read_to_string(home.join("new-master.xml")).unwrap(),
        "<New/>"
    );
    let out = env.demo(&format!(
        "get_backup_service_status(\"{ATL1}\").failover.quarantines[0].paths"
    ));
    assert!(
        out.stdout().contains("CentralMgmt.CMSMaster/unsynced.xml"),
        "{}",
        out.stdout()
    );
    let quarantined = std::fs::read_dir(env.store(ATL1).join("quarantine"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(quarantined.join("CentralMgmt.CMSMaster/unsynced.xml")).unwrap(),
        "<Lost/>"
    );
    let out = env.demo(&format!(
        "debug_inter_pool_replication(\"{ATL1}\", #{{module: \"CMSMaster\"}}).in_sync"
    ));
    assert_eq!(out.stdout().trim(), "true");
}

#[test]
fn a_disaster_cms_move_refuses_a_replica_that_never_completed_a_sync() {
    let env = Env::with_demo();
    let home = tree(&env.store(ATL1).join("data/CentralMgmt.CMSMaster"));
    let err = env.demo_error("invoke_management_server_failover(#{disaster_mode: true})");
    assert!(
        err.contains("never completed a sync") && err.contains("force: true"),
        "{err}"
    );
    let out = env.demo(&format!("get_pool(\"{ATL1}\").failover.cms_active_at"));
    assert_eq!(out.stdout().trim(), ATL1, "the CMS did not move");
    // force promotes the replica as it is, and says what that loses: every
    // item of the old master, which its first sync will move aside.
    let out = env.demo(
        "let r = invoke_management_server_failover(#{disaster_mode: true, force: true}); `${r.active_at} ${r.items_lost} ${r.loss[0].last_sync}`",
    );
    assert_eq!(
        out.stdout().trim(),
        format!("{DAL1} {}", home.len()),
        "{}",
        out.stderr()
    );
}
