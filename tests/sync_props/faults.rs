//! The sync engine under injected faults, through its library API: each
//! operation of a store failing in turn, listings that miss a folder, reads
//! that fail, commits and flushes that fail, and the storage faults (EIO,
//! EDQUOT) a full or failing disk gives.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use poolsync::store::{ItemPath, Store, StoreLocation};
use poolsync::sync::{SyncEngine, SyncError};
use poolsync::topology;

use super::faulty_store::{Fault, FaultyStore};
use super::{
    A, B, MODULE, counts, data, options, pair_deployment, remove_items, replica, run, synced_pair,
    what_if, write_items,
};
use crate::common::tree;

#[test]
fn injected_faults_leave_old_or_new_content_and_the_next_sync_converges() {
    for fault in [
        Fault::List,
        Fault::Read,
        Fault::Stage,
        Fault::Commit,
        Fault::MetaPut,
        Fault::Durable,
    ] {
        for at in [0u64, 1, 3, 7] {
            let dir = tempfile::tempdir().unwrap();
            let d = pair_deployment(dir.path(), 4);
            for i in 0..20 {
                std::fs::create_dir_all(data(dir.path(), A).join(format!("d{}", i % 3))).unwrap();
                std::fs::write(
                    data(dir.path(), A).join(format!("d{}/f{i}", i % 3)),
                    format!("v1-{i}"),
                )
                .unwrap();
            }
            run(&SyncEngine::new(d.clone()), &options()).unwrap();
            let old = tree(&replica(dir.path(), B, A));
            for i in 0..20 {
                let f = data(dir.path(), A).join(format!("d{}/f{i}", i % 3));
                match i % 4 {
                    0 => std::fs::remove_file(&f).unwrap(),
                    1 | 2 => std::fs::write(&f, format!("v2-{i}")).unwrap(),
                    _ => {}
                }
            }
            std::fs::write(data(dir.path(), A).join("d0/new"), "new").unwrap();
            let new = tree(&data(dir.path(), A));

            // The faulty side: the source for reads and lists, the destination for the rest.
            let faulty_pool = if matches!(fault, Fault::List | Fault::Read) {
                A
            } else {
                B
            };
            let engine = FaultyStore::engine(&d, dir.path(), faulty_pool, fault, at);
            let _ = run(&engine, &options());
            for (path, content) in tree(&replica(dir.path(), B, A)) {
                let ok = old.get(&path) == Some(&content) || new.get(&path) == Some(&content);
                assert!(ok, "{fault:?}@{at}: {path} is neither old nor new");
            }
            let report = run(&SyncEngine::new(d), &options()).unwrap();
            assert_eq!(
                tree(&replica(dir.path(), B, A)),
                new,
                "{fault:?}@{at}: no convergence"
            );
            assert!(report.modules.iter().all(|m| m.error.is_none()));
            let staging = dir.path().join("stores").join(B).join(".poolsync/staging");
            assert_eq!(tree(&staging).len(), 0, "{fault:?}@{at}: temporaries left");
        }
    }
}

#[test]
fn a_listing_that_could_not_read_a_folder_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = pair_deployment(dir.path(), 4);
    write_items(dir.path(), 0..4, "v1");
    std::fs::create_dir(data(dir.path(), A).join("g")).unwrap();
    for i in 0..4 {
        std::fs::write(data(dir.path(), A).join(format!("g/h{i}")), "in g").unwrap();
    }
    run(&SyncEngine::new(d.clone()), &options()).unwrap();
    write_items(dir.path(), 0..1, "v2");
    std::fs::remove_file(data(dir.path(), A).join("f1")).unwrap();
    let replica_before = tree(&replica(dir.path(), B, A));

    // The source's listing misses the folder g: its 4 items, and f1 (really
    // deleted), are not deleted from the replica; the change is copied.
    let faulty = |at| FaultyStore::engine(&d, dir.path(), A, Fault::PartialList, at);
    let predicted = run(&faulty(0), &what_if()).unwrap();
    let report = run(&faulty(0), &options()).unwrap();
    for r in [&predicted, &report] {
        let forward = &r.modules[0];
        assert_eq!((forward.items_copied, forward.items_deleted), (1, 0));
    }
    // What is left: the 5 deletions (and, before the run, the copy too).
    assert_eq!(report.modules[0].pending_items, 5);
    assert_eq!(predicted.modules[0].pending_items, 6);
    assert!(predicted.modules[0].would_delete.is_empty());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("5 deletions") && w.contains("held back")),
        "{:?}",
        report.warnings
    );
    let replica_now = tree(&replica(dir.path(), B, A));
    assert_eq!(replica_now.len(), replica_before.len());
    assert!(replica_now.contains_key("f1") && replica_now.contains_key("g/h3"));
    assert_eq!(replica_now["f0"], b"v2-0");

    // A complete listing deletes f1 only.
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    assert_eq!(report.modules[0].items_deleted, 1);
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));
}

