//! After a disaster CMS move, before the first sync into the old master:
//! what the old master changed after its last sync is divergent history.
//! Items it changed or added are moved aside into
//! `quarantine/cms-epoch-N/`, items it deleted (which the active CMS still
//! holds and brings back) are named in that folder's `deleted-at-home.txt`,
//! and the new direction starts from the seed the move left.

use std::collections::BTreeSet;

use super::cms::{CMS, SEED, ends};
use super::promote::{store_err, write_to};
use super::quarantine;
use super::state::{PairState, Quarantine};
use crate::store::{Entry, ItemPath, Store};
use crate::sync::direction::Direction;
use crate::sync::engine::PairStores;
use crate::sync::manifest::Manifest;
use crate::sync::plan::classify;
use crate::sync::{SyncEngine, SyncError, SyncOptions};
use crate::topology::{Pair, Pool};

/// What the old master holds against what its last sync recorded.
struct Changes {
    changed: Vec<Entry>,
    kept: Vec<ItemPath>,
    deleted: Vec<ItemPath>,
}

impl SyncEngine {
    /// Called under the pair lock by every sync of the pair (and before a
    /// planned CMS move); does nothing unless a disaster move left it to do.
    pub(crate) async fn reconcile_cms(
        &self,
        pair: &Pair,
        stores: &PairStores,
        state: &PairState,
        opts: &SyncOptions,
        warnings: &mut Vec<String>,
    ) -> Result<(), SyncError> {
        let Some(cms) = state.cms.as_ref().filter(|c| c.reconcile) else {
            return Ok(());
        };
        let (active, standby) = if pair.pool.fqdn.as_str() == cms.active {
            (&pair.pool, &pair.partner)
        } else {
            (&pair.partner, &pair.pool)
        };
        let (active_store, standby_store) = ends(pair, stores, active);
        let old = self.cms_direction((standby, standby_store), (active, active_store))?;
        let found = standby_changes(&old, standby, active).await?;
        let folder_name = format!("quarantine/cms-epoch-{}", state.epoch);
        let folder = ItemPath::parse(&folder_name).unwrap_or_else(|_| unreachable!());
        let moved = self
            .put_aside(&old, &folder, found.changed, found.deleted, opts, warnings)
            .await?;
        let seed = Manifest::load(active_store, SEED)
            .await
            .map_err(store_err(active))?;
        let entries = found
            .kept
            .iter()
            .filter_map(|p| Some((p.clone(), seed.get(p)?.clone())))
            .collect();
        let new = self.cms_direction((active, active_store), (standby, standby_store))?;
        Manifest::replace(standby_store, &new.manifest_prefix(), entries)
            .await
            .map_err(store_err(standby))?;
        let mut state = state.clone();
        state.next(format!(
            "CMS reconciled at {}: {} items moved aside",
            standby.fqdn,
            moved.as_ref().map_or(0, |q| q.items)
        ));
        if let Some(c) = state.cms.as_mut() {
            c.reconcile = false;
            c.quarantine = moved;
        }
        let both = [(active, active_store), (standby, standby_store)];
        write_to(pair, &state, &both).await?;
        let _ = Manifest::remove(active_store, SEED).await;
        Ok(())
    }

    /// Moves the old master's changed items into `folder` and names its
    /// deletions there (but for items an earlier run already moved); what
    /// the folder then holds.
    async fn put_aside(
        &self,
        old: &Direction<'_>,
        folder: &ItemPath,
        changed: Vec<Entry>,
        deleted: Vec<ItemPath>,
        opts: &SyncOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Quarantine>, SyncError> {
        let (standby, store): (&Pool, &dyn Store) = (old.from, old.src);
        let module = ItemPath::parse(CMS.identity()).unwrap_or_else(|_| unreachable!());
        let already: BTreeSet<ItemPath> = store
            .list(&folder.join(&module))
            .await
            .map_err(store_err(standby))?
            .entries
            .into_iter()
            .map(|e| e.path)
            .collect();
        let aside = quarantine::Aside {
            pool: standby,
            store,
            module: CMS,
            source: old.source_prefix().clone(),
            folder,
        };
        let r = quarantine::move_aside(aside, changed, true, opts, &self.settings(), warnings)
            .await
            .map_err(store_err(standby))?;
        if let Some(e) = quarantine::failure(&r) {
            return Err(SyncError::Refused(format!(
                "the CMS items '{}' changed after its last sync could not be moved aside ({e}); nothing was overwritten",
                standby.fqdn
            )));
        }
        let deleted: Vec<String> = deleted
            .iter()
            .filter(|p| !already.contains(*p))
            .map(|p| format!("{}/{p}", CMS.identity()))
            .collect();
        if !deleted.is_empty() {
            let header = format!(
                "CMS items {} deleted after its last sync before the disaster CMS move, which the active CMS still held: they come back with its first sync.",
                standby.fqdn
            );
            quarantine::write_note(store, folder, &header, &deleted)
                .await
                .map_err(store_err(standby))?;
        }
        quarantine::summary(store, folder)
            .await
            .map_err(store_err(standby))
    }
}

/// What the old master (`standby`, the source of the direction `old`)
/// changed after its last sync, against what that direction's manifest at
/// the new master records.
async fn standby_changes(
    old: &Direction<'_>,
    standby: &Pool,
    active: &Pool,
) -> Result<Changes, SyncError> {
    let known = Manifest::load(old.dst, &old.manifest_prefix())
        .await
        .map_err(store_err(active))?;
    let mut listing = old
        .src
        .list(old.source_prefix())
        .await
        .map_err(store_err(standby))?;
    listing.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let all: Vec<ItemPath> = listing.entries.iter().map(|e| e.path.clone()).collect();
    let (changed, deleted, _) = classify(listing.entries, &known);
    let kept = all
        .into_iter()
        .filter(|p| changed.binary_search_by(|e| e.path.cmp(p)).is_err())
        .collect();
    Ok(Changes {
        changed,
        kept,
        deleted,
    })
}
