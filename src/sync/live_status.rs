//! Live status (Get-CsBackupServiceStatus): the outcome each direction stored,
//! with what is pending computed from the stores now.

use serde::Serialize;

use super::failover::{Mode, ModuleLoss, PairView, Phase, Quarantine, active_copy};
use super::lag::{self, Pending};
use super::plan::batch_byte_limit;
use super::status::{self, DirectionStatus};
use super::time::rfc3339;
use super::{ExportState, ImportState, SyncEngine, SyncError};
use crate::store::{Store, StoreResult, system_time_ns};
use crate::topology::{BackupServiceSettings, Fqdn, Module, Pair, Pool};

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
    #[serde(with = "rfc3339")]
    pub last_export_time: Option<i64>,
    #[serde(with = "rfc3339")]
    pub last_import_time: Option<i64>,
    /// What the next export would ship, computed from the stores now;
    /// `None` when that cannot be told (the partner cannot be reached).
    pub pending_items: Option<u64>,
    pub pending_bytes: Option<u64>,
    /// The replication lag of the export: the age in milliseconds of the
    /// oldest change of this pool's data that its copy at the partner does not
    /// hold yet, which is what losing this pool would lose now (0: in sync;
    /// `None`: cannot be told).
    pub export_lag_ms: Option<u64>,
    /// The same for the import: the partner's changes this pool's copy lacks.
    pub import_lag_ms: Option<u64>,
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
    /// Where the pool's data is active, from the pair's failover record.
    pub failover: FailoverStatus,
}

/// Where a pool's data is active, and what its last failover did.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverStatus {
    /// Home, `SwitchingOver`, `FailedOver`, `FailingBack` or `SwitchingBack`.
    pub state: Phase,
    /// The pool whose store holds the active copy.
    pub active_at: Fqdn,
    /// The folder or URL of the active copy.
    pub active_copy: String,
    /// The pair's failover epoch (0: never failed over).
    pub epoch: u64,
    /// When the pool entered its state.
    #[serde(with = "rfc3339")]
    pub since: Option<i64>,
    /// How the last failover was made, and what it may have lost.
    pub last_failover_mode: Option<Mode>,
    pub last_failover_items_lost: Option<u64>,
    pub last_failover_loss: Vec<ModuleLoss>,
    /// Every quarantine folder still in the pool's store (what failbacks,
    /// restores and CMS moves put aside, until an operator removes it).
    pub quarantines: Vec<Quarantine>,
    /// The pool of the pair where the CMS is active, if the pair carries it.
    pub cms_active_at: Option<Fqdn>,
    /// Stores that could not be read (the state may be stale) or that have
    /// not heard of the newest change yet.
    pub notes: Vec<String>,
}

impl FailoverStatus {
    /// The status of `pair.pool` in `view`.
    #[must_use]
    pub fn of(
        pair: &Pair,
        view: &PairView,
        cms_master: &Fqdn,
        carries_cms: bool,
        quarantines: Vec<Quarantine>,
    ) -> Self {
        let state = &view.state;
        let pool = state.pool(&pair.pool.fqdn);
        let phase = state.phase(&pair.pool.fqdn);
        let active = if phase.at_partner() {
            &pair.partner
        } else {
            &pair.pool
        };
        let cms = state.cms_master(cms_master);
        let mut notes: Vec<String> = view
            .unreachable
            .iter()
            .map(|(p, e)| format!("the failover record at {p} could not be read: {e}"))
            .collect();
        notes.extend(view.lagging.iter().map(|p| {
            format!("{p} has not heard of the newest failover change yet (the next sync or failover call tells it)")
        }));
        FailoverStatus {
            state: phase,
            active_at: active.fqdn.clone(),
            active_copy: active_copy(pair, phase),
            epoch: state.epoch,
            since: pool.map(|p| p.since_ns).filter(|ns| *ns > 0),
            last_failover_mode: pool.and_then(|p| p.mode),
            last_failover_items_lost: pool
                .filter(|p| p.mode.is_some())
                .and_then(|p| p.loss.iter().map(|l| l.changed_items).sum()),
            last_failover_loss: pool.map(|p| p.loss.clone()).unwrap_or_default(),
            quarantines,
            cms_active_at: carries_cms
                .then(|| {
                    [&pair.pool, &pair.partner]
                        .into_iter()
                        .find(|p| p.fqdn.as_str() == cms)
                })
                .flatten()
                .map(|p| p.fqdn.clone()),
            notes,
        }
    }
}

