//! What a failback finds the pool did after its last sync, which the active
//! copy never saw: changed items moved aside, deleted items named, and every
//! quarantine listed in status until an operator removes it.

use crate::common::{ATL2, Env, tree};

const DATACONF: &str = "ConfServices.DataConf";

/// A demo pair after a sync; returns the path of one `DataConf` item.
fn synced(env: &Env) -> String {
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let data = tree(&env.store(ATL2).join("data").join(DATACONF));
    data.keys().next().unwrap().clone()
}

#[test]
fn a_deletion_at_home_after_the_last_sync_is_named_when_the_failback_brings_it_back() {
    let env = Env::with_demo();
    let gone = synced(&env);
    let home = env.store(ATL2).join("data").join(DATACONF);
    let kept = std::fs::read(home.join(&gone)).unwrap();
    // After its last sync the pool deletes an item, then it is lost.
    std::fs::remove_file(home.join(&gone)).unwrap();
    env.demo(&format!(
        "invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}})"
    ));
    let out = env.demo(&format!(
        "let q = invoke_pool_failback(\"{ATL2}\").quarantine; `${{q.items}} ${{q.deleted_at_home}} ${{q.deleted_at_home_paths}} ${{q.folder}}`"
    ));
    let line = out.stdout();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[..3],
        ["0", "1", &format!("[\"{DATACONF}/{gone}\"]")],
        "the deletion the active copy never saw is named: {line}"
    );
    // The active copy is the one truth: the item is back, and said so.
    assert_eq!(std::fs::read(home.join(&gone)).unwrap(), kept);
    let note = std::fs::read_to_string(env.store(ATL2).join(words[3]).join("deleted-at-home.txt"))
        .unwrap();
    assert!(note.contains(&format!("\n{DATACONF}/{gone}\n")), "{note}");
    let out = env.demo(&format!(
        "get_backup_service_status(\"{ATL2}\").failover.quarantines.map(|q| q.deleted_at_home_paths)"
    ));
    assert!(out.stdout().contains(&gone), "{}", out.stdout());
}

#[test]
fn status_lists_every_quarantine_until_it_is_removed() {
    let env = Env::with_demo();
    let item = synced(&env);
    let home = env.store(ATL2).join("data").join(DATACONF);
    std::fs::write(home.join("diverged.txt"), "after the last sync").unwrap();
    env.demo(&format!(
        "invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}})"
    ));
    let failback = env
        .demo(&format!(
            "invoke_pool_failback(\"{ATL2}\").quarantine.folder"
        ))
        .stdout();
    // A second quarantine: a restore that replaces a changed item.
    std::fs::write(home.join(&item), "changed at home").unwrap();
    let restore = env
        .demo(&format!(
            "restore_pool_data(\"{ATL2}\", #{{overwrite: true}}).quarantine.folder"
        ))
        .stdout();
    let listed = |env: &Env| {
        env.demo(&format!(
            "get_backup_service_status(\"{ATL2}\").failover.quarantines.map(|q| `${{q.folder}}:${{q.items}}`)"
        ))
        .stdout()
    };
    let both = listed(&env);
    assert!(
        both.contains(&format!("{}:1", failback.trim()))
            && both.contains(&format!("{}:1", restore.trim())),
        "both quarantines: {both}"
    );
    std::fs::remove_dir_all(env.store(ATL2).join(failback.trim())).unwrap();
    let one = listed(&env);
    assert!(
        !one.contains(failback.trim()) && one.contains(restore.trim()),
        "a removed quarantine is no longer listed: {one}"
    );
}
