//! The sync engine: brings a pool and its backup pool into sync, both directions,
//! module by module, in batches that each commit atomically at the receiving pool.
//!
//! A library API (pair, options → report) that knows nothing of scripts. This
//! file is the orchestration: stores, the pair lock, the directions in order,
//! and the flush at the end. One direction's run is in run.rs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;

use super::direction::Direction;
use super::manifest_cache::ManifestCache;
use super::{
    ExportState, ImportState, SyncError, SyncOptions, SyncReport, failover, pair_lock, status,
};
use crate::store::{Store, open_store};
use crate::topology::{
    BackupServiceSettings, Deployment, Fqdn, Module, ModuleSelection, Pair, Pool,
};

/// The engine over one deployment; cheap to share.
pub struct SyncEngine {
    deployment: Arc<Deployment>,
    stores: Mutex<HashMap<Fqdn, Arc<dyn Store>>>,
    /// The settings in force; `set_backup_service_configuration` changes them live.
    settings: RwLock<BackupServiceSettings>,
    /// Manifests kept between syncs (see [`SyncEngine::keeping_manifests`]).
    manifests: Option<ManifestCache>,
}

/// The two stores of a pair, in the order of its pool and partner.
pub(super) type PairStores = (Arc<dyn Store>, Arc<dyn Store>);

impl SyncEngine {
    #[must_use]
    pub fn new(deployment: Arc<Deployment>) -> Self {
        SyncEngine {
            settings: RwLock::new(deployment.settings.clone()),
            deployment,
            stores: Mutex::new(HashMap::new()),
            manifests: None,
        }
    }

    /// Keeps each replica's manifest in memory after a sync, for the next
    /// sync to use while the store still holds exactly it: for a long-lived
    /// caller (the service) whose syncs of a few changed paths would
    /// otherwise decode the whole manifest each time.
    #[must_use]
    pub fn keeping_manifests(mut self) -> Self {
        self.manifests = Some(ManifestCache::default());
        self
    }

    /// The kept manifests, when this engine keeps them.
    pub(super) fn manifest_cache(&self) -> Option<&ManifestCache> {
        self.manifests.as_ref()
    }

    pub fn deployment(&self) -> &Arc<Deployment> {
        &self.deployment
    }

