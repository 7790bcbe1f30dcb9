//! `invoke_pool_failover` (Invoke-CsPoolFailOver): a pool's backup pool takes
//! over serving its data. The replica folder becomes the active copy where
//! it is; nothing is copied but, in a planned failover, the pool's last
//! changes.

use super::report::{FailoverOptions, FailoverReport};
use super::state::{self, Mode, ModuleLoss, PairState, Phase};
use super::{active_copy, loss, seed, view};
use crate::store::Store;
use crate::sync::direction::Direction;
use crate::sync::engine::PairStores;
use crate::sync::manifest::Manifest;
use crate::sync::{SyncEngine, SyncError, SyncOptions, SyncReport};
use crate::topology::{Module, ModuleSelection, Pair, Pool};

/// Where a failover starts from.
enum Start {
    /// The pool is at home: a new failover.
    Begin,
    /// An earlier run stopped after fencing the pool: go on from there.
    Resume,
    /// An earlier run promoted the partner, but a store has not heard yet.
    Finish,
}

impl SyncEngine {
    /// Fails `pair.pool` over to `pair.partner`: planned (the pool's last
    /// changes are shipped first; nothing is lost) or, with `disaster_mode`,
    /// at once from what the partner has.
    pub async fn fail_over(
        &self,
        pair: &Pair,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        if opts.disaster_mode {
            return self.fail_over_disaster(pair, opts).await;
        }
        let pool = &pair.pool.fqdn;
        let unreachable = |e: &SyncError| {
            format!(
                "cannot fail over pool '{pool}' as planned: {e}; if the pool is lost, fail it over with invoke_pool_failover(\"{pool}\", #{{disaster_mode: true}})"
            )
        };
        self.with_pair_locked(pair, opts, unreachable, async |stores| {
            self.planned_locked(pair, stores, opts).await
        })
        .await
    }

    async fn planned_locked(
        &self,
        pair: &Pair,
        stores: &PairStores,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let both = [Some(&*stores.0), Some(&*stores.1)];
        let view::Held {
            mut state, healed, ..
        } = view::held(pair, both, !opts.what_if).await?;
        let mut report = FailoverReport::new(
            "failover",
            &pair.pool.fqdn,
            &pair.partner.fqdn,
            opts.what_if,
        );
        report.mode = Some(Mode::Planned);
        match self.failover_start(pair, &state)? {
            Start::Finish => return self.finished(pair, &state, report, healed, Mode::Planned),
            Start::Begin if !opts.what_if => {
                state.advance(
                    &pair.pool.fqdn,
                    Phase::SwitchingOver,
                    format!("planned failover of {}: writes stopped", pair.pool.fqdn),
                );
                write_to(
                    pair,
                    &state,
                    &[(&pair.pool, &*stores.0), (&pair.partner, &*stores.1)],
                )
                .await?;
            }
            _ => {}
        }
        let sync = match self.last_changes(pair, stores, opts, &state).await {
            Ok(sync) => sync,
            Err(e) => {
                return Err(self
                    .cancel_failover(pair, stores, &mut state, opts, e)
                    .await);
            }
        };
        report.modules = sync.modules;
        report.warnings = sync.warnings;
        report.items_lost = Some(0);
        report.loss = self
            .pool_modules(pair, &state)
            .into_iter()
            .map(loss::nothing_lost)
            .collect();
        if opts.what_if {
            return Ok(self.predicted(pair, &state, report));
        }
        for module in self.pool_modules(pair, &state) {
            write_seed(&pair.pool, &*stores.1, module)
                .await
                .map_err(store_err(&pair.partner))?;
        }
        promote(&mut state, pair, Mode::Planned, report.loss.clone());
        // The new active side first: if only it hears, the failover stands.
        write_to(
            pair,
            &state,
            &[(&pair.partner, &*stores.1), (&pair.pool, &*stores.0)],
        )
        .await?;
        Ok(Self::settled(pair, &state, report))
    }

