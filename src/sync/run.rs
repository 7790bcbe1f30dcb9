//! One module in one direction, from start to end: put right what an earlier
//! run left, list the source while the manifest loads, plan, check the plan
//! against the safety guard, then ship it (or, in a dry run, predict it).

use std::time::{Duration, Instant};

use super::direction::{Direction, DirectionFailure};
use super::manifest::Manifest;
use super::manifest_cache::ManifestCache;
use super::plan::{Plan, batch_byte_limit};
use super::recovery::{forget_uncommitted, predict_recovery, rebuild_from_replica, recover};
use super::report::DirectionReport;
use super::{ExportState, ImportState, SyncEngine, SyncOptions, dry_run, guard, ms, ship, status};
use crate::store::{ItemPath, Listing};
use crate::topology::BackupServiceSettings;

/// How long the first steps took, for the debug log, and the changed paths
/// the listing covered (`None`: the whole source).
struct Timings {
    started: Instant,
    list: Duration,
    manifest: Duration,
    scope: Option<Vec<ItemPath>>,
}

/// The changed paths of `d` to look at, when the sync is one of changed
/// paths (see [`SyncOptions::changes`]).
fn scope_of(d: &Direction<'_>, opts: &SyncOptions) -> Option<Vec<ItemPath>> {
    opts.changes
        .as_ref()
        .map(|changes| changes.scope(&d.from.fqdn, d.module))
}

impl SyncEngine {
    /// Runs one direction and records how it ended at both stores.
    pub(super) async fn sync_direction(
        &self,
        d: &Direction<'_>,
        opts: &SyncOptions,
        warnings: &mut Vec<String>,
    ) -> DirectionReport {
        let started = Instant::now();
        let mut report = DirectionReport::new(d.module, &d.from.fqdn, &d.to.fqdn);
        report.scoped = opts.changes.is_some();
        let settings = self.settings();
        let cache = self.manifest_cache();
        let outcome = run_direction(d, opts, &settings, cache, &mut report, warnings).await;
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(
            module = d.module.short_name(),
            from = %d.from.fqdn,
            to = %d.to.fqdn,
            copied = report.items_copied,
            deleted = report.items_deleted,
            batches = report.batches,
            failed = outcome.is_err(),
            total_ms = ms(started.elapsed()),
            "direction done"
        );
        let import_state = match &outcome {
            Err(DirectionFailure::Import(_)) => ImportState::ErrorState,
            _ => ImportState::NormalState,
        };
        match &outcome {
            Err(failure) => {
                report.error = Some(failure.message().to_string());
                report.export_status = ExportState::ErrorState;
            }
            Ok(pending_bytes) => {
                report.export_status = ExportState::for_pending(
                    report.pending_items,
                    *pending_bytes,
                    settings.batch_max_items,
                    batch_byte_limit(d.module, &settings),
                );
            }
        }
        if !opts.what_if && d.records_status() {
            status::record(d, &report, import_state, warnings).await;
        }
        report
    }
}

/// Runs one direction; returns the bytes still pending.
async fn run_direction(
    d: &Direction<'_>,
    opts: &SyncOptions,
    settings: &BackupServiceSettings,
    cache: Option<&ManifestCache>,
    report: &mut DirectionReport,
    warnings: &mut Vec<String>,
) -> Result<u64, DirectionFailure> {
    let parallelism = settings.transfer_parallelism.max(1) as usize;
    // A dry run neither takes a kept manifest nor keeps one.
    let cache = cache.filter(|_| !opts.what_if);
    let (listing, mut manifest, timings) = prepare(d, opts, parallelism, cache, warnings).await?;
    let (plan, shrinkage) = plan(d, listing, &manifest, settings, timings, warnings);
    report.items_unchanged += plan.unchanged;
    guard::check(d, &shrinkage, opts.allow_mass_delete)?;
    if let Some(p) = &opts.progress {
        p.add_work(
            plan.copies().count() as u64,
            plan.copies().map(|c| c.size).sum(),
        );
    }
    if opts.what_if {
        return dry_run::predict(d, opts, settings, plan, &manifest, report, warnings).await;
    }
    let shipped = ship::ship(d, opts, settings, plan, &mut manifest, report, warnings).await;
    if let Some(cache) = cache
        && shipped.is_ok()
    {
        cache
            .keep(d.dst, &d.to.fqdn, &d.manifest_prefix(), manifest)
            .await;
    }
    shipped
}

