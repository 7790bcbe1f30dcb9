//! The manifest of one replica: what the engine last copied from the source, item
//! by item (source size, modification time, change token, BLAKE3 hash).
//!
//! Stored in the receiving store's metadata as a snapshot plus one log document per
//! committed batch; each document is checksummed. A batch commits by writing its log
//! document (one atomic metadata write), so the manifest moves from one consistent
//! state to the next. Many logs are folded into a new snapshot.
//!
//! In memory the manifest is a vector sorted by path (the snapshot with the logs
//! folded in when it was loaded) plus a small ordered map of what this run
//! committed since. A sync compares it with a sorted source listing in one merge
//! pass: no hash map of 100,000 paths is built, and the snapshot decodes straight
//! into the vector it is kept in.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::store::{ChangeToken, Hash, ItemPath, Store, StoreError, StoreResult};

/// Logs kept before they are folded into the snapshot.
const MAX_LOGS: usize = 64;

/// Logs are also folded once the changes they hold exceed this share of the
/// items (a quarter) and [`LOG_CHANGES_MIN`]. Every sync reads the logs when it
/// loads the manifest, and an item changed in many syncs is read once per
/// log; an initial sync of 100,000 items in 20 batches would otherwise leave
/// the whole manifest in logs until 64 had built up. Folding more often
/// rewrites the whole snapshot more often (8 MiB at 100,000 items).
const LOG_SHARE: usize = 4;
const LOG_CHANGES_MIN: usize = 4096;

/// What the manifest records for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub token: ChangeToken,
    pub hash: Hash,
}

impl ManifestEntry {
    /// An entry for an item whose replica content is not known (a batch wrote
    /// it in place and never committed): it matches no source item, so the
    /// item is copied again if the source has it, and deleted if not.
    #[must_use]
    pub fn unknown() -> ManifestEntry {
        ManifestEntry {
            size: u64::MAX,
            mtime_ns: i64::MIN,
            token: ChangeToken::None,
            hash: [0; 32],
        }
    }
}

/// The change one batch makes to the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    pub seq: u64,
    pub upserts: Vec<(ItemPath, ManifestEntry)>,
    pub removes: Vec<ItemPath>,
}

#[derive(Deserialize)]
struct Snapshot {
    seq: u64,
    entries: Vec<(ItemPath, ManifestEntry)>,
}

/// What [`Snapshot`] decodes, written from borrowed entries (same encoding).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    seq: u64,
    entries: &'a [(ItemPath, ManifestEntry)],
}

/// A replica's manifest, loaded in memory.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Metadata key prefix, e.g. `replicas/atl-cs-001.litwareinc.com/ConfServices.DataConf`.
    prefix: String,
    pub seq: u64,
    /// Sorted by path, each path once.
    base: Vec<(ItemPath, ManifestEntry)>,
    /// Changed since `base` was built; `None`: removed. Wins over `base`.
    overlay: BTreeMap<ItemPath, Option<ManifestEntry>>,
    /// Items recorded (in `base` and `overlay` together).
    len: usize,
    logs: Vec<String>,
    /// Upserts and removes in `logs` that are not in the snapshot yet.
    log_changes: usize,
    /// Set when a document was unreadable and was ignored (the sync then re-checks
    /// every item by content).
    pub damaged: Option<String>,
}

/// Encodes a value with a trailing BLAKE3 checksum. A value that cannot be
/// encoded is an error: an empty document would read as a torn one, and an
/// empty manifest as a lost one.
pub fn encode<T: Serialize>(value: &T) -> StoreResult<Bytes> {
    let mut bytes = postcard::to_stdvec(value).map_err(|e| StoreError::Other {
        store: "poolsync".into(),
        message: format!("cannot encode a metadata document: {e}"),
    })?;
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(sum.as_bytes());
    Ok(Bytes::from(bytes))
}

/// Decodes what [`encode`] wrote; `None` when it is torn or corrupt.
#[must_use]
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    postcard::from_bytes(body).ok()
}

/// Merges changes into sorted items, both sorted by path with each path once:
/// a change replaces the item of its path, or removes it (`None`).
fn merge_sorted(
    base: Vec<(ItemPath, ManifestEntry)>,
    changes: impl IntoIterator<Item = (ItemPath, Option<ManifestEntry>)>,
) -> Vec<(ItemPath, ManifestEntry)> {
    let mut out = Vec::with_capacity(base.len());
    let mut base = base.into_iter().peekable();
    let mut changes = changes.into_iter().peekable();
    loop {
        let order = match (base.peek(), changes.peek()) {
            (Some(b), Some(c)) => b.0.cmp(&c.0),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        if order == Ordering::Equal {
            base.next();
        }
        if order == Ordering::Less {
            out.extend(base.next());
        } else if let Some((path, Some(entry))) = changes.next() {
            out.push((path, entry));
        }
    }
    out
}

fn log_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/log/{seq:020}")
}

