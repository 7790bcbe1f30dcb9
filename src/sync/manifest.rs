//! The manifest of one replica: what the engine last copied from the source, item
//! by item (source size, modification time, change token, BLAKE3 hash).
//!
//! Stored in the receiving store's metadata as a snapshot plus one log document per
//! committed batch; each document is checksummed. A batch commits by writing its log
//! document (one atomic metadata write), so the manifest moves from one consistent
//! state to the next. Many logs are folded into a new snapshot.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::store::{ChangeToken, Hash, ItemPath, Store, StoreResult};

/// Logs kept before they are folded into the snapshot.
const MAX_LOGS: usize = 64;

/// What the manifest records for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub token: ChangeToken,
    pub hash: Hash,
}

/// The change one batch makes to the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    pub seq: u64,
    pub upserts: Vec<(ItemPath, ManifestEntry)>,
    pub removes: Vec<ItemPath>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    seq: u64,
    entries: Vec<(ItemPath, ManifestEntry)>,
}

/// A replica's manifest, loaded in memory.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Metadata key prefix, e.g. `replicas/atl-cs-001.litwareinc.com/ConfServices.DataConf`.
    prefix: String,
    pub seq: u64,
    pub entries: HashMap<ItemPath, ManifestEntry>,
    logs: Vec<String>,
    /// Set when a document was unreadable and was ignored (the sync then re-checks
    /// every item by content).
    pub damaged: Option<String>,
}

/// Encodes a value with a trailing BLAKE3 checksum.
pub fn encode<T: Serialize>(value: &T) -> Bytes {
    let mut bytes = postcard::to_stdvec(value).unwrap_or_default();
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(sum.as_bytes());
    Bytes::from(bytes)
}

/// Decodes what [`encode`] wrote; `None` when it is torn or corrupt.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    postcard::from_bytes(body).ok()
}

fn log_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/log/{seq:020}")
}

impl Manifest {
    /// The key prefix of the manifest of `module` data from `source` at a store.
    pub fn prefix_for(source: &str, module: &str) -> String {
        format!("replicas/{source}/{module}")
    }

    pub async fn load(store: &dyn Store, prefix: &str) -> StoreResult<Manifest> {
        let mut manifest = Manifest {
            prefix: prefix.to_string(),
            ..Manifest::default()
        };
        if let Some(bytes) = store.meta_get(&format!("{prefix}/snapshot")).await? {
            match decode::<Snapshot>(&bytes) {
                Some(s) => {
                    manifest.seq = s.seq;
                    manifest.entries = s.entries.into_iter().collect();
                }
                None => manifest.damaged = Some("the manifest snapshot is corrupt".into()),
            }
        }
        let logs = store.meta_list(&format!("{prefix}/log")).await?;
        for key in logs {
            let Some(seq) = key.rsplit('/').next().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            if seq <= manifest.seq && manifest.damaged.is_none() {
                manifest.logs.push(key); // folded already; removed at the next compaction
                continue;
            }
            let Some(bytes) = store.meta_get(&key).await? else {
                continue;
            };
            match decode::<Delta>(&bytes) {
                Some(delta) => {
                    manifest.apply(&delta);
                    manifest.logs.push(key);
                }
                None => {
                    manifest.damaged = Some(format!("manifest log {seq} is corrupt"));
                    manifest.logs.push(key);
                }
            }
        }
        if manifest.damaged.is_some() {
            // Trust nothing: every item will be re-checked by content.
            manifest.entries.clear();
        }
        Ok(manifest)
    }

    pub fn apply(&mut self, delta: &Delta) {
        for (path, entry) in &delta.upserts {
            self.entries.insert(path.clone(), entry.clone());
        }
        for path in &delta.removes {
            self.entries.remove(path);
        }
        self.seq = self.seq.max(delta.seq);
    }

    /// Whether the log document of batch `seq` is already written.
    pub async fn has_log(store: &dyn Store, prefix: &str, seq: u64) -> StoreResult<bool> {
        Ok(store.meta_get(&log_key(prefix, seq)).await?.is_some())
    }

    /// Writes the log document that commits a batch, and applies it in memory.
    pub async fn commit(&mut self, store: &dyn Store, delta: &Delta) -> StoreResult<()> {
        Self::write_log(store, &self.prefix, delta).await?;
        self.apply(delta);
        self.logs.push(log_key(&self.prefix, delta.seq));
        Ok(())
    }

    /// Writes the log document of a batch: one create-only write, which is what
    /// commits the batch. Finding it already there means another writer got past
    /// the pair lock: stop rather than guess which history is right.
    pub async fn write_log(store: &dyn Store, prefix: &str, delta: &Delta) -> StoreResult<()> {
        let key = log_key(prefix, delta.seq);
        if store.meta_create(&key, encode(delta)).await? {
            Ok(())
        } else {
            Err(crate::store::StoreError::Other {
                store: store.describe(),
                message: format!(
                    "manifest log {key} was written by another process at the same time: two syncs of this pair ran at once; rerun the sync"
                ),
            })
        }
    }

    /// Folds the logs into a new snapshot when there are many (or the manifest was
    /// damaged), then removes them.
    pub async fn compact_if_needed(&mut self, store: &dyn Store) -> StoreResult<()> {
        if self.logs.len() < MAX_LOGS && self.damaged.is_none() {
            return Ok(());
        }
        let snapshot = Snapshot {
            seq: self.seq,
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        store
            .meta_put(&format!("{}/snapshot", self.prefix), encode(&snapshot))
            .await?;
        store.make_durable().await?;
        for key in std::mem::take(&mut self.logs) {
            store.meta_delete(&key).await?;
        }
        self.damaged = None;
        Ok(())
    }

    /// The next batch sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let bytes = encode(&delta);
        assert_eq!(decode::<Delta>(&bytes).unwrap().seq, 3);
        let mut bad = bytes.to_vec();
        bad[1] ^= 1;
        assert!(decode::<Delta>(&bad).is_none());
        assert!(decode::<Delta>(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode::<Delta>(&[]).is_none());
    }
}