/// How bad an export state is, for the overall state of a pool (the worst).
fn export_rank(s: ExportState) -> u8 {
    match s {
        ExportState::FinalState => 0,
        ExportState::SteadyState => 1,
        ExportState::NotInitialized => 2,
        ExportState::NonSteadyState => 3,
        ExportState::ErrorState => 4,
        ExportState::FailingOver | ExportState::FailedOver | ExportState::FailingBack => 5,
    }
}

/// The export state of every module a pool exports while its data is not at
/// home: the failover's, whatever is pending (its exports are refused).
fn away_state(phase: Phase) -> Option<ExportState> {
    match phase {
        Phase::Home => None,
        Phase::SwitchingOver => Some(ExportState::FailingOver),
        Phase::FailedOver => Some(ExportState::FailedOver),
        Phase::FailingBack | Phase::SwitchingBack => Some(ExportState::FailingBack),
    }
}

/// The stored records of one module at a pool, and why one could not be read.
struct Records {
    export: Option<DirectionStatus>,
    export_damage: Option<String>,
    import: Option<DirectionStatus>,
    import_damage: Option<String>,
}

impl Records {
    async fn read(store: &dyn Store, partner: &Pool, module: Module) -> Records {
        let (export, export_damage) = split(
            status::read(
                store,
                &status::export_key(partner.fqdn.as_str(), module.identity()),
            )
            .await,
        );
        let (import, import_damage) = split(
            status::read(
                store,
                &status::import_key(partner.fqdn.as_str(), module.identity()),
            )
            .await,
        );
        Records {
            export,
            export_damage,
            import,
            import_damage,
        }
    }
}

/// A status record, or why it could not be read.
fn split(read: StoreResult<Option<DirectionStatus>>) -> (Option<DirectionStatus>, Option<String>) {
    match read {
        Ok(record) => (record, None),
        Err(e) => (None, Some(e.to_string())),
    }
}

impl SyncEngine {
    /// Where the pair's pool's data is active now, and what its failovers did.
    pub async fn failover_status(&self, pair: &Pair) -> FailoverStatus {
        let view = self.pair_view(pair).await;
        self.failover_status_in(pair, &view).await
    }

    /// [`Self::failover_status`] from a view already read; the quarantines
    /// are listed from the pool's store now.
    async fn failover_status_in(&self, pair: &Pair, view: &PairView) -> FailoverStatus {
        let d = self.deployment();
        let listed = match self.reachable(&pair.pool).await {
            Ok(store) => super::failover::quarantines(&*store).await,
            Err(e) => Err(crate::store::StoreError::Other {
                store: pair.pool.fqdn.to_string(),
                message: e.to_string(),
            }),
        };
        let (quarantines, unread) = match listed {
            Ok(q) => (q, None),
            Err(e) => (
                Vec::new(),
                Some(format!(
                    "the quarantine area of {} could not be read: {e}",
                    pair.pool.fqdn
                )),
            ),
        };
        let mut status = FailoverStatus::of(
            pair,
            view,
            &d.cms_master,
            d.pair_hosts_cms(&pair.pool),
            quarantines,
        );
        status.notes.extend(unread);
        status
    }