    /// With writes at home stopped: waits for every write begun before that
    /// to end, then ships the pool's last changes (the final sync).
    async fn last_changes(
        &self,
        pair: &Pair,
        stores: &PairStores,
        opts: &FailoverOptions,
        state: &PairState,
    ) -> Result<SyncReport, SyncError> {
        if !opts.what_if {
            self.drain_writers(pair, (&pair.pool, &*stores.0), opts)
                .await?;
        }
        self.final_sync(pair, stores, opts, state).await
    }

    /// Ships the pool's last changes to the partner, which must end with
    /// nothing pending.
    async fn final_sync(
        &self,
        pair: &Pair,
        stores: &PairStores,
        opts: &FailoverOptions,
        state: &PairState,
    ) -> Result<SyncReport, SyncError> {
        let sync_opts = SyncOptions {
            what_if: opts.what_if,
            ..sync_options(opts)
        };
        let cms = state.cms_master(&self.deployment().cms_master).to_string();
        let directions: Vec<Direction<'_>> = self
            .directions(pair, stores, &sync_opts, &cms)
            .into_iter()
            .filter(|d| d.from.fqdn == pair.pool.fqdn)
            .collect();
        let empty = SyncReport::empty(&pair.pool.fqdn, &pair.partner.fqdn, opts.what_if);
        let sync = self
            .run_locked(pair, stores, &directions, &sync_opts, empty)
            .await?;
        let pending: u64 = sync.modules.iter().map(|m| m.pending_items).sum();
        if pending > 0 && !opts.what_if {
            let why = sync.warnings.first().cloned().unwrap_or_default();
            return Err(SyncError::Refused(format!(
                "{pending} items could not be shipped ({why})"
            )));
        }
        Ok(sync)
    }

    /// A planned failover whose final sync failed: the pool is active at
    /// home again (a new epoch), and the error says why.
    async fn cancel_failover(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &mut PairState,
        opts: &FailoverOptions,
        error: SyncError,
    ) -> SyncError {
        if opts.what_if {
            return error;
        }
        state.advance(
            &pair.pool.fqdn,
            Phase::Home,
            format!("planned failover of {} cancelled", pair.pool.fqdn),
        );
        let written = write_to(
            pair,
            state,
            &[(&pair.pool, &*stores.0), (&pair.partner, &*stores.1)],
        )
        .await;
        if let SyncError::Interrupted(_) = error {
            return error;
        }
        let kept = match written {
            Ok(()) => format!("'{}' stays active at home", pair.pool.fqdn),
            Err(e) => {
                format!("the cancellation could not be recorded ({e}); run the failover again")
            }
        };
        SyncError::Refused(format!(
            "failover of pool '{}' cancelled, {kept}: the final sync did not complete: {error}",
            pair.pool.fqdn
        ))
    }

    async fn fail_over_disaster(
        &self,
        pair: &Pair,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let partner = self.reachable(&pair.partner).await.map_err(|e| {
            SyncError::Refused(format!(
                "cannot fail over pool '{}': its backup pool '{}' is unreachable ({e}); the partner is what would serve its data",
                pair.pool.fqdn, pair.partner.fqdn
            ))
        })?;
        // The lost pool is only read, if it can be, to say what may be lost.
        let lost = self.reachable(&pair.pool).await.ok();
        let held = [(&pair.partner, &*partner)];
        self.with_locked_in(pair, &held, opts, async || {
            self.disaster_locked(pair, lost.as_deref(), &*partner, opts)
                .await
        })
        .await
    }

