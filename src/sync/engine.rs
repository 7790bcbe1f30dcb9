//! The sync engine: brings a pool and its backup pool into sync, both directions,
//! module by module, in batches that each commit atomically at the receiving pool.
//!
//! A library API (pool, options → report) that knows nothing of scripts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::manifest::{Delta, Manifest, ManifestEntry, decode, encode};
use super::plan::{batch_byte_limit, classify, in_the_way, partition};
use super::status::{self, DirectionStatus};
use super::{DirectionReport, ExportState, ImportState, SyncReport};
use crate::store::{
    Entry, ItemFailures, ItemPath, StageRequest, Store, StoreError, StoreLock, StoreResult,
    open_store, system_time_ns,
};
use crate::topology::{Deployment, Fqdn, Module, ModuleSelection, Pool};

/// Items handed to the store at once while staging a batch, at most (and bytes,
/// unless one item is larger): Ctrl-C is seen between such groups.
const GROUP_ITEMS: usize = 256;
const GROUP_BYTES: u64 = 64 << 20;

/// A replica below this many items is never "non-trivial" for the mass-delete guard.
pub const GUARD_MIN_ITEMS: usize = 20;

/// Set by Ctrl-C; the engine stops at the next clean point.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn from_shared(flag: Arc<AtomicBool>) -> Self {
        CancelFlag(flag)
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Receives progress; the command line draws a bar with it.
pub trait Progress: Send + Sync {
    /// More work was found: `items` items of `bytes` bytes to copy.
    fn add_work(&self, items: u64, bytes: u64);
    /// Work was done.
    fn advance(&self, items: u64, bytes: u64);
    /// A one-line notice (e.g. waiting for a lock).
    fn note(&self, message: &str);
}

/// What to sync and how.
#[derive(Clone)]
pub struct SyncOptions {
    pub modules: ModuleSelection,
    /// Compute what would be copied and deleted; change nothing.
    pub what_if: bool,
    /// Let a sync wipe (or delete more than half of) a replica.
    pub allow_mass_delete: bool,
    /// Ship at most the per-cycle batch limits of the settings
    /// (max_batches_per_user_store_sync, max_batches_per_cms_sync): the service's
    /// cycle. A manual sync drains the whole backlog.
    pub per_cycle: bool,
    /// When another sync holds the pair lock: wait for it (`true`, a manual
    /// sync), or give up at once with [`SyncError::Busy`] (the service, which
    /// tries again next cycle instead of holding a concurrency slot idle).
    pub wait_for_lock: bool,
    pub cancel: CancelFlag,
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            modules: ModuleSelection::All,
            what_if: false,
            allow_mass_delete: false,
            per_cycle: false,
            wait_for_lock: true,
            cancel: CancelFlag::new(),
            progress: None,
        }
    }
}

/// A fatal sync error; one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    UnknownPool(String),
    #[error(
        "pool '{0}' has no backup pool: set backup_pool for it (and its partner) in deployment.toml before syncing"
    )]
    NoBackupPool(Fqdn),
    #[error("cannot open the store of pool '{pool}': {source}")]
    Store {
        pool: Fqdn,
        #[source]
        source: StoreError,
    },
    #[error(
        "pool '{pool}' is busy: its pair lock is held by {holder}; try again when that sync ends"
    )]
    Busy { pool: Fqdn, holder: String },
    #[error("sync of {} <-> {} failed: {}", .0.pool, .0.backup_pool, .0.errors().join("; "))]
    Failed(Box<SyncReport>),
    #[error("sync of {} <-> {} interrupted; completed batches are kept", .0.pool, .0.backup_pool)]
    Interrupted(Box<SyncReport>),
}

/// The write-ahead record of one batch: written and made durable before anything
/// moves, so a crash at any point can be rolled forward.
#[derive(Serialize, Deserialize)]
struct Journal {
    moves: Vec<(String, ItemPath)>,
    deletes: Vec<ItemPath>,
    delta: Delta,
}

enum ItemOutcome {
    Copied {
        /// The staged name to move into place (`None`: written in place).
        name: Option<String>,
        path: ItemPath,
        entry: ManifestEntry,
    },
    Unchanged {
        path: ItemPath,
        entry: ManifestEntry,
    },
    Failed {
        size: u64,
        message: String,
    },
    Skipped,
}

/// A batch whose items are staged, on its way to being committed.
struct Committing {
    journal: Journal,
    /// Items and bytes of the batch as planned (for progress).
    items: u64,
    item_bytes: u64,
    copied: u64,
    bytes: u64,
    unchanged: u64,
}

impl Committing {
    /// Nothing to commit: every item failed, and no deletion goes with them.
    fn is_empty(&self) -> bool {
        self.journal.delta.upserts.is_empty() && self.journal.delta.removes.is_empty()
    }

    /// The batch committed: record it in the manifest and the report.
    fn record(self, manifest: &mut Manifest, report: &mut DirectionReport, opts: &SyncOptions) {
        if !self.is_empty() {
            manifest.committed(&self.journal.delta);
            report.batches += 1;
        }
        report.items_deleted += self.journal.delta.removes.len() as u64;
        report.items_copied += self.copied;
        report.bytes_copied += self.bytes;
        report.items_unchanged += self.unchanged;
        if let Some(p) = &opts.progress {
            p.advance(self.items, self.item_bytes);
        }
    }
}

/// The batch an interrupted run left, from its journal document: `None` if
/// the journal was torn (nothing had moved) or its manifest log was written
/// (the batch committed).
async fn unfinished(d: &Direction<'_>, journal: &[u8]) -> StoreResult<Option<Journal>> {
    let Some(journal) = decode::<Journal>(journal) else {
        return Ok(None);
    };
    let logged = Manifest::has_log(d.dst, &d.manifest_prefix(), journal.delta.seq).await?;
    Ok((!logged).then_some(journal))
}

/// What a commit left out: items the receiving store refused on their own
/// account (see `Store::commit`). They stay pending, with a warning each.
#[derive(Default)]
struct Refused {
    messages: Vec<String>,
    copies: u64,
    bytes: u64,
    deletes: u64,
}

