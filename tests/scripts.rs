//! Every example in scripts/ runs against the demo and prints what it should.

use crate::common::{ATL1, ATL2, DAL1, Env, RED1, RED3};

fn run(script: &str, args: &[&str]) -> (Env, String) {
    let env = Env::with_demo();
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = env.cmd().arg("--demo").arg(path).args(args).ok();
    (env, out.stdout())
}

#[test]
fn every_script_is_tested() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    let this = include_str!("scripts.rs");
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if std::path::Path::new(&name)
            .extension()
            .is_some_and(|x| x == "rhai")
        {
            assert!(
                this.contains(&format!("run(\"{name}\"")),
                "scripts/{name} has no test"
            );
        }
    }
}

#[test]
fn pools_by_site() {
    let (_, out) = run("pools-by-site.rhai", &[]);
    assert!(out.starts_with("Atlanta (site:1): 2 pools\n"), "{out}");
    assert!(out.contains(&format!("  {RED3}  no backup pool")), "{out}");
    assert!(out.contains(&format!("  {ATL1}  backup {DAL1}")), "{out}");
    assert_eq!(out.lines().count(), 3 + 7);
}

#[test]
fn unpaired_pools() {
    let (_, out) = run("unpaired-pools.rhai", &[]);
    assert_eq!(
        out,
        format!("1 pool(s) without a backup pool:\n  {RED3} (site Redmond)\n")
    );
}

#[test]
fn pairs() {
    let (_, out) = run("pairs.rhai", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0],
        format!("{ATL1} (Atlanta) <-> {DAL1} (Dallas)  [CMS]")
    );
    assert_eq!(lines[1], format!("{ATL2} (Atlanta) <-> {RED1} (Redmond)"));
}

#[test]
fn sync_all_brings_every_pair_into_sync() {
    let (env, out) = run("sync-all.rhai", &[]);
    assert!(out.ends_with("3 pairs in sync\n"), "{out}");
    assert!(
        out.contains(&format!("{ATL1} <-> {DAL1}: 1229 copied")),
        "{out}"
    );
    assert_eq!(out.matches("FinalState").count(), 5 + 4 + 4, "{out}");
    // Each replica equals its source, byte for byte.
    for (a, b) in [(ATL1, DAL1), (ATL2, RED1)] {
        for (from, to) in [(a, b), (b, a)] {
            let src = crate::common::tree(&env.store(from).join("data"));
            let dst = crate::common::tree(&env.store(to).join("backup").join(from));
            assert_eq!(src, dst, "{from} -> {to}");
        }
    }
}

#[test]
fn sync_my_pools_syncs_what_the_operator_may() {
    let (env, out) = run("sync-my-pools.rhai", &[]);
    assert!(out.contains("may sync 6 pool(s)"), "{out}");
    assert_eq!(out.matches(" <-> ").count(), 3, "each pair once: {out}");
    assert!(env.store(DAL1).join("backup").join(ATL1).is_dir());
}

#[test]
fn status_report_shows_states_per_module() {
    let (_, out) = run("status-report.rhai", &[]);
    assert!(
        out.contains(&format!(
            "{ATL1} -> {DAL1}: export NotInitialized, import NotInitialized"
        )),
        "{out}"
    );
    assert!(
        out.contains("    UserServices.PresenceFocus: NotInitialized/NotInitialized, 600 pending"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| !l.starts_with(' ')).count(),
        6,
        "one block per paired pool: {out}"
    );
}

#[test]
fn sync_until_steady_syncs_and_verifies() {
    let (env, out) = run("sync-until-steady.rhai", &[ATL2]);
    assert_eq!(
        out,
        format!("{ATL2}: export FinalState\nreplicas verified: every item matches its source\n")
    );
    assert!(env.store(RED1).join("backup").join(ATL2).is_dir());
}

#[test]
fn what_if_lists_without_changing() {
    let (env, out) = run("what-if.rhai", &[ATL1]);
    assert!(
        out.contains(&format!(
            "UserServices.PresenceFocus {ATL1} -> {DAL1}: would copy 600"
        )),
        "{out}"
    );
    assert!(out.contains("    + users/0000/sip_"), "{out}");
    assert!(!env.store(DAL1).join("backup").join(ATL1).exists());
}

