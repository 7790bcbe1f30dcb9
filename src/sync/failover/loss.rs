//! What a disaster failover (of a pool, or of the CMS) may lose of one
//! module: when its last sync into the partner committed, and, if the lost
//! pool's store can still be read, what changed there after it. A replica
//! that never completed a sync is refused unless `force` says otherwise.

use super::promote::{store_err, sync_options};
use super::report::FailoverOptions;
use super::state::{LISTED_PATHS, ModuleLoss};
use crate::store::Store;
use crate::sync::direction::Direction;
use crate::sync::manifest::Manifest;
use crate::sync::plan::classify;
use crate::sync::recovery::{forget_uncommitted, recover};
use crate::sync::{SyncError, SyncOptions, status};

/// The loss of the module `d` carries from the lost pool (`d.from`) to the
/// partner (`d.to`, whose store `d` uses for both ends: only its side is
/// touched): [`replica_ready`], then what the lost pool changed.
/// `what` names the operation in the refusal: "fail over pool 'P'", "move
/// the CMS".
pub(super) async fn module_loss(
    d: &Direction<'_>,
    lost: Option<&dyn Store>,
    opts: &FailoverOptions,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<ModuleLoss, SyncError> {
    let (last_sync_ns, manifest) = replica_ready(d, opts, what, warnings).await?;
    let changed = changed_since(lost, d, &manifest, warnings).await;
    Ok(loss_of(d, last_sync_ns, changed))
}

/// The replica `d` carries, made whole and checked: refused unless a sync of
/// it ever completed (or `force`); a batch an interrupted sync left at the
/// partner finished (or forgotten). When its last sync committed, and the
/// replication's manifest, which describes the replica's content now.
pub(super) async fn replica_ready(
    d: &Direction<'_>,
    opts: &FailoverOptions,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<(Option<i64>, Manifest), SyncError> {
    let (from, to, module) = (d.from, d.to, d.module);
    let key = status::import_key(from.fqdn.as_str(), module.identity());
    let record = status::read(d.dst, &key).await.ok().flatten();
    let last_sync_ns = record.and_then(|r| r.last_success_ns);
    if last_sync_ns.is_none() && !opts.force {
        return Err(SyncError::Refused(format!(
            "cannot {what} in disaster mode: the replica of {}'s {} at '{}' never completed a sync, so it would serve an incomplete copy; sync the pair first, or pass force: true to promote the replica as it is",
            from.fqdn,
            module.identity(),
            to.fqdn
        )));
    }
    let sync_opts = SyncOptions {
        what_if: opts.what_if,
        ..sync_options(opts)
    };
    if !opts.what_if {
        recover(d, warnings).await.map_err(store_err(to))?;
    }
    let mut manifest = Manifest::load(d.dst, &d.manifest_prefix())
        .await
        .map_err(store_err(to))?;
    if d.dst.writes_in_place() {
        forget_uncommitted(d, &mut manifest, &sync_opts, warnings)
            .await
            .map_err(store_err(to))?;
    }
    Ok((last_sync_ns, manifest))
}

/// What the lost pool (`lost`, if it can be read at all) changed after its
/// last sync of `d`'s module; `None`, with a warning, when it cannot be read
/// in full.
pub(super) async fn changed_since(
    lost: Option<&dyn Store>,
    d: &Direction<'_>,
    manifest: &Manifest,
    warnings: &mut Vec<String>,
) -> Option<Vec<String>> {
    let changed = listed_changes(lost?, d, manifest).await;
    if changed.is_none() {
        warnings.push(format!(
            "{}: {} could not be read in full: what it changed after its last sync is unknown",
            d.from.fqdn,
            d.source_prefix()
        ));
    }
    changed
}

/// A module's loss: when its last sync committed, and what changed after.
pub(super) fn loss_of(
    d: &Direction<'_>,
    last_sync_ns: Option<i64>,
    changed: Option<Vec<String>>,
) -> ModuleLoss {
    ModuleLoss {
        module: d.module.identity().to_string(),
        last_sync_ns,
        changed_items: changed.as_ref().map(|c| c.len() as u64),
        changed: changed
            .map(|mut c| {
                c.truncate(LISTED_PATHS);
                c
            })
            .unwrap_or_default(),
    }
}

/// The items of `d`'s source in `lost` that the manifest does not describe,
/// and those it describes that `lost` no longer has, sorted; `None` when the
/// source cannot be read in full.
async fn listed_changes(
    lost: &dyn Store,
    d: &Direction<'_>,
    manifest: &Manifest,
) -> Option<Vec<String>> {
    let listing = lost.list(d.source_prefix()).await.ok()?;
    if listing.incomplete {
        return None;
    }
    let (copies, deletes, _) = classify(listing.entries, manifest);
    let mut paths: Vec<String> = copies
        .iter()
        .map(|e| e.path.to_string())
        .chain(deletes.iter().map(ToString::to_string))
        .collect();
    paths.sort();
    Some(paths)
}

/// The loss of a planned operation: nothing, as of now.
pub(super) fn nothing_lost(module: crate::topology::Module) -> ModuleLoss {
    ModuleLoss {
        module: module.identity().to_string(),
        last_sync_ns: Some(crate::store::system_time_ns(std::time::SystemTime::now())),
        changed_items: Some(0),
        changed: Vec::new(),
    }
}
