//! The sync engine through its library API: a property test over random trees
//! and rounds of changes, and a fault-injecting store.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use poolsync::store::{
    ByteStream, Hash, ItemFailures, ItemPath, Listing, LocalStore, LockHolder, StageWriter, Staged,
    Store, StoreError, StoreLocation, StoreLock, StoreResult,
};
use poolsync::sync::{SyncEngine, SyncError, SyncOptions, SyncReport};
use poolsync::topology::{self, Deployment, Module, ModuleSelection};
use proptest::prelude::*;

use crate::common::{PairToml, tree};

mod faults;

pub const A: &str = "a.test.com";
pub const B: &str = "b.test.com";
const MODULE: &str = "UserServices.PresenceFocus";

pub fn pair_deployment(dir: &Path, batch_items: u64) -> Arc<Deployment> {
    let file = PairToml::new(A, B)
        .backup_service(&format!("batch_max_items = {batch_items}"))
        .write(dir);
    let text = std::fs::read_to_string(&file).unwrap();
    Arc::new(topology::parse(&text, &file, dir).unwrap())
}

fn data(dir: &Path, pool: &str) -> std::path::PathBuf {
    dir.join("stores").join(pool).join("data").join(MODULE)
}

fn replica(dir: &Path, at: &str, of: &str) -> std::path::PathBuf {
    dir.join("stores")
        .join(at)
        .join("backup")
        .join(of)
        .join(MODULE)
}

/// Writes items `f<i>` at the root of pool A's module, with content `<version>-<i>`.
fn write_items(dir: &Path, range: std::ops::Range<u32>, version: &str) {
    for i in range {
        std::fs::write(data(dir, A).join(format!("f{i}")), format!("{version}-{i}")).unwrap();
    }
}

/// A pair in a new folder whose pool A holds f0..f{n-1} ("v1-i"), synced once;
/// batches of `batch` items.
fn synced_pair(batch: u64, n: u32) -> (tempfile::TempDir, Arc<Deployment>) {
    let dir = tempfile::tempdir().unwrap();
    let d = pair_deployment(dir.path(), batch);
    write_items(dir.path(), 0..n, "v1");
    run(&SyncEngine::new(d.clone()), &options()).unwrap();
    (dir, d)
}

fn remove_items(dir: &Path, range: std::ops::Range<u32>) {
    for i in range {
        std::fs::remove_file(data(dir, A).join(format!("f{i}"))).unwrap();
    }
}

/// The options of a dry run.
fn what_if() -> SyncOptions {
    SyncOptions {
        what_if: true,
        ..options()
    }
}

/// (copied, deleted, batches) of one direction.
fn counts(m: &poolsync::sync::DirectionReport) -> (u64, u64, u64) {
    (m.items_copied, m.items_deleted, m.batches)
}

fn options() -> SyncOptions {
    SyncOptions {
        modules: ModuleSelection::One(Module::PresenceFocus),
        allow_mass_delete: true,
        ..SyncOptions::default()
    }
}

fn run(engine: &SyncEngine, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(engine.sync_pair(&crate::common::pair(engine, A), opts))
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        pool: bool,
        path: String,
        content: Vec<u8>,
    },
    Delete {
        pool: bool,
        pick: usize,
    },
    Rename {
        pool: bool,
        pick: usize,
        to: String,
    },
}

/// Paths of one to three segments over few names, so that an item often takes
/// the name of a folder ("a" and "a/x") or of a file ("a/x" and "a/x/v").
fn path_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a", "b", "c d", "e#1"]),
        prop::sample::select(vec!["x", "y.json", "z#2", "w 1", "v"]),
        prop::sample::select(vec!["v", "x"]),
        prop::sample::select(vec![1, 2, 2, 2, 3]),
    )
        .prop_map(|(d, f, g, depth)| match depth {
            1 => d.to_string(),
            2 => format!("{d}/{f}"),
            _ => format!("{d}/{f}/{g}"),
        })
}

