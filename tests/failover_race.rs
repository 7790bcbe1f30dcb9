//! Two operators at once: failovers and CMS moves of the same pair started
//! together, in two processes, make one change and one clear refusal.
//!
//! The test holds the pair lock itself while both calls start, so both have
//! read where the data is before either can change it, and the race is the
//! same every run.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use crate::common::{ATL1, ATL2, DAL1, Env, Out, RED1, tree};

/// Holds the pair lock of `a` and `b` in both stores, as a sync would.
fn hold_pair_lock(env: &Env, a: &str, b: &str) -> Vec<File> {
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    [a, b]
        .iter()
        .map(|pool| {
            let path = env
                .store(pool)
                .join(format!(".poolsync/locks/pair-{first}-{second}.lock"));
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap();
            file.lock().unwrap();
            file
        })
        .collect()
}

/// Starts each snippet on the demo while the pair lock is held, lets them
/// all read and queue, releases the lock, and returns their outcomes.
fn at_once(env: &Env, pair: (&str, &str), snippets: &[String]) -> Vec<Out> {
    let held = hold_pair_lock(env, pair.0, pair.1);
    let children: Vec<_> = snippets
        .iter()
        .map(|code| env.cmd().args(["--demo", "-c", code]).start())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(held);
    children
        .into_iter()
        .map(|c| Out(c.wait_with_output().unwrap()))
        .collect()
}

/// The one that succeeded, and the other's standard error.
fn one_success(outs: &[Out]) -> (&Out, String) {
    let ok: Vec<&Out> = outs.iter().filter(|o| o.0.status.success()).collect();
    let failed: Vec<&Out> = outs.iter().filter(|o| !o.0.status.success()).collect();
    assert_eq!(
        (ok.len(), failed.len()),
        (1, 1),
        "exactly one call succeeds: {:?}",
        outs.iter()
            .map(|o| (o.stdout(), o.stderr()))
            .collect::<Vec<_>>()
    );
    (ok[0], failed[0].stderr())
}

fn record_epochs(env: &Env, pools: [&str; 2], a: &str, b: &str) -> Vec<u64> {
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    pools
        .iter()
        .map(|p| {
            let path = env
                .store(p)
                .join(format!(".poolsync/meta/failover/pair-{first}-{second}"));
            let text = std::fs::read_to_string(path).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            json["epoch"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_planned_and_a_disaster_failover_at_once_make_one_active_copy() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let report = "`${r.epoch} ${r.active_at} ${r.mode}`";
    let outs = at_once(
        &env,
        (ATL2, RED1),
        &[
            format!("let r = invoke_pool_failover(\"{ATL2}\"); {report}"),
            format!("let r = invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}}); {report}"),
        ],
    );
    let (ok, refused) = one_success(&outs);
    assert!(
        refused.contains("is already failed over to")
            && refused.contains(" at epoch ")
            && refused.contains("failover of"),
        "the loser names the failover that won: {refused}"
    );
    let won = ok.stdout();
    let mut words = won.split_whitespace();
    let epoch = words.next().unwrap().to_string();
    assert_eq!(words.next(), Some(RED1));
    let out = env.demo(&format!(
        "let f = get_pool(\"{ATL2}\").failover; `${{f.state}} ${{f.active_at}} ${{f.epoch}}`"
    ));
    assert_eq!(
        out.stdout().trim(),
        format!("FailedOver {RED1} {epoch}"),
        "one promotion: the winner's epoch is the pair's"
    );
}

#[test]
fn a_planned_failover_after_a_disaster_one_is_refused_and_names_it() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    env.demo(&format!(
        "invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}})"
    ));
    // The disaster failover left the pool's own record behind: the planned
    // call brings it up to date, but it did not make this failover, and its
    // final sync never ran, so it may not claim to have finished it.
    let err = env.demo_error(&format!("invoke_pool_failover(\"{ATL2}\")"));
    assert!(
        err.contains("already failed over to") && err.contains("at epoch 1 by a disaster failover"),
        "{err}"
    );
    assert_eq!(record_epochs(&env, [ATL2, RED1], ATL2, RED1), [1, 1]);
}

#[test]
fn two_cms_moves_at_once_move_it_once() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let home = env.store(ATL1).join("data/CentralMgmt.CMSMaster");
    let active = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("CentralMgmt.CMSMaster");
    let snippet = "let r = invoke_management_server_failover(); `${r.epoch} ${r.active_at}`";
    let outs = at_once(&env, (ATL1, DAL1), &[snippet.into(), snippet.into()]);
    let (ok, refused) = one_success(&outs);
    assert_eq!(ok.stdout().trim(), format!("1 {DAL1}"));
    assert!(
        refused.contains("moved by another call") && refused.contains("epoch 1"),
        "{refused}"
    );
    let out = env.demo(&format!(
        "let f = get_pool(\"{ATL1}\").failover; `${{f.cms_active_at}} ${{f.epoch}}`"
    ));
    assert_eq!(out.stdout().trim(), format!("{DAL1} 1"));
    assert_eq!(record_epochs(&env, [ATL1, DAL1], ATL1, DAL1), [1, 1]);
    assert_cms_copies_equal(&home, &active);
}

fn assert_cms_copies_equal(home: &Path, active: &Path) {
    assert!(
        tree(home) == tree(active),
        "the active CMS and its copy differ"
    );
}
