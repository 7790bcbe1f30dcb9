//! Copying a chosen set of items with the sync's own machinery: the same
//! batches, staging, journal and atomic commit as a sync, for the items a
//! restore brings back or a quarantine moves aside. The direction's
//! manifest only marks which batches committed, and goes when it is done.

use std::collections::HashMap;

use crate::store::Entry;
use crate::sync::direction::{Direction, DirectionFailure};
use crate::sync::manifest::Manifest;
use crate::sync::plan::{Plan, batch_byte_limit, partition};
use crate::sync::recovery::recover;
use crate::sync::report::DirectionReport;
use crate::sync::{ExportState, SyncOptions, ship};
use crate::topology::BackupServiceSettings;

/// Copies `items` (paths relative to the direction's source prefix) in
/// batches; what an interrupted run of the same direction left is finished
/// first. The report counts what was copied and what is still pending.
pub(super) async fn copy_items(
    d: &Direction<'_>,
    opts: &SyncOptions,
    settings: &BackupServiceSettings,
    items: Vec<Entry>,
    warnings: &mut Vec<String>,
) -> DirectionReport {
    let started = std::time::Instant::now();
    let mut report = DirectionReport::new(d.module, &d.from.fqdn, &d.to.fqdn);
    if let Err(failure) = run(d, opts, settings, items, &mut report, warnings).await {
        report.error = Some(failure.message().to_string());
        report.export_status = ExportState::ErrorState;
    } else {
        report.export_status = if report.pending_items == 0 {
            ExportState::FinalState
        } else {
            ExportState::NonSteadyState
        };
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

async fn run(
    d: &Direction<'_>,
    opts: &SyncOptions,
    settings: &BackupServiceSettings,
    items: Vec<Entry>,
    report: &mut DirectionReport,
    warnings: &mut Vec<String>,
) -> Result<(), DirectionFailure> {
    recover(d, warnings)
        .await
        .map_err(DirectionFailure::import)?;
    let prefix = d.manifest_prefix();
    let mut manifest = Manifest::load(d.dst, &prefix)
        .await
        .map_err(DirectionFailure::import)?;
    // Recorded items are ones an interrupted run copied already: their
    // content is compared again, so nothing the source changed is missed.
    let plan = Plan {
        batches: partition(
            items,
            settings.batch_max_items,
            batch_byte_limit(d.module, settings),
        ),
        deletes: Vec::new(),
        in_the_way: HashMap::new(),
        held_back: Vec::new(),
        unchanged: 0,
    };
    ship::ship(d, opts, settings, plan, &mut manifest, report, warnings).await?;
    if report.pending_items == 0 && !opts.cancel.is_cancelled() {
        Manifest::remove(d.dst, &prefix)
            .await
            .map_err(DirectionFailure::import)?;
    }
    Ok(())
}
