//! The first step of a failback: what the pool changed after its last sync
//! before a disaster failover, which the active copy never saw, is divergent
//! history. Items it changed or added are moved aside into
//! `quarantine/epoch-N/` of its store, never overwritten; items it deleted,
//! which the active copy still holds and the failback brings back, are named
//! in `quarantine/epoch-N/deleted-at-home.txt`. Both are in the report and in
//! status. Then each module's failback manifest is written from the seed the
//! failover left, for the items the pool still holds.

use std::collections::BTreeSet;

use super::promote::{store_err, sync_options};
use super::report::FailoverOptions;
use super::state::{PairState, Quarantine};
use super::{quarantine, seed};
use crate::store::{Entry, ItemPath};
use crate::sync::direction::{Direction, data_prefix};
use crate::sync::engine::PairStores;
use crate::sync::manifest::Manifest;
use crate::sync::plan::classify;
use crate::sync::{SyncEngine, SyncError};
use crate::topology::{Module, Pair};

/// What the pool's `data/<module>` holds against what its last sync recorded.
pub(super) struct Divergence {
    /// Items it changed or added after its last sync.
    pub changed: Vec<Entry>,
    /// The paths of the rest of what it holds, sorted.
    pub kept: Vec<ItemPath>,
    /// Items the last sync recorded that it no longer holds.
    pub deleted: Vec<ItemPath>,
}

/// Where a reconcile works: the pair, its stores and the quarantine folder.
#[derive(Clone, Copy)]
struct At<'a> {
    pair: &'a Pair,
    stores: &'a PairStores,
    folder: &'a ItemPath,
}

