//! `invoke_backup_service_sync` through the real binary, on the demo.

use std::os::unix::io::AsRawFd;
use std::time::Duration;

use crate::common::{ATL1, ATL2, DAL1, Env, RED1, RED3, tree};

fn assert_in_sync(env: &Env, a: &str, b: &str) {
    assert_module_in_sync(env, a, b, "");
}

/// Every replica of the pair equals its source (for modules starting with `module`).
fn assert_module_in_sync(env: &Env, a: &str, b: &str, module: &str) {
    for (from, to) in [(a, b), (b, a)] {
        let src = tree(&env.store(from).join("data"));
        let dst: std::collections::BTreeMap<_, _> = tree(&env.store(to).join("backup").join(from))
            .into_iter()
            .filter(|(k, _)| k.starts_with(module))
            .collect();
        let src: std::collections::BTreeMap<_, _> = src
            .into_iter()
            .filter(|(k, _)| {
                (!k.starts_with("CentralMgmt") || from == ATL1) && k.starts_with(module)
            })
            .collect();
        assert_eq!(
            src.keys().collect::<Vec<_>>(),
            dst.keys().collect::<Vec<_>>(),
            "{from} -> {to}"
        );
        assert!(src == dst, "{from} -> {to}: contents differ");
    }
}

#[test]
fn churn_then_sync_copies_exactly_the_changes() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let churn = env
        .cmd()
        .args(["demo", "churn", "--pool", ATL1, "--percent", "4"])
        .ok();
    // "atl-cs-001...: round 1: M modified, A added, D deleted"
    let words: Vec<u64> = churn
        .stdout()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let n = words.len();
    let (modified, added, deleted) = (words[n - 3], words[n - 2], words[n - 1]);
    assert!(modified > 0 && added > 0 && deleted > 0);
    let r = env.demo_json(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let from_atl: Vec<&serde_json::Value> = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == ATL1)
        .collect();
    let copied: u64 = from_atl
        .iter()
        .map(|m| m["items_copied"].as_u64().unwrap())
        .sum();
    let gone: u64 = from_atl
        .iter()
        .map(|m| m["items_deleted"].as_u64().unwrap())
        .sum();
    assert_eq!(copied, modified + added);
    assert_eq!(gone, deleted);
    let from_dal: u64 = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == DAL1)
        .map(|m| m["items_copied"].as_u64().unwrap())
        .sum();
    assert_eq!(from_dal, 0);
    assert_in_sync(&env, ATL1, DAL1);
}

#[test]
fn nothing_changed_nothing_copied_nothing_written() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let replica = env.store(RED1).join("backup").join(ATL2);
    let some = replica.join("UserServices.PresenceFocus/users/0000");
    let first = std::fs::read_dir(&some)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before = std::fs::metadata(&first).unwrap();
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL2}\").items_copied"
    ));
    assert_eq!(out.stdout().trim(), "0");
    let after = std::fs::metadata(&first).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        before.ino(),
        after.ino(),
        "the replica item was not rewritten"
    );
}

#[test]
fn an_edit_that_keeps_size_and_mtime_is_still_caught() {
    let env = Env::with_demo();
    env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"DataConf\"}})"
    ));
    let conf = env
        .store(ATL1)
        .join("data/ConfServices.DataConf/conferences");
    let dir = std::fs::read_dir(&conf)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    // Like `touch -r`: put the old modification time back.
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"DataConf\"}}).items_copied"
    ));
    assert_eq!(out.stdout().trim(), "1");
    assert_module_in_sync(&env, ATL1, DAL1, "ConfServices.DataConf");
}

#[test]
fn the_guard_never_wipes_a_replica() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let replica = env.store(DAL1).join("backup").join(ATL1);
    let before = tree(&replica);
    std::fs::remove_dir_all(env.store(ATL1).join("data")).unwrap();
    let out = env
        .cmd()
        .args([
            "--demo",
            "-c",
            &format!("invoke_backup_service_sync(\"{ATL1}\")"),
        ])
        .status(1);
    let err = out.stderr();
    assert!(err.contains("refusing to wipe the replica"), "{err}");
    assert!(err.contains("allow_mass_delete"), "{err}");
    assert_eq!(before, tree(&replica), "the replica is intact");
    // Restoring from the replica stays possible; then syncs work again.
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&replica)
        .arg(env.store(ATL1).join("data"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\").items_deleted"
    ));
    assert_eq!(out.stdout().trim(), "0");
    assert_in_sync(&env, ATL1, DAL1);
}