#[test]
fn a_failed_copy_in_the_last_batch_holds_back_every_deletion() {
    let dir = tempfile::tempdir().unwrap();
    // Batches of 4: the 3 changes below make one batch, the 2 deletions
    // another, committed only after every copy succeeded.
    let d = pair_deployment(dir.path(), 4);
    write_items(dir.path(), 0..8, "v1");
    run(&SyncEngine::new(d.clone()), &options()).unwrap();
    write_items(dir.path(), 0..3, "v2!");
    remove_items(dir.path(), 6..8);
    let engine = FaultyStore::engine(&d, dir.path(), A, Fault::Read, 1);
    let report = run(&engine, &options()).unwrap();
    let forward = &report.modules[0];
    assert_eq!((forward.items_copied, forward.items_deleted), (2, 0));
    assert_eq!(forward.pending_items, 3, "one copy and two deletions wait");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("injected Read fault"))
    );
    let replica_now = tree(&replica(dir.path(), B, A));
    assert!(replica_now.contains_key("f6") && replica_now.contains_key("f7"));

    // Without the fault, the copy and both deletions go through, in a copy
    // batch and a deletion batch.
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    let forward = &report.modules[0];
    assert_eq!(
        (forward.items_copied, forward.items_deleted, forward.batches),
        (1, 2, 2)
    );
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));

    // Five changes and two deletions: two copy batches and a deletion batch,
    // as what_if predicts.
    write_items(dir.path(), 0..3, "v3!!");
    for i in 8..10 {
        std::fs::write(data(dir.path(), A).join(format!("f{i}")), "new").unwrap();
    }
    remove_items(dir.path(), 4..6);
    let d = pair_deployment(dir.path(), 4);
    let predicted = run(&SyncEngine::new(d.clone()), &what_if()).unwrap();
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    assert_eq!(counts(&report.modules[0]), (5, 2, 3));
    assert_eq!(counts(&predicted.modules[0]), counts(&report.modules[0]));
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));
}

#[test]
fn a_batch_that_cannot_be_finished_is_dropped_not_replayed_for_ever() {
    let (dir, d) = synced_pair(10, 4);
    write_items(dir.path(), 0..2, "v2");
    // The commit fails after its journal was written: the journal stays.
    let engine = FaultyStore::engine(&d, dir.path(), B, Fault::Commit, 0);
    assert!(run(&engine, &options()).is_err());
    // Replaying it fails too: it is dropped with a warning, and the same sync
    // copies the items again.
    let engine = FaultyStore::engine(&d, dir.path(), B, Fault::Commit, 0);
    let report = run(&engine, &options()).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("could not be finished and was dropped")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.modules[0].items_copied, 2);
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));
}

#[test]
fn a_sync_whose_last_flush_fails_says_so() {
    let (dir, d) = synced_pair(10, 4);
    // Nothing to copy, but the status records written at B must still be
    // flushed; that flush fails.
    let engine = FaultyStore::engine(&d, dir.path(), B, Fault::Durable, 0);
    let Err(SyncError::Failed(report)) = run(&engine, &options()) else {
        panic!("the failed flush went unreported");
    };
    for m in &report.modules {
        let into_b = m.to.as_str() == B;
        assert_eq!(
            m.error.is_some(),
            into_b,
            "{} -> {}: {:?}",
            m.from,
            m.to,
            m.error
        );
    }
    let forward = report.modules.iter().find(|m| m.to.as_str() == B).unwrap();
    assert!(forward.error.as_deref().unwrap().contains("power loss"));
    // The status records say so too (they were written as a success before
    // the flush): the import at B and the export at A.
    for (at, record) in [(B, format!("import/{A}")), (A, format!("export/{B}"))] {
        let path = dir
            .path()
            .join("stores")
            .join(at)
            .join(".poolsync/meta/status")
            .join(record)
            .join("UserServices.PresenceFocus");
        let status: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(status["export_state"], "ErrorState", "{status}");
        assert_eq!(status["import_state"], "ErrorState", "{status}");
        assert!(
            status["last_error"]
                .as_str()
                .unwrap()
                .contains("power loss"),
            "{status}"
        );
    }
}