impl Refused {
    /// Takes the refused items out of a committed batch's counts and into the
    /// direction's failed items (which hold back the deletions at the end).
    fn count(
        self,
        committing: &mut Committing,
        failed_items: &mut u64,
        failed_bytes: &mut u64,
        warnings: &mut Vec<String>,
    ) {
        committing.copied -= self.copies;
        committing.bytes -= self.bytes;
        *failed_items += self.copies + self.deletes;
        *failed_bytes += self.bytes;
        warnings.extend(self.messages);
    }
}

/// Takes the items a commit refused out of the batch's manifest change, so the
/// manifest records only what is in the replica.
fn leave_out(d: &Direction<'_>, journal: &mut Journal, failed: ItemFailures) -> Refused {
    let mut refused = Refused::default();
    if failed.is_empty() {
        return refused;
    }
    let replica_prefix = d.replica_prefix();
    let failed: HashMap<ItemPath, String> = failed.into_iter().collect();
    let mut refuse = |path: &ItemPath| {
        let message = failed.get(&replica_prefix.join(path))?;
        refused
            .messages
            .push(format!("{} -> {}: {message}", d.from.fqdn, d.to.fqdn));
        Some(())
    };
    let (mut copies, mut bytes, mut deletes) = (0, 0, 0);
    journal.delta.upserts.retain(|(path, entry)| {
        let keep = refuse(path).is_none();
        if !keep {
            copies += 1;
            bytes += entry.size;
        }
        keep
    });
    journal.delta.removes.retain(|path| {
        let keep = refuse(path).is_none();
        deletes += u64::from(!keep);
        keep
    });
    refused.copies = copies;
    refused.bytes = bytes;
    refused.deletes = deletes;
    refused
}

/// Drops what a batch staged (the batch will not be committed).
async fn discard_outcomes(d: &Direction<'_>, outcomes: Vec<ItemOutcome>) {
    let names: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| match o {
            ItemOutcome::Copied { name, .. } => name,
            _ => None,
        })
        .collect();
    let _ = d.dst.discard_staged(&names).await;
}

/// One module in one direction, while it runs.
pub(super) struct Direction<'a> {
    pub(super) module: Module,
    pub(super) from: &'a Pool,
    pub(super) to: &'a Pool,
    pub(super) src: &'a dyn Store,
    pub(super) dst: &'a dyn Store,
}

impl Direction<'_> {
    pub(super) fn data_prefix(&self) -> ItemPath {
        ItemPath::parse(format!("data/{}", self.module.identity()))
            .unwrap_or_else(|_| unreachable!())
    }
    pub(super) fn replica_prefix(&self) -> ItemPath {
        ItemPath::parse(format!(
            "backup/{}/{}",
            self.from.fqdn,
            self.module.identity()
        ))
        .unwrap_or_else(|_| unreachable!())
    }
    pub(super) fn manifest_prefix(&self) -> String {
        Manifest::prefix_for(self.from.fqdn.as_str(), self.module.identity())
    }
    pub(super) fn journal_key(&self) -> String {
        format!("journal/{}/{}", self.from.fqdn, self.module.identity())
    }
    /// Where the paths a batch may write in place are recorded (stores that
    /// write in place only); one document per batch, named by its number.
    pub(super) fn intent_prefix(&self) -> String {
        format!("intent/{}/{}", self.from.fqdn, self.module.identity())
    }
    pub(super) fn stage_prefix(&self) -> String {
        format!("{}-{}", self.from.fqdn, self.module.short_name())
    }
}

/// The engine over one deployment; cheap to share.
pub struct SyncEngine {
    deployment: Arc<Deployment>,
    stores: Mutex<HashMap<Fqdn, Arc<dyn Store>>>,
    /// The settings in force; set_backup_service_configuration changes them live.
    settings: std::sync::RwLock<crate::topology::BackupServiceSettings>,
}

impl SyncEngine {
    pub fn new(deployment: Arc<Deployment>) -> Self {
        SyncEngine {
            settings: std::sync::RwLock::new(deployment.settings.clone()),
            deployment,
            stores: Mutex::new(HashMap::new()),
        }
    }

    pub fn deployment(&self) -> &Arc<Deployment> {
        &self.deployment
    }