#[test]
fn the_guard_refuses_to_delete_most_of_a_replica_unless_told() {
    let env = Env::with_demo();
    env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL2}\", #{{module: \"PresenceFocus\"}})"
    ));
    let users = env
        .store(ATL2)
        .join("data/UserServices.PresenceFocus/users");
    let mut dirs: Vec<_> = std::fs::read_dir(&users)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for d in &dirs[..8] {
        std::fs::remove_dir_all(d).unwrap();
    }
    let code = format!("invoke_backup_service_sync(\"{ATL2}\", #{{module: \"PresenceFocus\"}})");
    let out = env.cmd().args(["--demo", "-c", &code]).status(1);
    assert!(
        out.stderr()
            .contains("refusing to delete 400 of the 600 items"),
        "{}",
        out.stderr()
    );
    // The error's advice is a call that works as written (it named an option
    // that backup_pool and the service reject).
    let err = out.stderr();
    let at = err.find("sync it once with ").expect("advice") + "sync it once with ".len();
    let call = &err[at..at + err[at..].find("})").expect("a whole call") + 2];
    assert_eq!(
        call,
        format!(
            "invoke_backup_service_sync(\"{ATL2}\", #{{module: \"PresenceFocus\", allow_mass_delete: true}})"
        )
    );
    assert_eq!(
        env.demo(&format!("{call}.items_deleted")).stdout().trim(),
        "400"
    );
}

#[test]
fn what_if_changes_nothing_and_predicts_the_sync() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    env.cmd()
        .args(["demo", "churn", "--pool", DAL1, "--percent", "5"])
        .ok();
    env.cmd()
        .args(["demo", "churn", "--pool", ATL1, "--percent", "3"])
        .ok();
    let before = (tree(&env.store(ATL1)), tree(&env.store(DAL1)));
    let predicted = env.demo_json(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{what_if: true}})"
    ));
    assert!(
        before == (tree(&env.store(ATL1)), tree(&env.store(DAL1))),
        "what_if wrote something"
    );
    let actual = env.demo_json(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let pm = predicted["modules"].as_array().unwrap();
    let am = actual["modules"].as_array().unwrap();
    assert_eq!(pm.len(), am.len());
    for (p, a) in pm.iter().zip(am) {
        for key in [
            "module",
            "from",
            "to",
            "items_copied",
            "bytes_copied",
            "items_deleted",
            "items_unchanged",
            "batches",
        ] {
            assert_eq!(
                p[key], a[key],
                "{key} of {} {} -> {}",
                p["module"], p["from"], p["to"]
            );
        }
        let would = p
            .get("would_copy")
            .and_then(|w| w.as_array())
            .map_or(0, std::vec::Vec::len) as u64;
        assert_eq!(would, a["items_copied"].as_u64().unwrap());
    }
    assert!(am.iter().any(|m| m["items_copied"].as_u64().unwrap() > 0));
    assert_in_sync(&env, ATL1, DAL1);
}

#[test]
fn module_selection_and_the_cms() {
    let env = Env::with_demo();
    let out = env.demo(&format!(
            "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"dataconf\"}}).modules.map(|m| m.module)"
        ),
    );
    assert_eq!(
        out.stdout().trim(),
        "ConfServices.DataConf\nConfServices.DataConf"
    );
    let out = env.demo(&format!(
            "invoke_backup_service_sync(\"{DAL1}\", #{{module: \"CentralMgmt.CMSMaster\"}}).modules.map(|m| `${{m.from}}>${{m.to}}`)"
        ),
    );
    assert_eq!(
        out.stdout().trim(),
        format!("{ATL1}>{DAL1}"),
        "the CMS flows from the master only"
    );
    let out = env
        .cmd()
        .args([
            "--demo",
            "-c",
            &format!(
                "invoke_backup_service_sync(\"{ATL2}\", #{{module: \"CMSMaster\"}}).warnings.len()"
            ),
        ])
        .ok();
    assert!(
        out.stderr()
            .contains("warning: CentralMgmt.CMSMaster is not carried by this pair"),
        "{}",
        out.stderr()
    );
    assert_eq!(out.stdout().trim(), "1");
    let out = env.cmd().args(["--demo", "-c", &format!("invoke_backup_service_sync(\"{ATL2}\", #{{module: \"CMSMaster\", force: true}}).warnings.len()")]).ok();
    assert!(
        out.stderr().is_empty(),
        "force hides warnings: {}",
        out.stderr()
    );
    assert_eq!(out.stdout().trim(), "1", "but keeps them in the report");
}

