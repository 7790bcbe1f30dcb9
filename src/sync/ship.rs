//! Shipping a planned direction: its batches are staged and committed in a
//! pipeline of two (while batch N commits and its flush waits on the disk,
//! batch N+1 is copied into staging; commits stay one at a time and in order),
//! then the deletions go, in batches of their own, once every copy got through.

use std::collections::HashMap;

use super::SyncOptions;
use super::direction::{Direction, DirectionFailure};
use super::fault::{Stopped, StorageFault};
use super::journal::{self, Committing, Failed, Journal, Refused};
use super::manifest::{Manifest, ManifestEntry, encode};
use super::plan::Plan;
use super::report::DirectionReport;
use super::stage::{ItemOutcome, discard_outcomes, stage_batch};
use crate::store::{Entry, Fault, ItemPath, StoreError, StoreResult};
use crate::topology::{BackupServiceSettings, Category};

/// The first storage fault among a batch's outcomes (they stay, for
/// `discard_outcomes`); its error is taken out.
fn take_fault(outcomes: &mut [ItemOutcome]) -> Option<(Fault, StoreError)> {
    outcomes.iter_mut().find_map(|o| match o {
        ItemOutcome::Fault { fault, error, .. } => {
            let placeholder = StoreError::Other {
                store: error.store().to_string(),
                message: "taken".into(),
            };
            Some((*fault, std::mem::replace(error, placeholder)))
        }
        _ => None,
    })
}

/// The state of one direction while its batches ship.
struct Shipment<'a, 'd> {
    d: &'a Direction<'d>,
    opts: &'a SyncOptions,
    settings: &'a BackupServiceSettings,
    manifest: &'a mut Manifest,
    report: &'a mut DirectionReport,
    warnings: &'a mut Vec<String>,
    failed: Failed,
    /// The staged batch being committed while the next one stages.
    in_flight: Option<Committing>,
    /// The number of the next batch.
    seq: u64,
    /// Deletions in the way of copies of a batch that was dropped.
    dropped_deletes: u64,
}

/// Ships `plan`; returns the bytes still pending.
pub(super) async fn ship(
    d: &Direction<'_>,
    opts: &SyncOptions,
    settings: &BackupServiceSettings,
    mut plan: Plan,
    manifest: &mut Manifest,
    report: &mut DirectionReport,
    warnings: &mut Vec<String>,
) -> Result<u64, DirectionFailure> {
    let mut s = Shipment {
        d,
        opts,
        settings,
        seq: manifest.next_seq(),
        manifest,
        report,
        warnings,
        failed: Failed::default(),
        in_flight: None,
        dropped_deletes: 0,
    };
    let done = s.copy_batches(&plan.batches, &mut plan.in_the_way).await?;
    s.finish_in_flight().await?;
    let remaining: Vec<&Entry> = plan.batches[done..].iter().flatten().collect();
    let pending_bytes = remaining.iter().map(|e| e.size).sum::<u64>() + s.failed.bytes;
    s.report.pending_items = remaining.len() as u64 + s.failed.items;
    // Deletions propagate only once every copy of this module has succeeded.
    let deleted = if s.report.pending_items == 0 && !opts.cancel.is_cancelled() {
        s.delete(&plan.deletes).await?
    } else {
        0
    };
    // Deletions left: those of the end, and those in the way of copies that
    // were not reached (cut short by Ctrl-C or the per-cycle limit).
    let undeleted =
        plan.deletes.len() as u64 - deleted + s.dropped_deletes + plan.in_the_way_count() as u64;
    s.report.pending_items += undeleted + plan.held_back.len() as u64;
    s.manifest
        .compact_if_needed(d.dst)
        .await
        .map_err(DirectionFailure::import)?;
    // The last batch's renames and log become durable with the status
    // records, at the end of the sync (`sync_pair`).
    Ok(pending_bytes)
}

