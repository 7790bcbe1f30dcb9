//! `invoke_pool_failback` (Invoke-CsPoolFailBack): the pool is back. What it
//! changed after its last sync, which the active copy never saw, is moved
//! aside (quarantined); the active copy then flows home in rounds while it is
//! still written, writes stop for a last round, and the pool is active at home
//! again with the replication's manifest rebuilt from what it now holds.

use super::promote::{store_err, sync_options, write_to};
use super::report::{FailoverOptions, FailoverReport};
use super::state::{PairState, Phase};
use super::{reconcile, seed, view};
use crate::store::Store;
use crate::sync::direction::{Direction, data_prefix, replica_prefix};
use crate::sync::engine::PairStores;
use crate::sync::manifest::Manifest;
use crate::sync::plan::classify;
use crate::sync::{DirectionReport, SyncEngine, SyncError, SyncOptions, SyncReport};
use crate::topology::{Module, Pair, Pool};

/// Rounds of the active copy flowing home while it is still written, at most,
/// before writes stop for the last one.
const LIVE_ROUNDS: usize = 3;

impl SyncEngine {
    /// Fails `pair.pool` back from `pair.partner`: see the module docs. A
    /// rerun after a crash goes on where the last one stopped.
    pub async fn fail_back(
        &self,
        pair: &Pair,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let unreachable = |e: &SyncError| {
            format!(
                "cannot fail back pool '{}': {e}; a failback needs both pools reachable",
                pair.pool.fqdn
            )
        };
        self.with_pair_locked(pair, opts, unreachable, async |stores| {
            self.fail_back_locked(pair, stores, opts).await
        })
        .await
    }

    async fn fail_back_locked(
        &self,
        pair: &Pair,
        stores: &PairStores,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let both = [Some(&*stores.0), Some(&*stores.1)];
        let mut state = view::held(pair, both, !opts.what_if).await?.state;
        let (pool, partner) = (&pair.pool.fqdn, &pair.partner.fqdn);
        let mut report = FailoverReport::new("failback", pool, partner, opts.what_if);
        report.mode = state.pool(pool).and_then(|p| p.mode);
        match state.phase(pool) {
            Phase::Home => {
                return Err(SyncError::Refused(format!(
                    "pool '{pool}' is not failed over: its data is active at home, so there is nothing to fail back; to bring back lost items from '{partner}', use restore_pool_data(\"{pool}\")"
                )));
            }
            Phase::SwitchingOver => {
                return self
                    .cancel_switch_over(pair, stores, state, report, opts)
                    .await;
            }
            _ => {}
        }
        if opts.what_if {
            return self.failback_plan(pair, stores, &state, report).await;
        }
        let ends = active_first(pair, stores);
        if state.phase(pool) == Phase::FailedOver {
            state.advance(
                pool,
                Phase::FailingBack,
                format!("failback of {pool}: under way"),
            );
            write_to(pair, &state, &ends).await?;
        }
        if !state.pool(pool).is_some_and(|p| p.reconciled) {
            let moved = self
                .reconcile(pair, stores, &state, opts, &mut report.warnings)
                .await?;
            state.advance(
                pool,
                Phase::FailingBack,
                format!(
                    "failback of {pool}: {} divergent items moved aside",
                    moved.items
                ),
            );
            if let Some(p) = state.pool_mut(pool) {
                p.reconciled = true;
                p.quarantine = (moved.items + moved.deleted_at_home > 0).then_some(moved);
            }
            write_to(pair, &state, &ends).await?;
        }
        self.go_home(pair, stores, &mut state, opts, &mut report)
            .await?;
        report.quarantine = state.pool(pool).and_then(|p| p.quarantine.clone());
        Ok(Self::settled(pair, &state, report))
    }

    /// The rounds home, the switch and the manifests for the pool at home.
    async fn go_home(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &mut PairState,
        opts: &FailoverOptions,
        report: &mut FailoverReport,
    ) -> Result<(), SyncError> {
        let modules = self.pool_modules(pair, state);
        if state.phase(&pair.pool.fqdn) == Phase::FailingBack {
            self.live_rounds(pair, stores, state, &modules, opts, report)
                .await?;
        }
        self.last_round(pair, stores, state, &modules, opts, report)
            .await?;
        for module in &modules {
            rebase(pair, stores, *module).await?;
        }
        let pool = &pair.pool.fqdn;
        state.advance(
            pool,
            Phase::Home,
            format!("failback of {pool}: active at home again"),
        );
        if let Some(p) = state.pool_mut(pool) {
            p.reconciled = false;
        }
        write_to(pair, state, &home_first(pair, stores)).await?;
        for module in &modules {
            if let Err(e) = clean_up(pair, stores, *module).await {
                report
                    .warnings
                    .push(format!("left a failback record behind: {e}"));
            }
        }
        Ok(())
    }