    /// Live status of the pair's pool: stored outcomes plus what is pending now.
    pub async fn pool_status(
        &self,
        pair: &Pair,
        modules: &[Module],
    ) -> Result<PoolStatus, SyncError> {
        let (pool, partner) = (&pair.pool, &pair.partner);
        let pool_store = self.reachable(pool).await?;
        let partner_store = self.reachable(partner).await;
        let settings = self.settings();
        let view = self.pair_view(pair).await;
        let master = &self.deployment().cms_master;
        let cms = view.state.cms_master(master).to_string();
        let mut out = Vec::new();
        for module in Module::ALL.into_iter().filter(|m| modules.contains(m)) {
            let export_applies = module != Module::CmsMaster || pool.fqdn.as_str() == cms;
            let import_applies = module != Module::CmsMaster || partner.fqdn.as_str() == cms;
            let records = Records::read(&*pool_store, partner, module).await;
            let mut m = ModuleStatus {
                identity: module,
                export_status: ExportState::NotInitialized,
                import_status: ImportState::NotInitialized,
                last_export_time: records.export.as_ref().and_then(|r| r.last_success_ns),
                last_import_time: records.import.as_ref().and_then(|r| r.last_success_ns),
                pending_items: None,
                pending_bytes: None,
                export_lag_ms: None,
                import_lag_ms: None,
                last_error: None,
            };
            let now = system_time_ns(std::time::SystemTime::now());
            let complete =
                |r: &Option<DirectionStatus>| r.as_ref().and_then(|r| r.complete_as_of_ns);
            if export_applies {
                let pending = match &partner_store {
                    Ok(dst) => {
                        let ends = ((pool, &*pool_store), (partner, &**dst));
                        match self.direction_of(module, ends.0, ends.1, &cms) {
                            Some(d) => lag::pending(&d, complete(&records.export), now).await,
                            None => Ok(NOTHING),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                export_state(&mut m, pending, records.export.as_ref(), &settings);
            }
            if import_applies && let Ok(src) = &partner_store {
                let ends = ((partner, &**src), (pool, &*pool_store));
                if let Some(d) = self.direction_of(module, ends.0, ends.1, &cms) {
                    let pending = lag::pending(&d, complete(&records.import), now).await;
                    m.import_lag_ms = pending.ok().and_then(|p| p.lag_ms);
                }
            }
            import_state(&mut m, &records, export_applies, import_applies);
            if export_applies && let Some(away) = away_state(view.state.phase(&pool.fqdn)) {
                m.export_status = away;
            }
            out.push(m);
        }
        let failover = self.failover_status_in(pair, &view).await;
        Ok(overall(pair, out, &cms, failover))
    }
}

/// The export state of a module: from what is pending now, unless the last
/// export failed (or what is pending cannot be told).
fn export_state(
    m: &mut ModuleStatus,
    pending: Result<Pending, String>,
    record: Option<&DirectionStatus>,
    settings: &BackupServiceSettings,
) {
    let Pending {
        items,
        bytes,
        lag_ms,
    } = match pending {
        Err(e) => {
            m.export_status = ExportState::ErrorState;
            m.last_error = Some(e);
            return;
        }
        Ok(pending) => pending,
    };
    m.pending_items = Some(items);
    m.pending_bytes = Some(bytes);
    m.export_lag_ms = lag_ms;
    m.export_status = match record {
        None => ExportState::NotInitialized,
        Some(DirectionStatus {
            export_state: ExportState::ErrorState,
            last_error,
            ..
        }) => {
            m.last_error.clone_from(last_error);
            ExportState::ErrorState
        }
        Some(_) => ExportState::for_pending(
            items,
            bytes,
            settings.batch_max_items,
            batch_byte_limit(m.identity, settings),
        ),
    };
}

/// The import state of a module, from its record; a record that cannot be
/// read leaves the state unknown: `ErrorState` with the reason, not
/// `NotInitialized`.
fn import_state(m: &mut ModuleStatus, records: &Records, export: bool, import: bool) {
    if import && let Some(r) = &records.import {
        m.import_status = r.import_state;
        if r.import_state == ImportState::ErrorState && m.last_error.is_none() {
            m.last_error.clone_from(&r.last_error);
        }
    }
    if export && let Some(e) = &records.export_damage {
        m.export_status = ExportState::ErrorState;
        m.last_error.get_or_insert(e.clone());
    }
    if import && let Some(e) = &records.import_damage {
        m.import_status = ImportState::ErrorState;
        m.last_error.get_or_insert(e.clone());
    }
}

/// A pool's status from its modules': the worst export state of the modules
/// it exports; an import error if any, else normal if any import ran.
fn overall(
    pair: &Pair,
    modules: Vec<ModuleStatus>,
    cms: &str,
    failover: FailoverStatus,
) -> PoolStatus {
    let overall_export_status = modules
        .iter()
        .filter(|m| m.identity != Module::CmsMaster || pair.pool.fqdn.as_str() == cms)
        .map(|m| m.export_status)
        .max_by_key(|s| export_rank(*s))
        .unwrap_or(ExportState::NotInitialized);
    let imports = |state| modules.iter().any(|m| m.import_status == state);
    let overall_import_status = if imports(ImportState::ErrorState) {
        ImportState::ErrorState
    } else if imports(ImportState::NormalState) {
        ImportState::NormalState
    } else {
        ImportState::NotInitialized
    };
    PoolStatus {
        pool_fqdn: pair.pool.fqdn.clone(),
        backup_pool_fqdn: pair.partner.fqdn.clone(),
        overall_export_status,
        overall_import_status,
        backup_modules: modules,
        failover,
    }
}

/// A direction that does not run: nothing pending, no lag.
const NOTHING: Pending = Pending {
    items: 0,
    bytes: 0,
    lag_ms: Some(0),
};