    async fn disaster_locked(
        &self,
        pair: &Pair,
        lost: Option<&dyn Store>,
        partner: &dyn Store,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let mut state = view::held(pair, [lost, Some(partner)], false).await?.state;
        let mut report = FailoverReport::new(
            "failover",
            &pair.pool.fqdn,
            &pair.partner.fqdn,
            opts.what_if,
        );
        report.mode = Some(Mode::Disaster);
        if let Start::Finish = self.failover_start(pair, &state)? {
            return self.finished(pair, &state, report, false, Mode::Disaster);
        }
        let started = std::time::Instant::now();
        let what = format!("fail over pool '{}'", pair.pool.fqdn);
        let mut seeds = Vec::new();
        for module in self.pool_modules(pair, &state) {
            // The partner plays both ends: only its side is touched.
            let d = Direction::replication(module, &pair.pool, &pair.partner, partner, partner);
            let warnings = &mut report.warnings;
            let (last_sync, manifest) = loss::replica_ready(&d, opts, &what, warnings).await?;
            // What the lost pool changed, and the seed, read at once.
            let mut told = Vec::new();
            let (changed, seed) = tokio::join!(
                loss::changed_since(lost, &d, &manifest, &mut told),
                seed_entries(&pair.pool, partner, module, &manifest, opts.what_if),
            );
            warnings.extend(told);
            report.loss.push(loss::loss_of(&d, last_sync, changed));
            seeds.push((module, seed.map_err(store_err(&pair.partner))?));
        }
        report.items_lost = report
            .loss
            .iter()
            .map(|l| l.changed_items)
            .sum::<Option<u64>>();
        step("disaster failover: loss and seeds read", started);
        if opts.what_if {
            return Ok(self.predicted(pair, &state, report));
        }
        for (module, entries) in seeds {
            let prefix = seed::seed_prefix(pair.pool.fqdn.as_str(), module.identity());
            Manifest::replace(partner, &prefix, entries)
                .await
                .map_err(store_err(&pair.partner))?;
        }
        step("disaster failover: seeds written", started);
        promote(&mut state, pair, Mode::Disaster, report.loss.clone());
        write_to(pair, &state, &[(&pair.partner, partner)]).await?;
        step("disaster failover: promoted", started);
        Ok(Self::settled(pair, &state, report))
    }

    /// Whether a failover of the pair's pool may start, and from where.
    fn failover_start(&self, pair: &Pair, state: &PairState) -> Result<Start, SyncError> {
        let (pool, partner) = (&pair.pool.fqdn, &pair.partner.fqdn);
        if state.phase(partner) != Phase::Home {
            return Err(SyncError::Refused(format!(
                "cannot fail over pool '{pool}': its backup pool '{partner}' is itself {} (its data is not at home); fail it back first with invoke_pool_failback(\"{partner}\")",
                state.phase(partner)
            )));
        }
        if state.cms_master(&self.deployment().cms_master) == pool.as_str() {
            return Err(SyncError::Refused(format!(
                "cannot fail over pool '{pool}': it holds the active Central Management Store; move the CMS to '{partner}' first with invoke_management_server_failover()"
            )));
        }
        match state.phase(pool) {
            Phase::Home => Ok(Start::Begin),
            Phase::SwitchingOver => Ok(Start::Resume),
            Phase::FailedOver => Ok(Start::Finish),
            phase => Err(SyncError::Refused(format!(
                "cannot fail over pool '{pool}': a failback of it is under way ({phase}); finish it with invoke_pool_failback(\"{pool}\")"
            ))),
        }
    }

    /// A failover an earlier run made. If it was made the way this call
    /// makes one (`mode`) and this run had to tell a store of it (`healed`),
    /// this call is the rerun of that interrupted failover, done now.
    /// Otherwise another call made it: refused, naming it.
    fn finished(
        &self,
        pair: &Pair,
        state: &PairState,
        mut report: FailoverReport,
        healed: bool,
        mode: Mode,
    ) -> Result<FailoverReport, SyncError> {
        let pool = &pair.pool.fqdn;
        let made = state.pool(pool).and_then(|p| p.mode);
        if !healed || made != Some(mode) {
            let by = match made {
                Some(Mode::Disaster) => "a disaster failover",
                Some(Mode::Planned) => "a planned failover",
                None => "an earlier call",
            };
            return Err(SyncError::Refused(format!(
                "pool '{pool}' is already failed over to '{}' at epoch {} by {by}: {}; nothing was changed; to return it, invoke_pool_failback(\"{pool}\")",
                pair.partner.fqdn,
                state.epoch,
                state.last_change()
            )));
        }
        report.warnings.push(format!(
            "finished the failover of {pool} an earlier run had made (epoch {})",
            state.epoch
        ));
        if let Some(p) = state.pool(pool) {
            report.mode = p.mode;
            report.loss.clone_from(&p.loss);
            report.items_lost = p.loss.iter().map(|l| l.changed_items).sum();
        }
        Ok(Self::settled(pair, state, report))
    }