#[test]
fn a_rebuilt_manifest_is_kept_when_the_sync_that_rebuilt_it_stops_early() {
    let (dir, d) = synced_pair(4, 8);
    // The replica's manifest is lost; then the source loses two items and
    // three change.
    let meta = dir
        .path()
        .join("stores")
        .join(B)
        .join(".poolsync/meta/replicas");
    assert!(meta.is_dir());
    std::fs::remove_dir_all(&meta).unwrap();
    remove_items(dir.path(), 6..8);
    write_items(dir.path(), 0..3, "v2!");
    // The sync that rebuilds the manifest fails one read: its deletions wait.
    let engine = FaultyStore::engine(&d, dir.path(), A, Fault::Read, 1);
    let report = run(&engine, &options()).unwrap();
    let forward = &report.modules[0];
    assert_eq!(forward.items_deleted, 0);
    assert!(forward.pending_items >= 3, "{}", forward.pending_items);
    assert!(report.warnings.iter().any(|w| w.contains("rebuilt it")));
    // The next sync still knows the replica held f6 and f7, and deletes them.
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    assert_eq!(report.modules[0].items_deleted, 2);
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));
}

#[test]
fn what_if_predicts_an_unreadable_item_as_the_sync_meets_it() {
    let (dir, d) = synced_pair(10, 8);
    // Three items change at the same size (so what_if reads them), two go.
    write_items(dir.path(), 0..3, "v2");
    remove_items(dir.path(), 6..8);
    // The first read of the source fails, in the dry run and in the sync.
    let engine = FaultyStore::engine(&d, dir.path(), A, Fault::Read, 0);
    let predicted = run(&engine, &what_if()).expect("one unreadable item is not fatal");
    assert!(
        predicted
            .warnings
            .iter()
            .any(|w| w.contains("injected Read fault"))
    );
    let engine = FaultyStore::engine(&d, dir.path(), A, Fault::Read, 0);
    let report = run(&engine, &options()).unwrap();
    // Two copied; the deletions wait for the item that failed.
    assert_eq!(counts(&report.modules[0]), (2, 0, 1));
    assert_eq!(counts(&predicted.modules[0]), counts(&report.modules[0]));
    assert_eq!(report.modules[0].pending_items, 3);
}

#[test]
fn an_object_replica_forgets_nothing_a_dropped_batch_wrote_in_place() {
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    // Batches of 2, so that batch 2 is copied while batch 1 commits.
    let d = pair_deployment(dir.path(), 2);
    let location = StoreLocation::Memory("props-in-place-b".into());
    let b = poolsync::store::open_store(&location).unwrap();
    let engine_with = |store: Arc<dyn Store>| {
        let engine = SyncEngine::new(d.clone());
        engine.set_store(&topology::Fqdn::parse(B).unwrap(), store);
        engine
    };
    let replica_tree = |store: &Arc<dyn Store>| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let prefix = ItemPath::parse(format!("backup/{A}/{MODULE}")).unwrap();
            let mut out = BTreeMap::new();
            for e in store.list(&prefix).await.unwrap().entries {
                let bytes: Vec<Bytes> = store
                    .read(&prefix.join(&e.path))
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                out.insert(e.path.to_string(), bytes.concat());
            }
            out
        })
    };
    write_items(dir.path(), 0..4, "v1");
    run(&engine_with(b.clone()), &options()).unwrap();
    // f0 and f1 change (batch 1), f2 changes at the same size and n is new
    // (batch 2). Batch 1 fails to commit, so batch 2, already written in
    // place, is dropped.
    write_items(dir.path(), 0..3, "v2");
    std::fs::write(data(dir.path(), A).join("n"), "new").unwrap();
    let faulty = FaultyStore::wrap(b.clone(), Fault::Commit, 0);
    assert!(run(&engine_with(faulty), &options()).is_err());
    // Then f2 changes back to v1, and n is deleted, at the source.
    std::fs::write(data(dir.path(), A).join("f2"), "v1-2").unwrap();
    std::fs::remove_file(data(dir.path(), A).join("n")).unwrap();
    run(&engine_with(b.clone()), &options()).unwrap();
    assert_eq!(replica_tree(&b), {
        let mut t = tree(&data(dir.path(), A));
        t.retain(|k, _| !k.starts_with('.'));
        t
    });
}

#[test]
fn what_if_after_an_interrupted_commit_predicts_the_sync_that_finishes_it() {
    let (dir, d) = synced_pair(10, 4);
    write_items(dir.path(), 0..2, "v2");
    // The flush before the renames fails: the batch stays in its journal,
    // which the next sync finishes before it plans.
    let engine = FaultyStore::engine(&d, dir.path(), B, Fault::Durable, 0);
    assert!(run(&engine, &options()).is_err());
    let predicted = run(&SyncEngine::new(d.clone()), &what_if()).unwrap();
    let report = run(&SyncEngine::new(d), &options()).unwrap();
    assert_eq!(counts(&report.modules[0]), (0, 0, 0));
    assert_eq!(counts(&predicted.modules[0]), counts(&report.modules[0]));
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));
}

