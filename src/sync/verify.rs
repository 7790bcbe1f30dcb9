//! Byte-level verification (Debug-CsInterPoolReplication): each replica of a
//! pair compared with its source by content hash, item by item, and the
//! manifests checked against the replica bytes.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use super::direction::Direction;
use super::manifest::Manifest;
use super::{CancelFlag, SyncEngine, SyncError};
use crate::store::{Hash, ItemPath, Store, StoreResult};
use crate::topology::{Fqdn, Module, Pair, Pool};

/// One replica compared with its source.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaCheck {
    pub module: Module,
    pub from: Fqdn,
    pub to: Fqdn,
    pub source_items: u64,
    pub replica_items: u64,
    /// In the source, not in the replica.
    pub missing: Vec<String>,
    /// In the replica, not in the source.
    pub extra: Vec<String>,
    /// In both, with different content.
    pub different: Vec<String>,
    /// Replica items whose bytes disagree with the manifest (or that it lacks).
    pub manifest_mismatches: Vec<String>,
}

impl ReplicaCheck {
    #[must_use]
    pub fn in_sync(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }
}

/// Debug-CsInterPoolReplication of one pool.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicationReport {
    pub pool: Fqdn,
    pub backup_pool: Fqdn,
    pub modules: Vec<ReplicaCheck>,
}

impl ReplicationReport {
    pub fn in_sync(&self) -> bool {
        self.modules.iter().all(ReplicaCheck::in_sync)
    }
}

/// The content hash of every item below `prefix`, by path.
async fn hashes_below(
    store: &dyn Store,
    prefix: &ItemPath,
    cancel: &CancelFlag,
) -> StoreResult<Option<BTreeMap<ItemPath, Hash>>> {
    let paths = store
        .list(prefix)
        .await?
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    hash_all(store, prefix, paths, cancel).await
}

