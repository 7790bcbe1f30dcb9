//! Looking at a pair without changing it: live status (Get-CsBackupServiceStatus)
//! and a byte-level comparison of each replica with its source
//! (Debug-CsInterPoolReplication).

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use super::engine::Direction;
use super::manifest::Manifest;
use super::plan::{batch_byte_limit, classify};
use super::status::{self, DirectionStatus};
use super::{CancelFlag, ExportState, ImportState, SyncEngine, SyncError, SyncReport};
use crate::store::{Hash, ItemPath, Store, StoreResult};
use crate::topology::{Fqdn, Module, Pool};

/// The status of one module at a pool, both directions.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleStatus {
    pub identity: Module,
    /// This pool's own data → its copy at the partner.
    pub export_status: ExportState,
    /// The partner's data → its copy at this pool.
    pub import_status: ImportState,
    /// Last export / import that ended without error (ns since the epoch;
    /// RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub last_export_time: Option<i64>,
    #[serde(serialize_with = "rfc3339")]
    pub last_import_time: Option<i64>,
    /// What the next export would ship, computed from the stores now.
    pub pending_items: u64,
    pub pending_bytes: u64,
    pub last_error: Option<String>,
}

/// Get-CsBackupServiceStatus of one pool.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub pool_fqdn: Fqdn,
    pub backup_pool_fqdn: Fqdn,
    pub overall_export_status: ExportState,
    pub overall_import_status: ImportState,
    pub backup_modules: Vec<ModuleStatus>,
}

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

/// Formats nanoseconds since the epoch as RFC 3339 (UTC, seconds).
pub fn format_time(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn rfc3339<S: serde::Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(ns) => s.serialize_str(&format_time(*ns)),
        None => s.serialize_none(),
    }
}