impl Manifest {
    /// The key prefix of the manifest of `module` data from `source` at a store.
    #[must_use]
    pub fn prefix_for(source: &str, module: &str) -> String {
        format!("replicas/{source}/{module}")
    }

    /// Loads the manifest: the snapshot, then the logs written since.
    ///
    /// A sync holds the pair lock, so nothing changes the manifest while it
    /// loads. A status or verification reader does not: a sync may fold the
    /// logs into a new snapshot and delete them meanwhile. So the logs are
    /// listed before the snapshot is read (a newer snapshot then already holds
    /// every listed log it folded), and a listed log that is gone when read
    /// means a fold happened in between: the load starts over.
    pub async fn load(store: &dyn Store, prefix: &str) -> StoreResult<Manifest> {
        for _ in 0..3 {
            if let Some(manifest) = Self::load_once(store, prefix, false).await? {
                return Ok(manifest);
            }
        }
        // Folded under us three times running: take what is there.
        let manifest = Self::load_once(store, prefix, true).await?;
        Ok(manifest.unwrap_or_else(|| Manifest {
            prefix: prefix.to_string(),
            ..Manifest::default()
        }))
    }

    /// One load; `None` when a listed log vanished (unless `tolerant`).
    async fn load_once(
        store: &dyn Store,
        prefix: &str,
        tolerant: bool,
    ) -> StoreResult<Option<Manifest>> {
        let mut manifest = Manifest {
            prefix: prefix.to_string(),
            ..Manifest::default()
        };
        let mut logs: Vec<(u64, String)> = store
            .meta_list(&format!("{prefix}/log"))
            .await?
            .into_iter()
            .filter_map(|key| {
                let seq = key.rsplit('/').next()?.parse::<u64>().ok()?;
                Some((seq, key))
            })
            .collect();
        if let Some(bytes) = store.meta_get(&format!("{prefix}/snapshot")).await? {
            match decode::<Snapshot>(&bytes) {
                Some(s) => {
                    manifest.seq = s.seq;
                    manifest.base = s.entries;
                    // Snapshots of earlier versions were written in hash order.
                    if !manifest.base.is_sorted_by(|a, b| a.0 < b.0) {
                        manifest.base.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                        manifest.base.dedup_by(|a, b| a.0 == b.0);
                    }
                    manifest.len = manifest.base.len();
                }
                None => manifest.damaged = Some("the manifest snapshot is corrupt".into()),
            }
        }
        logs.sort_unstable();
        let mut to_read = Vec::new();
        for (seq, key) in logs {
            if seq <= manifest.seq && manifest.damaged.is_none() {
                manifest.logs.push(key); // folded already; removed at the next compaction
            } else {
                to_read.push((seq, key));
            }
        }
        // Read the logs a few at a time (one request each on an object store),
        // in order; their changes are then merged into the base in one pass.
        let mut read = futures::stream::iter(to_read.into_iter().map(|(seq, key)| async move {
            let bytes = store.meta_get(&key).await;
            (seq, key, bytes)
        }))
        .buffered(8);
        let mut changes: Vec<(ItemPath, Option<ManifestEntry>)> = Vec::new();
        while let Some((seq, key, bytes)) = read.next().await {
            let Some(bytes) = bytes? else {
                if tolerant {
                    continue;
                }
                return Ok(None);
            };
            if let Some(delta) = decode::<Delta>(&bytes) {
                manifest.seq = manifest.seq.max(delta.seq);
                manifest.log_changes += delta.upserts.len() + delta.removes.len();
                // Within a log, upserts apply before removes (as in `apply`).
                changes.extend(delta.upserts.into_iter().map(|(p, e)| (p, Some(e))));
                changes.extend(delta.removes.into_iter().map(|p| (p, None)));
                manifest.logs.push(key);
            } else {
                manifest.damaged = Some(format!("manifest log {seq} is corrupt"));
                manifest.logs.push(key);
            }
        }
        if manifest.damaged.is_some() {
            // Trust nothing: every item will be re-checked by content.
            manifest.clear();
        } else {
            manifest.merge(changes);
        }
        Ok(Some(manifest))
    }

