//! The replica's storage failing under a sync: a replica folder on a file
//! system of its own, that file system full, and read-only. Each test mounts
//! a small tmpfs (root only; without it the tests say loudly that they were
//! skipped, and fail in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ATL1, DAL1, Env, poolsync_in, tree};
use crate::sync_props::{A, B, pair_deployment};

/// A tmpfs mounted at a folder for the length of a test.
pub(crate) struct Mount(PathBuf);

impl Mount {
    pub(crate) fn tmpfs(at: &Path, size: &str, test: &str) -> Option<Mount> {
        Mount::tmpfs_with(at, &format!("size={size}"), test)
    }

    /// A tmpfs with mount options `options` (`size=1m,nr_inodes=40`).
    fn tmpfs_with(at: &Path, options: &str, test: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
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

    pub(crate) fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Mount {
    /// Where it is mounted.
    pub(crate) fn path(&self) -> &Path {
        &self.0
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

#[test]
fn a_store_whose_data_is_a_link_is_refused_once_with_what_to_do() {
    let env = Env::with_demo();
    let store = env.store(ATL1);
    let real = store.join("data.real");
    std::fs::rename(store.join("data"), &real).unwrap();
    // A loop (data -> data), then a link to a real folder: both refused the
    // same way, once for the store, not once per module.
    for target in [Path::new("data"), real.as_path()] {
        std::os::unix::fs::symlink(target, store.join("data")).unwrap();
        let expected = format!(
            "{}: its data/ is a symbolic link (to '{}'), and stores refuse links: nothing below it is read or written. Put the folder itself at data/",
            store.display(),
            target.display()
        );
        let out = sync(&env).status(1);
        let err = out.stderr();
        assert_eq!(err.matches(&expected).count(), 1, "{err}");
        assert!(!err.contains("Too many levels"), "{err}");
        std::fs::remove_file(store.join("data")).unwrap();
    }
    std::fs::rename(&real, store.join("data")).unwrap();
    sync(&env).ok();
}

const MODULE: &str = "UserServices.PresenceFocus";

/// A two-pool deployment in a new folder, batches of `batch` items, whose
/// pool A holds `items` files of `size` bytes in one module.
fn pair_with_items(batch: u64, items: u32, size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pair_deployment(dir.path(), batch);
    let data = dir.path().join("stores").join(A).join("data").join(MODULE);
    for i in 0..items {
        std::fs::write(
            data.join(format!("item-{i:03}")),
            vec![b'a' + (i % 26) as u8; size],
        )
        .unwrap();
    }
    dir
}

/// Syncs pool A of the pair in `dir` (its module only), with `opts` (a Rhai map).
fn sync_pair(dir: &Path, opts: &str) -> crate::common::Out {
    let mut c = poolsync_in(dir);
    c.arg("--deployment").arg(dir.join("deployment.toml")).args([
        "-c",
        &format!("invoke_backup_service_sync(\"{A}\", #{{module: \"PresenceFocus\"{opts}}}).items_copied"),
    ]);
    crate::common::Out(c.output().unwrap())
}

/// Where B keeps the replica of A's module, and B's store.
fn replica_of_a(dir: &Path) -> (PathBuf, PathBuf) {
    let store = dir.join("stores").join(B);
    (store.join("backup").join(A).join(MODULE), store)
}

/// The number in "The N items copied before" of a full-disk message.
fn kept_items(err: &str) -> u64 {
    let Some(at) = err.find("The ") else {
        return 0;
    };
    err[at + 4..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_disk_that_fills_after_some_batches_keeps_them_and_says_what_was_discarded() {
    // 110 items of 4,097 bytes, batches of 20: each item takes two 4 KiB
    // pages of the 600 KiB tmpfs, twice what the batch's byte count says,
    // so a batch that the free space seemed to allow fills the disk while
    // it is staged.
    let dir = pair_with_items(20, 110, 4097);
    let (replica, store) = replica_of_a(dir.path());
    let Some(mount) = Mount::tmpfs(
        &store.join("backup"),
        "600k",
        "a_disk_that_fills_after_some_batches_keeps_them_and_says_what_was_discarded",
    ) else {
        return;
    };
    let out = sync_pair(dir.path(), "");
    assert_eq!(out.0.status.code(), Some(1), "{}", out.stderr());
    let err = out.stderr();
    let expected_start = format!(
        "no space left on {} (for backup/{A}/{MODULE}): needed ",
        store.display()
    );
    assert!(err.contains(&expected_start), "{err}");
    assert!(
        err.contains(": No space left on device (os error 28); free some space"),
        "{err}"
    );
    assert!(
        err.contains(
            "the batch being staged (20 items) was discarded, and nothing of it is left staged"
        ),
        "{err}"
    );
    // What it says it kept is what the replica holds: whole batches, each
    // item whole.
    let kept = kept_items(&err);
    assert!(kept > 0 && kept.is_multiple_of(20), "{err}");
    assert!(
        err.contains(&format!(
            "The {kept} items copied before, in {} whole batches, are kept",
            kept / 20
        )),
        "{err}"
    );
    let source = tree(&dir.path().join("stores").join(A).join("data").join(MODULE));
    let held = tree(&replica);
    assert_eq!(held.len() as u64, kept);
    for (path, content) in &held {
        assert_eq!(source.get(path), Some(content), "{path}");
    }
    assert!(staged(&store).is_empty(), "{:?}", staged(&store));
    mount.remount("size=8m");
    let out = sync_pair(dir.path(), "");
    assert_eq!(out.0.status.code(), Some(0), "{}", out.stderr());
    assert_eq!(tree(&replica), source);
}

#[test]
fn a_full_disk_fails_even_with_force() {
    let dir = pair_with_items(20, 40, 64 << 10);
    let (replica, store) = replica_of_a(dir.path());
    let Some(_mount) = Mount::tmpfs(
        &store.join("backup"),
        "1m",
        "a_full_disk_fails_even_with_force",
    ) else {
        return;
    };
    // force silences warnings; a disk that is full is no warning.
    let out = sync_pair(dir.path(), ", force: true");
    assert_eq!(out.0.status.code(), Some(1), "{}", out.stderr());
    let err = out.stderr();
    assert!(
        err.contains(&format!(
            "no space left on {} (for backup/{A}/{MODULE}): needed 1310720 bytes, ",
            store.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("Nothing was committed before; the next batch (20 items) was not begun"),
        "{err}"
    );
    assert!(tree(&replica).is_empty());
    assert!(staged(&store).is_empty());
}

#[test]
fn a_file_system_out_of_inodes_says_so_with_the_system_s_error() {
    // Room for bytes, not for files: 30 inodes. The first batch of 20 seems
    // to fit (28 free), but its staging folders take inodes too.
    let dir = pair_with_items(20, 40, 100);
    let (replica, store) = replica_of_a(dir.path());
    let Some(mount) = Mount::tmpfs_with(
        &store.join("backup"),
        "size=64m,nr_inodes=30",
        "a_file_system_out_of_inodes_says_so_with_the_system_s_error",
    ) else {
        return;
    };
    let out = sync_pair(dir.path(), "");
    assert_eq!(out.0.status.code(), Some(1), "{}", out.stderr());
    let err = out.stderr();
    assert!(
        err.contains(&format!("no inodes left on {} (for backup/{A}/{MODULE}): its file system can make no more files (0 free of 30): No space left on device (os error 28); delete files there (or give it more inodes) and sync again", store.display())),
        "{err}"
    );
    assert!(
        err.contains("the batch being staged (20 items) was discarded"),
        "{err}"
    );
    assert!(!err.contains("bytes"), "{err}");
    assert!(staged(&store).is_empty(), "{:?}", staged(&store));
    mount.remount("nr_inodes=200");
    let out = sync_pair(dir.path(), "");
    assert_eq!(out.0.status.code(), Some(0), "{}", out.stderr());
    assert_eq!(tree(&replica).len(), 40);
}

/// Copies the folder `from` into `to` (the contents, not the folder).
fn copy_into(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_pool_whose_data_is_its_own_mount_is_restored_through_staging_there() {
    use crate::common::{ATL2, RED1};
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let store = env.store(ATL2);
    let data = store.join("data");
    let saved = env.path().join("saved-data");
    std::fs::rename(&data, &saved).unwrap();
    let Some(_mount) = Mount::tmpfs(
        &data,
        "256m",
        "a_pool_whose_data_is_its_own_mount_is_restored_through_staging_there",
    ) else {
        return;
    };
    copy_into(&saved, &data);
    let module = data.join("ConfServices.DataConf");
    let replica = tree(
        &env.store(RED1)
            .join("backup")
            .join(ATL2)
            .join("ConfServices.DataConf"),
    );
    // The pool loses half of its conference content, and edits one item.
    let names: Vec<&String> = replica.keys().collect();
    for name in names.iter().step_by(2) {
        std::fs::remove_file(module.join(name)).unwrap();
    }
    let edited = names[1];
    std::fs::write(module.join(edited), "local edit").unwrap();

    // A restore writes into data/: staged on data's own file system, renamed
    // into place; the pool's own version goes to quarantine/, on the root's.
    let out = env.demo(&format!(
        "restore_pool_data(\"{ATL2}\", #{{module: \"DataConf\", overwrite: true}}).quarantine.folder"
    ));
    let folder = out.stdout().trim().to_string();
    assert_eq!(tree(&module), replica, "the module is whole again");
    let aside = store
        .join(folder)
        .join("ConfServices.DataConf")
        .join(edited);
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "local edit");
    assert!(staged(&store).is_empty(), "{:?}", staged(&store));
    // The staging folder on the mount is the store's, never an item: the
    // next sync copies nothing and deletes nothing.
    let out = env.demo(&format!(
        "let r = invoke_backup_service_sync(\"{ATL2}\", #{{module: \"DataConf\"}}); [r.items_copied, r.items_deleted]"
    ));
    assert_eq!(out.stdout().split_whitespace().collect::<String>(), "[0,0]");
}

#[test]
fn a_mount_that_cannot_be_staged_on_fails_at_once_naming_both_and_stages_nothing() {
    let env = Env::with_demo();
    let store = env.store(DAL1);
    let backup = store.join("backup");
    let Some(_mount) = Mount::tmpfs(
        &backup,
        "256m",
        "a_mount_that_cannot_be_staged_on_fails_at_once_naming_both_and_stages_nothing",
    ) else {
        return;
    };
    // A file where the mount's staging folder must be: nothing can be
    // staged on the replica's file system, and a copy staged elsewhere could
    // not be renamed into place atomically.
    let in_the_way = backup.join(".poolsync-staging");
    std::fs::write(&in_the_way, "not a folder").unwrap();
    let expected =
        format!("cannot stage on the file system of 'backup/{ATL1}/UserServices.PresenceFocus/");
    let expected_mounts = format!(
        "': it is a mount of its own at {}, apart from the store root {}, and its staging folder {} cannot be used (a file or a link is in the way); a rename into place is atomic only within one file system, so nothing was copied: remove what is in the way at {} and sync again",
        backup.display(),
        store.display(),
        in_the_way.display(),
        in_the_way.display()
    );
    let out = sync(&env).status(1);
    let err = out.stderr();
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains(&expected_mounts), "{err}");
    // At once: one error per module and direction, no warning per item.
    assert!(!err.contains("warning: cannot copy"), "{err}");
    assert!(tree(&backup.join(ATL1)).is_empty());
    assert!(staged(&store).is_empty(), "{:?}", staged(&store));
    // Once the file is moved away, the next sync stages there and converges.
    std::fs::remove_file(&in_the_way).unwrap();
    sync(&env).ok();
    assert!(tree(&backup.join(ATL1)) == tree(&env.store(ATL1).join("data")));
}