impl Shipment<'_, '_> {
    /// Stages and commits batches until they are done, Ctrl-C, or the
    /// per-cycle limit; returns how many were staged whole.
    async fn copy_batches(
        &mut self,
        batches: &[Vec<Entry>],
        in_the_way: &mut HashMap<ItemPath, Vec<ItemPath>>,
    ) -> Result<usize, DirectionFailure> {
        let cycle_limit = match self.d.module.category() {
            Category::Cms => self.settings.max_batches_per_cms_sync,
            Category::UserData => self.settings.max_batches_per_user_store_sync,
        };
        let mut done = 0usize;
        for batch in batches {
            if self.opts.cancel.is_cancelled()
                || (self.opts.per_cycle && done as u64 >= cycle_limit)
            {
                break;
            }
            if !self.copy_batch(batch, in_the_way).await? {
                break;
            }
            done += 1;
        }
        Ok(done)
    }

    /// Stages one batch (while the one before commits) and leaves it in
    /// flight; `false` when Ctrl-C cut it short and it was dropped whole.
    async fn copy_batch(
        &mut self,
        batch: &[Entry],
        in_the_way: &mut HashMap<ItemPath, Vec<ItemPath>>,
    ) -> Result<bool, DirectionFailure> {
        let d = self.d;
        let previous: Vec<Option<ManifestEntry>> = batch
            .iter()
            .map(|e| self.manifest.get(&e.path).cloned())
            .collect();
        if d.dst.writes_in_place() {
            // Before anything is written: these paths may change even if
            // the batch never commits (see `forget_uncommitted`).
            let paths: Vec<&ItemPath> = batch.iter().map(|e| &e.path).collect();
            self.record_intent(&paths)
                .await
                .map_err(DirectionFailure::import)?;
        }
        let need: u64 = batch.iter().map(|e| e.size).sum();
        let items = batch.len() as u64;
        if let Some(room) = d.dst.free_space(d.dest_prefix()).await
            && (need > room.bytes || room.files.is_some_and(|f| f < items))
        {
            // The batch before goes in; this one is not begun.
            self.finish_in_flight().await?;
            let fault = StorageFault {
                fault: None,
                need,
                room: Some(room),
                stopped: Stopped::NotBegun { items },
            };
            return Err(fault.failure(d, self.report));
        }
        let mut outcomes = self.stage_while_committing(batch, &previous).await?;
        if let Some(fault) = take_fault(&mut outcomes) {
            // The room as the write found it, before the discard frees some.
            let room = match fault.0 {
                Fault::NoSpace => d.dst.free_space(d.dest_prefix()).await,
                Fault::ReadOnly | Fault::Io | Fault::CrossDevice | Fault::Unavailable => None,
            };
            discard_outcomes(d, outcomes).await;
            let fault = StorageFault {
                fault: Some(fault),
                need,
                room,
                stopped: Stopped::Discarded { items },
            };
            return Err(fault.failure(d, self.report));
        }
        let mut committing = Committing {
            journal: Journal::new(self.seq),
            items: batch.len() as u64,
            item_bytes: batch.iter().map(|e| e.size).sum(),
            copied: 0,
            bytes: 0,
            unchanged: 0,
        };
        for entry in batch {
            if let Some(paths) = in_the_way.remove(&entry.path) {
                committing.journal.remove(d, paths);
            }
        }
        let skipped = self.absorb(&mut committing, outcomes);
        if skipped || self.opts.cancel.is_cancelled() {
            // Interrupted inside the batch: drop it whole; the next run redoes it
            // (the deletions in the way of its copies too).
            self.dropped_deletes += committing.journal.delta.removes.len() as u64;
            let names: Vec<String> = committing.journal.moves.into_iter().map(|m| m.0).collect();
            let _ = d.dst.discard_staged(&names).await;
            return Ok(false);
        }
        if committing.is_empty() {
            committing.record(self.manifest, self.report, self.opts);
        } else {
            self.in_flight = Some(committing);
            self.seq += 1;
        }
        Ok(true)
    }

