//! Staging one batch: its items are copied into the receiving store's staging
//! area (or, on stores that write in place, to their final names), up to
//! `transfer_parallelism` at once, each hashed on the way.

use std::time::Instant;

use super::direction::Direction;
use super::manifest::ManifestEntry;
use super::{SyncOptions, ms};
use crate::store::{Entry, Fault, Hash, ItemPath, StageRequest, Staged, StoreError, StoreResult};

/// Items handed to the store at once while staging a batch, at most (and bytes,
/// unless one item is larger): Ctrl-C is seen between such groups.
const GROUP_ITEMS: usize = 256;
const GROUP_BYTES: u64 = 64 << 20;

/// What became of one item of a batch.
pub(super) enum ItemOutcome {
    Copied {
        /// The staged name to move into place (`None`: written in place).
        name: Option<String>,
        path: ItemPath,
        entry: ManifestEntry,
    },
    Unchanged {
        path: ItemPath,
        entry: ManifestEntry,
    },
    Failed {
        size: u64,
        message: String,
    },
    /// The storage itself failed (no space, read-only, EIO, unreachable): no
    /// item would get through, and the batch is dropped. `name` is what the
    /// item was being staged as (a part of it may be there).
    Fault {
        fault: Fault,
        error: StoreError,
        name: String,
    },
    /// Ctrl-C came before the item was reached.
    Skipped,
}

/// The warning for an item that could not be copied.
pub(super) fn item_failure(path: &ItemPath, e: &StoreError) -> String {
    if e.is_not_found() {
        format!("'{path}' disappeared during the sync; it is picked up next time")
    } else {
        format!("cannot copy '{path}': {e}")
    }
}

/// Drops what a batch staged (the batch will not be committed), in one
/// call: the items copied, and what those the storage failed may have left.
pub(super) async fn discard_outcomes(d: &Direction<'_>, outcomes: Vec<ItemOutcome>) {
    let names: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| match o {
            ItemOutcome::Copied { name, .. } => name,
            ItemOutcome::Fault { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    let _ = d.dst.discard_staged(&names).await;
}

/// The end of the next group of `batch` from `start`: at most [`GROUP_ITEMS`]
/// items and [`GROUP_BYTES`] bytes, and always at least one item.
fn group_end(batch: &[Entry], start: usize) -> usize {
    let mut end = start;
    let mut bytes = 0u64;
    while end < batch.len()
        && end - start < GROUP_ITEMS
        && (end == start || bytes + batch[end].size <= GROUP_BYTES)
    {
        bytes += batch[end].size;
        end += 1;
    }
    end
}

/// Copies the items of one batch (up to `parallelism` at once) into staging at
/// the receiving store. `previous[i]` is what the manifest records for
/// `batch[i]`: an item of the same size is hashed first and not copied when its
/// content did not change. Items go to the store in groups, and Ctrl-C is seen
/// between groups.
pub(super) async fn stage_batch(
    d: &Direction<'_>,
    opts: &SyncOptions,
    batch: &[Entry],
    previous: &[Option<ManifestEntry>],
    seq: u64,
    parallelism: usize,
) -> Vec<ItemOutcome> {
    let stage_prefix = d.stage_prefix();
    let mut outcomes = Vec::with_capacity(batch.len());
    let started = Instant::now();
    let mut start = 0;
    while start < batch.len() {
        if opts.cancel.is_cancelled() {
            outcomes.push(ItemOutcome::Skipped);
            break;
        }
        let end = group_end(batch, start);
        let requests: Vec<StageRequest> = (start..end)
            .map(|i| StageRequest {
                path: d.source_prefix().join(&batch[i].path),
                name: format!("{stage_prefix}-{seq}-{i}"),
                dest: d.dest_prefix().join(&batch[i].path),
                // Same size as before: copied only if the content changed.
                known: previous[i]
                    .as_ref()
                    .filter(|m| m.size == batch[i].size)
                    .map(|m| m.hash),
            })
            .collect();
        let results = d.dst.stage_many(d.src, &requests, parallelism).await;
        let mut fault = false;
        for ((i, request), result) in (start..end).zip(&requests).zip(results) {
            let outcome = outcome(d, &batch[i], previous[i].as_ref(), request, result).await;
            fault |= matches!(outcome, ItemOutcome::Fault { .. });
            outcomes.push(outcome);
        }
        if fault {
            // The batch will be dropped: its other groups are not staged.
            break;
        }
        start = end;
    }
    tracing::debug!(
        module = d.module.short_name(),
        to = %d.to.fqdn,
        batch = seq,
        items = batch.len(),
        stage_ms = ms(started.elapsed()),
        "batch staged"
    );
    outcomes
}

/// What staging one item came to: copied, unchanged (its content hashed as
/// before, so what was staged is dropped again), or failed.
async fn outcome(
    d: &Direction<'_>,
    entry: &Entry,
    previous: Option<&ManifestEntry>,
    request: &StageRequest,
    result: StoreResult<Option<Staged>>,
) -> ItemOutcome {
    let new_entry = |hash: Hash| ManifestEntry {
        size: entry.size,
        mtime_ns: entry.mtime_ns,
        token: entry.token.clone(),
        hash,
    };
    match result {
        Ok(None) => ItemOutcome::Unchanged {
            path: entry.path.clone(),
            entry: new_entry(request.known.unwrap_or_default()),
        },
        Ok(Some(staged)) if previous.is_some_and(|m| m.hash == staged.hash) => {
            if !staged.in_place {
                let _ = d
                    .dst
                    .discard_staged(std::slice::from_ref(&staged.name))
                    .await;
            }
            ItemOutcome::Unchanged {
                path: entry.path.clone(),
                entry: new_entry(staged.hash),
            }
        }
        Ok(Some(staged)) => ItemOutcome::Copied {
            name: (!staged.in_place).then_some(staged.name),
            path: entry.path.clone(),
            entry: new_entry(staged.hash),
        },
        Err(e) => {
            // Nothing to discard one by one when the store failed: the batch
            // is dropped whole (an unreachable store would take each discard
            // through its retries).
            if let Some(fault) = e.fault() {
                return ItemOutcome::Fault {
                    fault,
                    error: e,
                    name: request.name.clone(),
                };
            }
            let _ = d
                .dst
                .discard_staged(std::slice::from_ref(&request.name))
                .await;
            ItemOutcome::Failed {
                size: entry.size,
                message: item_failure(&entry.path, &e),
            }
        }
    }
}
