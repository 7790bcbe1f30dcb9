//! `restore_pool_data`: a pool that lost some or all of a module's data gets
//! it back from its partner's replica. Every item the pool still has is kept;
//! with `overwrite`, items that differ from the replica are replaced, the
//! pool's version moved aside first. Nothing is deleted, so the next sync
//! deletes nothing from the replica.

use std::time::SystemTime;

use super::promote::{store_err, sync_options};
use super::report::{FailoverOptions, FailoverReport};
use super::state::{LISTED_PATHS, Phase, Quarantine};
use super::transfer::copy_items;
use super::{quarantine, view};
use crate::store::{Entry, ItemPath};
use crate::sync::direction::{Direction, data_prefix, replica_prefix};
use crate::sync::engine::PairStores;
use crate::sync::{SyncEngine, SyncError};
use crate::topology::{Module, Pair};

/// What a restore of one module will do.
struct ModulePlan {
    /// Replica items the pool lacks, or (with `overwrite`) has otherwise.
    restore: Vec<Entry>,
    /// The pool's own versions of the items it has otherwise.
    replaced: Vec<Entry>,
}

/// Where a restore runs: the pair, its stores, what was asked, and the
/// quarantine folder of this run.
#[derive(Clone, Copy)]
struct RestoreAt<'a> {
    pair: &'a Pair,
    stores: &'a PairStores,
    opts: &'a FailoverOptions,
    folder: &'a ItemPath,
}

impl SyncEngine {
    /// Restores `pair.pool`'s data from its replica at `pair.partner`.
    pub async fn restore_pool_data(
        &self,
        pair: &Pair,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let unreachable = |e: &SyncError| {
            format!(
                "cannot restore pool '{}' from '{}': {e}",
                pair.pool.fqdn, pair.partner.fqdn
            )
        };
        self.with_pair_locked(pair, opts, unreachable, async |stores| {
            self.restore_locked(pair, stores, opts).await
        })
        .await
    }

    async fn restore_locked(
        &self,
        pair: &Pair,
        stores: &PairStores,
        opts: &FailoverOptions,
    ) -> Result<FailoverReport, SyncError> {
        let both = [Some(&*stores.0), Some(&*stores.1)];
        let state = view::held(pair, both, !opts.what_if).await?.state;
        let (pool, partner) = (&pair.pool.fqdn, &pair.partner.fqdn);
        let phase = state.phase(pool);
        if phase != Phase::Home {
            return Err(SyncError::Refused(format!(
                "cannot restore pool '{pool}': it is {phase}, its data is served at '{partner}'; bring it home with invoke_pool_failback(\"{pool}\")"
            )));
        }
        let mut report = FailoverReport::new("restore", pool, partner, opts.what_if);
        let folder_name = format!("quarantine/restore-{}", unix_seconds());
        let folder = ItemPath::parse(&folder_name).unwrap_or_else(|_| unreachable!());
        let at = RestoreAt {
            pair,
            stores,
            opts,
            folder: &folder,
        };
        let mut moved = Quarantine {
            folder: folder_name,
            ..Quarantine::default()
        };
        for module in self.restore_modules(pair, &state, opts)? {
            let plan = plan(pair, stores, module, opts.overwrite).await?;
            let shown = |e: &Entry| format!("{}/{}", module.identity(), e.path);
            if opts.what_if {
                report.would_restore.extend(plan.restore.iter().map(shown));
                report
                    .would_quarantine
                    .extend(plan.replaced.iter().map(shown));
                continue;
            }
            moved.items += plan.replaced.len() as u64;
            let room = LISTED_PATHS.saturating_sub(moved.paths.len());
            moved
                .paths
                .extend(plan.replaced.iter().take(room).map(shown));
            self.restore_module(&at, module, plan, &mut report).await?;
        }
        if !opts.what_if {
            for (at, store) in [(&pair.pool, &stores.0), (&pair.partner, &stores.1)] {
                store.make_durable().await.map_err(store_err(at))?;
            }
        }
        report.quarantine = (moved.items > 0).then_some(moved);
        Ok(Self::settled(pair, &state, report))
    }