#[test]
fn dr_drill_planned_and_disaster() {
    let (env, out) = run("dr-drill.rhai", &["failover", ATL2]);
    assert!(
        out.contains(&format!("FailedOver, active at {RED1}")),
        "{out}"
    );
    assert!(out.contains("recovery point: 0 items may be lost"), "{out}");
    let drill = |args: &[&str]| {
        let path = format!("{}/scripts/dr-drill.rhai", env!("CARGO_MANIFEST_DIR"));
        env.cmd().arg("--demo").arg(path).args(args).ok().stdout()
    };
    env.cmd().args(["demo", "churn", "--pool", ATL2]).ok();
    let out = drill(&["failback", ATL2]);
    assert!(out.contains(&format!("Home, active at {ATL2}")), "{out}");
    assert!(!out.contains("quarantined"), "{out}");
    assert!(drill(&["check", ATL2]).contains("replicas verified"));

    // The disaster drill: the store is lost, comes back empty but for one
    // item written after the loss; the data comes home, that item is kept aside.
    std::fs::remove_dir_all(env.store(ATL2)).unwrap();
    let out = drill(&["failover", ATL2, "disaster"]);
    assert!(out.contains("FailedOver"), "{out}");
    let late = env.store(ATL2).join("data/ConfServices.DataConf");
    std::fs::create_dir_all(&late).unwrap();
    std::fs::write(late.join("divergent.txt"), "written on the rebuilt pool").unwrap();
    let out = drill(&["failback", ATL2]);
    assert!(
        out.contains("quarantined: 1 items in quarantine/epoch-"),
        "{out}"
    );
    assert!(out.contains("ConfServices.DataConf/divergent.txt"), "{out}");
    assert!(drill(&["check", ATL2]).contains("replicas verified"));
}

#[test]
fn restore_brings_back_what_a_pool_lost_and_the_next_sync_deletes_nothing() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let data = env.store(ATL2).join("data/ConfServices.DataConf");
    let before = crate::common::tree(&data);
    std::fs::remove_dir_all(&data).unwrap();
    let path = format!("{}/scripts/restore.rhai", env!("CARGO_MANIFEST_DIR"));
    let out = env
        .cmd()
        .arg("--demo")
        .arg(&path)
        .args([ATL2, "DataConf"])
        .ok()
        .stdout();
    assert!(
        out.starts_with(&format!(
            "{ATL2}: {} items to bring back from {RED1}, 0 of its own",
            before.len()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ConfServices.DataConf: {} items restored",
            before.len()
        )),
        "{out}"
    );
    assert!(
        out.ends_with("the next sync would delete 0 items from the replica\n"),
        "{out}"
    );
    assert!(crate::common::tree(&data) == before, "the data is back");
    // Nothing missing: nothing to do.
    let (_, out) = run("restore.rhai", &[ATL2]);
    assert!(out.contains("nothing is missing"), "{out}");
}

#[test]
fn cms_failover_moves_the_cms_and_the_same_call_moves_it_back() {
    let (env, out) = run("cms-failover.rhai", &[]);
    assert!(
        out.starts_with(&format!("the CMS is active at {ATL1}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("moved to {DAL1} (Planned, epoch 1,")),
        "{out}"
    );
    assert!(
        out.contains("CentralMgmt.CMSMaster: last synced 20")
            && out.contains("changed after it (may be lost): 0"),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "CentralMgmt.CMSMaster now flows from {DAL1} to {ATL1}\n"
        )),
        "{out}"
    );
    let path = format!("{}/scripts/cms-failover.rhai", env!("CARGO_MANIFEST_DIR"));
    let back = env.cmd().arg("--demo").arg(&path).ok().stdout();
    assert!(
        back.starts_with(&format!("the CMS is active at {DAL1}\n")),
        "{back}"
    );
    assert!(
        back.contains(&format!("moved to {ATL1} (Planned, epoch 2,")),
        "{back}"
    );
    // In disaster mode, from the demo as made (the CMS replica synced once).
    let (env, _) = run("sync-all.rhai", &[]);
    let out = env
        .cmd()
        .arg("--demo")
        .arg(&path)
        .arg("disaster")
        .ok()
        .stdout();
    assert!(
        out.contains(&format!("moved to {DAL1} (Disaster, epoch 1,")),
        "{out}"
    );
}
