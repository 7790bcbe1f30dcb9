//! `invoke_management_server_failover` (Invoke-CsManagementServerFailover):
//! the active Central Management Store moves to the other pool of the CMS
//! pair, and CentralMgmt.CMSMaster then flows the other way. Moved away from
//! the deployment's `cms_master`, the active copy stays in the new master's
//! replica folder (nothing is copied) and flows back to the old master's
//! `data/`; the same call again moves it back.

use super::promote::{store_err, sync_options, write_to};
use super::report::{FailoverOptions, FailoverReport};
use super::state::{Mode, PairState, Phase};
use super::{loss, seed, view};
use crate::store::Store;
use crate::sync::direction::Direction;
use crate::sync::engine::PairStores;
use crate::sync::manifest::Manifest;
use crate::sync::{SyncEngine, SyncError, SyncOptions, SyncReport};
use crate::topology::{Module, Pair, Pool};

pub(super) const CMS: Module = Module::CmsMaster;

/// The seed a disaster move leaves at the new master, for the first sync
/// into the old one.
pub(super) const SEED: &str = "failover/cms-seed";

impl SyncEngine {
    /// The pair that carries the CMS, named by the deployment's master.
    fn cms_pair(&self) -> Result<Pair, SyncError> {
        let d = self.deployment();
        let master = d.pool(d.cms_master.as_str()).ok_or_else(|| {
            SyncError::Refused(format!("the CMS master '{}' is not a pool", d.cms_master))
        })?;
        d.pair_of(master).ok_or_else(|| {
            SyncError::Refused(format!(
                "the CMS master '{}' has no backup pool, so there is nowhere to move the Central Management Store; pair it first",
                master.fqdn
            ))
        })
    }

    /// Moves the active CMS to the other pool of its pair. Which way is
    /// read before the pair lock is taken (a disaster move locks only the
    /// store it moves to), then checked again under it: if another call
    /// moved the CMS meanwhile, this one changes nothing and says so.
    pub async fn move_cms(&self, opts: &FailoverOptions) -> Result<FailoverReport, SyncError> {
        let pair = self.cms_pair()?;
        let seen = self.pair_view(&pair).await.state;
        if opts.disaster_mode {
            self.move_cms_disaster(&pair, &seen, opts).await
        } else {
            let (from, to) = self.cms_ends(&pair, &seen);
            let unreachable = |e: &SyncError| {
                format!(
                    "cannot move the CMS to '{}' as planned: {e}; if '{}' is lost, move it with invoke_management_server_failover(#{{disaster_mode: true}})",
                    to.fqdn, from.fqdn
                )
            };
            self.with_pair_locked(&pair, opts, unreachable, async |stores| {
                self.cms_planned_locked(&pair, stores, &seen, opts).await
            })
            .await
        }
    }

