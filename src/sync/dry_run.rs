//! A dry run (`what_if`): what a sync of one direction would copy and delete,
//! predicted from the plan without changing anything. An item of the same
//! size as before is hashed, so only what really changed is listed.

use super::SyncOptions;
use super::direction::{Direction, DirectionFailure};
use super::manifest::Manifest;
use super::plan::Plan;
use super::report::DirectionReport;
use super::stage::item_failure;
use crate::store::Entry;
use crate::topology::BackupServiceSettings;

/// Fills `report` with what the sync would do; returns the bytes pending now.
pub(super) async fn predict(
    d: &Direction<'_>,
    opts: &SyncOptions,
    settings: &BackupServiceSettings,
    mut plan: Plan,
    manifest: &Manifest,
    report: &mut DirectionReport,
    warnings: &mut Vec<String>,
) -> Result<u64, DirectionFailure> {
    // Items the real sync could not read either: each fails (a warning),
    // stays pending and holds back the deletions at the end.
    let mut unreadable = 0u64;
    for entry in plan.copies() {
        // Hashing a large module takes a while: Ctrl-C stops it, and the
        // unfinished dry run reports itself as interrupted.
        if opts.cancel.is_cancelled() {
            report.pending_items = plan.copies().count() as u64;
            return Ok(0);
        }
        opts.advance(1, entry.size);
        match changed(d, entry, manifest).await {
            Ok(true) => {
                report.items_copied += 1;
                report.bytes_copied += entry.size;
                report.would_copy.push(entry.path.clone());
            }
            Ok(false) => report.items_unchanged += 1,
            Err(warning) => {
                warnings.push(warning);
                unreadable += 1;
            }
        }
    }
    let waiting = if unreadable > 0 {
        std::mem::take(&mut plan.deletes)
    } else {
        Vec::new()
    };
    let delete_batches = plan
        .deletes
        .len()
        .div_ceil(settings.batch_max_items.max(1) as usize);
    report.batches = (plan.batches.len() + delete_batches) as u64;
    report.items_deleted = (plan.deletes.len() + plan.in_the_way_count()) as u64;
    // The state a dry run reports is the one the pair is in now.
    report.pending_items = report.items_copied
        + report.items_deleted
        + unreadable
        + (waiting.len() + plan.held_back.len()) as u64;
    let mut deletes = plan.deletes;
    deletes.extend(plan.in_the_way.into_values().flatten());
    deletes.sort_unstable();
    report.would_delete = deletes;
    Ok(report.bytes_copied)
}

/// Whether the content of a planned item really changed: an item of the same
/// size as the manifest records is hashed. `Err`: the warning for an item
/// that could not be read.
async fn changed(d: &Direction<'_>, entry: &Entry, manifest: &Manifest) -> Result<bool, String> {
    match manifest.get(&entry.path) {
        Some(m) if m.size == entry.size => {
            match d.src.hash(&d.source_prefix().join(&entry.path)).await {
                Ok((_, hash)) => Ok(hash != m.hash),
                Err(e) => Err(d.about(item_failure(&entry.path, &e))),
            }
        }
        _ => Ok(true),
    }
}