    /// Rounds home while the active copy is still written, until one ships
    /// nothing (or [`LIVE_ROUNDS`]); then writes stop.
    async fn live_rounds(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &mut PairState,
        modules: &[Module],
        opts: &FailoverOptions,
        report: &mut FailoverReport,
    ) -> Result<(), SyncError> {
        for _ in 0..LIVE_ROUNDS {
            let round = self.round_home(pair, stores, modules, opts).await?;
            let shipped = round.items_copied() + round.items_deleted();
            merge(report, round);
            if shipped == 0 {
                break;
            }
        }
        let pool = &pair.pool.fqdn;
        let at = &pair.partner.fqdn;
        state.advance(
            pool,
            Phase::SwitchingBack,
            format!("failback of {pool}: writes stopped at {at}"),
        );
        write_to(pair, state, &active_first(pair, stores)).await
    }

    /// The last round, with writes stopped: it must leave nothing pending,
    /// or writes are allowed again and the failback stops, to be rerun.
    async fn last_round(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &mut PairState,
        modules: &[Module],
        opts: &FailoverOptions,
        report: &mut FailoverReport,
    ) -> Result<(), SyncError> {
        // Writes are stopped: every write begun before that ends first.
        let at = (&pair.partner, &*stores.1);
        let last = match self.drain_writers(pair, at, opts).await {
            Ok(()) => self.round_home(pair, stores, modules, opts).await,
            Err(e) => Err(e),
        };
        let pending = last
            .as_ref()
            .map_or(0, |r| r.modules.iter().map(|m| m.pending_items).sum());
        let why = match last {
            Ok(round) if pending == 0 => {
                merge(report, round);
                return Ok(());
            }
            Err(e) => e.to_string(),
            Ok(_) => format!("{pending} items could not be copied home"),
        };
        let pool = &pair.pool.fqdn;
        let event =
            format!("failback of {pool}: last round did not complete; writes allowed again");
        state.advance(pool, Phase::FailingBack, event);
        let _ = write_to(pair, state, &active_first(pair, stores)).await;
        Err(SyncError::Refused(format!(
            "failback of pool '{pool}' stopped, its data stays active at '{}': {why}; run invoke_pool_failback(\"{pool}\") again to go on",
            pair.partner.fqdn
        )))
    }

    /// One round of the active copy flowing home, every module.
    async fn round_home(
        &self,
        pair: &Pair,
        stores: &PairStores,
        modules: &[Module],
        opts: &FailoverOptions,
    ) -> Result<SyncReport, SyncError> {
        let directions: Vec<Direction<'_>> = modules
            .iter()
            .map(|m| Direction::reverse(*m, &pair.partner, &pair.pool, &*stores.1, &*stores.0))
            .collect();
        let sync_opts = SyncOptions {
            allow_mass_delete: opts.force,
            ..sync_options(opts)
        };
        let empty = SyncReport::empty(&pair.pool.fqdn, &pair.partner.fqdn, false);
        self.run_locked(pair, stores, &directions, &sync_opts, empty)
            .await
    }

    /// What a failback would do, changing nothing.
    async fn failback_plan(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &PairState,
        mut report: FailoverReport,
    ) -> Result<FailoverReport, SyncError> {
        let reconciled = state.pool(&pair.pool.fqdn).is_some_and(|p| p.reconciled);
        for module in self.pool_modules(pair, state) {
            if !reconciled {
                let found = reconcile::divergent(pair, stores, module).await?;
                report.would_quarantine.extend(
                    found
                        .changed
                        .iter()
                        .map(|e| format!("{}/{}", module.identity(), e.path)),
                );
                if !found.deleted.is_empty() {
                    report.warnings.push(format!(
                        "{}: {} items deleted at home after the last sync would come back from the active copy (named in the quarantine's deleted-at-home.txt)",
                        module.identity(),
                        found.deleted.len()
                    ));
                }
            }
            let seed_prefix = seed::seed_prefix(pair.pool.fqdn.as_str(), module.identity());
            let seed = Manifest::load(&*stores.1, &seed_prefix)
                .await
                .map_err(store_err(&pair.partner))?;
            let listing = stores
                .1
                .list(&replica_prefix(&pair.pool.fqdn, module))
                .await
                .map_err(store_err(&pair.partner))?;
            let (copies, deletes, _) = classify(listing.entries, &seed);
            report.would_restore.extend(
                copies
                    .iter()
                    .map(|e| format!("{}/{}", module.identity(), e.path)),
            );
            if !deletes.is_empty() {
                report.warnings.push(format!(
                    "{}: {} items deleted at the active copy would be deleted at home",
                    module.identity(),
                    deletes.len()
                ));
            }
        }
        let mut next = state.clone();
        next.advance(&pair.pool.fqdn, Phase::Home, String::new());
        Ok(Self::settled(pair, &next, report))
    }

