//! Status records the engine writes after each module and direction: at the
//! exporting pool (`status/export/<partner>/<module>`) and at the importing pool
//! (`status/import/<partner>/<module>`), in each store's metadata.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ExportState, ImportState};
use crate::store::{Store, StoreResult};

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
}

pub fn export_key(to: &str, module: &str) -> String {
    format!("status/export/{to}/{module}")
}

pub fn import_key(from: &str, module: &str) -> String {
    format!("status/import/{from}/{module}")
}

pub async fn read(store: &dyn Store, key: &str) -> StoreResult<Option<DirectionStatus>> {
    Ok(store
        .meta_get(key)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

pub async fn write(store: &dyn Store, key: &str, status: &DirectionStatus) -> StoreResult<()> {
    let body = serde_json::to_vec_pretty(status).unwrap_or_default();
    store.meta_put(key, Bytes::from(body)).await
}
