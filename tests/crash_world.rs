//! A pair whose pools both change, round after round, and what a replica
//! must show after a sync was interrupted (killed, or stopped by a fault).
//!
//! Each round writes new content into some items, deletes some, renames some
//! (into other folders too) and adds some, in both pools, from a seeded
//! generator. The checks after an interruption, for each direction:
//!
//! - every replica item holds its old content or its new one, never torn
//!   bytes or anything foreign;
//! - the copies committed are whole batches, in the plan's order (the first
//!   k × batch items of the sorted list of copies, or all of them);
//! - deletions were made only after every copy, again whole batches in order;
//! - one batch may be half in place only while its journal is there, which
//!   the next run rolls forward (a kill during its renames).
//!
//! And after the next, uninterrupted run: every replica equals its source,
//! nothing is left staged, no journal is left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{poolsync_in, tree};
use crate::sync_props::{A, B, MODULE, pair_deployment};

pub(crate) type Tree = BTreeMap<String, Vec<u8>>;

/// `SplitMix64`: a small seeded generator (the test must not depend on the
/// order a random crate draws in).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The seed of a test: `POOLSYNC_TEST_SEED` if set (to replay a failure),
/// else `default`.
pub(crate) fn seed(default: u64) -> u64 {
    std::env::var("POOLSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The two directions: (source pool, replica holder).
pub(crate) const DIRECTIONS: [(&str, &str); 2] = [(A, B), (B, A)];

/// A pair in a folder of its own, and the generator of its changes.
pub(crate) struct World {
    pub dir: tempfile::TempDir,
    pub deployment: std::sync::Arc<poolsync::topology::Deployment>,
    pub batch: u64,
    rng: Rng,
    round: u32,
    next_name: u32,
}

/// The replicas before an interrupted run, and the sources it was syncing.
pub(crate) struct Snapshot {
    old: [Tree; 2],
    new: [Tree; 2],
}

/// What an interrupted run had done, in one direction.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Progress {
    pub copies_done: usize,
    pub copies: usize,
    pub deletes_done: usize,
    pub deletes: usize,
}

impl World {
    /// A pair, batches of `batch` items, `items` items in each pool at first.
    pub(crate) fn new(batch: u64, items: u32, seed: u64) -> World {
        let dir = tempfile::tempdir().unwrap();
        let deployment = pair_deployment(dir.path(), batch);
        let mut world = World {
            dir,
            deployment,
            batch,
            rng: Rng::new(seed),
            round: 0,
            next_name: 0,
        };
        for pool in [A, B] {
            for _ in 0..items {
                world.add(pool);
            }
        }
        world
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn data(&self, pool: &str) -> PathBuf {
        self.path()
            .join("stores")
            .join(pool)
            .join("data")
            .join(MODULE)
    }

    pub(crate) fn replica(&self, at: &str, of: &str) -> PathBuf {
        self.path()
            .join("stores")
            .join(at)
            .join("backup")
            .join(of)
            .join(MODULE)
    }

    fn body(&mut self, name: u32) -> Vec<u8> {
        let size = 200 + self.rng.below(3000) as usize;
        format!("item {name} round {} ", self.round)
            .repeat(size / 16 + 1)
            .into_bytes()
    }

    fn add(&mut self, pool: &str) {
        let name = self.next_name;
        self.next_name += 1;
        let folder = format!("d{:02}", self.rng.below(12));
        let file = self.data(pool).join(&folder).join(format!("n{name:05}"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let body = self.body(name);
        std::fs::write(file, body).unwrap();
    }

    /// One round of changes in both pools: about 12% of the items rewritten,
    /// 4% deleted, 4% renamed (to a new name, often in another folder), and
    /// as many added as were deleted.
    pub(crate) fn change(&mut self) {
        self.round += 1;
        for pool in [A, B] {
            let items: Vec<String> = tree(&self.data(pool)).into_keys().collect();
            let mut deleted = 0;
            for item in &items {
                let path = self.data(pool).join(item);
                match self.rng.below(100) {
                    0..12 => {
                        let name = self.next_name;
                        self.next_name += 1;
                        let body = self.body(name);
                        std::fs::write(&path, body).unwrap();
                    }
                    12..16 => {
                        std::fs::remove_file(&path).unwrap();
                        deleted += 1;
                    }
                    16..20 => {
                        let name = self.next_name;
                        self.next_name += 1;
                        let to = self
                            .data(pool)
                            .join(format!("d{:02}", self.rng.below(14)))
                            .join(format!("r{name:05}"));
                        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                        std::fs::rename(&path, to).unwrap();
                    }
                    _ => {}
                }
            }
            for _ in 0..deleted {
                self.add(pool);
            }
        }
    }

    /// The replicas as they are, and the sources as they are.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            old: DIRECTIONS.map(|(from, to)| tree(&self.replica(to, from))),
            new: DIRECTIONS.map(|(from, _)| tree(&self.data(from))),
        }
    }

    /// Checks each replica after an interrupted run against `snap`; returns
    /// what the run had done in each direction.
    pub(crate) fn check_interrupted(&self, snap: &Snapshot, label: &str) -> [Progress; 2] {
        let mut progress = [Progress::default(); 2];
        for (i, (from, to)) in DIRECTIONS.into_iter().enumerate() {
            let now = tree(&self.replica(to, from));
            let label = format!("{label}, {from} -> {to}");
            let batches = Batches {
                size: self.batch,
                journaled: self.journal(from, to).exists(),
            };
            progress[i] = check_replica(&snap.old[i], &snap.new[i], &now, batches, &label);
        }
        progress
    }

    /// The journal of the batch being committed from `from` into `to`.
    fn journal(&self, from: &str, to: &str) -> PathBuf {
        self.path()
            .join("stores")
            .join(to)
            .join(".poolsync/meta/journal")
            .join(from)
            .join(MODULE)
    }

    /// Checks that every replica equals its source, and that nothing is
    /// left staged and no journal is left.
    pub(crate) fn check_converged(&self, label: &str) {
        for (from, to) in DIRECTIONS {
            assert!(
                tree(&self.replica(to, from)) == tree(&self.data(from)),
                "{label}: the replica of {from} at {to} did not converge"
            );
        }
        let staged = self.staged();
        assert!(staged.is_empty(), "{label}: left staged: {staged:?}");
        for (from, to) in DIRECTIONS {
            let journal = self.journal(from, to);
            assert!(!journal.exists(), "{label}: a journal is left at {to}");
        }
    }

    /// Files in any staging area of either store.
    pub(crate) fn staged(&self) -> Vec<String> {
        let mut left = Vec::new();
        for pool in [A, B] {
            let store = self.path().join("stores").join(pool);
            for area in [
                store.join(".poolsync/staging"),
                store.join("backup/.poolsync-staging"),
            ] {
                left.extend(tree(&area).into_keys().map(|k| format!("{pool}: {k}")));
            }
        }
        left
    }

    /// A run of the binary that syncs pool A's pair (both directions).
    pub(crate) fn sync_cmd(&self) -> Command {
        let mut c = poolsync_in(self.path());
        c.arg("--deployment")
            .arg(self.path().join("deployment.toml"))
            .args([
                "-c",
                &format!("invoke_backup_service_sync(\"{A}\", #{{module: \"PresenceFocus\"}})"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Runs a sync that must succeed, then checks convergence.
    pub(crate) fn sync_and_check(&self, label: &str) {
        let out = self.sync_cmd().stderr(Stdio::piped()).output().unwrap();
        assert!(
            out.status.success(),
            "{label}: the run after failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.check_converged(label);
    }
}

/// How a direction commits: batches of `size` items, and whether a batch's
/// journal is there (its renames may be half done).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batches {
    pub size: u64,
    pub journaled: bool,
}

/// Checks one replica `now` after an interrupted sync from `old` toward
/// `new` (see the module's doc).
pub(crate) fn check_replica(
    old: &Tree,
    new: &Tree,
    now: &Tree,
    batches: Batches,
    label: &str,
) -> Progress {
    for (path, content) in now {
        let whole = old.get(path) == Some(content) || new.get(path) == Some(content);
        assert!(whole, "{label}: '{path}' is torn or foreign");
    }
    // The copies in the plan's order (by path bytes, as `tree` sorts them).
    let copies: Vec<&String> = new
        .iter()
        .filter(|(p, c)| old.get(*p) != Some(*c))
        .map(|(p, _)| p)
        .collect();
    let done: Vec<bool> = copies.iter().map(|p| now.get(*p) == new.get(*p)).collect();
    let copies_done = whole_batches(&done, batches, &format!("{label}: copies"));
    let deletes: Vec<&String> = old.keys().filter(|p| !new.contains_key(*p)).collect();
    let gone: Vec<bool> = deletes.iter().map(|p| !now.contains_key(*p)).collect();
    let deletes_done = whole_batches(&gone, batches, &format!("{label}: deletions"));
    assert!(
        deletes_done == 0 || copies_done == copies.len(),
        "{label}: {deletes_done} deletions made before every copy ({copies_done} of {})",
        copies.len()
    );
    Progress {
        copies_done,
        copies: copies.len(),
        deletes_done,
        deletes: deletes.len(),
    }
}

/// How many of `done` (in plan order) were done: whole batches from the
/// start, or all of them; with a journal, the batch after those may be done
/// in part. Returns the count done.
fn whole_batches(done: &[bool], batches: Batches, label: &str) -> usize {
    let size = batches.size as usize;
    let n = done.iter().take_while(|d| **d).count();
    let count = done.iter().filter(|d| **d).count();
    if n == done.len() {
        return n;
    }
    let whole = n - n % size;
    let end = if batches.journaled {
        (whole + size).min(done.len())
    } else {
        n
    };
    assert!(
        done[end..].iter().all(|d| !d),
        "{label}: done out of order: {n} first, then more past item {end}"
    );
    assert!(
        batches.journaled || n.is_multiple_of(size),
        "{label}: {n} of {} done with no journal, not whole batches of {size}",
        done.len()
    );
    count
}

#[test]
fn the_checks_catch_a_torn_item_a_half_batch_and_early_deletions() {
    let tree_of = |items: &[(&str, &str)]| -> Tree {
        items
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    };
    // Four copies (a..d) in batches of 2, one deletion (z).
    let old = tree_of(&[("a", "1"), ("b", "1"), ("z", "1")]);
    let new = tree_of(&[("a", "2"), ("b", "2"), ("c", "2"), ("d", "2")]);
    let plain = Batches {
        size: 2,
        journaled: false,
    };
    let check = |now: &[(&str, &str)], batches: Batches| {
        let now = tree_of(now);
        std::panic::catch_unwind(|| check_replica(&old, &new, &now, batches, "t")).is_ok()
    };
    // Whole batches: nothing, the first, both, then the deletion.
    assert!(check(&[("a", "1"), ("b", "1"), ("z", "1")], plain));
    assert!(check(&[("a", "2"), ("b", "2"), ("z", "1")], plain));
    assert!(check(
        &[("a", "2"), ("b", "2"), ("c", "2"), ("d", "2"), ("z", "1")],
        plain
    ));
    assert!(check(
        &[("a", "2"), ("b", "2"), ("c", "2"), ("d", "2")],
        plain
    ));
    // A torn or foreign item.
    assert!(!check(&[("a", "21"), ("b", "1"), ("z", "1")], plain));
    assert!(!check(
        &[("a", "1"), ("b", "1"), ("z", "1"), ("y", "1")],
        plain
    ));
    // Half a batch with no journal, or a batch out of order.
    assert!(!check(&[("a", "2"), ("b", "1"), ("z", "1")], plain));
    assert!(!check(
        &[("a", "1"), ("b", "1"), ("c", "2"), ("d", "2"), ("z", "1")],
        plain
    ));
    // A deletion before every copy.
    assert!(!check(&[("a", "2"), ("b", "2")], plain));
    // With a journal the batch after the whole ones may be half done, in
    // any order; the one after that may not.
    let journaled = Batches {
        size: 2,
        journaled: true,
    };
    assert!(check(
        &[("a", "2"), ("b", "2"), ("d", "2"), ("z", "1")],
        journaled
    ));
    assert!(check(&[("b", "2"), ("a", "1"), ("z", "1")], journaled));
    assert!(!check(
        &[("a", "1"), ("b", "1"), ("c", "2"), ("z", "1")],
        journaled
    ));
}
