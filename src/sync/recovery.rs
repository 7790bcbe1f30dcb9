//! What a direction finds left by an earlier run and puts right before it
//! plans: an interrupted batch (rolled forward from its journal), batches that
//! wrote in place and never committed, and a lost or damaged manifest (rebuilt
//! from the replica's content).

use futures::StreamExt;

use super::SyncOptions;
use super::direction::Direction;
use super::journal::{leave_out, unfinished};
use super::manifest::{Delta, Manifest, ManifestEntry, decode};
use crate::store::{ChangeToken, Hash, ItemPath, StoreResult};

/// Recovers an interrupted batch by rolling its journal forward, then clears
/// what that run staged.
pub(super) async fn recover(d: &Direction<'_>, warnings: &mut Vec<String>) -> StoreResult<()> {
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

/// In a dry run: the batch an interrupted run left is in the manifest as if
/// the real sync had finished it first (as [`recover`] would), so the
/// prediction starts from there.
pub(super) async fn predict_recovery(
    d: &Direction<'_>,
    manifest: &mut Manifest,
) -> StoreResult<()> {
    if let Some(bytes) = d.dst.meta_get(&d.journal_key()).await?
        && let Some(journal) = unfinished(d, &bytes).await?
    {
        manifest.committed(&journal.delta);
    }
    Ok(())
}

/// Fills an empty (lost or damaged) manifest from the replica itself: each item's
/// size and hash, with no source metadata, so every source item is compared by
/// content (nothing equal is copied again) and items the source no longer has
/// are deleted (subject to the guard).
pub(super) async fn rebuild_from_replica(
    d: &Direction<'_>,
    manifest: &mut Manifest,
    parallelism: usize,
    warnings: &mut Vec<String>,
) -> StoreResult<()> {
    let prefix = d.dest_prefix();
    let listing = d.dst.list(prefix).await?;
    if listing.entries.is_empty() {
        return Ok(());
    }
    let hashed: Vec<StoreResult<(ItemPath, u64, Hash)>> =
        futures::stream::iter(listing.entries.iter().map(|e| async move {
            let (size, hash) = d.dst.hash(&prefix.join(&e.path)).await?;
            Ok((e.path.clone(), size, hash))
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
                token: ChangeToken::None,
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
pub(super) async fn forget_uncommitted(
    d: &Direction<'_>,
    manifest: &mut Manifest,
    opts: &SyncOptions,
    warnings: &mut Vec<String>,
) -> StoreResult<()> {
    let (unknown, done) = uncommitted_paths(d, manifest, warnings).await?;
    if !unknown.is_empty() {
        let delta = Delta {
            seq: manifest.next_seq(),
            upserts: unknown
                .into_iter()
                .map(|p| (p, ManifestEntry::unknown()))
                .collect(),
            removes: Vec::new(),
        };
        if !opts.what_if {
            Manifest::write_log(d.dst, &d.manifest_prefix(), &delta).await?;
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

/// The paths the intent records of uncommitted batches list (sorted, each
/// once), and the keys of every intent record read.
async fn uncommitted_paths(
    d: &Direction<'_>,
    manifest: &Manifest,
    warnings: &mut Vec<String>,
) -> StoreResult<(Vec<ItemPath>, Vec<String>)> {
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
    unknown.sort_unstable();
    unknown.dedup();
    Ok((unknown, done))
}