/// Hashes each item; `None` when Ctrl-C stopped it (seen between items). An
/// item that is gone by the time it is read (users delete files on a live
/// pool) is left out, as if the listing had come a moment later.
async fn hash_all(
    store: &dyn Store,
    prefix: &ItemPath,
    paths: Vec<ItemPath>,
    cancel: &CancelFlag,
) -> StoreResult<Option<BTreeMap<ItemPath, Hash>>> {
    let results: Vec<StoreResult<Option<(ItemPath, Hash)>>> =
        futures::stream::iter(paths.into_iter().map(|p| async move {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            match store.hash(&prefix.join(&p)).await {
                Ok((_, hash)) => Ok(Some((p, hash))),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    if cancel.is_cancelled() {
        return Ok(None);
    }
    let mut hashes = BTreeMap::new();
    for item in results {
        if let Some((path, hash)) = item? {
            hashes.insert(path, hash);
        }
    }
    Ok(Some(hashes))
}

impl SyncEngine {
    /// Compares each replica of the pair with its source by content hash, both
    /// directions, and checks the manifests against the replica bytes.
    /// Ctrl-C (`cancel`) stops it between items with [`SyncError::Interrupted`].
    pub async fn verify_pair(
        &self,
        pair: &Pair,
        modules: &[Module],
        cancel: &CancelFlag,
    ) -> Result<ReplicationReport, SyncError> {
        let (pool, partner) = (&pair.pool, &pair.partner);
        let pool_store = self.reachable(pool).await?;
        let partner_store = self.reachable(partner).await?;
        let state = self.pair_view(pair).await.state;
        if let Some(why) = super::failover::view::sync_refusal(&state) {
            return Err(SyncError::Refused(format!(
                "{why}; verification compares a pool's data with its replica, which is the active copy now"
            )));
        }
        let cms = state.cms_master(&self.deployment().cms_master).to_string();
        let mut checks = Vec::new();
        for module in Module::ALL.into_iter().filter(|m| modules.contains(m)) {
            for ends in [
                ((pool, &*pool_store), (partner, &*partner_store)),
                ((partner, &*partner_store), (pool, &*pool_store)),
            ] {
                let Some(d) = self.direction_of(module, ends.0, ends.1, &cms) else {
                    continue;
                };
                let check = check_replica(&d, cancel).await?.ok_or_else(|| {
                    SyncError::interrupted_before(&pool.fqdn, &partner.fqdn, true)
                })?;
                checks.push(check);
            }
        }
        Ok(ReplicationReport {
            pool: pool.fqdn.clone(),
            backup_pool: partner.fqdn.clone(),
            modules: checks,
        })
    }
}

/// Compares one replica with its source; `None` when Ctrl-C stopped it.
async fn check_replica(
    d: &Direction<'_>,
    cancel: &CancelFlag,
) -> Result<Option<ReplicaCheck>, SyncError> {
    let store_err = |pool: &Pool| {
        let pool = pool.fqdn.clone();
        move |source| SyncError::Store { pool, source }
    };
    let manifest = Manifest::load(d.dst, &d.manifest_prefix())
        .await
        .map_err(store_err(d.to))?;
    let Some(src_hashes) = hashes_below(d.src, d.source_prefix(), cancel)
        .await
        .map_err(store_err(d.from))?
    else {
        return Ok(None);
    };
    let Some(dst_hashes) = hashes_below(d.dst, d.dest_prefix(), cancel)
        .await
        .map_err(store_err(d.to))?
    else {
        return Ok(None);
    };
    Ok(Some(compare(d, &manifest, &src_hashes, &dst_hashes)))
}

/// The differences between a source's hashes and its replica's, and the
/// replica items the manifest does not describe.
fn compare(
    d: &Direction<'_>,
    manifest: &Manifest,
    src_hashes: &BTreeMap<ItemPath, Hash>,
    dst_hashes: &BTreeMap<ItemPath, Hash>,
) -> ReplicaCheck {
    let mut check = ReplicaCheck {
        module: d.module,
        from: d.from.fqdn.clone(),
        to: d.to.fqdn.clone(),
        source_items: src_hashes.len() as u64,
        replica_items: dst_hashes.len() as u64,
        missing: Vec::new(),
        extra: Vec::new(),
        different: Vec::new(),
        manifest_mismatches: Vec::new(),
    };
    for (path, hash) in src_hashes {
        match dst_hashes.get(path) {
            None => check.missing.push(path.to_string()),
            Some(h) if h != hash => check.different.push(path.to_string()),
            Some(_) => {}
        }
    }
    for (path, hash) in dst_hashes {
        if !src_hashes.contains_key(path) {
            check.extra.push(path.to_string());
        }
        if manifest.get(path).is_none_or(|m| m.hash != *hash) {
            check.manifest_mismatches.push(path.to_string());
        }
    }
    for (path, _) in manifest {
        if !dst_hashes.contains_key(path) {
            check.manifest_mismatches.push(path.to_string());
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn path(p: &str) -> ItemPath {
        ItemPath::parse(p).unwrap()
    }

    #[test]
    fn hashing_skips_an_item_gone_since_the_listing_and_stops_on_ctrl_c() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/m")).unwrap();
        std::fs::write(dir.path().join("data/m/kept"), "x").unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let prefix = path("data/m");
        // Listed, then deleted by a user before it was read: left out, and
        // the check goes on (it used to fail the whole verification).
        let paths = vec![path("kept"), path("deleted")];
        let cancel = CancelFlag::new();
        let hashes = rt
            .block_on(hash_all(&store, &prefix, paths.clone(), &cancel))
            .unwrap()
            .unwrap();
        assert_eq!(hashes.keys().collect::<Vec<_>>(), vec![&path("kept")]);
        // Ctrl-C: no result, not a partial one.
        cancel.cancel();
        let stopped = rt
            .block_on(hash_all(&store, &prefix, paths, &cancel))
            .unwrap();
        assert!(stopped.is_none());
    }
}
