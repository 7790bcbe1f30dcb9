//! The commit of one batch at the receiving store: a write-ahead journal made
//! durable before anything moves, the moves and deletes, then the manifest log
//! that records the batch. A crash at any point is rolled forward from the
//! journal (see recovery.rs).

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::direction::Direction;
use super::manifest::{Delta, Manifest, decode, encode};
use super::report::DirectionReport;
use super::{SyncOptions, ms};
use crate::store::{ItemFailures, ItemPath, StoreResult};

/// The write-ahead record of one batch: written and made durable before anything
/// moves, so a crash at any point can be rolled forward.
#[derive(Serialize, Deserialize)]
pub(super) struct Journal {
    pub(super) moves: Vec<(String, ItemPath)>,
    pub(super) deletes: Vec<ItemPath>,
    pub(super) delta: Delta,
}

impl Journal {
    /// An empty batch numbered `seq`.
    pub(super) fn new(seq: u64) -> Self {
        Journal {
            moves: Vec::new(),
            deletes: Vec::new(),
            delta: Delta {
                seq,
                ..Delta::default()
            },
        }
    }

    /// A batch of deletions only: `paths` relative to the direction's prefixes.
    pub(super) fn deleting(d: &Direction<'_>, seq: u64, paths: &[ItemPath]) -> Self {
        let mut journal = Journal::new(seq);
        journal.remove(d, paths.iter().cloned());
        journal
    }

    /// Adds deletions of `paths` (relative to the direction's prefixes).
    pub(super) fn remove(&mut self, d: &Direction<'_>, paths: impl IntoIterator<Item = ItemPath>) {
        for path in paths {
            self.deletes.push(d.dest_prefix().join(&path));
            self.delta.removes.push(path);
        }
    }
}

/// The batch an interrupted run left, from its journal document: `None` if
/// the journal was torn (nothing had moved) or its manifest log was written
/// (the batch committed).
pub(super) async fn unfinished(d: &Direction<'_>, journal: &[u8]) -> StoreResult<Option<Journal>> {
    let Some(journal) = decode::<Journal>(journal) else {
        return Ok(None);
    };
    let logged = Manifest::has_log(d.dst, &d.manifest_prefix(), journal.delta.seq).await?;
    Ok((!logged).then_some(journal))
}

/// A batch whose items are staged, on its way to being committed.
pub(super) struct Committing {
    pub(super) journal: Journal,
    /// Items and bytes of the batch as planned (for progress).
    pub(super) items: u64,
    pub(super) item_bytes: u64,
    pub(super) copied: u64,
    pub(super) bytes: u64,
    pub(super) unchanged: u64,
}

impl Committing {
    /// Nothing to commit: every item failed, and no deletion goes with them.
    pub(super) fn is_empty(&self) -> bool {
        self.journal.delta.upserts.is_empty() && self.journal.delta.removes.is_empty()
    }

    /// The batch committed: record it in the manifest and the report.
    pub(super) fn record(
        self,
        manifest: &mut Manifest,
        report: &mut DirectionReport,
        opts: &SyncOptions,
    ) {
        if !self.is_empty() {
            manifest.committed(&self.journal.delta);
            report.batches += 1;
        }
        report.items_deleted += self.journal.delta.removes.len() as u64;
        report.items_copied += self.copied;
        report.bytes_copied += self.bytes;
        report.items_unchanged += self.unchanged;
        opts.advance(self.items, self.item_bytes);
    }
}

/// What a commit left out: items the receiving store refused on their own
/// account (see `Store::commit`). They stay pending, with a warning each.
#[derive(Default)]
pub(super) struct Refused {
    pub(super) messages: Vec<String>,
    pub(super) copies: u64,
    pub(super) bytes: u64,
    pub(super) deletes: u64,
}

/// Items of a direction that did not get through (failed copies, refused
/// items): they stay pending and hold back the deletions at the end.
#[derive(Default)]
pub(super) struct Failed {
    pub(super) items: u64,
    pub(super) bytes: u64,
}

impl Refused {
    /// Takes the refused items out of a committed batch's counts and into the
    /// direction's failed items.
    pub(super) fn count(
        self,
        committing: &mut Committing,
        failed: &mut Failed,
        warnings: &mut Vec<String>,
    ) {
        committing.copied -= self.copies;
        committing.bytes -= self.bytes;
        failed.items += self.copies + self.deletes;
        failed.bytes += self.bytes;
        warnings.extend(self.messages);
    }
}

/// Takes the items a commit refused out of the batch's manifest change, so the
/// manifest records only what is in the replica.
pub(super) fn leave_out(d: &Direction<'_>, journal: &mut Journal, failed: ItemFailures) -> Refused {
    let mut refused = Refused::default();
    if failed.is_empty() {
        return refused;
    }
    let failed: HashMap<ItemPath, String> = failed.into_iter().collect();
    let mut refuse = |path: &ItemPath| {
        let message = failed.get(&d.dest_prefix().join(path))?;
        refused.messages.push(d.about(message));
        Some(())
    };
    let (mut copies, mut bytes, mut deletes) = (0, 0, 0);
    journal.delta.upserts.retain(|(path, entry)| {
        let keep = refuse(path).is_none();
        if !keep {
            copies += 1;
            bytes += entry.size;
        }
        keep
    });
    journal.delta.removes.retain(|path| {
        let keep = refuse(path).is_none();
        deletes += u64::from(!keep);
        keep
    });
    refused.copies = copies;
    refused.bytes = bytes;
    refused.deletes = deletes;
    refused
}

/// Commits one batch: journal, durable, move into place, manifest log. The
/// caller then records the delta in its in-memory manifest.
pub(super) async fn commit(d: &Direction<'_>, journal: &mut Journal) -> StoreResult<Refused> {
    let key = d.journal_key();
    let started = Instant::now();
    d.dst.meta_put(&key, encode(journal)?).await?;
    // While the batch is flushed, look up what the commit will touch.
    let (durable, ()) = tokio::join!(
        d.dst.make_durable(),
        d.dst.prepare_commit(&journal.moves, &journal.deletes)
    );
    durable?;
    let durable = started.elapsed();
    let failed = d.dst.commit(&journal.moves, &journal.deletes).await?;
    let refused = leave_out(d, journal, failed);
    let moved = started.elapsed();
    Manifest::write_log(d.dst, &d.manifest_prefix(), &journal.delta).await?;
    d.dst.meta_delete(&key).await?;
    if d.dst.writes_in_place() {
        let intent = format!("{}/{}", d.intent_prefix(), journal.delta.seq);
        d.dst.meta_delete(&intent).await?;
    }
    tracing::debug!(
        module = d.module.short_name(),
        to = %d.to.fqdn,
        batch = journal.delta.seq,
        moved = journal.moves.len(),
        deleted = journal.deletes.len(),
        durable_ms = ms(durable),
        move_ms = ms(moved.saturating_sub(durable)),
        total_ms = ms(started.elapsed()),
        "batch committed"
    );
    Ok(refused)
}
