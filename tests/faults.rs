//! The replica's storage failing under a sync: a replica folder on a file
//! system of its own, that file system full, and read-only. Each test mounts
//! a small tmpfs (root only; without it the tests say loudly that they were
//! skipped, and fail in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ATL1, DAL1, Env, tree};

/// A tmpfs mounted at a folder for the length of a test.
pub struct Mount(PathBuf);

impl Mount {
    pub fn tmpfs(at: &Path, size: &str, test: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Mount(at.to_path_buf()));
        }
        let message =
            format!("\n*** SKIPPED {test}: cannot mount a tmpfs (run the tests as root)\n");
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}*** In CI these tests must run."
        );
        eprint!("{message}");
        None
    }

    pub fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Files left in any staging area of a store.
fn staged(store: &Path) -> Vec<String> {
    let mut left: Vec<String> = tree(&store.join(".poolsync/staging")).into_keys().collect();
    for area in [
        store.join("backup/.poolsync-staging"),
        store.join("data/.poolsync-staging"),
    ] {
        left.extend(tree(&area).into_keys());
    }
    left
}

fn sync(env: &Env) -> crate::common::Run {
    env.cmd().args([
        "--demo",
        "-c",
        &format!("invoke_backup_service_sync(\"{ATL1}\").items_copied"),
    ])
}

#[test]
fn a_replica_on_its_own_mount_is_staged_there_and_syncs() {
    let env = Env::with_demo();
    let backup = env.store(DAL1).join("backup");
    let Some(_mount) = Mount::tmpfs(
        &backup,
        "256m",
        "a_replica_on_its_own_mount_is_staged_there_and_syncs",
    ) else {
        return;
    };
    sync(&env).ok();
    let data = tree(&env.store(ATL1).join("data"));
    assert!(
        tree(&backup.join(ATL1)) == data,
        "the replica on its own mount is whole"
    );
    assert!(
        staged(&env.store(DAL1)).is_empty(),
        "{:?}",
        staged(&env.store(DAL1))
    );
    // The staging area is the store's own: never listed as an item.
    let out = env.demo(&format!("debug_inter_pool_replication(\"{ATL1}\").in_sync"));
    assert_eq!(out.stdout().trim(), "true");
}

#[test]
fn a_full_replica_disk_fails_the_sync_cleanly_and_the_next_one_converges() {
    let env = Env::with_demo();
    let backup = env.store(DAL1).join("backup");
    let Some(mount) = Mount::tmpfs(
        &backup,
        "2m",
        "a_full_replica_disk_fails_the_sync_cleanly_and_the_next_one_converges",
    ) else {
        return;
    };
    let before = tree(&backup);
    let out = sync(&env).status(1);
    let err = out.stderr();
    assert!(
        err.contains(&format!("no space left on {}", env.store(DAL1).display())),
        "{err}"
    );
    assert!(err.contains(" free; free some space"), "{err}");
    assert!(
        staged(&env.store(DAL1)).is_empty(),
        "staged left: {:?}",
        staged(&env.store(DAL1))
    );
    // Whole batches only: what the replica holds is whole items of the source.
    let data = tree(&env.store(ATL1).join("data"));
    for (path, content) in tree(&backup.join(ATL1)) {
        assert_eq!(data.get(&path), Some(&content), "{path}");
    }
    assert!(before.is_empty());
    let status = env.demo(&format!(
        "get_backup_service_status(\"{ATL1}\").backup_modules.filter(|m| m.export_status == \"ErrorState\").map(|m| m.last_error)"
    ));
    assert!(
        status.stdout().contains("no space left on"),
        "{}",
        status.stdout()
    );
    // Space is freed: the next sync converges.
    mount.remount("size=256m");
    sync(&env).ok();
    assert!(tree(&backup.join(ATL1)) == data);
    assert!(staged(&env.store(DAL1)).is_empty());
}

#[test]
fn a_read_only_replica_fails_with_a_clear_message_and_stages_nothing() {
    let env = Env::with_demo();
    let backup = env.store(DAL1).join("backup");
    let Some(mount) = Mount::tmpfs(
        &backup,
        "64m",
        "a_read_only_replica_fails_with_a_clear_message_and_stages_nothing",
    ) else {
        return;
    };
    mount.remount("ro");
    let out = sync(&env).status(1);
    assert!(
        out.stderr().contains("Read-only file system"),
        "{}",
        out.stderr()
    );
    assert!(staged(&env.store(DAL1)).is_empty());
    mount.remount("rw");
    sync(&env).ok();
}
