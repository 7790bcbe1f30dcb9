//! Storage faults at random points of syncs in both directions, with
//! writes, deletions and renames in flight: after each, the replicas pass
//! the checks of `crash_world` (every item old or new, whole batches in
//! order), and the next run converges and leaves nothing staged.
//!
//! - ENOSPC, EIO, EROFS and EDQUOT injected through `FaultyStore` into a
//!   random operation (staging, commit, flush, metadata write, read, list) of
//!   a random store, from a random occurrence on;
//! - real file systems (root only): replica folders on small tmpfs mounts
//!   that fill at a random batch, and that are remounted read-only at a
//!   random moment of a running sync.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::crash_world::{Rng, World, seed};
use crate::faults::Mount;
use crate::sync_props::faulty_store::{Fault, FaultyStore};
use crate::sync_props::{A, B, options, run};

/// Injected fault points that must fire (the run meets its fault).
const INJECTED: usize = 80;

#[test]
fn injected_storage_faults_at_random_points_leave_old_or_new_and_converge() {
    let seed = seed(3);
    let mut world = World::new(5, 120, seed);
    let mut rng = Rng::new(seed ^ 0xfa17);
    world.sync_and_check("the first sync");
    let errnos = [libc::ENOSPC, libc::EIO, libc::EROFS, libc::EDQUOT];
    let kinds = [
        Fault::Stage,
        Fault::Commit,
        Fault::Durable,
        Fault::MetaPut,
        Fault::Read,
        Fault::List,
    ];
    let (mut fired, mut tries) = (0, 0);
    let mut part_way = 0;
    while fired < INJECTED {
        tries += 1;
        assert!(tries < 4 * INJECTED, "only {fired} of {tries} faults fired");
        world.change();
        let snap = world.snapshot();
        let errno = errnos[rng.below(4) as usize];
        let kind = kinds[rng.below(6) as usize];
        let pool = if rng.below(2) == 0 { A } else { B };
        let at = rng.below(12);
        let label = format!("seed {seed}, try {tries}: errno {errno} on {kind:?} #{at} of {pool}");
        let engine =
            FaultyStore::engine_with(&world.deployment, world.path(), pool, kind, at, Some(errno));
        if run(&engine, &options()).is_err() {
            fired += 1;
        }
        let progress = world.check_interrupted(&snap, &label);
        if progress
            .iter()
            .any(|p| p.copies_done > 0 && p.copies_done < p.copies)
        {
            part_way += 1;
        }
        world.sync_and_check(&label);
    }
    eprintln!("{fired} injected faults fired in {tries} tries; {part_way} left a replica part way");
    assert!(part_way >= 10, "only {part_way} faults hit mid-direction");
}

/// The tmpfs mounts at both replica folders of a world (root only).
struct Mounts(Vec<Mount>);

impl Mounts {
    fn new(world: &World, size: &str, test: &str) -> Option<Mounts> {
        let mut mounts = Vec::new();
        for pool in [A, B] {
            let at = world.path().join("stores").join(pool).join("backup");
            mounts.push(Mount::tmpfs(&at, size, test)?);
        }
        Some(Mounts(mounts))
    }

    /// Remounts every one with `options`; false if one refused (busy).
    fn remount(&self, options: &str) -> bool {
        self.0.iter().all(|m| {
            Command::new("mount")
                .args(["-o", &format!("remount,{options}")])
                .arg(m.path())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Bytes in use on the mount at `at`.
    fn used(at: &Path) -> u64 {
        let st = rustix::fs::statvfs(at).unwrap();
        (st.f_blocks - st.f_bfree) * st.f_frsize
    }
}

/// Real points for each kind of fault on a real file system.
const REAL: usize = 20;

#[test]
fn replica_disks_that_fill_at_random_batches_fail_cleanly_and_converge() {
    let seed = seed(4);
    let mut world = World::new(5, 120, seed);
    let Some(mounts) = Mounts::new(
        &world,
        "64m",
        "replica_disks_that_fill_at_random_batches_fail_cleanly_and_converge",
    ) else {
        return;
    };
    let mut rng = Rng::new(seed ^ 0xf011);
    world.sync_and_check("the first sync");
    let mut full = 0;
    for point in 0..REAL {
        world.change();
        let snap = world.snapshot();
        // Room for a random part of this round's changes (in 4 KiB pages).
        for at in mounts.0.iter().map(Mount::path) {
            let room = (Mounts::used(at) + 4096 * (4 + rng.below(40))).to_string();
            assert!(
                Command::new("mount")
                    .args(["-o", &format!("remount,size={room}")])
                    .arg(at)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let label = format!("seed {seed}, point {point}");
        let out = world.sync_cmd().stderr(Stdio::piped()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            full += 1;
            assert_eq!(out.status.code(), Some(1), "{label}: {err}");
            assert!(
                err.contains("no space left on") || err.contains("no inodes left on"),
                "{label}: {err}"
            );
            let staged = world.staged();
            assert!(
                staged.is_empty(),
                "{label}: left staged by the failed run: {staged:?}"
            );
        }
        world.check_interrupted(&snap, &label);
        assert!(mounts.remount("size=64m"));
        world.sync_and_check(&label);
    }
    eprintln!("{full} of {REAL} runs met a full replica disk");
    assert!(
        full >= REAL / 2,
        "only {full} of {REAL} runs met a full disk"
    );
}

#[test]
fn replicas_remounted_read_only_at_random_moments_fail_cleanly_and_converge() {
    let seed = seed(5);
    let mut world = World::new(5, 150, seed);
    let Some(mounts) = Mounts::new(
        &world,
        "64m",
        "replicas_remounted_read_only_at_random_moments_fail_cleanly_and_converge",
    ) else {
        return;
    };
    let mut rng = Rng::new(seed ^ 0x0e0f);
    let started = std::time::Instant::now();
    world.sync_and_check("the first sync");
    let mut full_run = started.elapsed();
    let (mut refused, mut tries) = (0, 0);
    // Until REAL runs met the read-only disk: a remount may land after the
    // run ended, or be refused (busy) until then.
    while refused < REAL {
        tries += 1;
        assert!(
            tries <= 5 * REAL,
            "only {refused} of {tries} runs met the read-only disk"
        );
        world.change();
        let snap = world.snapshot();
        let label = format!("seed {seed}, try {tries}");
        let child = world.sync_cmd().stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(
            rng.below(full_run.as_micros() as u64 + 1),
        ));
        // A file open for writing makes the kernel refuse (busy): try until
        // it takes, or the run has ended.
        while !mounts.remount("ro") {
            std::thread::sleep(Duration::from_millis(1));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            refused += 1;
            assert_eq!(out.status.code(), Some(1), "{label}: {err}");
            assert!(err.contains("Read-only file system"), "{label}: {err}");
        }
        world.check_interrupted(&snap, &label);
        assert!(mounts.remount("rw"));
        let started = std::time::Instant::now();
        world.sync_and_check(&label);
        full_run = started.elapsed();
    }
    eprintln!("{refused} of {tries} runs met a replica disk turned read-only");
}