/// Makes room for an item at `path` below `root`, as a user replacing a file
/// by a folder (or the reverse) would: removes a file where a folder of the
/// path must be, and a folder where the item must be.
fn make_room(root: &Path, path: &str) {
    let mut at = root.to_path_buf();
    let segments: Vec<&str> = path.split('/').collect();
    for segment in &segments[..segments.len() - 1] {
        at.push(segment);
        if at.is_file() {
            std::fs::remove_file(&at).unwrap();
        }
    }
    let item = root.join(path);
    if item.is_dir() {
        std::fs::remove_dir_all(&item).unwrap();
    }
    std::fs::create_dir_all(item.parent().unwrap()).unwrap();
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), path_strategy(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(pool, path, content)| Op::Write { pool, path, content }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(pool, pick)| Op::Delete { pool, pick }),
        1 => (any::<bool>(), any::<usize>(), path_strategy()).prop_map(|(pool, pick, to)| Op::Rename { pool, pick, to }),
    ]
}

fn apply(dir: &Path, op: &Op) {
    let pool_dir = |p: bool| data(dir, if p { A } else { B });
    match op {
        Op::Write {
            pool,
            path,
            content,
        } => {
            make_room(&pool_dir(*pool), path);
            std::fs::write(pool_dir(*pool).join(path), content).unwrap();
        }
        Op::Delete { pool, pick } => {
            let files: Vec<String> = tree(&pool_dir(*pool)).into_keys().collect();
            if !files.is_empty() {
                std::fs::remove_file(pool_dir(*pool).join(&files[pick % files.len()])).unwrap();
            }
        }
        Op::Rename { pool, pick, to } => {
            let files: Vec<String> = tree(&pool_dir(*pool)).into_keys().collect();
            let Some(picked) = files.get(pick % files.len().max(1)) else {
                return;
            };
            // Onto itself, or where the room it needs would remove it first.
            if to == picked
                || to.starts_with(&format!("{picked}/"))
                || picked.starts_with(&format!("{to}/"))
            {
                return;
            }
            make_room(&pool_dir(*pool), to);
            std::fs::rename(pool_dir(*pool).join(picked), pool_dir(*pool).join(to)).unwrap();
        }
    }
}

/// (copied, deleted) that a sync from `src` into `old` must report.
fn true_difference(src: &BTreeMap<String, Vec<u8>>, old: &BTreeMap<String, Vec<u8>>) -> (u64, u64) {
    let copied = src.iter().filter(|(k, v)| old.get(*k) != Some(v)).count() as u64;
    let deleted = old.keys().filter(|k| !src.contains_key(*k)).count() as u64;
    (copied, deleted)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replicas_equal_sources_after_every_round(
        rounds in prop::collection::vec(prop::collection::vec(op_strategy(), 0..12), 1..5),
        batch in 1u64..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = pair_deployment(dir.path(), batch);
        let engine = SyncEngine::new(d);
        for ops in &rounds {
            for op in ops {
                apply(dir.path(), op);
            }
            let before = [(A, B), (B, A)].map(|(from, to)| (tree(&data(dir.path(), from)), tree(&replica(dir.path(), to, from))));
            let report = run(&engine, &options()).unwrap();
            for (i, (from, to)) in [(A, B), (B, A)].into_iter().enumerate() {
                let src = tree(&data(dir.path(), from));
                let dst = tree(&replica(dir.path(), to, from));
                prop_assert_eq!(&src, &dst, "{} -> {}", from, to);
                let (copied, deleted) = true_difference(&before[i].0, &before[i].1);
                let m = report.modules.iter().find(|m| m.from.as_str() == from).unwrap();
                prop_assert_eq!(m.items_copied, copied, "copied {} -> {}", from, to);
                prop_assert_eq!(m.items_deleted, deleted, "deleted {} -> {}", from, to);
                prop_assert_eq!(m.items_copied + m.items_unchanged, src.len() as u64);
            }
        }
    }
}
