//! The sync engine through its library API: a property test over random trees
//! and rounds of changes, and the cases it would rarely draw (an item and a
//! folder that trade places, an item the replica refuses, memory stores).
//! The helpers here are shared with `faults` and the crash tests.

use bytes::Bytes;
use poolsync::store::{ItemPath, StoreError};
use poolsync::sync::{SyncEngine, SyncError, SyncOptions, SyncReport};
use poolsync::topology::{self, Deployment, Module, ModuleSelection};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::common::{PairToml, tree};

mod faults;
pub(crate) mod faulty_store;

pub(crate) const A: &str = "a.test.com";
pub(crate) const B: &str = "b.test.com";
pub(crate) const MODULE: &str = "UserServices.PresenceFocus";

pub(crate) fn pair_deployment(dir: &Path, batch_items: u64) -> Arc<Deployment> {
    let file = PairToml::new(A, B)
        .backup_service(&format!("batch_max_items = {batch_items}"))
        .write(dir);
    let text = std::fs::read_to_string(&file).unwrap();
    Arc::new(topology::parse(&text, &file, dir).unwrap())
}

pub(crate) fn data(dir: &Path, pool: &str) -> std::path::PathBuf {
    dir.join("stores").join(pool).join("data").join(MODULE)
}

pub(crate) fn replica(dir: &Path, at: &str, of: &str) -> std::path::PathBuf {
    dir.join("stores")
        .join(at)
        .join("backup")
        .join(of)
        .join(MODULE)
}

/// Writes items `f<i>` at the root of pool A's module, with content `<version>-<i>`.
pub(crate) fn write_items(dir: &Path, range: std::ops::Range<u32>, version: &str) {
    for i in range {
        std::fs::write(data(dir, A).join(format!("f{i}")), format!("{version}-{i}")).unwrap();
    }
}

/// A pair in a new folder whose pool A holds f0..f{n-1} ("v1-i"), synced once;
/// batches of `batch` items.
pub(crate) fn synced_pair(batch: u64, n: u32) -> (tempfile::TempDir, Arc<Deployment>) {
    let dir = tempfile::tempdir().unwrap();
    let d = pair_deployment(dir.path(), batch);
    write_items(dir.path(), 0..n, "v1");
    run(&SyncEngine::new(d.clone()), &options()).unwrap();
    (dir, d)
}

pub(crate) fn remove_items(dir: &Path, range: std::ops::Range<u32>) {
    for i in range {
        std::fs::remove_file(data(dir, A).join(format!("f{i}"))).unwrap();
    }
}

/// The options of a dry run.
pub(crate) fn what_if() -> SyncOptions {
    SyncOptions {
        what_if: true,
        ..options()
    }
}

/// (copied, deleted, batches) of one direction.
pub(crate) fn counts(m: &poolsync::sync::DirectionReport) -> (u64, u64, u64) {
    (m.items_copied, m.items_deleted, m.batches)
}

pub(crate) fn options() -> SyncOptions {
    SyncOptions {
        modules: ModuleSelection::One(Module::PresenceFocus),
        allow_mass_delete: true,
        ..SyncOptions::default()
    }
}

pub(crate) fn run(engine: &SyncEngine, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
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

#[test]
fn an_item_and_a_folder_that_trade_places_sync_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = pair_deployment(dir.path(), 10);
    let src = data(dir.path(), A);
    write_items(dir.path(), 0..3, "v1");
    std::fs::create_dir_all(src.join("k/l")).unwrap();
    std::fs::write(src.join("k/l/f"), "in a folder").unwrap();
    std::fs::write(src.join("k/g"), "in a folder too").unwrap();
    std::fs::write(src.join("m"), "a file").unwrap();
    run(&SyncEngine::new(d.clone()), &options()).unwrap();

    // The folder k becomes a file, the file m a folder.
    std::fs::remove_dir_all(src.join("k")).unwrap();
    std::fs::write(src.join("k"), "now a file").unwrap();
    std::fs::remove_file(src.join("m")).unwrap();
    std::fs::create_dir_all(src.join("m/n")).unwrap();
    std::fs::write(src.join("m/n/o"), "now in a folder").unwrap();

    let predicted = run(&SyncEngine::new(d.clone()), &what_if()).unwrap();
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    let forward = &report.modules[0];
    assert!(forward.error.is_none(), "{:?}", forward.error);
    // The three deletions go with the copies that need the room: one batch.
    assert_eq!(
        (forward.items_copied, forward.items_deleted, forward.batches),
        (2, 3, 1)
    );
    assert_eq!(counts(&predicted.modules[0]), counts(forward));
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&src));
}