    /// The pool that holds the active CMS in `state`, and the other one.
    fn cms_ends<'a>(&self, pair: &'a Pair, state: &PairState) -> (&'a Pool, &'a Pool) {
        let active = state.cms_master(&self.deployment().cms_master);
        if pair.pool.fqdn.as_str() == active {
            (&pair.pool, &pair.partner)
        } else {
            (&pair.partner, &pair.pool)
        }
    }

    async fn cms_planned_locked(
        &self,
        pair: &Pair,
        stores: &PairStores,
        seen: &PairState,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let both = [Some(&*stores.0), Some(&*stores.1)];
        let held = view::held(pair, both, !opts.what_if).await?;
        let mut state = held.state;
        let (from, to) = self.cms_ends(pair, &state);
        let mut report = FailoverReport::new("cms_failover", &from.fqdn, &to.fqdn, opts.what_if);
        report.mode = Some(Mode::Planned);
        if !opts.what_if && resumed(&state, &held.older) {
            report.warnings.push(format!(
                "finished the CMS move an earlier run had made: {}",
                state.last_change()
            ));
            report.items_lost = Some(0);
            return Ok(cms_settled(self, pair, &state, report));
        }
        recheck(seen, &state)?;
        check_move(&state, from, to)?;
        if !opts.what_if {
            // What a disaster move left to put aside at the old master first.
            self.reconcile_cms(
                pair,
                stores,
                &state,
                &sync_options(opts),
                &mut report.warnings,
            )
            .await?;
        }
        let (from_store, to_store) = ends(pair, stores, from);
        self.last_cms_changes(
            pair,
            stores,
            (from, from_store),
            (to, to_store),
            opts,
            &mut report,
        )
        .await?;
        state.move_cms(
            &to.fqdn,
            Mode::Planned,
            format!("planned CMS move from {} to {}", from.fqdn, to.fqdn),
        );
        if !opts.what_if {
            write_to(pair, &state, &[(to, to_store), (from, from_store)]).await?;
        }
        Ok(cms_settled(self, pair, &state, report))
    }

    /// A planned move's first step: the last changes of the active CMS go to
    /// the new master (nothing is lost), and the direction the CMS takes from
    /// then on starts from what the new master holds, with the hashes of the
    /// manifest just brought up to date.
    async fn last_cms_changes(
        &self,
        pair: &Pair,
        stores: &PairStores,
        (from, from_store): (&Pool, &dyn Store),
        (to, to_store): (&Pool, &dyn Store),
        opts: &FailoverOptions,
        report: &mut FailoverReport,
    ) -> Result<(), SyncError> {
        let old = self.cms_direction((from, from_store), (to, to_store))?;
        let sync_opts = SyncOptions {
            what_if: opts.what_if,
            ..sync_options(opts)
        };
        let empty = SyncReport::empty(&from.fqdn, &to.fqdn, opts.what_if);
        let sync = self
            .run_locked(pair, stores, std::slice::from_ref(&old), &sync_opts, empty)
            .await?;
        let pending: u64 = sync.modules.iter().map(|m| m.pending_items).sum();
        report.modules = sync.modules;
        report.warnings.extend(sync.warnings);
        report.items_lost = Some(0);
        report.loss = vec![loss::nothing_lost(CMS)];
        if opts.what_if {
            return Ok(());
        }
        if pending > 0 {
            return Err(SyncError::Refused(format!(
                "the CMS stays at '{}': {pending} of its items could not be shipped to '{}' first; see the warnings and try again",
                from.fqdn, to.fqdn
            )));
        }
        let new = self.cms_direction((to, to_store), (from, from_store))?;
        let known = Manifest::load(to_store, &old.manifest_prefix())
            .await
            .map_err(store_err(to))?;
        let entries = seed::listed_with_hashes(to_store, new.source_prefix(), &known)
            .await
            .map_err(store_err(to))?;
        Manifest::replace(from_store, &new.manifest_prefix(), entries)
            .await
            .map(|_| ())
            .map_err(store_err(from))
    }

    async fn move_cms_disaster(
        &self,
        pair: &Pair,
        seen: &PairState,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let (from, to) = self.cms_ends(pair, seen);
        let to_store = self.reachable(to).await.map_err(|e| {
            SyncError::Refused(format!(
                "cannot move the CMS to '{}': it is unreachable ({e})",
                to.fqdn
            ))
        })?;
        // The lost master is only read, if it can be, to say what may be lost.
        let lost = self.reachable(from).await.ok();
        let held = [(to, &*to_store)];
        self.with_locked_in(pair, &held, opts, async || {
            let held = if from.fqdn == pair.pool.fqdn {
                [lost.as_deref(), Some(&*to_store)]
            } else {
                [Some(&*to_store), lost.as_deref()]
            };
            let state = view::held(pair, held, false).await?.state;
            recheck(seen, &state)?;
            check_move(&state, from, to)?;
            self.cms_disaster_locked(pair, state, (from, lost.as_deref()), (to, &*to_store), opts)
                .await
        })
        .await
    }

    /// A disaster move under the lock of the new master's store: what may be
    /// lost (refused, unless `force`, when its replica never completed a
    /// sync), the seed of the first sync into the old master, the record.
    async fn cms_disaster_locked(
        &self,
        pair: &Pair,
        mut state: PairState,
        (from, lost): (&Pool, Option<&dyn Store>),
        (to, to_store): (&Pool, &dyn Store),
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let mut report = FailoverReport::new("cms_failover", &from.fqdn, &to.fqdn, opts.what_if);
        report.mode = Some(Mode::Disaster);
        // Only the new master's side of the old direction is touched.
        let old = self.cms_direction((from, to_store), (to, to_store))?;
        let loss =
            loss::module_loss(&old, lost, opts, "move the CMS", &mut report.warnings).await?;
        report.items_lost = loss.changed_items;
        report.loss = vec![loss];
        if !opts.what_if {
            let known = Manifest::load(to_store, &old.manifest_prefix())
                .await
                .map_err(store_err(to))?;
            let new = self.cms_direction((to, to_store), (from, to_store))?;
            let entries = seed::listed_with_hashes(to_store, new.source_prefix(), &known)
                .await
                .map_err(store_err(to))?;
            Manifest::replace(to_store, SEED, entries)
                .await
                .map_err(store_err(to))?;
        }
        state.move_cms(
            &to.fqdn,
            Mode::Disaster,
            format!("disaster CMS move from {} to {}", from.fqdn, to.fqdn),
        );
        if !opts.what_if {
            write_to(pair, &state, &[(to, to_store)]).await?;
        }
        Ok(cms_settled(self, pair, &state, report))
    }

    /// The direction the CMS takes from `from`, where it is active.
    pub(super) fn cms_direction<'a>(
        &self,
        from: (&'a Pool, &'a dyn Store),
        to: (&'a Pool, &'a dyn Store),
    ) -> Result<Direction<'a>, SyncError> {
        let cms = from.0.fqdn.to_string();
        self.direction_of(CMS, from, to, &cms)
            .ok_or_else(|| SyncError::Refused("the CMS has no direction here".into()))
    }
}

