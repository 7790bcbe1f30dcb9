//! Status records the engine writes after each module and direction: at the
//! exporting pool (`status/export/<partner>/<module>`) and at the importing pool
//! (`status/import/<partner>/<module>`), in each store's metadata.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::direction::Direction;
use super::{DirectionReport, ExportState, ImportState};
use crate::store::{Store, StoreResult, system_time_ns};
use crate::topology::{Module, Pool};

/// The outcome of the last sync of one module in one direction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectionStatus {
    pub module: String,
    pub from: String,
    pub to: String,
    /// When the sync ended, in nanoseconds since the Unix epoch.
    pub time_ns: i64,
    pub export_state: ExportState,
    pub import_state: ImportState,
    pub items_copied: u64,
    pub bytes_copied: u64,
    pub items_deleted: u64,
    pub batches: u64,
    pub pending_items: u64,
    pub last_error: Option<String>,
    /// The last sync that ended without error.
    pub last_success_ns: Option<i64>,
    /// The replica held every change made before this time: the start of the
    /// last full sync that left nothing pending. A change still pending was
    /// made after it (the replication lag is measured from here at most).
    #[serde(default)]
    pub complete_as_of_ns: Option<i64>,
}

#[must_use]
pub fn export_key(to: &str, module: &str) -> String {
    format!("status/export/{to}/{module}")
}

#[must_use]
pub fn import_key(from: &str, module: &str) -> String {
    format!("status/import/{from}/{module}")
}

/// The record at `key`: `None` before the first sync of that direction, an
/// error if it cannot be read or is damaged (the next sync rewrites it).
pub async fn read(store: &dyn Store, key: &str) -> StoreResult<Option<DirectionStatus>> {
    let next = "the next sync of that direction rewrites it";
    super::meta_json::read(store, key, "status record", next).await
}

pub async fn write(store: &dyn Store, key: &str, status: &DirectionStatus) -> StoreResult<()> {
    super::meta_json::write(store, key, "status record", status).await
}

/// Records how one direction ended at both of its stores: the export status
/// at the source, the import status at the receiving store. The last success
/// is now when the direction succeeded, else the one recorded before.
pub(super) async fn record(
    d: &Direction<'_>,
    report: &DirectionReport,
    import_state: ImportState,
    warnings: &mut Vec<String>,
) {
    let now = system_time_ns(SystemTime::now());
    let status = DirectionStatus {
        module: d.module.identity().to_string(),
        from: d.from.fqdn.to_string(),
        to: d.to.fqdn.to_string(),
        time_ns: now,
        export_state: report.export_status,
        import_state,
        items_copied: report.items_copied,
        bytes_copied: report.bytes_copied,
        items_deleted: report.items_deleted,
        batches: report.batches,
        pending_items: report.pending_items,
        last_error: report.error.clone(),
        last_success_ns: None,
        complete_as_of_ns: None,
    };
    let complete = report.error.is_none() && report.pending_items == 0 && !report.scoped;
    for (store, key) in [
        (d.src, export_key(d.to.fqdn.as_str(), d.module.identity())),
        (d.dst, import_key(d.from.fqdn.as_str(), d.module.identity())),
    ] {
        let previous = read(store, &key).await.ok().flatten();
        let mut s = status.clone();
        s.last_success_ns = if report.error.is_none() {
            Some(now)
        } else {
            previous.as_ref().and_then(|p| p.last_success_ns)
        };
        s.complete_as_of_ns = if complete {
            Some(report.started_ns)
        } else {
            previous.and_then(|p| p.complete_as_of_ns)
        };
        if let Err(e) = write(store, &key, &s).await {
            warnings.push(format!(
                "could not record status at {}: {e}",
                store.describe()
            ));
        }
    }
}

/// Marks the exports of `from` (the modules of `modules` it exports) to an
/// unreachable `to` as failed, in `from`'s store.
pub(super) async fn record_unreachable(
    store: &dyn Store,
    from: &Pool,
    to: &Pool,
    modules: &[Module],
    error: &str,
) {
    for module in modules {
        let key = export_key(to.fqdn.as_str(), module.identity());
        let previous = read(store, &key).await.ok().flatten();
        let record = DirectionStatus {
            module: module.identity().to_string(),
            from: from.fqdn.to_string(),
            to: to.fqdn.to_string(),
            time_ns: system_time_ns(SystemTime::now()),
            export_state: ExportState::ErrorState,
            import_state: ImportState::NormalState,
            items_copied: 0,
            bytes_copied: 0,
            items_deleted: 0,
            batches: 0,
            pending_items: previous.as_ref().map_or(0, |p| p.pending_items),
            last_error: Some(error.to_string()),
            last_success_ns: previous.as_ref().and_then(|p| p.last_success_ns),
            complete_as_of_ns: previous.and_then(|p| p.complete_as_of_ns),
        };
        let _ = write(store, &key, &record).await;
    }
}