#[test]
fn an_item_the_replica_refuses_waits_and_the_rest_goes_in() {
    let (dir, d) = synced_pair(10, 4);
    // Things put into the replica by hand, unknown to its manifest, where the
    // source now has a file `x` and a file `y/z`; f0 changes and f3 goes.
    let replica_b = replica(dir.path(), B, A);
    std::fs::create_dir_all(replica_b.join("x")).unwrap();
    std::fs::write(replica_b.join("x/junk"), "by hand").unwrap();
    std::fs::write(replica_b.join("y"), "by hand").unwrap();
    std::fs::write(data(dir.path(), A).join("x"), "file x").unwrap();
    std::fs::create_dir_all(data(dir.path(), A).join("y")).unwrap();
    std::fs::write(data(dir.path(), A).join("y/z"), "file y/z").unwrap();
    write_items(dir.path(), 0..1, "v2");
    std::fs::remove_file(data(dir.path(), A).join("f3")).unwrap();

    let report = run(&SyncEngine::new(d.clone()), &options()).expect("refused items are not fatal");
    let forward = &report.modules[0];
    assert_eq!((forward.items_copied, forward.items_deleted), (1, 0));
    assert_eq!(forward.pending_items, 3, "x, y/z and the deletion of f3");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("'backup/a.test.com/UserServices.PresenceFocus/x'")),
        "{:?}",
        report.warnings
    );
    assert_eq!(std::fs::read(replica_b.join("f0")).unwrap(), b"v2-0");
    assert_eq!(std::fs::read(replica_b.join("x/junk")).unwrap(), b"by hand");

    // Once the things in the way are moved out, everything goes through.
    std::fs::remove_dir_all(replica_b.join("x")).unwrap();
    std::fs::remove_file(replica_b.join("y")).unwrap();
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    assert_eq!(
        (
            report.modules[0].items_copied,
            report.modules[0].items_deleted
        ),
        (2, 1)
    );
    assert_eq!(tree(&replica_b), tree(&data(dir.path(), A)));
}

#[test]
fn memory_stores_sync_like_local_ones() {
    use object_store::{ObjectStoreExt, PutPayload, path::Path as OPath};
    let text = PairToml::new(A, B)
        .one_site("S")
        .stores(Some("memory://props-a"), Some("memory://props-b"))
        .text();
    let d = Arc::new(topology::parse(&text, Path::new("m.toml"), Path::new(".")).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = poolsync::store::memory_backend("props-a");
    let key = |i: u32| OPath::from(format!("data/{MODULE}/u/{i:02}#x.json"));
    rt.block_on(async {
        for i in 0..10 {
            backend
                .put(&key(i), PutPayload::from(format!("item {i}")))
                .await
                .unwrap();
        }
    });
    let engine = SyncEngine::new(d.clone());
    let r = rt
        .block_on(engine.sync_pair(&crate::common::pair(&engine, A), &options()))
        .unwrap();
    assert_eq!(r.items_copied(), 10);
    let b = engine.store(d.pool(B).unwrap()).unwrap();
    let read = |i: u32| {
        let p = ItemPath::parse(format!("backup/{A}/{MODULE}/u/{i:02}#x.json")).unwrap();
        rt.block_on(async {
            use futures::TryStreamExt;
            let chunks: Vec<Bytes> = b.read(&p).await?.try_collect().await?;
            Ok::<_, StoreError>(chunks.concat())
        })
    };
    assert_eq!(read(3).unwrap(), b"item 3");
    rt.block_on(async {
        backend
            .put(&key(3), PutPayload::from("changed"))
            .await
            .unwrap();
        backend.delete(&key(4)).await.unwrap();
    });
    let r = rt
        .block_on(engine.sync_pair(&crate::common::pair(&engine, A), &options()))
        .unwrap();
    assert_eq!((r.items_copied(), r.items_deleted()), (1, 1));
    assert_eq!(read(3).unwrap(), b"changed");
    assert!(read(4).unwrap_err().is_not_found());
}