#[test]
fn bad_options_and_targets_are_clear_errors() {
    let env = Env::with_demo();
    for (code, needle) in [
        (
            format!("invoke_backup_service_sync(\"{ATL1}\", #{{modul: \"All\"}})"),
            "unknown option 'modul'",
        ),
        (
            format!("invoke_backup_service_sync(\"{ATL1}\", #{{force: \"yes\"}})"),
            "option 'force' must be true or false",
        ),
        (
            format!("invoke_backup_service_sync(\"{ATL1}\", #{{module: \"Everything\"}})"),
            "unknown module 'Everything'",
        ),
        (
            format!("invoke_backup_service_sync(\"{RED3}\")"),
            "has no backup pool",
        ),
        (
            "invoke_backup_service_sync(\"x.litwareinc.com\")".to_string(),
            "no pool 'x.litwareinc.com'",
        ),
        (
            "invoke_backup_service_sync([1])".to_string(),
            "a target must be a pool FQDN or a Pool",
        ),
    ] {
        let out = env.cmd().args(["--demo", "-c", &code]).status(1);
        assert!(out.stderr().contains(needle), "{code}: {}", out.stderr());
    }
    assert!(
        !env.store(DAL1).join("backup").join(ATL1).exists(),
        "nothing ran"
    );
}

#[test]
fn array_targets_sync_each_pair_once() {
    let env = Env::with_demo();
    let out = env.demo(&format!(
            "[\"{ATL1}\", \"{DAL1}\", get_pool(\"{ATL2}\")].invoke_backup_service_sync().map(|r| r.pool)"
        ),
    );
    assert_eq!(out.stdout().trim(), format!("{ATL1}\n{ATL2}"));
    let out = env.demo("get_pool(#{site: \"Atlanta\"}).invoke_backup_service_sync().len()");
    assert_eq!(out.stdout().trim(), "2");
    assert_in_sync(&env, ATL2, RED1);
}

#[test]
fn method_style_on_strings_and_pools() {
    let env = Env::with_demo();
    let out = env.demo(&format!(
        "\"{ATL1}\".invoke_backup_service_sync(#{{what_if: true}}).what_if"
    ));
    assert_eq!(out.stdout().trim(), "true");
    let out = env.demo(&format!(
        "get_pool(\"{DAL1}\").invoke_backup_service_sync().backup_pool"
    ));
    assert_eq!(out.stdout().trim(), ATL1);
}

#[test]
fn links_in_a_source_are_skipped_not_followed() {
    let env = Env::with_demo();
    let data = env.store(ATL1).join("data/UserServices.PresenceFocus");
    std::os::unix::fs::symlink("/etc", data.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", data.join("host-link")).unwrap();
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\").items_copied"
    ));
    assert!(
        out.stderr().contains("symbolic links are not followed"),
        "{}",
        out.stderr()
    );
    let replica = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("UserServices.PresenceFocus");
    assert!(!replica.join("etc-link").exists() && !replica.join("host-link").exists());
}

