//! Kills a real `poolsync` process (SIGKILL) at random points of syncs in
//! both directions, with writes, deletions and renames in flight, and checks
//! each time what `crash_world` describes: every replica item old or new,
//! whole batches in order, and a next run that converges and leaves nothing
//! staged. Also: Ctrl-C stops a sync at a clean point.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{poolsync_in, tree};
use crate::crash_world::{Rng, World, seed};
use crate::sync_props::{A, B, pair_deployment};

const MODULE: &str = "UserServices.PresenceFocus";

/// Kill points each test lands while the run is still going.
const POINTS: usize = 110;

/// Where in a run a kill landed, from the run's debug log: the last step it
/// had logged, and the direction.
fn phase(log: &str) -> String {
    let steps = [
        "planned",
        "batch staged",
        "batch committed",
        "direction done",
    ];
    let Some((line, step)) = log
        .lines()
        .rev()
        .find_map(|l| steps.iter().find(|s| l.contains(*s)).map(|s| (l, *s)))
    else {
        return "before the first plan (lock, recovery, listing)".into();
    };
    let to = if line.contains(&format!("to={B}")) {
        "A -> B"
    } else {
        "B -> A"
    };
    match step {
        "planned" => format!("{to}: planned, staging the first batch"),
        "batch staged" => {
            format!("{to}: a batch staged, committing (journal, flush, renames, manifest log)")
        }
        "batch committed" => format!("{to}: a batch committed, staging or deleting the next"),
        _ => format!("{to}: done, writing status, compacting the manifest or flushing"),
    }
}

/// Where kills landed (how many in each phase of a run), and how many left a
/// replica part way: some batches of copies or deletions in, some not.
struct Landed {
    phases: std::collections::BTreeMap<String, usize>,
    part_way: usize,
}

/// Lands `POINTS` kills on syncs of a world with batches of `batch` items.
fn kill_at_random_points(seed: u64, batch: u64, items: u32) -> Landed {
    let mut world = World::new(batch, items, seed);
    let mut rng = Rng::new(seed ^ 0x5eed);
    let log = world.path().join("run.log");
    let started = Instant::now();
    world.sync_and_check("the first sync");
    let mut full_run = started.elapsed();
    let mut found = Landed {
        phases: std::collections::BTreeMap::new(),
        part_way: 0,
    };
    let mut landed = 0;
    let mut tries = 0;
    // POINTS kills, and more (within bounds) while a part of the run has
    // had too few: the delays are random, and a loaded machine shifts them.
    while landed < POINTS || (spread_shortfall(&found).is_some() && tries < 4 * POINTS) {
        tries += 1;
        assert!(
            tries < 3 * POINTS || landed >= POINTS,
            "only {landed} of {tries} kills landed mid-run"
        );
        world.change();
        let snap = world.snapshot();
        let label = format!("seed {seed}, kill {tries}");
        let delay = Duration::from_micros(rng.below(full_run.as_micros() as u64 * 11 / 10 + 1));
        let mut child = world
            .sync_cmd()
            .env("POOLSYNC_LOG", "debug")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        let progress = world.check_interrupted(&snap, &label);
        if progress.iter().any(|p| {
            (p.copies_done > 0 && p.copies_done < p.copies)
                || (p.deletes_done > 0 && p.deletes_done < p.deletes)
        }) {
            found.part_way += 1;
        }
        if running {
            landed += 1;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            *found.phases.entry(phase(&text)).or_insert(0) += 1;
        }
        let started = Instant::now();
        world.sync_and_check(&label);
        full_run = started.elapsed();
    }
    found
}

/// What the kills so far still lack: some in every part of a run, in both
/// directions, and many that left a replica part way. `None` when nothing.
fn spread_shortfall(landed: &Landed) -> Option<String> {
    let phases = &landed.phases;
    if landed.part_way < 15 {
        return Some(format!(
            "only {} kills left a replica part way",
            landed.part_way
        ));
    }
    let count = |f: &dyn Fn(&str) -> bool| -> usize {
        phases.iter().filter(|(k, _)| f(k)).map(|(_, n)| n).sum()
    };
    for part in ["A -> B: ", "B -> A: ", "before the first plan"] {
        let n = count(&|k| k.starts_with(part));
        if n < 5 {
            return Some(format!("only {n} kills landed in {part}"));
        }
    }
    for step in [
        "staging the first batch",
        "committing",
        "staging or deleting the next",
    ] {
        let n = count(&|k| k.contains(step));
        if n < 3 {
            return Some(format!("only {n} kills landed while {step}"));
        }
    }
    None
}

/// Checks that the kills covered every part of a run (see `spread_shortfall`).
fn assert_spread(landed: &Landed) {
    eprintln!(
        "kill points by phase: {:#?}; {} left a replica part way",
        landed.phases, landed.part_way
    );
    if let Some(short) = spread_shortfall(landed) {
        panic!("{short}: {:#?}", landed.phases);
    }
}

#[test]
fn kill_9_at_random_points_leaves_old_or_new_and_whole_batches_small_batches() {
    // Batches of 5: many commits per run, so kills land in every step.
    assert_spread(&kill_at_random_points(seed(1), 5, 150));
}

#[test]
fn kill_9_at_random_points_leaves_old_or_new_and_whole_batches_larger_batches() {
    // Batches of 20 and more items: kills land in longer stagings.
    assert_spread(&kill_at_random_points(seed(2), 20, 300));
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
    // SAFETY: a signal to the child this test started and has not reaped.
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
