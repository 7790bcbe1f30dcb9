//! Kills a real `poolsync` process (SIGKILL) at many points of a large sync and
//! checks that every replica item is at its old or its new content, then that the
//! next run converges and leaves no temporaries.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{poolsync_in, tree};
use crate::sync_props::{A, B, pair_deployment};

const MODULE: &str = "UserServices.PresenceFocus";

fn write_round(dir: &Path, round: u32) {
    let data = dir.join("stores").join(A).join("data").join(MODULE);
    for i in 0..1500u32 {
        // Each round rewrites two thirds of the items and adds some.
        if round == 0 || i % 3 != 0 {
            let f = data.join(format!("d{:02}/item-{i}", i % 40));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            let body = format!("round {round} item {i} ").repeat(40 + (i as usize % 50));
            std::fs::write(f, body).unwrap();
        }
    }
    if round > 0 {
        for i in 0..30u32 {
            std::fs::write(data.join(format!("d00/extra-{round}-{i}")), "x").unwrap();
        }
    }
}

fn sync_cmd(dir: &Path) -> Command {
    let mut c = poolsync_in(dir);
    c.arg("--deployment")
        .arg(dir.join("deployment.toml"))
        .args([
            "-c",
            &format!("invoke_backup_service_sync(\"{A}\", #{{module: \"PresenceFocus\"}})"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn kill_9_at_any_moment_leaves_old_or_new_content() {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), 25);
    let data = dir.path().join("stores").join(A).join("data").join(MODULE);
    let replica = dir
        .path()
        .join("stores")
        .join(B)
        .join("backup")
        .join(A)
        .join(MODULE);
    write_round(dir.path(), 0);
    let mut delays_that_interrupted = 0;
    for (round, delay_ms) in [5u64, 20, 40, 60, 90, 130, 180, 250]
        .into_iter()
        .enumerate()
    {
        let old = tree(&replica);
        if round > 0 {
            write_round(dir.path(), round as u32);
        }
        let new = tree(&data);
        let mut child = sync_cmd(dir.path()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        if killed {
            delays_that_interrupted += 1;
        }
        for (path, content) in tree(&replica) {
            assert!(
                old.get(&path) == Some(&content) || new.get(&path) == Some(&content),
                "round {round}: {path} is torn or foreign"
            );
        }
        // The next run completes the work.
        let status = sync_cmd(dir.path()).status().unwrap();
        assert!(status.success(), "round {round}: the rerun failed");
        assert!(tree(&replica) == new, "round {round}: no convergence");
        let staging = dir.path().join("stores").join(B).join(".poolsync/staging");
        let left = tree(&staging);
        assert!(
            left.is_empty(),
            "round {round}: temporaries left: {:?}",
            left.keys()
        );
        assert!(
            !dir.path()
                .join("stores")
                .join(B)
                .join(format!(".poolsync/meta/journal/{A}/{MODULE}"))
                .exists()
        );
    }
    assert!(
        delays_that_interrupted >= 3,
        "the kills landed mid-sync only {delays_that_interrupted} times"
    );
}

#[test]
fn ctrl_c_stops_a_sync_at_a_clean_point_with_130() {
    // A sync that finishes before the signal tests nothing: try earlier and
    // later signals until one lands mid-sync, and fail if none ever does.
    for delay in [120, 60, 30, 200, 15, 300] {
        if ctrl_c_mid_sync(Duration::from_millis(delay)) {
            return;
        }
    }
    panic!("every sync finished before its Ctrl-C");
}

/// One sync sent Ctrl-C after `delay`; false if it finished first.
fn ctrl_c_mid_sync(delay: Duration) -> bool {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), 20);
    let data = dir.path().join("stores").join(A).join("data").join(MODULE);
    let replica = dir
        .path()
        .join("stores")
        .join(B)
        .join("backup")
        .join(A)
        .join(MODULE);
    write_round(dir.path(), 0);
    let source = tree(&data);
    let mut cmd = sync_cmd(dir.path());
    cmd.stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(delay);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let copied = tree(&replica);
    if out.status.code() == Some(0) {
        // The sync won the race: check its result, and try another delay.
        assert_eq!(copied, source);
        return false;
    }
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(copied.len() < source.len(), "stopped before the end");
    // Whole batches only: the replica holds a multiple of the batch size... of
    // items, each at its source content.
    for (path, content) in &copied {
        assert_eq!(source.get(path), Some(content), "{path}");
    }
    assert_eq!(
        copied.len() % 20,
        0,
        "only whole batches are committed: {}",
        copied.len()
    );
    let status = sync_cmd(dir.path()).status().unwrap();
    assert!(status.success());
    assert!(tree(&replica) == source);
    true
}