    /// A planned failover that stopped after writes were stopped: cancelled,
    /// the pool is active at home again.
    async fn cancel_switch_over(
        &self,
        pair: &Pair,
        stores: &PairStores,
        mut state: PairState,
        mut report: FailoverReport,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let pool = &pair.pool.fqdn;
        state.advance(
            pool,
            Phase::Home,
            format!("planned failover of {pool} cancelled by a failback"),
        );
        if !opts.what_if {
            write_to(
                pair,
                &state,
                &[(&pair.pool, &*stores.0), (&pair.partner, &*stores.1)],
            )
            .await?;
        }
        report.warnings.push(format!(
            "cancelled the failover of {pool} an earlier run had begun; it never served from '{}'",
            pair.partner.fqdn
        ));
        Ok(Self::settled(pair, &state, report))
    }
}

/// The pair's stores, the partner (where the active copy is) first.
fn active_first<'a>(pair: &'a Pair, stores: &'a PairStores) -> [(&'a Pool, &'a dyn Store); 2] {
    [(&pair.partner, &*stores.1), (&pair.pool, &*stores.0)]
}

/// The pair's stores, the pool itself first.
fn home_first<'a>(pair: &'a Pair, stores: &'a PairStores) -> [(&'a Pool, &'a dyn Store); 2] {
    [(&pair.pool, &*stores.0), (&pair.partner, &*stores.1)]
}

/// The replication's manifest at the partner, from what the pool holds now
/// (its metadata) and what the failback manifest says it holds (the hashes).
async fn rebase(pair: &Pair, stores: &PairStores, module: Module) -> Result<(), SyncError> {
    let d = Direction::reverse(module, &pair.partner, &pair.pool, &*stores.1, &*stores.0);
    let failback = Manifest::load(&*stores.0, &d.manifest_prefix())
        .await
        .map_err(store_err(&pair.pool))?;
    let entries = seed::listed_with_hashes(&*stores.0, &data_prefix(module), &failback)
        .await
        .map_err(store_err(&pair.pool))?;
    let replication = Manifest::prefix_for(pair.pool.fqdn.as_str(), module.identity());
    Manifest::replace(&*stores.1, &replication, entries)
        .await
        .map(|_| ())
        .map_err(store_err(&pair.partner))
}

/// Drops the failback manifest at the pool and the seed at the partner.
async fn clean_up(
    pair: &Pair,
    stores: &PairStores,
    module: Module,
) -> crate::store::StoreResult<()> {
    let d = Direction::reverse(module, &pair.partner, &pair.pool, &*stores.1, &*stores.0);
    Manifest::remove(&*stores.0, &d.manifest_prefix()).await?;
    let seed = seed::seed_prefix(pair.pool.fqdn.as_str(), module.identity());
    Manifest::remove(&*stores.1, &seed).await
}

/// Adds a round's counts to the report, one entry per module.
fn merge(report: &mut FailoverReport, round: SyncReport) {
    report.warnings.extend(round.warnings);
    for m in round.modules {
        match report
            .modules
            .iter_mut()
            .find(|r: &&mut DirectionReport| r.module == m.module)
        {
            Some(r) => {
                r.items_copied += m.items_copied;
                r.bytes_copied += m.bytes_copied;
                r.items_deleted += m.items_deleted;
                r.batches += m.batches;
                r.duration_ms += m.duration_ms;
                r.items_unchanged = m.items_unchanged;
                r.pending_items = m.pending_items;
                r.export_status = m.export_status;
            }
            None => report.modules.push(m),
        }
    }
}