/// Puts right what an earlier run left, then lists the source while the
/// manifest loads (one waits on the source's file system or server, the other
/// decodes on this thread), and makes the manifest whole.
async fn prepare(
    d: &Direction<'_>,
    opts: &SyncOptions,
    parallelism: usize,
    cache: Option<&ManifestCache>,
    warnings: &mut Vec<String>,
) -> Result<(Listing, Manifest, Timings), DirectionFailure> {
    if !opts.what_if {
        recover(d, warnings)
            .await
            .map_err(DirectionFailure::import)?;
    }
    let manifest_prefix = d.manifest_prefix();
    let started = Instant::now();
    let scope = scope_of(d, opts);
    let ((listing, list), (manifest, manifest_time)) = tokio::join!(
        async {
            let listing = match &scope {
                Some(paths) => d.src.list_paths(d.source_prefix(), paths).await,
                None => d.src.list(d.source_prefix()).await,
            };
            (listing, started.elapsed())
        },
        async {
            let manifest = match cache {
                Some(cache) => cache.load(d.dst, &d.to.fqdn, &manifest_prefix).await,
                None => Manifest::load(d.dst, &manifest_prefix).await,
            };
            (manifest, started.elapsed())
        }
    );
    let listing = listing.map_err(DirectionFailure::export)?;
    let mut manifest = manifest.map_err(DirectionFailure::import)?;
    warnings.extend(
        listing
            .warnings
            .iter()
            .map(|w| format!("{}: {w}", d.from.fqdn)),
    );
    complete_manifest(d, &mut manifest, opts, parallelism, warnings)
        .await
        .map_err(DirectionFailure::import)?;
    let timings = Timings {
        started,
        list,
        manifest: manifest_time,
        scope,
    };
    Ok((listing, manifest, timings))
}

/// Rebuilds a lost or damaged manifest from the replica, forgets what
/// uncommitted in-place batches may have changed, and in a dry run accounts
/// for the batch an interrupted run left.
async fn complete_manifest(
    d: &Direction<'_>,
    manifest: &mut Manifest,
    opts: &SyncOptions,
    parallelism: usize,
    warnings: &mut Vec<String>,
) -> crate::store::StoreResult<()> {
    if let Some(damage) = &manifest.damaged {
        warnings.push(format!(
            "{} at {}: {damage}; rebuilding it from the replica's content",
            d.module.short_name(),
            d.to.fqdn
        ));
    }
    if manifest.is_empty() {
        rebuild_from_replica(d, manifest, parallelism, warnings).await?;
        // Saved at once: if this sync stops early, the next one must still
        // know the items it found (and delete those the source lost), not
        // start from the logs of this run's batches alone.
        if !opts.what_if && !manifest.is_empty() {
            manifest.compact(d.dst).await?;
        }
    }
    if d.dst.writes_in_place() {
        forget_uncommitted(d, manifest, opts, warnings).await?;
    }
    if opts.what_if {
        // The sync would first finish a batch an interrupted run left
        // (`recover`): predict from there.
        predict_recovery(d, manifest).await?;
    }
    Ok(())
}

/// What changed since the manifest, without reading unchanged content, and
/// how much it would shrink the replica (for the safety guard).
fn plan(
    d: &Direction<'_>,
    listing: Listing,
    manifest: &Manifest,
    settings: &BackupServiceSettings,
    timings: Timings,
    warnings: &mut Vec<String>,
) -> (Plan, guard::Shrinkage) {
    let listed = listing.entries.len();
    let (max_items, max_bytes) = (
        settings.batch_max_items,
        batch_byte_limit(d.module, settings),
    );
    let plan = match &timings.scope {
        Some(paths) => {
            let recorded = manifest.under(paths).into_iter();
            Plan::new(
                listing.entries,
                listing.incomplete,
                recorded,
                max_items,
                max_bytes,
            )
        }
        None => Plan::new(
            listing.entries,
            listing.incomplete,
            manifest.iter(),
            max_items,
            max_bytes,
        ),
    };
    // Like rsync after an I/O error: an item missing from a listing that
    // could not read everything may still exist, so nothing is deleted.
    if !plan.held_back.is_empty() {
        warnings.push(format!(
            "{}: {} deletions at {} held back: {} could not be listed in full (see the warnings above); they go through on a sync whose listing is complete",
            d.from.fqdn,
            plan.held_back.len(),
            d.to.fqdn,
            d.source_prefix()
        ));
    }
    let deleting = plan.deletes.len() + plan.in_the_way_count();
    tracing::debug!(
        module = d.module.short_name(),
        from = %d.from.fqdn,
        to = %d.to.fqdn,
        listed,
        changed_paths = timings.scope.as_ref().map(Vec::len),
        recorded = manifest.len(),
        candidates = plan.copies().count(),
        deletes = deleting,
        list_ms = ms(timings.list),
        manifest_ms = ms(timings.manifest),
        plan_ms = ms(timings.started.elapsed()),
        "planned"
    );
    // A listing of changed paths says nothing of the rest of the source: it
    // is taken as emptied only when the deletions would empty the replica.
    let scoped = timings.scope.is_some();
    let shrinkage = guard::Shrinkage {
        replica_items: manifest.len(),
        source_exists: listing.exists,
        source_empty: if scoped {
            deleting >= manifest.len() && listed == 0
        } else {
            listed == 0
        },
        deleting,
    };
    (plan, shrinkage)
}