    /// The modules of the pool that a failover moves: every module it exports.
    pub(super) fn pool_modules(&self, pair: &Pair, state: &PairState) -> Vec<Module> {
        let cms = state.cms_master(&self.deployment().cms_master);
        Self::exports(&pair.pool, ModuleSelection::All, cms)
    }

    /// The report of a dry run: what the state would be.
    fn predicted(&self, pair: &Pair, state: &PairState, report: FailoverReport) -> FailoverReport {
        let mut next = state.clone();
        promote(
            &mut next,
            pair,
            report.mode.unwrap_or(Mode::Planned),
            report.loss.clone(),
        );
        Self::settled(pair, &next, report)
    }

    /// Fills in where the data is active after the operation.
    pub(super) fn settled(
        pair: &Pair,
        state: &PairState,
        mut report: FailoverReport,
    ) -> FailoverReport {
        let phase = state.phase(&pair.pool.fqdn);
        report.epoch = state.epoch;
        report.phase = phase;
        let active: &Pool = if phase.at_partner() {
            &pair.partner
        } else {
            &pair.pool
        };
        report.active_at = active.fqdn.clone();
        report.active_copy = active_copy(pair, phase);
        report
    }
}

/// The record after a promotion: the pool's data is active at its partner.
fn promote(state: &mut PairState, pair: &Pair, mode: Mode, loss: Vec<ModuleLoss>) {
    let what = match mode {
        Mode::Planned => "planned failover",
        Mode::Disaster => "disaster failover",
    };
    state.advance(
        &pair.pool.fqdn,
        Phase::FailedOver,
        format!("{what} of {} to {}", pair.pool.fqdn, pair.partner.fqdn),
    );
    if let Some(p) = state.pool_mut(&pair.pool.fqdn) {
        p.mode = Some(mode);
        p.loss = loss;
    }
}

/// Writes the record to each store given, in order.
pub(super) async fn write_to(
    pair: &Pair,
    state: &PairState,
    stores: &[(&Pool, &dyn Store)],
) -> Result<(), SyncError> {
    for (pool, store) in stores {
        state::write(*store, pair, state)
            .await
            .map_err(store_err(pool))?;
    }
    Ok(())
}

/// The seed of a failback: the replica of `owner`'s `module` at `active` as
/// listed now, with the replication manifest's hashes.
async fn write_seed(
    owner: &Pool,
    active: &dyn Store,
    module: Module,
) -> crate::store::StoreResult<()> {
    let replication = Manifest::prefix_for(owner.fqdn.as_str(), module.identity());
    let known = Manifest::load(active, &replication).await?;
    let entries = seed_entries(owner, active, module, &known, false).await?;
    let prefix = seed::seed_prefix(owner.fqdn.as_str(), module.identity());
    Manifest::replace(active, &prefix, entries)
        .await
        .map(|_| ())
}

/// The entries of that seed, given the replication manifest (`known`);
/// none for a dry run, which writes no seed.
async fn seed_entries(
    owner: &Pool,
    active: &dyn Store,
    module: Module,
    known: &Manifest,
    what_if: bool,
) -> crate::store::StoreResult<Vec<(crate::store::ItemPath, crate::sync::manifest::ManifestEntry)>>
{
    if what_if {
        return Ok(Vec::new());
    }
    let replica = crate::sync::direction::replica_prefix(&owner.fqdn, module);
    seed::listed_with_hashes(active, &replica, known).await
}

/// Logs (at debug level) how long an operation has run at the end of a step.
pub(super) fn step(what: &str, started: std::time::Instant) {
    tracing::debug!(ms = crate::sync::ms(started.elapsed()), "{what}");
}

/// The sync options a failover operation's own transfers run with.
pub(super) fn sync_options(opts: &FailoverOptions) -> SyncOptions {
    SyncOptions {
        cancel: opts.cancel.clone(),
        progress: opts.progress.clone(),
        ..SyncOptions::default()
    }
}

/// A store error of `pool`, as a [`SyncError`].
pub(super) fn store_err(pool: &Pool) -> impl FnOnce(crate::store::StoreError) -> SyncError + '_ {
    move |source| SyncError::Store {
        pool: pool.fqdn.clone(),
        source,
    }
}