    /// The modules to restore: those asked for, of the ones the pool exports.
    fn restore_modules(
        &self,
        pair: &Pair,
        state: &super::state::PairState,
        opts: &FailoverOptions,
    ) -> Result<Vec<Module>, SyncError> {
        let own = self.pool_modules(pair, state);
        if opts.modules.is_empty() {
            return Ok(own);
        }
        if let Some(m) = opts.modules.iter().find(|m| !own.contains(m)) {
            return Err(SyncError::Refused(format!(
                "cannot restore {} of pool '{}': the pool does not hold that module (the CMS lives at its active master)",
                m.identity(),
                pair.pool.fqdn
            )));
        }
        Ok(opts.modules.clone())
    }

    /// Moves the pool's replaced versions aside, then copies the items back.
    async fn restore_module(
        &self,
        at: &RestoreAt<'_>,
        module: Module,
        plan: ModulePlan,
        report: &mut FailoverReport,
    ) -> Result<(), SyncError> {
        let RestoreAt {
            pair,
            stores,
            opts,
            folder,
        } = *at;
        let settings = self.settings();
        let sync_opts = sync_options(opts);
        if !plan.replaced.is_empty() {
            let aside = quarantine::Aside::data(&pair.pool, &*stores.0, module, folder);
            let warnings = &mut report.warnings;
            let r = quarantine::move_aside(
                aside,
                plan.replaced,
                false,
                &sync_opts,
                &settings,
                warnings,
            )
            .await
            .map_err(store_err(&pair.pool))?;
            if let Some(e) = quarantine::failure(&r) {
                return Err(SyncError::Refused(format!(
                    "cannot restore {} of pool '{}': its own versions could not be moved aside first ({e}); nothing was overwritten",
                    module.identity(),
                    pair.pool.fqdn,
                )));
            }
        }
        let d = Direction::restore(module, &pair.partner, &pair.pool, &*stores.1, &*stores.0);
        let r = copy_items(
            &d,
            &sync_opts,
            &settings,
            plan.restore,
            &mut report.warnings,
        )
        .await;
        let failed = r.error.clone();
        report.modules.push(r);
        if let Some(e) = failed {
            return Err(SyncError::Refused(format!(
                "restore of {} of pool '{}' failed: {e}; run it again to go on",
                module.identity(),
                pair.pool.fqdn
            )));
        }
        if sync_opts.cancel.is_cancelled() {
            return Err(SyncError::interrupted_before(
                &pair.pool.fqdn,
                &pair.partner.fqdn,
                false,
            ));
        }
        Ok(())
    }
}

/// Compares the replica with the pool's data: what is missing, and (with
/// `overwrite`) what differs in content.
async fn plan(
    pair: &Pair,
    stores: &PairStores,
    module: Module,
    overwrite: bool,
) -> Result<ModulePlan, SyncError> {
    let sorted = |mut entries: Vec<Entry>| {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        entries
    };
    let replica_at = replica_prefix(&pair.pool.fqdn, module);
    let data_at = data_prefix(module);
    let replica = stores
        .1
        .list(&replica_at)
        .await
        .map_err(store_err(&pair.partner))?;
    let own = stores
        .0
        .list(&data_at)
        .await
        .map_err(store_err(&pair.pool))?;
    let own = sorted(own.entries);
    let mut plan = ModulePlan {
        restore: Vec::new(),
        replaced: Vec::new(),
    };
    for item in sorted(replica.entries) {
        let Ok(at) = own.binary_search_by(|e| e.path.cmp(&item.path)) else {
            plan.restore.push(item);
            continue;
        };
        if overwrite && differs(stores, &data_at, &replica_at, &own[at], &item, pair).await? {
            plan.replaced.push(own[at].clone());
            plan.restore.push(item);
        }
    }
    Ok(plan)
}

/// Whether the pool's item and the replica's differ in content.
async fn differs(
    stores: &PairStores,
    data_at: &ItemPath,
    replica_at: &ItemPath,
    own: &Entry,
    replica: &Entry,
    pair: &Pair,
) -> Result<bool, SyncError> {
    if own.size != replica.size {
        return Ok(true);
    }
    let (own_path, replica_path) = (data_at.join(&own.path), replica_at.join(&replica.path));
    let (a, b) = tokio::join!(stores.0.hash(&own_path), stores.1.hash(&replica_path));
    let (a, b) = (
        a.map_err(store_err(&pair.pool))?,
        b.map_err(store_err(&pair.partner))?,
    );
    Ok(a.1 != b.1)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