#[test]
fn item_names_in_warnings_cannot_drive_the_terminal() {
    let env = Env::with_demo();
    let data = env.store(ATL1).join("data/UserServices.PresenceFocus");
    // A link (skipped with a warning that names it) whose name would set the
    // terminal's title, colour the rest red, and forge a line of output.
    let name = "t\x1b]0;pwned\x07\x1b[31mred\nall pairs in sync\u{202e}";
    std::os::unix::fs::symlink("/etc", data.join(name)).unwrap();
    let out = env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\").items_copied"
    ));
    let stderr = out.stderr();
    let warning: Vec<&str> = stderr.lines().filter(|l| l.contains("pwned")).collect();
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(
        warning[0].contains(r"t\u{1b}]0;pwned\u{7}\u{1b}[31mred\nall pairs in sync\u{202e}'"),
        "{stderr}"
    );
    assert!(!stderr.contains(['\x1b', '\x07', '\u{202e}']), "{stderr:?}");
}

/// Opens (creating when `create`) the folders `depth` times `segment` deep
/// below `base`, one at a time: the whole path is too long for one call.
fn deep_folder(base: &std::path::Path, segment: &str, depth: usize, create: bool) -> std::fs::File {
    use rustix::fs::{Mode, OFlags};
    let mut dir = std::fs::File::open(base).unwrap();
    for _ in 0..depth {
        if create {
            rustix::fs::mkdirat(&dir, segment, Mode::from_raw_mode(0o755)).unwrap();
        }
        let fd = rustix::fs::openat(
            &dir,
            segment,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        dir = std::fs::File::from(fd);
    }
    dir
}

#[test]
fn an_item_path_longer_than_path_max_is_copied_and_deleted() {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let env = Env::with_demo();
    let module = "UserServices.PresenceFocus";
    let (segment, depth) = ("d".repeat(200), 22); // 22 x 201 bytes: over 4,096
    let source = deep_folder(
        &env.store(ATL1).join("data").join(module),
        &segment,
        depth,
        true,
    );
    let file = rustix::fs::openat(
        &source,
        "deep.txt",
        OFlags::CREATE | OFlags::WRONLY,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&file, b"deep content").unwrap();
    drop(file);
    let code = format!(
        "let r = invoke_backup_service_sync(\"{ATL1}\", #{{module: \"PresenceFocus\"}}); `${{r.items_copied}} ${{r.items_deleted}} ${{r.warnings.len()}}`"
    );
    let out = env.demo(&code);
    let stdout = out.stdout();
    let copied: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(copied.len(), 3, "{}", out.stdout());
    assert!(
        copied[0] != "0" && copied[2] == "0",
        "{}{}",
        out.stdout(),
        out.stderr()
    );
    let replica = env.store(DAL1).join("backup").join(ATL1).join(module);
    let folder = deep_folder(&replica, &segment, depth, false);
    let fd = rustix::fs::openat(&folder, "deep.txt", OFlags::RDONLY, Mode::empty()).unwrap();
    let mut content = [0u8; 64];
    let n = rustix::io::read(&fd, &mut content).unwrap();
    assert_eq!(&content[..n], b"deep content");

    rustix::fs::unlinkat(&source, "deep.txt", AtFlags::empty()).unwrap();
    let out = env.demo(&code);
    assert_eq!(out.stdout().trim(), "0 1 0", "{}", out.stderr());
    assert!(rustix::fs::statat(&folder, "deep.txt", AtFlags::SYMLINK_NOFOLLOW).is_err());
}

#[test]
fn odd_item_names_survive() {
    let env = Env::with_demo();
    let data = env.store(ATL1).join("data/ConfServices.DataConf");
    for name in ["slides#12", "a b", "..dots", "ünïcödé", "#1"] {
        std::fs::write(data.join(name), name).unwrap();
    }
    std::fs::write(data.join(std::ffi::OsStr::new("bad\u{1}name")), "x").unwrap();
    env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"DataConf\"}})"
    ));
    assert_module_in_sync(&env, ATL1, DAL1, "ConfServices.DataConf");
}