#[test]
fn a_journal_left_by_an_earlier_version_finds_its_staged_files() {
    // Versions before the shard folders staged in .poolsync/staging/ itself.
    // A commit that failed after its journal was durable left the journal and
    // the staged files; the next run must move those files into place from
    // there, not take them as moved already.
    let (dir, d) = synced_pair(100, 6);
    write_items(dir.path(), 0..6, "v2");
    let root = |p: &str| dir.path().join("stores").join(p);
    let engine = FaultyStore::engine(&d, dir.path(), B, Fault::Commit, 0);
    assert!(run(&engine, &options()).is_err());
    let staging = root(B).join(".poolsync/staging");
    let staged = tree(&staging);
    assert_eq!(staged.len(), 6, "the failed batch's staged files");
    for shard_and_name in staged.keys() {
        let (_, name) = shard_and_name.split_once('/').unwrap();
        std::fs::rename(staging.join(shard_and_name), staging.join(name)).unwrap();
    }
    // The source changes again: the journal's batch must land first, then this.
    std::fs::write(data(dir.path(), A).join("f0"), "v3-0").unwrap();

    let report = run(&SyncEngine::new(d), &options()).unwrap();
    // Only f0 is copied: the journal's batch was completed from the legacy folder.
    assert_eq!(report.modules[0].items_copied, 1);
    assert_eq!(tree(&replica(dir.path(), B, A)), tree(&data(dir.path(), A)));
    assert!(tree(&staging).is_empty());
}

/// Every file of a folder: relative path -> content.
type Tree = BTreeMap<String, Vec<u8>>;

/// A pair synced once (batches of 4, 12 items), then 10 items changed and
/// 2 deleted at the source: (folder, deployment, old replica, new source).
fn changed_pair() -> (tempfile::TempDir, Arc<topology::Deployment>, Tree, Tree) {
    let (dir, d) = synced_pair(4, 12);
    let old = tree(&replica(dir.path(), B, A));
    write_items(dir.path(), 0..10, "v2");
    remove_items(dir.path(), 10..12);
    let new = tree(&data(dir.path(), A));
    (dir, d, old, new)
}

#[test]
fn storage_faults_stop_the_direction_with_what_was_kept_and_the_next_sync_converges() {
    // (errno, failing pool, operation, from which one, what the error says)
    let cases: [(i32, &str, Fault, u64, &[&str]); 5] = [
        (
            libc::EIO,
            B,
            Fault::Stage,
            4,
            &[
                "Input/output error (os error 5): the device failed; check the disk",
                "The 4 items copied before, in 1 whole batch, are kept; the batch being staged (4 items) was discarded, and nothing of it is left staged",
            ],
        ),
        (
            libc::EIO,
            A,
            Fault::Read,
            0,
            &[
                "Input/output error (os error 5): the device failed",
                "Nothing was committed before; the batch being staged (4 items) was discarded",
            ],
        ),
        (
            libc::EDQUOT,
            B,
            Fault::Stage,
            0,
            &[
                "over its disk quota on ",
                ": Disk quota exceeded (os error 122); raise the quota (or free some space) and sync again",
            ],
        ),
        (
            libc::ENOSPC,
            B,
            Fault::Stage,
            8,
            &[
                "no space left on ",
                ": No space left on device (os error 28); free some space",
                "The 8 items copied before, in 2 whole batches, are kept",
            ],
        ),
        (
            libc::EROFS,
            B,
            Fault::Stage,
            0,
            &["Read-only file system (os error 30); make the store writable"],
        ),
    ];
    for (errno, pool, fault, at, expected) in cases {
        let (dir, d, old, new) = changed_pair();
        let engine = FaultyStore::engine_with(&d, dir.path(), pool, fault, at, Some(errno));
        let Err(SyncError::Failed(report)) = run(&engine, &options()) else {
            panic!("errno {errno} at {pool}: the sync did not fail");
        };
        let forward = report.modules.iter().find(|m| m.to.as_str() == B).unwrap();
        let error = forward.error.as_deref().unwrap_or_default();
        for part in expected {
            assert!(error.contains(part), "errno {errno}: {error}");
        }
        for (path, content) in tree(&replica(dir.path(), B, A)) {
            let whole = old.get(&path) == Some(&content) || new.get(&path) == Some(&content);
            assert!(whole, "errno {errno}: {path} is neither old nor new");
        }
        let staging = dir.path().join("stores").join(B).join(".poolsync/staging");
        assert!(tree(&staging).is_empty(), "errno {errno}: staged left");
        run(&SyncEngine::new(d), &options()).unwrap();
        assert_eq!(tree(&replica(dir.path(), B, A)), new, "errno {errno}");
    }
}