    /// Commits the batch in flight, if any.
    async fn finish_in_flight(&mut self) -> Result<(), DirectionFailure> {
        let Some(mut committing) = self.in_flight.take() else {
            return Ok(());
        };
        let committed = journal::commit(self.d, &mut committing.journal).await;
        self.settle(committing, committed)
            .map_err(DirectionFailure::import)
    }

    /// Records the paths a batch may write in place, before it writes them.
    async fn record_intent(&self, paths: &[&ItemPath]) -> StoreResult<()> {
        let key = format!("{}/{}", self.d.intent_prefix(), self.seq);
        self.d.dst.meta_put(&key, encode(&paths)?).await
    }

    /// Stages `batch` while the batch in flight, if any, commits.
    async fn stage_while_committing(
        &mut self,
        batch: &[Entry],
        previous: &[Option<ManifestEntry>],
    ) -> Result<Vec<ItemOutcome>, DirectionFailure> {
        let (d, opts) = (self.d, self.opts);
        let parallelism = self.settings.transfer_parallelism.max(1) as usize;
        let staging = stage_batch(d, opts, batch, previous, self.seq, parallelism);
        let Some(mut committing) = self.in_flight.take() else {
            return Ok(staging.await);
        };
        let (outcomes, committed) =
            tokio::join!(staging, journal::commit(d, &mut committing.journal));
        if let Err(e) = self.settle(committing, committed) {
            discard_outcomes(d, outcomes).await;
            return Err(DirectionFailure::import(e));
        }
        Ok(outcomes)
    }

    /// Takes a committed batch into the manifest and the report, its refused
    /// items into the failed ones.
    fn settle(
        &mut self,
        mut committing: Committing,
        committed: StoreResult<Refused>,
    ) -> StoreResult<()> {
        committed?.count(&mut committing, &mut self.failed, self.warnings);
        committing.record(self.manifest, self.report, self.opts);
        Ok(())
    }

    /// Takes what staging each item came to into the batch; `true` when Ctrl-C
    /// skipped part of it.
    fn absorb(&mut self, committing: &mut Committing, outcomes: Vec<ItemOutcome>) -> bool {
        let mut skipped = false;
        let dest = self.d.dest_prefix();
        for outcome in outcomes {
            match outcome {
                ItemOutcome::Copied { name, path, entry } => {
                    committing.bytes += entry.size;
                    committing.copied += 1;
                    if let Some(name) = name {
                        committing.journal.moves.push((name, dest.join(&path)));
                    }
                    committing.journal.delta.upserts.push((path, entry));
                }
                ItemOutcome::Unchanged { path, entry } => {
                    committing.unchanged += 1;
                    committing.journal.delta.upserts.push((path, entry));
                }
                ItemOutcome::Failed { size, message } => {
                    self.failed.items += 1;
                    self.failed.bytes += size;
                    self.warnings.push(self.d.about(message));
                }
                // A fault was taken out before (`take_fault`).
                ItemOutcome::Skipped | ItemOutcome::Fault { .. } => skipped = true,
            }
        }
        skipped
    }

    /// Deletes what the source no longer has, in batches; returns how many
    /// items went.
    async fn delete(&mut self, deletes: &[ItemPath]) -> Result<u64, DirectionFailure> {
        let mut deleted = 0u64;
        for chunk in deletes.chunks(self.settings.batch_max_items.max(1) as usize) {
            if self.opts.cancel.is_cancelled() {
                break;
            }
            let mut journal = Journal::deleting(self.d, self.manifest.next_seq(), chunk);
            let refused = journal::commit(self.d, &mut journal)
                .await
                .map_err(DirectionFailure::import)?;
            self.warnings.extend(refused.messages);
            self.manifest.committed(&journal.delta);
            let gone = journal.delta.removes.len() as u64;
            self.report.batches += 1;
            self.report.items_deleted += gone;
            deleted += gone;
        }
        Ok(deleted)
    }
}