/// The stores of `first` and of the other pool of the pair.
pub(super) fn ends<'a>(
    pair: &Pair,
    stores: &'a PairStores,
    first: &Pool,
) -> (&'a dyn Store, &'a dyn Store) {
    if first.fqdn == pair.pool.fqdn {
        (&*stores.0, &*stores.1)
    } else {
        (&*stores.1, &*stores.0)
    }
}

/// Refuses a move when another call moved the CMS after this one read where
/// it was (`seen`), while it waited for the pair lock.
fn recheck(seen: &PairState, now: &PairState) -> Result<(), SyncError> {
    if seen.cms_mark() == now.cms_mark() {
        return Ok(());
    }
    Err(SyncError::Refused(format!(
        "the CMS was moved by another call while this one waited for the pair lock (epoch {}: {}); nothing was changed; run invoke_management_server_failover() again if you mean to move it back",
        now.epoch,
        now.last_change()
    )))
}

/// Whether a planned move was recorded in one store but not yet in the
/// other (`older`, the records the lock holder just brought up to date): a
/// rerun of that move finishes it rather than moving the CMS back.
fn resumed(state: &PairState, older: &[PairState]) -> bool {
    let planned = state.cms.as_ref().is_some_and(|c| c.mode == Mode::Planned);
    planned && older.iter().any(|o| o.cms_mark() != state.cms_mark())
}

/// Refuses a move to a pool whose own data is not at home.
fn check_move(state: &PairState, from: &Pool, to: &Pool) -> Result<(), SyncError> {
    for pool in [from, to] {
        let phase = state.phase(&pool.fqdn);
        if phase != Phase::Home {
            return Err(SyncError::Refused(format!(
                "cannot move the CMS now: pool '{}' is {phase}; fail it back first with invoke_pool_failback(\"{}\")",
                pool.fqdn, pool.fqdn
            )));
        }
    }
    Ok(())
}

/// The report of a CMS move: where the CMS is active now.
fn cms_settled(
    engine: &SyncEngine,
    pair: &Pair,
    state: &PairState,
    mut report: FailoverReport,
) -> FailoverReport {
    let active = state
        .cms_master(&engine.deployment().cms_master)
        .to_string();
    let holder = if pair.pool.fqdn.as_str() == active {
        &pair.pool
    } else {
        &pair.partner
    };
    report.epoch = state.epoch;
    report.active_at = holder.fqdn.clone();
    report.active_copy = super::cms_copy(engine.deployment(), holder);
    report
}
