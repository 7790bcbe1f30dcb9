//! The manifest: its documents, checksums, log replay and look-ups.

use super::*;

fn entry(size: u64) -> ManifestEntry {
    ManifestEntry {
        size,
        mtime_ns: 0,
        token: ChangeToken::None,
        hash: [0; 32],
    }
}

proptest::proptest! {
    /// The sorted base plus overlay behaves like one ordered map, across
    /// folds (as at load and compaction).
    #[test]
    fn behaves_like_an_ordered_map(
        ops in proptest::collection::vec((0u8..40, proptest::option::of(0u64..5), proptest::bool::weighted(0.1)), 0..200)
    ) {
        let mut manifest = Manifest::default();
        let mut model = std::collections::BTreeMap::new();
        for (key, value, fold) in ops {
            let path = ItemPath::parse(format!("d{}/f{key}", key % 3)).unwrap();
            if let Some(size) = value {
                manifest.insert(path.clone(), entry(size));
                model.insert(path, entry(size));
            } else {
                manifest.apply(&Delta { seq: 0, upserts: vec![], removes: vec![path.clone()] });
                model.remove(&path);
            }
            if fold {
                manifest.fold();
            }
            proptest::prop_assert_eq!(manifest.len(), model.len());
        }
        let listed: Vec<_> = manifest.iter().map(|(p, e)| (p.clone(), e.clone())).collect();
        let expected: Vec<_> = model.clone().into_iter().collect();
        proptest::prop_assert_eq!(&listed, &expected);
        for key in 0u8..40 {
            let path = ItemPath::parse(format!("d{}/f{key}", key % 3)).unwrap();
            proptest::prop_assert_eq!(manifest.get(&path), model.get(&path));
        }
        manifest.fold();
        let listed: Vec<_> = manifest.iter().map(|(p, e)| (p.clone(), e.clone())).collect();
        proptest::prop_assert_eq!(listed, expected);
    }
}

fn memory_store() -> crate::store::ObjectBackedStore {
    crate::store::ObjectBackedStore::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        object_store::path::Path::from("p"),
        "memory://test".into(),
    )
}

/// A store that folds the manifest (as a sync would, under its lock) at
/// one moment of a reader's load: right after the reader lists the logs,
/// or right after it reads the snapshot.
struct FoldsDuringLoad {
    inner: crate::store::ObjectBackedStore,
    writer: std::sync::Mutex<Option<Manifest>>,
    after_snapshot: bool,
}

impl FoldsDuringLoad {
    async fn fold_once(&self) {
        let writer = self.writer.lock().unwrap().take();
        if let Some(mut writer) = writer {
            writer.compact(&self.inner).await.unwrap();
        }
    }
}

#[async_trait::async_trait]
impl Store for FoldsDuringLoad {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list(&self, prefix: &ItemPath) -> StoreResult<crate::store::Listing> {
        self.inner.list(prefix).await
    }
    async fn read(&self, path: &ItemPath) -> StoreResult<crate::store::ByteStream> {
        self.inner.read(path).await
    }
    async fn stage_writer(
        &self,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Box<dyn crate::store::StageWriter>> {
        self.inner.stage_writer(name, dest).await
    }
    async fn make_durable(&self) -> StoreResult<()> {
        self.inner.make_durable().await
    }
    async fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<crate::store::ItemFailures> {
        self.inner.commit(moves, deletes).await
    }
    async fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        self.inner.discard_staged(names).await
    }
    async fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        self.inner.clear_staging(prefix).await
    }
    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let got = self.inner.meta_get(key).await;
        if self.after_snapshot && key.ends_with("/snapshot") {
            self.fold_once().await;
        }
        got
    }
    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        self.inner.meta_put(key, value).await
    }
    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let listed = self.inner.meta_list(prefix).await;
        if !self.after_snapshot {
            self.fold_once().await;
        }
        listed
    }
    async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        self.inner.meta_delete(key).await
    }
    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn crate::store::StoreLock>, crate::store::LockHolder>> {
        self.inner.try_lock(name, owner).await
    }
}