#[test]
fn a_held_pair_lock_makes_the_sync_wait() {
    let env = Env::with_demo();
    env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{what_if: true}})"
    ));
    // Take the pair lock the way another poolsync would.
    let locks = env.store(ATL1).join(".poolsync/locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = std::fs::File::create(locks.join(format!("pair-{ATL1}-{DAL1}.lock"))).unwrap();
    // SAFETY: flock on the descriptor of a file this test holds open.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    let child = env
        .cmd()
        .args([
            "--demo",
            "-c",
            &format!("invoke_backup_service_sync(\"{ATL1}\").items_copied"),
        ])
        .cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !env.store(DAL1).join("backup").join(ATL1).exists(),
        "the sync waited"
    );
    drop(lock);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for the pair lock"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1229");
    assert_in_sync(&env, ATL1, DAL1);
}

#[test]
fn two_processes_syncing_one_pair_serialise() {
    let env = Env::with_demo();
    env.cmd()
        .args(["demo", "churn", "--pool", ATL1, "--percent", "10"])
        .ok();
    let spawn = || {
        env.cmd()
            .args([
                "--demo",
                "-c",
                &format!("invoke_backup_service_sync(\"{ATL1}\").items_copied"),
            ])
            .cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let copied: Vec<u64> = [&a, &b]
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().parse().unwrap())
        .collect();
    // Whoever went second found nothing left to copy.
    assert_eq!(copied.iter().filter(|c| **c == 0).count(), 1, "{copied:?}");
    let expected =
        tree(&env.store(ATL1).join("data")).len() + tree(&env.store(DAL1).join("data")).len();
    assert_eq!(copied.iter().sum::<u64>(), expected as u64, "{copied:?}");
    assert_in_sync(&env, ATL1, DAL1);
}

#[test]
fn replicas_keep_permissions_and_modification_times() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = Env::with_demo();
    let data = env.store(ATL1).join("data/ConfServices.DataConf");
    let private = data.join("private.key");
    std::fs::write(&private, "secret").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&private)
        .unwrap()
        .set_modified(old)
        .unwrap();
    env.demo(&format!(
        "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"DataConf\"}})"
    ));
    let copy = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("ConfServices.DataConf/private.key");
    let md = std::fs::metadata(&copy).unwrap();
    assert_eq!(
        md.mode() & 0o777,
        0o600,
        "not readable by others on the partner's disk"
    );
    assert_eq!(md.modified().unwrap(), old);
}

#[test]
fn a_replica_folder_replaced_by_a_link_is_not_written_through() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let module = "UserServices.PresenceFocus";
    let folder = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join(module)
        .join("users/0000");
    let outside = env.path().join("outside");
    std::fs::rename(&folder, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &folder).unwrap();
    let before = tree(&outside);
    let names: Vec<String> = before.keys().cloned().collect();
    assert!(names.len() >= 2);
    let source = env.store(ATL1).join("data").join(module).join("users/0000");
    let sync_fails = || {
        let out = env
            .cmd()
            .args([
                "--demo",
                "-c",
                &format!("invoke_backup_service_sync(\"{ATL1}\", #{{module: \"PresenceFocus\"}})"),
            ])
            .status(1);
        assert!(
            out.stderr().contains("'backup/") && out.stderr().contains("is not a plain folder"),
            "{}",
            out.stderr()
        );
        assert_eq!(tree(&outside), before, "written through the link");
    };
    // An item of that folder is deleted at the source: nothing is unlinked
    // through the link.
    std::fs::remove_file(source.join(&names[1])).unwrap();
    sync_fails();
    // One changes: nothing is written through it.
    std::fs::write(source.join(&names[0]), "changed").unwrap();
    sync_fails();
}

#[test]
fn items_touched_but_not_changed_are_not_copied_again() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::with_demo();
    let data = env.store(ATL1).join("data/ConfServices.DataConf");
    // One item small enough to be read once into memory, one larger (hashed,
    // then copied in a second pass only if it changed).
    let small = data.join("small.bin");
    let large = data.join("large.bin");
    std::fs::write(&small, vec![7u8; 1000]).unwrap();
    std::fs::write(&large, vec![9u8; 600 * 1024]).unwrap();
    let dataconf = |tail: &str| {
        env.demo(&format!(
            "invoke_backup_service_sync(\"{ATL1}\", #{{module: \"DataConf\"}}).{tail}"
        ))
        .stdout()
        .trim()
        .to_string()
    };
    dataconf("items_copied");
    let replica = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("ConfServices.DataConf");
    let inodes = || {
        [&replica.join("small.bin"), &replica.join("large.bin")]
            .map(|p| std::fs::metadata(p).unwrap().ino())
    };
    let before = inodes();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    for file in [&small, &large] {
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    assert_eq!(dataconf("items_copied"), "0");
    assert_eq!(inodes(), before, "an unchanged item was written again");

    // Same sizes, new content: both are copied.
    std::fs::write(&small, vec![8u8; 1000]).unwrap();
    let mut bytes = vec![9u8; 600 * 1024];
    bytes[600 * 1024 - 1] = 1;
    std::fs::write(&large, &bytes).unwrap();
    assert_eq!(dataconf("bytes_copied"), (1000 + 600 * 1024).to_string());
    assert_module_in_sync(&env, ATL1, DAL1, "ConfServices.DataConf");
}

