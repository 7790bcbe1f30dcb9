//! Writes while the data moves: a failback while the active copy is still
//! written loses nothing written before the final switch, and `demo churn`
//! writes only where the data is active.
//!
//! The test plays a writer the way `demo churn` is one: it holds the pool's
//! writers' fence (`.poolsync/locks/writers-<pool>.lock` in the store of the
//! active copy) while it writes. A switch must wait for it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{ATL2, Env, RED1, finished_ok, tree};

const DATACONF: &str = "ConfServices.DataConf";

/// Holds the writers' fence of `ATL2` in the store of `at`.
fn fence(env: &Env, at: &str) -> File {
    crate::common::hold_writers_fence(&env.store(at), ATL2)
}

fn active(env: &Env) -> PathBuf {
    env.store(RED1).join("backup").join(ATL2)
}

fn state(env: &Env) -> String {
    env.demo(&format!("get_pool(\"{ATL2}\").failover.state"))
        .stdout()
        .trim()
        .to_string()
}

/// Waits until the pool's state is `want`, or `child` has ended.
fn wait_for(env: &Env, want: &str, child: &mut std::process::Child) -> String {
    let started = Instant::now();
    loop {
        let s = state(env);
        if s == want || child.try_wait().unwrap().is_some() {
            return s;
        }
        assert!(started.elapsed() < Duration::from_mins(1), "stuck in {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A demo pair failed over as planned.
fn failed_over() -> Env {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    env.demo(&format!("invoke_pool_failover(\"{ATL2}\")"));
    env
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(DATACONF).join(name), text).unwrap();
}

#[test]
fn a_failback_while_the_active_copy_is_written_loses_nothing_written_before_the_switch() {
    let env = failed_over();
    let writer = fence(&env, RED1);
    write(&active(&env), "early.txt", "written as the failback starts");
    let mut failback = env
        .cmd()
        .args(["--demo", "-c", &format!("invoke_pool_failback(\"{ATL2}\")")])
        .start();
    // Writes are stopped, but a writer that began before is still writing:
    // the switch waits for it.
    let s = wait_for(&env, "SwitchingBack", &mut failback);
    assert_eq!(
        s, "SwitchingBack",
        "the failback did not wait for the writer"
    );
    write(
        &active(&env),
        "late.txt",
        "written after writes were stopped",
    );
    std::thread::sleep(Duration::from_millis(300));
    drop(writer);
    finished_ok(failback);
    let home = tree(&env.store(ATL2).join("data"));
    for (name, text) in [
        ("early.txt", "written as the failback starts"),
        ("late.txt", "written after writes were stopped"),
    ] {
        assert_eq!(
            home.get(&format!("{DATACONF}/{name}")).map(Vec::as_slice),
            Some(text.as_bytes()),
            "{name} was written before the final switch and must be at home"
        );
    }
    assert!(home == tree(&active(&env)), "home and its replica differ");
    let out = env.demo(&format!(
        "let r = invoke_backup_service_sync(\"{ATL2}\"); `${{r.items_copied}} ${{r.items_deleted}}`"
    ));
    assert_eq!(out.stdout().trim(), "0 0");
}

#[test]
fn demo_churn_waits_for_the_fence_stops_while_writes_are_stopped_and_follows_the_data_home() {
    let env = failed_over();
    // A switch holds the fence: churn waits rather than write under it.
    let switch = fence(&env, RED1);
    let before = tree(&active(&env));
    let churn = env
        .cmd()
        .args(["demo", "churn", "--pool", ATL2, "--percent", "10"])
        .start();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        tree(&active(&env)) == before,
        "churn wrote while the writers' fence was held"
    );
    drop(switch);
    let out = finished_ok(churn);
    assert!(out.stdout().contains("modified"), "{}", out.stdout());
    assert!(
        tree(&active(&env)) != before,
        "churn wrote at the active copy"
    );

    // While a failback's switch is under way, churn stops and writes nothing.
    let writer = fence(&env, RED1);
    let mut failback = env
        .cmd()
        .args(["--demo", "-c", &format!("invoke_pool_failback(\"{ATL2}\")")])
        .start();
    assert_eq!(
        wait_for(&env, "SwitchingBack", &mut failback),
        "SwitchingBack"
    );
    let served = tree(&active(&env));
    let err = env
        .cmd()
        .args(["demo", "churn", "--pool", ATL2, "--percent", "10"])
        .status(1)
        .stderr();
    assert!(err.contains("writes to its data are stopped"), "{err}");
    assert!(
        tree(&active(&env)) == served,
        "churn wrote during the switch"
    );
    drop(writer);
    finished_ok(failback);

    // Home again: churn follows the data there.
    let home = tree(&env.store(ATL2).join("data"));
    let replica = tree(&active(&env));
    env.cmd()
        .args(["demo", "churn", "--pool", ATL2, "--percent", "10"])
        .ok();
    assert!(
        tree(&env.store(ATL2).join("data")) != home,
        "churn wrote at home"
    );
    assert!(
        tree(&active(&env)) == replica,
        "nothing written at the old copy"
    );
}

#[test]
fn a_planned_failover_ships_what_was_written_at_home_before_writes_stopped() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let home = env.store(ATL2).join("data");
    let writer = fence(&env, ATL2);
    let mut failover = env
        .cmd()
        .args(["--demo", "-c", &format!("invoke_pool_failover(\"{ATL2}\")")])
        .start();
    let s = wait_for(&env, "SwitchingOver", &mut failover);
    assert_eq!(
        s, "SwitchingOver",
        "the failover did not wait for the writer"
    );
    write(&home, "late.txt", "written before the switch ended");
    std::thread::sleep(Duration::from_millis(300));
    drop(writer);
    finished_ok(failover);
    assert_eq!(
        std::fs::read_to_string(active(&env).join(DATACONF).join("late.txt")).unwrap(),
        "written before the switch ended",
        "the final sync shipped the last write"
    );
}