    /// The settings in force.
    pub fn settings(&self) -> BackupServiceSettings {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings; the next sync (or service cycle) uses them.
    pub fn set_settings(&self, settings: BackupServiceSettings) {
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    /// Uses `store` for a pool instead of opening its location (tests inject
    /// fault-injecting stores this way).
    pub fn set_store(&self, pool: &Fqdn, store: Arc<dyn Store>) {
        let mut stores = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stores.insert(pool.clone(), store);
    }

    /// The store of a pool, opened once.
    pub fn store(&self, pool: &Pool) -> Result<Arc<dyn Store>, SyncError> {
        let mut stores = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = stores.get(&pool.fqdn) {
            return Ok(s.clone());
        }
        let store = open_store(&pool.store).map_err(|source| SyncError::Store {
            pool: pool.fqdn.clone(),
            source,
        })?;
        stores.insert(pool.fqdn.clone(), store.clone());
        Ok(store)
    }

    /// The store of a pool, checked to be there; a failed check forgets the opened
    /// store, so the next attempt reopens it (and recovers when it is back).
    pub async fn reachable(&self, pool: &Pool) -> Result<Arc<dyn Store>, SyncError> {
        let store = self.store(pool)?;
        if let Err(source) = store.probe().await {
            self.stores
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&pool.fqdn);
            return Err(SyncError::Store {
                pool: pool.fqdn.clone(),
                source,
            });
        }
        Ok(store)
    }

    /// `pool` with its backup pool.
    pub fn pair(&self, pool: &Pool) -> Result<Pair, SyncError> {
        self.deployment
            .pair_of(pool)
            .ok_or_else(|| SyncError::NoBackupPool(pool.fqdn.clone()))
    }

    /// The modules of `selection` that `from` exports: CentralMgmt.CMSMaster
    /// only from the pool where the CMS is active (`cms`).
    pub(super) fn exports(from: &Pool, selection: ModuleSelection, cms: &str) -> Vec<Module> {
        Module::ALL
            .into_iter()
            .filter(|m| selection.includes(*m))
            .filter(|m| *m != Module::CmsMaster || from.fqdn.as_str() == cms)
            .collect()
    }

    /// The direction that carries `module` from `from` to `to`, if `from`
    /// exports it: its own data to its replica, or, for a CMS moved to
    /// `from` (`cms`, the pool where it is active), the active copy in its
    /// replica folder back to the deployment's CMS master.
    pub(super) fn direction_of<'a>(
        &self,
        module: Module,
        (from, src): (&'a Pool, &'a dyn Store),
        (to, dst): (&'a Pool, &'a dyn Store),
        cms: &str,
    ) -> Option<Direction<'a>> {
        if module != Module::CmsMaster {
            return Some(Direction::replication(module, from, to, src, dst));
        }
        if from.fqdn.as_str() != cms {
            return None;
        }
        Some(if from.fqdn == self.deployment.cms_master {
            Direction::replication(module, from, to, src, dst)
        } else {
            Direction::cms_reverse(from, to, src, dst)
        })
    }

    /// Syncs several pairs concurrently (each pair once, however it was named),
    /// in the order given.
    pub async fn sync_many(
        &self,
        pairs: &[Pair],
        opts: &SyncOptions,
    ) -> Vec<Result<SyncReport, SyncError>> {
        let mut seen = HashSet::new();
        let unique: Vec<&Pair> = pairs.iter().filter(|p| seen.insert(p.key())).collect();
        let limit = self.settings().max_concurrent_calls.max(1) as usize;
        futures::stream::iter(unique.into_iter().map(|p| self.sync_pair(p, opts)))
            .buffered(limit)
            .collect()
            .await
    }

    /// Brings a pair into sync, both directions.
    pub async fn sync_pair(
        &self,
        pair: &Pair,
        opts: &SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let stores = self.open_pair(pair, opts).await?;
        let mut report = SyncReport::empty(&pair.pool.fqdn, &pair.partner.fqdn, opts.what_if);
        report.warnings.extend(stores.0.take_notices());
        report.warnings.extend(stores.1.take_notices());
        if opts.modules == ModuleSelection::One(Module::CmsMaster)
            && !self.deployment.pair_hosts_cms(&pair.pool)
        {
            report.warnings.push(format!(
                "CentralMgmt.CMSMaster is not carried by this pair: the CMS is at '{}'",
                self.deployment.cms_master
            ));
        }
        let locks = if opts.what_if {
            Vec::new()
        } else {
            pair_lock::lock(pair, (&*stores.0, &*stores.1), opts).await?
        };
        // Everything under the lock runs in here, so the locks are released
        // (and seen free by others at once) whichever way it ends.
        let result = async {
            let held = [Some(&*stores.0), Some(&*stores.1)];
            let state = failover::view::held(pair, held, !opts.what_if).await?.state;
            if let Some(why) = failover::view::sync_refusal(&state) {
                return Err(SyncError::Refused(why));
            }
            let cms = state.cms_master(&self.deployment.cms_master).to_string();
            if !opts.what_if {
                self.reconcile_cms(pair, &stores, &state, opts, &mut report.warnings)
                    .await?;
            }
            let directions = self.directions(pair, &stores, opts, &cms);
            self.run_locked(pair, &stores, &directions, opts, report)
                .await
        }
        .await;
        pair_lock::release(locks).await;
        result
    }

    /// Both stores of a pair, checked to be there. When one is not, the
    /// failure is recorded where it can be seen: at the reachable pool, as an
    /// export that could not run.
    pub(super) async fn open_pair(
        &self,
        pair: &Pair,
        opts: &SyncOptions,
    ) -> Result<PairStores, SyncError> {
        let (a, b) = (&pair.pool, &pair.partner);
        let (error, reached) = match (self.reachable(a).await, self.reachable(b).await) {
            (Ok(sa), Ok(sb)) => return Ok((sa, sb)),
            (Err(e), Ok(sb)) => (e, Some((sb, b, a))),
            (Ok(sa), Err(e)) => (e, Some((sa, a, b))),
            (Err(e), Err(_)) => (e, None),
        };
        if let Some((store, from, to)) = reached {
            // The CMS as the last record this store holds has it.
            let record = failover::state::read(&*store, pair).await.ok().flatten();
            let cms = record
                .as_ref()
                .map_or(self.deployment.cms_master.as_str(), |r| {
                    r.cms_master(&self.deployment.cms_master)
                });
            let modules = Self::exports(from, opts.modules, cms);
            status::record_unreachable(&*store, from, to, &modules, &error.to_string()).await;
        }
        Err(error)
    }

    /// Every direction of the pair that `opts` selects: per module, the pool's
    /// export, then the partner's.
    pub(super) fn directions<'a>(
        &self,
        pair: &'a Pair,
        stores: &'a PairStores,
        opts: &SyncOptions,
        cms: &str,
    ) -> Vec<Direction<'a>> {
        let ends = [
            ((&pair.pool, &*stores.0), (&pair.partner, &*stores.1)),
            ((&pair.partner, &*stores.1), (&pair.pool, &*stores.0)),
        ];
        let mut directions = Vec::new();
        for module in Module::ALL
            .into_iter()
            .filter(|m| opts.modules.includes(*m))
        {
            for (from, to) in ends {
                directions.extend(self.direction_of(module, from, to, cms));
            }
        }
        if let Some(changes) = &opts.changes {
            directions.retain(|d| changes.touches(&d.from.fqdn, d.module));
        }
        directions
    }

    /// Runs `directions` (under the pair lock, unless a dry run), flushes
    /// both stores, and judges the result.
    pub(super) async fn run_locked(
        &self,
        pair: &Pair,
        stores: &PairStores,
        directions: &[Direction<'_>],
        opts: &SyncOptions,
        mut report: SyncReport,
    ) -> Result<SyncReport, SyncError> {
        for direction in directions {
            if opts.cancel.is_cancelled() {
                break;
            }
            let r = self
                .sync_direction(direction, opts, &mut report.warnings)
                .await;
            report.modules.push(r);
        }
        if !opts.what_if {
            flush(pair, stores, directions, &mut report).await;
        }
        // Interrupted only if work was left undone: a Ctrl-C that lands after the
        // last batch committed changes nothing, and the report stands.
        let cut_short = report.modules.len() < directions.len()
            || report.modules.iter().any(|m| m.pending_items > 0);
        if opts.cancel.is_cancelled() && cut_short {
            return Err(SyncError::Interrupted(Box::new(report)));
        }
        if report.modules.iter().any(|m| m.error.is_some()) {
            return Err(SyncError::Failed(Box::new(report)));
        }
        Ok(report)
    }
}

/// One flush per store makes the last batches' renames and logs, and the
/// status records just written, durable. A store whose flush fails has its
/// directions' records rewritten as failed.
async fn flush(
    pair: &Pair,
    stores: &PairStores,
    directions: &[Direction<'_>],
    report: &mut SyncReport,
) {
    let mut retracted = false;
    for (at, store) in [(&pair.pool, &stores.0), (&pair.partner, &stores.1)] {
        let Err(e) = store.make_durable().await else {
            continue;
        };
        // The status records already say how the directions into this store
        // went: record the failure over them. (Their last success stays this
        // sync's: the data was copied; only its durability is in doubt.)
        for (i, m) in report.modules.iter_mut().enumerate() {
            if m.to != at.fqdn {
                continue;
            }
            m.error.get_or_insert(format!(
                "the sync's last changes at {} may not survive a power loss: {e}",
                at.fqdn
            ));
            m.export_status = ExportState::ErrorState;
            status::record(
                &directions[i],
                m,
                ImportState::ErrorState,
                &mut report.warnings,
            )
            .await;
            retracted = true;
        }
    }
    if retracted {
        for store in [&stores.0, &stores.1] {
            let _ = store.make_durable().await;
        }
    }
}