fn export_rank(s: ExportState) -> u8 {
    match s {
        ExportState::FinalState => 0,
        ExportState::SteadyState => 1,
        ExportState::NotInitialized => 2,
        ExportState::NonSteadyState => 3,
        ExportState::ErrorState => 4,
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
    /// The modules a pool's status covers, in order.
    fn modules_for(selection: &[Module]) -> Vec<Module> {
        Module::ALL
            .into_iter()
            .filter(|m| selection.contains(m))
            .collect()
    }

    /// Live status of `fqdn`'s modules: stored outcomes plus what is pending now.
    pub async fn pool_status(
        &self,
        fqdn: &str,
        modules: &[Module],
    ) -> Result<PoolStatus, SyncError> {
        let (pool, partner) = self.pair(fqdn)?;
        let pool_store = self.reachable(pool).await?;
        let partner_store = self.reachable(partner).await;
        let settings = self.settings();
        let cms = &self.deployment().cms_master;
        let mut out = Vec::new();
        for module in Self::modules_for(modules) {
            let export_applies = module != Module::CmsMaster || pool.fqdn == *cms;
            let import_applies = module != Module::CmsMaster || partner.fqdn == *cms;
            // A record that cannot be read leaves the state unknown: ErrorState
            // with the reason, not NotInitialized.
            let (export_record, export_damage) = split(
                status::read(
                    &*pool_store,
                    &status::export_key(partner.fqdn.as_str(), module.identity()),
                )
                .await,
            );
            let (import_record, import_damage) = split(
                status::read(
                    &*pool_store,
                    &status::import_key(partner.fqdn.as_str(), module.identity()),
                )
                .await,
            );
            let mut m = ModuleStatus {
                identity: module,
                export_status: ExportState::NotInitialized,
                import_status: ImportState::NotInitialized,
                last_export_time: export_record.as_ref().and_then(|r| r.last_success_ns),
                last_import_time: import_record.as_ref().and_then(|r| r.last_success_ns),
                pending_items: 0,
                pending_bytes: 0,
                last_error: None,
            };
            if export_applies {
                let pending = match &partner_store {
                    Ok(dst) => {
                        self.pending(pool, partner, module, &*pool_store, &**dst)
                            .await
                    }
                    Err(e) => Err(e.to_string()),
                };
                match (pending, &export_record) {
                    (Err(e), _) => {
                        m.export_status = ExportState::ErrorState;
                        m.last_error = Some(e);
                    }
                    (Ok((items, bytes)), record) => {
                        m.pending_items = items;
                        m.pending_bytes = bytes;
                        m.export_status = match record {
                            None => ExportState::NotInitialized,
                            Some(DirectionStatus {
                                export_state: ExportState::ErrorState,
                                last_error,
                                ..
                            }) => {
                                m.last_error = last_error.clone();
                                ExportState::ErrorState
                            }
                            Some(_) => ExportState::for_pending(
                                items,
                                bytes,
                                settings.batch_max_items,
                                batch_byte_limit(module, &settings),
                            ),
                        };
                    }
                }
            }
            if import_applies && let Some(r) = &import_record {
                m.import_status = r.import_state;
                if r.import_state == ImportState::ErrorState && m.last_error.is_none() {
                    m.last_error = r.last_error.clone();
                }
            }
            if export_applies && let Some(e) = export_damage {
                m.export_status = ExportState::ErrorState;
                m.last_error.get_or_insert(e);
            }
            if import_applies && let Some(e) = import_damage {
                m.import_status = ImportState::ErrorState;
                m.last_error.get_or_insert(e);
            }
            out.push(m);
        }
        let applicable: Vec<&ModuleStatus> = out
            .iter()
            .filter(|m| m.identity != Module::CmsMaster || pool.fqdn == *cms)
            .collect();
        let overall_export_status = applicable
            .iter()
            .map(|m| m.export_status)
            .max_by_key(|s| export_rank(*s))
            .unwrap_or(ExportState::NotInitialized);
        let overall_import_status = if out
            .iter()
            .any(|m| m.import_status == ImportState::ErrorState)
        {
            ImportState::ErrorState
        } else if out
            .iter()
            .any(|m| m.import_status == ImportState::NormalState)
        {
            ImportState::NormalState
        } else {
            ImportState::NotInitialized
        };
        Ok(PoolStatus {
            pool_fqdn: pool.fqdn.clone(),
            backup_pool_fqdn: partner.fqdn.clone(),
            overall_export_status,
            overall_import_status,
            backup_modules: out,
        })
    }

    /// Items and bytes the next export of `module` from `from` would ship.
    async fn pending(
        &self,
        from: &Pool,
        to: &Pool,
        module: Module,
        src: &dyn Store,
        dst: &dyn Store,
    ) -> Result<(u64, u64), String> {
        let d = Direction {
            module,
            from,
            to,
            src,
            dst,
        };
        let listing = src
            .list(&d.data_prefix())
            .await
            .map_err(|e| e.to_string())?;
        let manifest = Manifest::load(dst, &d.manifest_prefix())
            .await
            .map_err(|e| e.to_string())?;
        let (candidates, deletes, _) = classify(listing.entries, &manifest);
        Ok((
            (candidates.len() + deletes.len()) as u64,
            candidates.iter().map(|c| c.size).sum(),
        ))
    }

    /// Compares each replica of the pair with its source by content hash, both
    /// directions, and checks the manifests against the replica bytes.
    /// Ctrl-C (`cancel`) stops it between items with [`SyncError::Interrupted`].
    pub async fn verify_pair(
        &self,
        fqdn: &str,
        modules: &[Module],
        cancel: &CancelFlag,
    ) -> Result<ReplicationReport, SyncError> {
        let (pool, partner) = self.pair(fqdn)?;
        let pool_store = self.reachable(pool).await?;
        let partner_store = self.reachable(partner).await?;
        let cms = &self.deployment().cms_master;
        let mut checks = Vec::new();
        for module in Self::modules_for(modules) {
            for (from, src, to, dst) in [
                (pool, &*pool_store, partner, &*partner_store),
                (partner, &*partner_store, pool, &*pool_store),
            ] {
                if module == Module::CmsMaster && from.fqdn != *cms {
                    continue;
                }
                let d = Direction {
                    module,
                    from,
                    to,
                    src,
                    dst,
                };
                let store_err = |pool: &Pool| {
                    let pool = pool.fqdn.clone();
                    move |source| SyncError::Store { pool, source }
                };
                let manifest = Manifest::load(dst, &d.manifest_prefix())
                    .await
                    .map_err(store_err(to))?;
                let interrupted = || {
                    SyncError::Interrupted(Box::new(SyncReport {
                        pool: pool.fqdn.clone(),
                        backup_pool: partner.fqdn.clone(),
                        what_if: true,
                        modules: Vec::new(),
                        warnings: Vec::new(),
                    }))
                };
                let src_hashes = hashes_below(src, &d.data_prefix(), cancel)
                    .await
                    .map_err(store_err(from))?
                    .ok_or_else(interrupted)?;
                let dst_hashes = hashes_below(dst, &d.replica_prefix(), cancel)
                    .await
                    .map_err(store_err(to))?
                    .ok_or_else(interrupted)?;
                let mut check = ReplicaCheck {
                    module,
                    from: from.fqdn.clone(),
                    to: to.fqdn.clone(),
                    source_items: src_hashes.len() as u64,
                    replica_items: dst_hashes.len() as u64,
                    missing: Vec::new(),
                    extra: Vec::new(),
                    different: Vec::new(),
                    manifest_mismatches: Vec::new(),
                };
                for (path, hash) in &src_hashes {
                    match dst_hashes.get(path) {
                        None => check.missing.push(path.to_string()),
                        Some(h) if h != hash => check.different.push(path.to_string()),
                        Some(_) => {}
                    }
                }
                for (path, hash) in &dst_hashes {
                    if !src_hashes.contains_key(path) {
                        check.extra.push(path.to_string());
                    }
                    if manifest.get(path).is_none_or(|m| m.hash != *hash) {
                        check.manifest_mismatches.push(path.to_string());
                    }
                }
                for (path, _) in manifest.iter() {
                    if !dst_hashes.contains_key(path) {
                        check.manifest_mismatches.push(path.to_string());
                    }
                }
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

/// A status record, or why it could not be read.
fn split(read: StoreResult<Option<DirectionStatus>>) -> (Option<DirectionStatus>, Option<String>) {
    match read {
        Ok(record) => (record, None),
        Err(e) => (None, Some(e.to_string())),
    }
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
