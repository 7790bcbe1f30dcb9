//! Status records the engine writes after each module and direction: at the
//! exporting pool (`status/export/<partner>/<module>`) and at the importing pool
//! (`status/import/<partner>/<module>`), in each store's metadata.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ExportState, ImportState};
use crate::store::{Store, StoreError, StoreResult};

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

/// The record at `key`: `None` before the first sync of that direction, an
/// error if it cannot be read or is damaged (the next sync rewrites it).
pub async fn read(store: &dyn Store, key: &str) -> StoreResult<Option<DirectionStatus>> {
    let Some(body) = store.meta_get(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| StoreError::Other {
            store: store.describe(),
            message: format!(
                "the status record {key} is damaged ({e}); the next sync of that direction rewrites it"
            ),
        })
}

pub async fn write(store: &dyn Store, key: &str, status: &DirectionStatus) -> StoreResult<()> {
    let body = serde_json::to_vec_pretty(status).unwrap_or_default();
    store.meta_put(key, Bytes::from(body)).await
}