impl SyncEngine {
    /// Moves aside what the pool changed after its last sync, names what it
    /// deleted, and writes each module's failback manifest. A rerun after a
    /// crash finds the items it already moved in the same folder (the epoch
    /// is the same) and counts them there, not as deletions.
    pub(super) async fn reconcile(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &PairState,
        opts: &FailoverOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Quarantine, SyncError> {
        let folder_name = quarantine::failback_folder(state.epoch);
        let folder = ItemPath::parse(&folder_name).unwrap_or_else(|_| unreachable!());
        let at = At {
            pair,
            stores,
            folder: &folder,
        };
        let mut deleted = Vec::new();
        for module in self.pool_modules(pair, state) {
            let found = divergent(pair, stores, module).await?;
            deleted.extend(deleted_at_home(at, module, &found, warnings).await?);
            self.move_divergent(at, module, found.changed, opts, warnings)
                .await?;
            write_failback_manifest(pair, stores, module, &found.kept).await?;
        }
        let store = &*stores.0;
        if !deleted.is_empty() {
            let header = format!(
                "Items {} deleted after its last sync before the failover, which the active copy at {} still held: the failback (epoch {}) brought them back to data/.",
                pair.pool.fqdn, pair.partner.fqdn, state.epoch
            );
            quarantine::write_note(store, &folder, &header, &deleted)
                .await
                .map_err(store_err(&pair.pool))?;
        }
        let summary = quarantine::summary(store, &folder)
            .await
            .map_err(store_err(&pair.pool))?;
        Ok(summary.unwrap_or(Quarantine {
            folder: folder_name,
            ..Quarantine::default()
        }))
    }

    /// Moves the items the pool changed into the quarantine folder.
    async fn move_divergent(
        &self,
        at: At<'_>,
        module: Module,
        changed: Vec<Entry>,
        opts: &FailoverOptions,
        warnings: &mut Vec<String>,
    ) -> Result<(), SyncError> {
        let At {
            pair,
            stores,
            folder,
        } = at;
        let aside = quarantine::Aside::data(&pair.pool, &*stores.0, module, folder);
        let settings = self.settings();
        let opts = sync_options(opts);
        let r = quarantine::move_aside(aside, changed, true, &opts, &settings, warnings)
            .await
            .map_err(store_err(&pair.pool))?;
        let failed = quarantine::failure(&r);
        match failed {
            None => Ok(()),
            Some(e) => Err(SyncError::Refused(format!(
                "failback of pool '{}' stopped: items it changed after its last sync could not be moved aside into {folder}: {e}; nothing was overwritten; fix it and run invoke_pool_failback again",
                pair.pool.fqdn
            ))),
        }
    }
}

/// The items of one module the pool deleted after its last sync, as
/// `<module>/<path>`: those the last sync recorded that it no longer
/// holds, but for those an earlier run of this failback moved aside. A
/// module the pool holds none of those items of lost its data (a rebuilt
/// store): a warning, not a list of deletions.
async fn deleted_at_home(
    at: At<'_>,
    module: Module,
    found: &Divergence,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, SyncError> {
    let At {
        pair,
        stores,
        folder,
    } = at;
    let aside = folder.join(&ItemPath::parse(module.identity()).unwrap_or_else(|_| unreachable!()));
    let moved: BTreeSet<ItemPath> = stores
        .0
        .list(&aside)
        .await
        .map_err(store_err(&pair.pool))?
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    let deleted: Vec<&ItemPath> = found
        .deleted
        .iter()
        .filter(|p| !moved.contains(*p))
        .collect();
    if found.kept.is_empty() && !deleted.is_empty() {
        warnings.push(format!(
            "{}: data/{} held nothing: its {} items come back from the active copy",
            pair.pool.fqdn,
            module.identity(),
            deleted.len()
        ));
        return Ok(Vec::new());
    }
    Ok(deleted
        .into_iter()
        .map(|p| format!("{}/{p}", module.identity()))
        .collect())
}

/// The pool's `data/<module>` against the replication's manifest at the
/// partner (what its last sync recorded). An item whose metadata changed but
/// whose content hashes as the sync recorded (a store copied back from
/// elsewhere has new inodes) is not divergent.
pub(super) async fn divergent(
    pair: &Pair,
    stores: &PairStores,
    module: Module,
) -> Result<Divergence, SyncError> {
    let replication = Manifest::prefix_for(pair.pool.fqdn.as_str(), module.identity());
    let known = Manifest::load(&*stores.1, &replication)
        .await
        .map_err(store_err(&pair.partner))?;
    let data = data_prefix(module);
    let mut listing = stores.0.list(&data).await.map_err(store_err(&pair.pool))?;
    listing.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    if listing.incomplete {
        return Err(SyncError::Refused(format!(
            "cannot fail back pool '{}': data/{} cannot be read in full ({}); nothing was changed",
            pair.pool.fqdn,
            module.identity(),
            listing.warnings.join("; ")
        )));
    }
    let all: Vec<ItemPath> = listing.entries.iter().map(|e| e.path.clone()).collect();
    let (candidates, deleted, _) = classify(listing.entries, &known);
    let mut changed = Vec::new();
    for entry in candidates {
        let same = match known.get(&entry.path) {
            Some(m) if m.size == entry.size => {
                let (_, hash) = stores
                    .0
                    .hash(&data.join(&entry.path))
                    .await
                    .map_err(store_err(&pair.pool))?;
                hash == m.hash
            }
            _ => false,
        };
        if !same {
            changed.push(entry);
        }
    }
    let mut kept = Vec::with_capacity(all.len());
    let mut changed_paths = changed.iter().map(|e| &e.path).peekable();
    for path in all {
        if changed_paths.next_if(|p| **p == path).is_none() {
            kept.push(path);
        }
    }
    Ok(Divergence {
        changed,
        kept,
        deleted,
    })
}

/// The failback manifest of one module at the pool: the seed's entries for
/// the paths the pool still holds (`kept`, sorted).
async fn write_failback_manifest(
    pair: &Pair,
    stores: &PairStores,
    module: Module,
    kept: &[ItemPath],
) -> Result<(), SyncError> {
    let seed_prefix = seed::seed_prefix(pair.pool.fqdn.as_str(), module.identity());
    let seed = Manifest::load(&*stores.1, &seed_prefix)
        .await
        .map_err(store_err(&pair.partner))?;
    let entries = kept
        .iter()
        .filter_map(|p| Some((p.clone(), seed.get(p)?.clone())))
        .collect();
    let d = Direction::reverse(module, &pair.partner, &pair.pool, &*stores.1, &*stores.0);
    Manifest::replace(&*stores.0, &d.manifest_prefix(), entries)
        .await
        .map(|_| ())
        .map_err(store_err(&pair.pool))
}