    /// Merges changes (in the order they were made; `None` removes) into the
    /// sorted base, in one pass: sorting them costs far less than inserting
    /// each into the overlay map (a whole manifest of 100,000 items replayed
    /// from logs: about 150 ms that way). Expects an empty overlay.
    fn merge(&mut self, mut changes: Vec<(ItemPath, Option<ManifestEntry>)>) {
        if changes.is_empty() {
            return;
        }
        debug_assert!(self.overlay.is_empty());
        // Stable: the changes to one path stay in the order they were made,
        // and the last one wins.
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut latest: Vec<(ItemPath, Option<ManifestEntry>)> = Vec::with_capacity(changes.len());
        for change in changes {
            match latest.last_mut() {
                Some(last) if last.0 == change.0 => *last = change,
                _ => latest.push(change),
            }
        }
        self.base = merge_sorted(std::mem::take(&mut self.base), latest);
        self.len = self.base.len();
    }

    pub fn apply(&mut self, delta: &Delta) {
        for (path, entry) in &delta.upserts {
            self.set(path.clone(), Some(entry.clone()));
        }
        for path in &delta.removes {
            self.set(path.clone(), None);
        }
        self.seq = self.seq.max(delta.seq);
    }

    /// What the manifest records for `path`.
    #[must_use]
    pub fn get(&self, path: &ItemPath) -> Option<&ManifestEntry> {
        match self.overlay.get(path) {
            Some(entry) => entry.as_ref(),
            None => self.base_get(path),
        }
    }

    fn base_get(&self, path: &ItemPath) -> Option<&ManifestEntry> {
        self.base
            .binary_search_by(|(p, _)| p.cmp(path))
            .ok()
            .map(|i| &self.base[i].1)
    }

    /// Items recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records (or replaces) one item.
    pub fn insert(&mut self, path: ItemPath, entry: ManifestEntry) {
        self.set(path, Some(entry));
    }

    fn set(&mut self, path: ItemPath, entry: Option<ManifestEntry>) {
        match (self.get(&path).is_some(), entry.is_some()) {
            (false, true) => self.len += 1,
            (true, false) => self.len -= 1,
            _ => {}
        }
        if entry.is_none() && self.base_get(&path).is_none() {
            self.overlay.remove(&path);
        } else {
            self.overlay.insert(path, entry);
        }
    }

    /// Forgets every item.
    pub fn clear(&mut self) {
        self.base.clear();
        self.overlay.clear();
        self.len = 0;
    }

    /// The items at or below each of `paths`, in path order: the part of the
    /// manifest a sync of changed paths compares with. Costs a lookup per
    /// path and the items found, not a pass over the manifest.
    #[must_use]
    pub fn under(&self, paths: &[ItemPath]) -> Vec<(&ItemPath, &ManifestEntry)> {
        let mut found: BTreeMap<&ItemPath, Option<&ManifestEntry>> = BTreeMap::new();
        for path in paths {
            let mut below = path.as_bytes().to_vec();
            below.push(b'/');
            let at = |p: &ItemPath| p == path || p.as_bytes().starts_with(&below);
            // The path itself, then the run of paths that start with `path/`.
            let exact = self.base.binary_search_by(|(p, _)| p.cmp(path)).ok();
            let from = self
                .base
                .partition_point(|(p, _)| p.as_bytes() < below.as_slice());
            let run = self.base[from..].iter().take_while(|(p, _)| at(p));
            for (p, e) in exact.map(|i| &self.base[i]).into_iter().chain(run) {
                found.insert(p, Some(e));
            }
            let overlay = self.overlay.get_key_value(path).into_iter().chain(
                self.overlay
                    .range::<[u8], _>((Bound::Included(below.as_slice()), Bound::Unbounded))
                    .take_while(|(p, _)| at(p)),
            );
            // The overlay wins over the base.
            for (p, e) in overlay {
                found.insert(p, e.as_ref());
            }
        }
        found
            .into_iter()
            .filter_map(|(p, e)| e.map(|e| (p, e)))
            .collect()
    }