    /// The settings in force.
    pub fn settings(&self) -> crate::topology::BackupServiceSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the settings; the next sync (or service cycle) uses them.
    pub fn set_settings(&self, settings: crate::topology::BackupServiceSettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// Uses `store` for a pool instead of opening its location (tests inject
    /// fault-injecting stores this way).
    pub fn set_store(&self, pool: &Fqdn, store: Arc<dyn Store>) {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.insert(pool.clone(), store);
    }

    /// The store of a pool, opened once.
    pub fn store(&self, pool: &Pool) -> Result<Arc<dyn Store>, SyncError> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
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
                .unwrap_or_else(|p| p.into_inner())
                .remove(&pool.fqdn);
            return Err(SyncError::Store {
                pool: pool.fqdn.clone(),
                source,
            });
        }
        Ok(store)
    }

    /// Marks the exports of `from` to an unreachable `to` as failed.
    async fn record_unreachable(
        &self,
        store: &dyn Store,
        from: &Pool,
        to: &Pool,
        modules: ModuleSelection,
        error: &str,
    ) {
        for module in Module::ALL {
            if !modules.includes(module)
                || (module == Module::CmsMaster && from.fqdn != self.deployment.cms_master)
            {
                continue;
            }
            let key = status::export_key(to.fqdn.as_str(), module.identity());
            let previous = status::read(store, &key).await.ok().flatten();
            let record = DirectionStatus {
                module: module.identity().to_string(),
                from: from.fqdn.to_string(),
                to: to.fqdn.to_string(),
                time_ns: system_time_ns(SystemTime::now()),
                export_state: ExportState::ErrorState,
                import_state: ImportState::NormalState,
                items_copied: 0,
                bytes_copied: 0,
                items_deleted: 0,
                batches: 0,
                pending_items: previous.as_ref().map_or(0, |p| p.pending_items),
                last_error: Some(error.to_string()),
                last_success_ns: previous.and_then(|p| p.last_success_ns),
            };
            let _ = status::write(store, &key, &record).await;
        }
    }

    /// Resolves a pool and its partner.
    pub fn pair(&self, fqdn: &str) -> Result<(&Pool, &Pool), SyncError> {
        let pool = self
            .deployment
            .require_pool(fqdn)
            .map_err(SyncError::UnknownPool)?;
        let partner = pool
            .backup_pool
            .as_ref()
            .and_then(|b| self.deployment.pool(b.as_str()))
            .ok_or_else(|| SyncError::NoBackupPool(pool.fqdn.clone()))?;
        Ok((pool, partner))
    }

    /// Syncs several pools' pairs concurrently (each pair once), in the order given.
    pub async fn sync_many(
        &self,
        pools: &[String],
        opts: &SyncOptions,
    ) -> Vec<Result<SyncReport, SyncError>> {
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        for p in pools {
            let key = match self.pair(p) {
                Ok((a, b)) => {
                    let (x, y) = if a.fqdn < b.fqdn { (a, b) } else { (b, a) };
                    format!("{}|{}", x.fqdn, y.fqdn)
                }
                Err(_) => p.to_ascii_lowercase(),
            };
            if seen.insert(key) {
                unique.push(p.clone());
            }
        }
        let limit = self.settings().max_concurrent_calls.max(1) as usize;
        futures::stream::iter(unique.iter().map(|p| self.sync_pair(p, opts)))
            .buffered(limit)
            .collect()
            .await
    }

    /// Brings `fqdn` and its backup pool into sync, both directions.
    pub async fn sync_pair(&self, fqdn: &str, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
        let (pool, partner) = self.pair(fqdn)?;
        let (pool_store, partner_store) =
            match (self.reachable(pool).await, self.reachable(partner).await) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => {
                    // Record the failure where it can be seen: at the reachable pool,
                    // as an export that could not run.
                    let error = match (&a, &b) {
                        (Err(e), _) | (_, Err(e)) => e.to_string(),
                        _ => unreachable!(),
                    };
                    if let Ok(store) = &a {
                        self.record_unreachable(&**store, pool, partner, opts.modules, &error)
                            .await;
                    }
                    if let Ok(store) = &b {
                        self.record_unreachable(&**store, partner, pool, opts.modules, &error)
                            .await;
                    }
                    return Err(a.and(b).err().unwrap_or_else(|| unreachable!()));
                }
            };
        let mut report = SyncReport {
            pool: pool.fqdn.clone(),
            backup_pool: partner.fqdn.clone(),
            what_if: opts.what_if,
            modules: Vec::new(),
            warnings: Vec::new(),
        };
        report.warnings.extend(pool_store.take_notices());
        report.warnings.extend(partner_store.take_notices());
        if opts.modules == ModuleSelection::One(Module::CmsMaster)
            && !self.deployment.pair_hosts_cms(pool)
        {
            report.warnings.push(format!(
                "CentralMgmt.CMSMaster is not carried by this pair: the CMS is at '{}'",
                self.deployment.cms_master
            ));
        }

        let locks = if opts.what_if {
            Vec::new()
        } else {
            self.lock_pair(pool, &*pool_store, partner, &*partner_store, opts)
                .await?
        };
        // Everything under the lock runs in this block, so the locks are released
        // (and seen free by others at once) whichever way it ends.
        let result = async {
            let mut directions: Vec<Direction<'_>> = Vec::new();
            for module in Module::ALL {
                if !opts.modules.includes(module) {
                    continue;
                }
                let pairs = [
                    (pool, &*pool_store, partner, &*partner_store),
                    (partner, &*partner_store, pool, &*pool_store),
                ];
                for (from, src, to, dst) in pairs {
                    if module == Module::CmsMaster && from.fqdn != self.deployment.cms_master {
                        continue;
                    }
                    directions.push(Direction {
                        module,
                        from,
                        to,
                        src,
                        dst,
                    });
                }
            }

            for direction in &directions {
                if opts.cancel.is_cancelled() {
                    break;
                }
                let r = self
                    .sync_direction(direction, opts, &mut report.warnings)
                    .await;
                report.modules.push(r);
            }
            // One flush per store makes the last batches' renames and logs, and
            // the status records just written, durable.
            if !opts.what_if {
                let mut retracted = false;
                for (at, store) in [(pool, &pool_store), (partner, &partner_store)] {
                    if let Err(e) = store.make_durable().await {
                        // The status records already say how the directions
                        // into this store went: record the failure over them.
                        // (Their last success stays this sync's: the data was
                        // copied; only its durability is in doubt.)
                        for (i, m) in report.modules.iter_mut().enumerate() {
                            if m.to != at.fqdn {
                                continue;
                            }
                            m.error.get_or_insert(format!(
                                "the sync's last changes at {} may not survive a power loss: {e}",
                                at.fqdn
                            ));
                            m.export_status = ExportState::ErrorState;
                            self.record_status(
                                &directions[i],
                                m,
                                ImportState::ErrorState,
                                &mut report.warnings,
                            )
                            .await;
                            retracted = true;
                        }
                    }
                }
                if retracted {
                    for store in [&pool_store, &partner_store] {
                        let _ = store.make_durable().await;
                    }
                }
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
        .await;
        for lock in locks {
            lock.release().await;
        }
        result
    }

    async fn lock_pair(
        &self,
        a: &Pool,
        a_store: &dyn Store,
        b: &Pool,
        b_store: &dyn Store,
        opts: &SyncOptions,
    ) -> Result<Vec<Box<dyn StoreLock>>, SyncError> {
        let (first, second) = if a.fqdn < b.fqdn {
            ((a, a_store), (b, b_store))
        } else {
            ((b, b_store), (a, a_store))
        };
        let name = format!("pair-{}-{}", first.0.fqdn, second.0.fqdn);
        let owner = crate::store::lock_owner();
        let mut held = Vec::new();
        for (pool, store) in [first, second] {
            let mut told = false;
            // Polled, not queued: a lock is an object or a file. Short pauses at
            // first (a sync that is just ending), then up to 2 s apart, so a long
            // wait costs a remote store a request every few seconds at most.
            let mut pause = Duration::from_millis(100);
            loop {
                match store.try_lock(&name, &owner).await {
                    Ok(Ok(guard)) => {
                        held.push(guard);
                        break;
                    }
                    Ok(Err(holder)) => {
                        if !opts.wait_for_lock {
                            for lock in held {
                                lock.release().await;
                            }
                            return Err(SyncError::Busy {
                                pool: pool.fqdn.clone(),
                                holder: holder.0,
                            });
                        }
                        if !told {
                            if let Some(p) = &opts.progress {
                                p.note(&format!(
                                    "waiting for the pair lock at {}: held by {}",
                                    pool.fqdn, holder.0
                                ));
                            }
                            told = true;
                        }
                        if opts.cancel.is_cancelled() {
                            for lock in held {
                                lock.release().await;
                            }
                            return Err(SyncError::Interrupted(Box::new(SyncReport {
                                pool: a.fqdn.clone(),
                                backup_pool: b.fqdn.clone(),
                                what_if: false,
                                modules: Vec::new(),
                                warnings: Vec::new(),
                            })));
                        }
                        let until = Instant::now() + pause;
                        while Instant::now() < until && !opts.cancel.is_cancelled() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        pause = (pause * 2).min(Duration::from_secs(2));
                    }
                    Err(source) => {
                        for lock in held {
                            lock.release().await;
                        }
                        return Err(SyncError::Store {
                            pool: pool.fqdn.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(held)
    }

    async fn sync_direction(
        &self,
        d: &Direction<'_>,
        opts: &SyncOptions,
        warnings: &mut Vec<String>,
    ) -> DirectionReport {
        let started = Instant::now();
        let mut report = DirectionReport {
            module: d.module,
            from: d.from.fqdn.clone(),
            to: d.to.fqdn.clone(),
            items_copied: 0,
            bytes_copied: 0,
            items_deleted: 0,
            items_unchanged: 0,
            batches: 0,
            duration_ms: 0,
            export_status: ExportState::NotInitialized,
            pending_items: 0,
            would_copy: Vec::new(),
            would_delete: Vec::new(),
            error: None,
        };
        let outcome = self.run_direction(d, opts, &mut report, warnings).await;
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(
            module = d.module.short_name(),
            from = %d.from.fqdn,
            to = %d.to.fqdn,
            copied = report.items_copied,
            deleted = report.items_deleted,
            batches = report.batches,
            failed = outcome.is_err(),
            total_ms = ms(started.elapsed()),
            "direction done"
        );
        let import_state = match &outcome {
            Ok(_) => ImportState::NormalState,
            Err(DirectionFailure::Import(_)) => ImportState::ErrorState,
            Err(_) => ImportState::NormalState,
        };
        let pending_bytes = match &outcome {
            Ok(b) => *b,
            Err(_) => 0,
        };
        if let Err(failure) = &outcome {
            report.error = Some(failure.message().to_string());
            report.export_status = ExportState::ErrorState;
        } else {
            let s = &self.settings();
            let batch_bytes = batch_byte_limit(d.module, s);
            report.export_status = ExportState::for_pending(
                report.pending_items,
                pending_bytes,
                s.batch_max_items,
                batch_bytes,
            );
        }
        if !opts.what_if {
            self.record_status(d, &report, import_state, warnings).await;
        }
        report
    }

    /// Records how one direction ended at both of its stores: the export status
    /// at the source, the import status at the receiving store.
    async fn record_status(
        &self,
        d: &Direction<'_>,
        report: &DirectionReport,
        import_state: ImportState,
        warnings: &mut Vec<String>,
    ) {
        let now = system_time_ns(SystemTime::now());
        let status = DirectionStatus {
            module: d.module.identity().to_string(),
            from: d.from.fqdn.to_string(),
            to: d.to.fqdn.to_string(),
            time_ns: now,
            export_state: report.export_status,
            import_state,
            items_copied: report.items_copied,
            bytes_copied: report.bytes_copied,
            items_deleted: report.items_deleted,
            batches: report.batches,
            pending_items: report.pending_items,
            last_error: report.error.clone(),
            last_success_ns: None,
        };
        for (store, key) in [
            (
                d.src,
                status::export_key(d.to.fqdn.as_str(), d.module.identity()),
            ),
            (
                d.dst,
                status::import_key(d.from.fqdn.as_str(), d.module.identity()),
            ),
        ] {
            let previous = status::read(store, &key).await.ok().flatten();
            let mut s = status.clone();
            s.last_success_ns = if report.error.is_none() {
                Some(now)
            } else {
                previous.and_then(|p| p.last_success_ns)
            };
            if let Err(e) = status::write(store, &key, &s).await {
                warnings.push(format!(
                    "could not record status at {}: {e}",
                    store.describe()
                ));
            }
        }
    }

    /// Fills an empty (lost or damaged) manifest from the replica itself: each item's
    /// size and hash, with no source metadata, so every source item is compared by
    /// content (nothing equal is copied again) and items the source no longer has
    /// are deleted (subject to the guard).
    async fn rebuild_from_replica(
        &self,
        d: &Direction<'_>,
        manifest: &mut Manifest,
        warnings: &mut Vec<String>,
    ) -> StoreResult<()> {
        let prefix = d.replica_prefix();
        let listing = d.dst.list(&prefix).await?;
        if listing.entries.is_empty() {
            return Ok(());
        }
        let parallelism = self.settings().transfer_parallelism.max(1) as usize;
        let hashed: Vec<StoreResult<(ItemPath, u64, crate::store::Hash)>> =
            futures::stream::iter(listing.entries.iter().map(|e| {
                let prefix = &prefix;
                async move {
                    let (size, hash) = d.dst.hash(&prefix.join(&e.path)).await?;
                    Ok((e.path.clone(), size, hash))
                }
            }))
            .buffer_unordered(parallelism)
            .collect()
            .await;
        for item in hashed {
            let (path, size, hash) = item?;
            manifest.insert(
                path,
                ManifestEntry {
                    size,
                    mtime_ns: i64::MIN,
                    token: crate::store::ChangeToken::None,
                    hash,
                },
            );
        }
        warnings.push(format!(
            "{} at {}: the replica had no manifest; rebuilt it from the content of {} items",
            d.module.short_name(),
            d.to.fqdn,
            manifest.len()
        ));
        Ok(())
    }

    /// On a store that writes items in place, a batch that never committed
    /// (Ctrl-C or a kill while it was copied, or dropped when the batch before
    /// it failed to commit) may have changed some of the paths its intent
    /// record lists, and nothing else knows which. Each such path is recorded
    /// as [`ManifestEntry::unknown`], in a manifest log of its own, so the sync
    /// copies it again if the source has it and deletes it if not. Without
    /// this, an item written and then deleted at the source would stay in the
    /// replica for ever, and one written and then changed back would keep the
    /// newer content. In `what_if` only the in-memory manifest changes.
    async fn forget_uncommitted(
        &self,
        d: &Direction<'_>,
        manifest: &mut Manifest,
        opts: &SyncOptions,
        warnings: &mut Vec<String>,
    ) -> StoreResult<()> {
        let manifest_prefix = d.manifest_prefix();
        let mut done = Vec::new();
        let mut unknown: Vec<ItemPath> = Vec::new();
        for key in d.dst.meta_list(&d.intent_prefix()).await? {
            let Some(seq) = key.rsplit('/').next().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            if !Manifest::has_log(d.dst, &manifest_prefix, seq).await? {
                let paths = d.dst.meta_get(&key).await?;
                match paths.as_deref().map(decode::<Vec<ItemPath>>) {
                    Some(Some(paths)) => unknown.extend(paths),
                    // Unreadable: nothing in this replica can be trusted.
                    Some(None) => {
                        warnings.push(format!(
                            "{} at {}: the record of an uncommitted batch is corrupt; every item is compared again",
                            d.module.short_name(),
                            d.to.fqdn
                        ));
                        unknown.extend(manifest.iter().map(|(p, _)| p.clone()));
                    }
                    None => {}
                }
            }
            done.push(key);
        }
        if !unknown.is_empty() {
            unknown.sort_unstable();
            unknown.dedup();
            let delta = Delta {
                seq: manifest.next_seq(),
                upserts: unknown
                    .into_iter()
                    .map(|p| (p, ManifestEntry::unknown()))
                    .collect(),
                removes: Vec::new(),
            };
            if !opts.what_if {
                Manifest::write_log(d.dst, &manifest_prefix, &delta).await?;
                d.dst.make_durable().await?;
            }
            manifest.committed(&delta);
        }
        if !opts.what_if {
            for key in done {
                d.dst.meta_delete(&key).await?;
            }
        }
        Ok(())
    }

    /// Recovers an interrupted batch by rolling its journal forward.
    async fn recover(&self, d: &Direction<'_>, warnings: &mut Vec<String>) -> StoreResult<()> {
        let key = d.journal_key();
        if let Some(bytes) = d.dst.meta_get(&key).await? {
            if let Some(mut journal) = unfinished(d, &bytes).await? {
                match d.dst.commit(&journal.moves, &journal.deletes).await {
                    Ok(failed) => {
                        warnings.extend(leave_out(d, &mut journal, failed).messages);
                        Manifest::write_log(d.dst, &d.manifest_prefix(), &journal.delta).await?;
                    }
                    // Dropping a batch that cannot be finished is safe: the
                    // manifest still records the items as before, so the
                    // ones it moved or deleted are checked again (by content)
                    // and the rest are copied or deleted again. Replaying it
                    // at every sync would block the pair for good.
                    Err(e) => warnings.push(format!(
                        "{} at {}: an interrupted batch could not be finished and was dropped; this sync checks its items again: {e}",
                        d.module.short_name(),
                        d.to.fqdn
                    )),
                }
            }
            // A journal that does not decode was torn while being written: nothing
            // had moved yet, so dropping it loses nothing.
            d.dst.make_durable().await?;
            d.dst.meta_delete(&key).await?;
        }
        d.dst.clear_staging(&d.stage_prefix()).await?;
        // Metadata writes stage as `meta-*`; one torn by a crash is dropped here
        // (every write to this store happens under the pair lock we hold).
        d.dst.clear_staging("meta-").await
    }

    /// Commits one batch: journal, durable, move into place, manifest log. The
    /// caller then records the delta in its in-memory manifest.
    async fn commit_batch(&self, d: &Direction<'_>, journal: &mut Journal) -> StoreResult<Refused> {
        let key = d.journal_key();
        let started = Instant::now();
        d.dst.meta_put(&key, encode(journal)).await?;
        // While the batch is flushed, look up what the commit will touch.
        let (durable, ()) = tokio::join!(
            d.dst.make_durable(),
            d.dst.prepare_commit(&journal.moves, &journal.deletes)
        );
        durable?;
        let durable = started.elapsed();
        let failed = d.dst.commit(&journal.moves, &journal.deletes).await?;
        let refused = leave_out(d, journal, failed);
        let moved = started.elapsed();
        Manifest::write_log(d.dst, &d.manifest_prefix(), &journal.delta).await?;
        d.dst.meta_delete(&key).await?;
        if d.dst.writes_in_place() {
            let intent = format!("{}/{}", d.intent_prefix(), journal.delta.seq);
            d.dst.meta_delete(&intent).await?;
        }
        tracing::debug!(
            module = d.module.short_name(),
            to = %d.to.fqdn,
            batch = journal.delta.seq,
            moved = journal.moves.len(),
            deleted = journal.deletes.len(),
            durable_ms = ms(durable),
            move_ms = ms(moved - durable),
            total_ms = ms(started.elapsed()),
            "batch committed"
        );
        Ok(refused)
    }

    /// Copies the items of one batch (up to `transfer_parallelism` at once) into
    /// staging at the receiving store. `previous[i]` is what the manifest records
    /// for `batch[i]`: an item of the same size is hashed first and not copied
    /// when its content did not change. Items go to the store in groups, and
    /// Ctrl-C is seen between groups.
    async fn stage_batch(
        &self,
        d: &Direction<'_>,
        opts: &SyncOptions,
        batch: &[Entry],
        previous: &[Option<ManifestEntry>],
        seq: u64,
    ) -> Vec<ItemOutcome> {
        let stage_prefix = d.stage_prefix();
        let data_prefix = d.data_prefix();
        let replica_prefix = d.replica_prefix();
        let parallelism = self.settings().transfer_parallelism.max(1) as usize;
        let mut outcomes = Vec::with_capacity(batch.len());
        let started = Instant::now();
        let mut start = 0;
        while start < batch.len() {
            if opts.cancel.is_cancelled() {
                outcomes.push(ItemOutcome::Skipped);
                break;
            }
            let mut end = start;
            let mut bytes = 0u64;
            while end < batch.len()
                && end - start < GROUP_ITEMS
                && (end == start || bytes + batch[end].size <= GROUP_BYTES)
            {
                bytes += batch[end].size;
                end += 1;
            }
            let requests: Vec<StageRequest> = (start..end)
                .map(|i| StageRequest {
                    path: data_prefix.join(&batch[i].path),
                    name: format!("{stage_prefix}-{seq}-{i}"),
                    dest: replica_prefix.join(&batch[i].path),
                    // Same size as before: copied only if the content changed.
                    known: previous[i]
                        .as_ref()
                        .filter(|m| m.size == batch[i].size)
                        .map(|m| m.hash),
                })
                .collect();
            let results = d.dst.stage_many(d.src, &requests, parallelism).await;
            for ((i, request), result) in (start..end).zip(&requests).zip(results) {
                let entry = &batch[i];
                let previous = previous[i].as_ref();
                let new_entry = |hash| ManifestEntry {
                    size: entry.size,
                    mtime_ns: entry.mtime_ns,
                    token: entry.token.clone(),
                    hash,
                };
                outcomes.push(match result {
                    Ok(None) => ItemOutcome::Unchanged {
                        path: entry.path.clone(),
                        entry: new_entry(request.known.unwrap_or_default()),
                    },
                    Ok(Some(staged)) if previous.is_some_and(|m| m.hash == staged.hash) => {
                        if !staged.in_place {
                            let _ = d
                                .dst
                                .discard_staged(std::slice::from_ref(&staged.name))
                                .await;
                        }
                        ItemOutcome::Unchanged {
                            path: entry.path.clone(),
                            entry: new_entry(staged.hash),
                        }
                    }
                    Ok(Some(staged)) => ItemOutcome::Copied {
                        name: (!staged.in_place).then_some(staged.name),
                        path: entry.path.clone(),
                        entry: new_entry(staged.hash),
                    },
                    Err(e) => {
                        let _ = d
                            .dst
                            .discard_staged(std::slice::from_ref(&request.name))
                            .await;
                        ItemOutcome::Failed {
                            size: entry.size,
                            message: item_failure(&entry.path, &e),
                        }
                    }
                });
            }
            start = end;
        }
        tracing::debug!(
            module = d.module.short_name(),
            to = %d.to.fqdn,
            batch = seq,
            items = batch.len(),
            stage_ms = ms(started.elapsed()),
            "batch staged"
        );
        outcomes
    }

    /// Runs one direction; returns the bytes still pending.
    async fn run_direction(
        &self,
        d: &Direction<'_>,
        opts: &SyncOptions,
        report: &mut DirectionReport,
        warnings: &mut Vec<String>,
    ) -> Result<u64, DirectionFailure> {
        let settings = &self.settings();
        if !opts.what_if {
            self.recover(d, warnings)
                .await
                .map_err(DirectionFailure::import)?;
        }
        let data_prefix = d.data_prefix();
        // The walk of the source and the manifest load overlap: one waits on the
        // source's file system (or server), the other decodes on this thread.
        let manifest_prefix = d.manifest_prefix();
        let started = Instant::now();
        let ((listing, list_time), (manifest, manifest_time)) = tokio::join!(
            async { (d.src.list(&data_prefix).await, started.elapsed()) },
            async {
                let manifest = Manifest::load(d.dst, &manifest_prefix).await;
                (manifest, started.elapsed())
            }
        );
        let listing = listing.map_err(DirectionFailure::export)?;
        let mut manifest = manifest.map_err(DirectionFailure::import)?;
        warnings.extend(
            listing
                .warnings
                .iter()
                .map(|w| format!("{}: {w}", d.from.fqdn)),
        );
        if let Some(damage) = &manifest.damaged {
            warnings.push(format!(
                "{} at {}: {damage}; rebuilding it from the replica's content",
                d.module.short_name(),
                d.to.fqdn
            ));
        }
        if manifest.is_empty() {
            self.rebuild_from_replica(d, &mut manifest, warnings)
                .await
                .map_err(DirectionFailure::import)?;
            // Saved at once: if this sync stops early, the next one must still
            // know the items it found (and delete those the source lost), not
            // start from the logs of this run's batches alone.
            if !opts.what_if && !manifest.is_empty() {
                manifest
                    .compact(d.dst)
                    .await
                    .map_err(DirectionFailure::import)?;
            }
        }
        if d.dst.writes_in_place() {
            self.forget_uncommitted(d, &mut manifest, opts, warnings)
                .await
                .map_err(DirectionFailure::import)?;
        }
        if opts.what_if {
            // The sync would first finish a batch an interrupted run left
            // (`recover`): predict from there.
            let journal = d.dst.meta_get(&d.journal_key()).await;
            if let Some(bytes) = journal.map_err(DirectionFailure::import)? {
                let batch = unfinished(d, &bytes).await;
                if let Some(journal) = batch.map_err(DirectionFailure::import)? {
                    manifest.committed(&journal.delta);
                }
            }
        }

        // Plan: what changed since the manifest, without reading unchanged content.
        let listed_nothing = listing.entries.is_empty();
        let listed = listing.entries.len();
        let (candidates, mut deletes, unchanged) = classify(listing.entries, &manifest);
        // Deletions a copy needs out of its way (a file that became a folder, or
        // the reverse) go with that copy, even from an incomplete listing: the
        // source listed what replaced them.
        let mut in_the_way = in_the_way(&candidates, &mut deletes);
        let in_the_way_count = in_the_way.values().map(Vec::len).sum::<usize>();
        // Like rsync after an I/O error: an item missing from a listing that
        // could not read everything may still exist, so nothing is deleted.
        let held_back = if listing.incomplete {
            std::mem::take(&mut deletes)
        } else {
            Vec::new()
        };
        if !held_back.is_empty() {
            warnings.push(format!(
                "{}: {} deletions from the replica at {} held back: data/{} could not be listed in full (see the warnings above); they go through on a sync whose listing is complete",
                d.from.fqdn,
                held_back.len(),
                d.to.fqdn,
                d.module.identity()
            ));
        }
        report.items_unchanged += unchanged;
        tracing::debug!(
            module = d.module.short_name(),
            from = %d.from.fqdn,
            to = %d.to.fqdn,
            listed,
            recorded = manifest.len(),
            candidates = candidates.len(),
            deletes = deletes.len() + in_the_way_count,
            list_ms = ms(list_time),
            manifest_ms = ms(manifest_time),
            plan_ms = ms(started.elapsed()),
            "planned"
        );

        // Safety guard: never wipe a replica because its source vanished.
        let replica_items = manifest.len();
        if !opts.allow_mass_delete && replica_items > 0 {
            let folder = format!("data/{}", d.module.identity());
            if !listing.exists || listed_nothing {
                return Err(DirectionFailure::Export(format!(
                    "refusing to wipe the replica at {to}: {folder} at {from} is {state}, but the replica holds {replica_items} items; if {from} lost its data, restore it from {to} (see docs/restore.md); if the data is meant to be gone, sync it once with invoke_backup_service_sync(\"{from}\", #{{module: \"{module}\", allow_mass_delete: true}})",
                    to = d.to.fqdn,
                    from = d.from.fqdn,
                    module = d.module.short_name(),
                    state = if listing.exists { "empty" } else { "missing" },
                )));
            }
            let deleting = deletes.len() + in_the_way_count;
            if replica_items >= GUARD_MIN_ITEMS && deleting * 2 > replica_items {
                return Err(DirectionFailure::Export(format!(
                    "refusing to delete {deleting} of the {replica_items} items of the replica at {} (more than half): {folder} at {} shrank that much; check it; if that is intended, sync it once with invoke_backup_service_sync(\"{}\", #{{module: \"{}\", allow_mass_delete: true}})",
                    d.to.fqdn,
                    d.from.fqdn,
                    d.from.fqdn,
                    d.module.short_name()
                )));
            }
        }

        let batch_bytes = batch_byte_limit(d.module, settings);
        let batches = partition(&candidates, settings.batch_max_items, batch_bytes);
        if let Some(p) = &opts.progress {
            p.add_work(
                candidates.len() as u64,
                candidates.iter().map(|c| c.size).sum(),
            );
        }

        if opts.what_if {
            // Items the real sync could not read either: each fails (a
            // warning), stays pending and holds back the deletions at the end.
            let mut unreadable = 0u64;
            for entry in &candidates {
                // Hashing a large module takes a while: Ctrl-C stops it, and
                // the unfinished dry run reports itself as interrupted.
                if opts.cancel.is_cancelled() {
                    report.pending_items = candidates.len() as u64;
                    return Ok(0);
                }
                if let Some(p) = &opts.progress {
                    p.advance(1, entry.size);
                }
                let changed = match manifest.get(&entry.path) {
                    Some(m) if m.size == entry.size => {
                        match d.src.hash(&data_prefix.join(&entry.path)).await {
                            Ok((_, hash)) => hash != m.hash,
                            Err(e) => {
                                warnings.push(format!(
                                    "{} -> {}: {}",
                                    d.from.fqdn,
                                    d.to.fqdn,
                                    item_failure(&entry.path, &e)
                                ));
                                unreadable += 1;
                                continue;
                            }
                        }
                    }
                    _ => true,
                };
                if changed {
                    report.items_copied += 1;
                    report.bytes_copied += entry.size;
                    report.would_copy.push(entry.path.clone());
                } else {
                    report.items_unchanged += 1;
                }
            }
            let waiting = if unreadable > 0 {
                std::mem::take(&mut deletes)
            } else {
                Vec::new()
            };
            let delete_batches = deletes
                .len()
                .div_ceil(settings.batch_max_items.max(1) as usize);
            report.batches = (batches.len() + delete_batches) as u64;
            report.items_deleted = (deletes.len() + in_the_way_count) as u64;
            // The state a dry run reports is the one the pair is in now.
            report.pending_items = report.items_copied
                + report.items_deleted
                + unreadable
                + (waiting.len() + held_back.len()) as u64;
            let pending_bytes = report.bytes_copied;
            deletes.extend(in_the_way.into_values().flatten());
            deletes.sort_unstable();
            report.would_delete = deletes;
            return Ok(pending_bytes);
        }

        let replica_prefix = d.replica_prefix();
        let mut failed_items = 0u64;
        let mut failed_bytes = 0u64;
        let mut done_batches = 0usize;
        let cycle_limit = match d.module.category() {
            crate::topology::Category::Cms => settings.max_batches_per_cms_sync,
            crate::topology::Category::UserData => settings.max_batches_per_user_store_sync,
        };
        // A pipeline of two: while batch N commits (its syncfs waits on the disk),
        // batch N+1 is copied into staging. Commits stay one at a time and in order.
        let mut seq = manifest.next_seq();
        let mut in_flight: Option<Committing> = None;
        let mut dropped_deletes = 0u64;
        for batch in &batches {
            if opts.cancel.is_cancelled() {
                break;
            }
            if opts.per_cycle && done_batches as u64 >= cycle_limit {
                break;
            }
            let previous: Vec<Option<ManifestEntry>> = batch
                .iter()
                .map(|e| manifest.get(&e.path).cloned())
                .collect();
            if d.dst.writes_in_place() {
                // Before anything is written: these paths may change even if
                // the batch never commits (see `forget_uncommitted`).
                let paths: Vec<&ItemPath> = batch.iter().map(|e| &e.path).collect();
                d.dst
                    .meta_put(&format!("{}/{seq}", d.intent_prefix()), encode(&paths))
                    .await
                    .map_err(DirectionFailure::import)?;
            }
            let staging = self.stage_batch(d, opts, batch, &previous, seq);
            let outcomes = match in_flight.take() {
                None => staging.await,
                Some(mut committing) => {
                    let (outcomes, committed) =
                        tokio::join!(staging, self.commit_batch(d, &mut committing.journal));
                    let refused = match committed {
                        Ok(refused) => refused,
                        Err(e) => {
                            discard_outcomes(d, outcomes).await;
                            return Err(DirectionFailure::import(e));
                        }
                    };
                    refused.count(
                        &mut committing,
                        &mut failed_items,
                        &mut failed_bytes,
                        warnings,
                    );
                    committing.record(&mut manifest, report, opts);
                    outcomes
                }
            };

            let mut committing = Committing {
                journal: Journal {
                    moves: Vec::new(),
                    deletes: Vec::new(),
                    delta: Delta {
                        seq,
                        ..Delta::default()
                    },
                },
                items: batch.len() as u64,
                item_bytes: batch.iter().map(|e| e.size).sum(),
                copied: 0,
                bytes: 0,
                unchanged: 0,
            };
            for entry in batch {
                if let Some(paths) = in_the_way.remove(&entry.path) {
                    let journal = &mut committing.journal;
                    journal
                        .deletes
                        .extend(paths.iter().map(|p| replica_prefix.join(p)));
                    journal.delta.removes.extend(paths);
                }
            }
            let mut skipped = false;
            for outcome in outcomes {
                match outcome {
                    ItemOutcome::Copied { name, path, entry } => {
                        committing.bytes += entry.size;
                        committing.copied += 1;
                        if let Some(name) = name {
                            committing
                                .journal
                                .moves
                                .push((name, replica_prefix.join(&path)));
                        }
                        committing.journal.delta.upserts.push((path, entry));
                    }
                    ItemOutcome::Unchanged { path, entry } => {
                        committing.unchanged += 1;
                        committing.journal.delta.upserts.push((path, entry));
                    }
                    ItemOutcome::Failed { size, message } => {
                        failed_items += 1;
                        failed_bytes += size;
                        warnings.push(format!("{} -> {}: {message}", d.from.fqdn, d.to.fqdn));
                    }
                    ItemOutcome::Skipped => skipped = true,
                }
            }
            if skipped || opts.cancel.is_cancelled() {
                // Interrupted inside the batch: drop it whole; the next run redoes it
                // (the deletions in the way of its copies too).
                dropped_deletes += committing.journal.delta.removes.len() as u64;
                let names: Vec<String> = committing
                    .journal
                    .moves
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                let _ = d.dst.discard_staged(&names).await;
                break;
            }
            done_batches += 1;
            if committing.is_empty() {
                committing.record(&mut manifest, report, opts);
            } else {
                in_flight = Some(committing);
                seq += 1;
            }
        }
        if let Some(mut committing) = in_flight.take() {
            let refused = self
                .commit_batch(d, &mut committing.journal)
                .await
                .map_err(DirectionFailure::import)?;
            refused.count(
                &mut committing,
                &mut failed_items,
                &mut failed_bytes,
                warnings,
            );
            committing.record(&mut manifest, report, opts);
        }

        let remaining: Vec<&Entry> = batches[done_batches..].iter().flatten().collect();
        let pending_bytes: u64 = remaining.iter().map(|e| e.size).sum::<u64>() + failed_bytes;
        report.pending_items = remaining.len() as u64 + failed_items;

        // Deletions propagate only once every copy of this module has succeeded.
        let mut deleted = 0u64;
        if report.pending_items == 0 && !opts.cancel.is_cancelled() {
            for chunk in deletes.chunks(settings.batch_max_items.max(1) as usize) {
                if opts.cancel.is_cancelled() {
                    break;
                }
                let delta = Delta {
                    seq: manifest.next_seq(),
                    upserts: Vec::new(),
                    removes: chunk.to_vec(),
                };
                let mut journal = Journal {
                    moves: Vec::new(),
                    deletes: chunk.iter().map(|p| replica_prefix.join(p)).collect(),
                    delta,
                };
                let refused = self
                    .commit_batch(d, &mut journal)
                    .await
                    .map_err(DirectionFailure::import)?;
                warnings.extend(refused.messages);
                manifest.committed(&journal.delta);
                report.batches += 1;
                report.items_deleted += journal.delta.removes.len() as u64;
                deleted += journal.delta.removes.len() as u64;
            }
        }
        // Deletions left: those of the end, and those in the way of copies that
        // were not reached (cut short by Ctrl-C or the per-cycle limit).
        let undeleted = deletes.len() as u64 - deleted
            + dropped_deletes
            + in_the_way.values().map(|p| p.len() as u64).sum::<u64>();
        report.pending_items += undeleted + held_back.len() as u64;
        manifest
            .compact_if_needed(d.dst)
            .await
            .map_err(DirectionFailure::import)?;
        // The last batch's renames and log become durable with the status
        // records, at the end of the sync (`sync_pair`).
        Ok(pending_bytes)
    }
}

fn item_failure(path: &ItemPath, e: &StoreError) -> String {
    if e.is_not_found() {
        format!("'{path}' disappeared during the sync; it is picked up next time")
    } else {
        format!("cannot copy '{path}': {e}")
    }
}

/// Milliseconds, with a tenth, for the debug log.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Why a direction failed: on the exporting side (reading the source, the guard)
/// or the importing side (writing the replica).
enum DirectionFailure {
    Export(String),
    Import(String),
}

impl DirectionFailure {
    fn export(e: StoreError) -> Self {
        DirectionFailure::Export(e.to_string())
    }
    fn import(e: StoreError) -> Self {
        DirectionFailure::Import(e.to_string())
    }
    fn message(&self) -> &str {
        match self {
            DirectionFailure::Export(m) | DirectionFailure::Import(m) => m,
        }
    }
}