#[test]
fn a_reader_sees_every_change_when_a_sync_folds_the_logs_meanwhile() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let path = |p: &str| ItemPath::parse(p).unwrap();
    for after_snapshot in [false, true] {
        let inner = memory_store();
        rt.block_on(async {
            let prefix = "replicas/a/m";
            // A snapshot with one item, then two logs adding two more.
            let mut m = Manifest::load(&inner, prefix).await.unwrap();
            m.insert(path("a"), entry(1));
            m.compact(&inner).await.unwrap();
            for (seq, item) in [(1, "b"), (2, "c")] {
                let delta = Delta {
                    seq,
                    upserts: vec![(path(item), entry(seq))],
                    removes: Vec::new(),
                };
                Manifest::write_log(&inner, prefix, &delta).await.unwrap();
            }
            let writer = Manifest::load(&inner, prefix).await.unwrap();
            let store = FoldsDuringLoad {
                inner,
                writer: std::sync::Mutex::new(Some(writer)),
                after_snapshot,
            };
            let read = Manifest::load(&store, prefix).await.unwrap();
            let items: Vec<String> = read.iter().map(|(p, _)| p.to_string()).collect();
            assert_eq!(
                items,
                ["a", "b", "c"],
                "folded after the snapshot: {after_snapshot}"
            );
            assert!(read.damaged.is_none());
        });
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// A snapshot plus logs loads as the same items as applying each log's
    /// changes in order (upserts, then removes) to the snapshot's items.
    #[test]
    fn loading_logs_equals_replaying_them_in_order(
        snapshot in proptest::collection::btree_map(0u8..30, 0u64..5, 0..20),
        logs in proptest::collection::vec(
            (proptest::collection::vec((0u8..30, 0u64..5), 0..8),
             proptest::collection::vec(0u8..30, 0..4)),
            0..6),
    ) {
        let path = |k: u8| ItemPath::parse(format!("d{}/f{k}", k % 4)).unwrap();
        let mut model: BTreeMap<ItemPath, ManifestEntry> = snapshot
            .iter()
            .map(|(k, size)| (path(*k), entry(*size)))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let loaded = rt.block_on(async {
            let store = memory_store();
            let prefix = "replicas/a/m";
            let entries: Vec<_> = model.clone().into_iter().collect();
            store
                .meta_put(&format!("{prefix}/snapshot"), encode(&SnapshotRef { seq: 3, entries: &entries }).unwrap())
                .await
                .unwrap();
            for (i, (upserts, removes)) in logs.iter().enumerate() {
                let delta = Delta {
                    seq: 4 + i as u64,
                    upserts: upserts.iter().map(|(k, size)| (path(*k), entry(*size))).collect(),
                    removes: removes.iter().map(|k| path(*k)).collect(),
                };
                for (p, e) in &delta.upserts {
                    model.insert(p.clone(), e.clone());
                }
                for p in &delta.removes {
                    model.remove(p);
                }
                Manifest::write_log(&store, prefix, &delta).await.unwrap();
            }
            Manifest::load(&store, prefix).await.unwrap()
        });
        let listed: Vec<_> = loaded.iter().map(|(p, e)| (p.clone(), e.clone())).collect();
        let expected: Vec<_> = model.into_iter().collect();
        proptest::prop_assert_eq!(loaded.len(), expected.len());
        proptest::prop_assert_eq!(listed, expected);
        proptest::prop_assert_eq!(loaded.seq, 3 + logs.len() as u64);
    }
}

#[test]
fn many_changes_in_few_logs_are_folded_into_a_snapshot() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = memory_store();
        let prefix = "replicas/a/m";
        let mut manifest = Manifest::load(&store, prefix).await.unwrap();
        let delta = |seq: u64, range: std::ops::Range<u32>, size: u64| Delta {
            seq,
            upserts: range
                .map(|i| (ItemPath::parse(format!("d/f{i:05}")).unwrap(), entry(size)))
                .collect(),
            removes: Vec::new(),
        };
        // One batch of 5,000 items into an empty replica: one log, but every
        // item of the manifest is in it.
        let first = delta(1, 0..5000, 1);
        Manifest::write_log(&store, prefix, &first).await.unwrap();
        manifest.committed(&first);
        assert!(manifest.needs_compaction());
        manifest.compact_if_needed(&store).await.unwrap();
        assert!(!manifest.needs_compaction());
        assert!(
            store
                .meta_list(&format!("{prefix}/log"))
                .await
                .unwrap()
                .is_empty()
        );

        // A small change to a large manifest stays in its log.
        let small = delta(2, 0..100, 2);
        Manifest::write_log(&store, prefix, &small).await.unwrap();
        manifest.committed(&small);
        assert!(!manifest.needs_compaction());
        manifest.compact_if_needed(&store).await.unwrap();
        let reloaded = Manifest::load(&store, prefix).await.unwrap();
        assert_eq!(reloaded.logs.len(), 1);
        assert_eq!(reloaded.len(), 5000);
        let changed = ItemPath::parse("d/f00042").unwrap();
        assert_eq!(reloaded.get(&changed), Some(&entry(2)));
    });
}

#[test]
fn unsorted_snapshots_of_earlier_versions_load_sorted() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = memory_store();
        let paths = ["b", "a/x", "a.b", "c"].map(|p| ItemPath::parse(p).unwrap());
        let snapshot = Snapshot {
            seq: 4,
            entries: paths.iter().map(|p| (p.clone(), entry(1))).collect(),
        };
        let bytes = encode(&SnapshotRef {
            seq: snapshot.seq,
            entries: &snapshot.entries,
        })
        .unwrap();
        store.meta_put("m/snapshot", bytes).await.unwrap();
        let manifest = Manifest::load(&store, "m").await.unwrap();
        let mut sorted = paths.to_vec();
        sorted.sort();
        let listed: Vec<ItemPath> = manifest.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(listed, sorted);
        assert_eq!(manifest.get(&paths[1]), Some(&entry(1)));
        assert_eq!(manifest.seq, 4);
    });
}

#[test]
fn checksum_detects_damage() {
    let delta = Delta {
        seq: 3,
        upserts: vec![(
            ItemPath::parse("a/b").unwrap(),
            ManifestEntry {
                size: 1,
                mtime_ns: 2,
                token: ChangeToken::None,
                hash: [7; 32],
            },
        )],
        removes: vec![],
    };
    let bytes = encode(&delta).unwrap();
    assert_eq!(decode::<Delta>(&bytes).unwrap().seq, 3);
    let mut bad = bytes.to_vec();
    bad[1] ^= 1;
    assert!(decode::<Delta>(&bad).is_none());
    assert!(decode::<Delta>(&bytes[..bytes.len() - 1]).is_none());
    assert!(decode::<Delta>(&[]).is_none());
}