    /// Every item, in path order.
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            base: self.base.iter().peekable(),
            overlay: self.overlay.iter().peekable(),
        }
    }

    /// Folds the overlay into the sorted base, in one merge pass.
    fn fold(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        self.base = merge_sorted(
            std::mem::take(&mut self.base),
            std::mem::take(&mut self.overlay),
        );
    }

    /// Whether the log document of batch `seq` is already written.
    pub async fn has_log(store: &dyn Store, prefix: &str, seq: u64) -> StoreResult<bool> {
        Ok(store.meta_get(&log_key(prefix, seq)).await?.is_some())
    }

    /// Records in memory a batch whose log document [`Manifest::write_log`] wrote.
    pub fn committed(&mut self, delta: &Delta) {
        self.apply(delta);
        self.log_changes += delta.upserts.len() + delta.removes.len();
        self.logs.push(log_key(&self.prefix, delta.seq));
    }

    /// Writes the log document of a batch: one create-only write, which is what
    /// commits the batch. Finding it already there means another writer got past
    /// the pair lock: stop rather than guess which history is right.
    pub async fn write_log(store: &dyn Store, prefix: &str, delta: &Delta) -> StoreResult<()> {
        let key = log_key(prefix, delta.seq);
        if store.meta_create(&key, encode(delta)?).await? {
            Ok(())
        } else {
            Err(StoreError::Other {
                store: store.describe(),
                message: format!(
                    "manifest log {key} was written by another process at the same time: two syncs of this pair ran at once; rerun the sync"
                ),
            })
        }
    }

    /// Whether the logs are worth folding into a new snapshot: there are many,
    /// they hold many changes for the size of the manifest, or the manifest was
    /// damaged.
    #[must_use]
    pub fn needs_compaction(&self) -> bool {
        self.damaged.is_some()
            || self.logs.len() >= MAX_LOGS
            || (self.log_changes >= LOG_CHANGES_MIN && self.log_changes * LOG_SHARE > self.len)
    }

    /// Folds the logs into a new snapshot when [`Manifest::needs_compaction`],
    /// then removes them.
    pub async fn compact_if_needed(&mut self, store: &dyn Store) -> StoreResult<()> {
        if !self.needs_compaction() {
            return Ok(());
        }
        self.compact(store).await
    }

    /// Folds the logs into a new snapshot, makes it durable, then removes them.
    pub async fn compact(&mut self, store: &dyn Store) -> StoreResult<()> {
        self.fold();
        let snapshot = SnapshotRef {
            seq: self.seq,
            entries: &self.base,
        };
        store
            .meta_put(&format!("{}/snapshot", self.prefix), encode(&snapshot)?)
            .await?;
        store.make_durable().await?;
        for key in std::mem::take(&mut self.logs) {
            store.meta_delete(&key).await?;
        }
        self.log_changes = 0;
        self.damaged = None;
        Ok(())
    }

    /// Replaces the manifest at `prefix` in `store` with `entries` (sorted by
    /// path, each path once), saved as a new snapshot; its old logs go. The
    /// batch numbers go on from the old manifest's, so a journal left by an
    /// earlier batch can never be taken for a later one.
    pub async fn replace(
        store: &dyn Store,
        prefix: &str,
        entries: Vec<(ItemPath, ManifestEntry)>,
    ) -> StoreResult<Manifest> {
        let mut manifest = Manifest::load(store, prefix).await?;
        manifest.overlay.clear();
        manifest.len = entries.len();
        manifest.base = entries;
        manifest.damaged = None;
        manifest.seq += 1;
        manifest.compact(store).await?;
        Ok(manifest)
    }

    /// Deletes the manifest at `prefix`: its logs, then its snapshot.
    pub async fn remove(store: &dyn Store, prefix: &str) -> StoreResult<()> {
        for key in store.meta_list(&format!("{prefix}/log")).await? {
            store.meta_delete(&key).await?;
        }
        store.meta_delete(&format!("{prefix}/snapshot")).await
    }

    /// The next batch sequence number.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }
}

/// The items of a [`Manifest`] in path order: the sorted base merged with the
/// overlay, which wins.
pub struct Iter<'a> {
    base: Peekable<std::slice::Iter<'a, (ItemPath, ManifestEntry)>>,
    overlay: Peekable<std::collections::btree_map::Iter<'a, ItemPath, Option<ManifestEntry>>>,
}

impl<'a> IntoIterator for &'a Manifest {
    type Item = <Iter<'a> as Iterator>::Item;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a ItemPath, &'a ManifestEntry);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.overlay.peek()) {
                (Some(b), Some(o)) => b.0.cmp(o.0),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => return None,
            };
            if order == Ordering::Equal {
                self.base.next();
            }
            if order == Ordering::Less {
                return self.base.next().map(|(p, e)| (p, e));
            }
            if let Some((path, Some(entry))) = self.overlay.next() {
                return Some((path, entry));
            }
        }
    }
}

#[cfg(test)]
mod tests;