#[test]
fn a_batch_over_many_folders_stays_within_a_low_open_file_limit() {
    use std::os::unix::process::CommandExt;
    let env = Env::with_demo();
    let data = env.store(ATL1).join("data/UserServices.PresenceFocus");
    // One item in each of 1,200 folders: more folders in one batch than the
    // process may have files open.
    let write_all = |round: u8| {
        for i in 0..1200 {
            let folder = data.join(format!("wide/f{i:04}"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(
                folder.join("item.json"),
                format!("{{\"round\": {round}, \"i\": {i}}}"),
            )
            .unwrap();
        }
    };
    let limited_sync = || {
        let mut run = env.cmd().args([
            "--demo",
            "-c",
            &format!(
                "let r = invoke_backup_service_sync(\"{ATL1}\", #{{module: \"PresenceFocus\"}}); `${{r.modules[0].items_copied}} ${{r.modules[0].items_deleted}}`"
            ),
        ]);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            run.cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 512,
                    rlim_max: 512,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        run.ok().stdout().trim().to_string()
    };
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    write_all(1);
    assert_eq!(limited_sync(), "1200 0");
    // Replace every one of them (each rename replaces a file) and delete some.
    std::thread::sleep(Duration::from_millis(20));
    write_all(2);
    for i in 0..100 {
        std::fs::remove_file(data.join(format!("wide/f{i:04}/item.json"))).unwrap();
    }
    assert_eq!(limited_sync(), "1100 100");
    assert_module_in_sync(&env, ATL1, DAL1, "UserServices.PresenceFocus");
}

#[test]
fn the_debug_log_times_each_step_and_is_off_by_default() {
    let env = Env::with_demo();
    let code = format!(
        "let r = invoke_backup_service_sync(\"{ATL1}\", #{{module: \"PresenceFocus\"}}); r.modules.reduce(|sum, m| sum + m.batches, 0)"
    );
    let quiet = env.cmd().args(["--demo", "-c", &code]).ok();
    assert!(!quiet.stderr().contains("DEBUG"), "{}", quiet.stderr());

    std::fs::write(
        env.store(ATL1)
            .join("data/UserServices.PresenceFocus/users/new.json"),
        "{}",
    )
    .unwrap();
    let out = env
        .cmd()
        .env("POOLSYNC_LOG", "debug")
        .args(["--demo", "-c", &code])
        .ok();
    let log = out.stderr();
    let batches: usize = out.stdout().trim().parse().unwrap();
    assert_eq!(batches, 1, "{log}");
    let lines = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(lines("DEBUG planned"), 2, "one plan per direction:\n{log}");
    assert_eq!(lines("DEBUG batch staged"), batches, "{log}");
    assert_eq!(lines("DEBUG batch committed"), batches, "{log}");
    assert_eq!(lines("DEBUG direction done"), 2, "{log}");
    assert!(
        log.contains("candidates=1 deletes=0") && log.contains("durable_ms="),
        "{log}"
    );

    let bad = env
        .cmd()
        .env("POOLSYNC_LOG", "loud")
        .args(["--demo", "-c", "1"])
        .status(2);
    assert!(
        bad.stderr().contains(
            "POOLSYNC_LOG must be one of off, error, warn, info, debug or trace, not 'loud'"
        ),
        "{}",
        bad.stderr()
    );
}
