//! Records kept as JSON metadata documents (the status records, the failover
//! records): read, with a damaged one reported in words that say what
//! happens next, and written.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Store, StoreError, StoreResult};

/// The record at `key`: `None` when the store has none. A document that does
/// not parse is an error: "the `what` `key` is damaged (why); `next`".
pub(super) async fn read<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
    what: &str,
    next: &str,
) -> StoreResult<Option<T>> {
    let Some(body) = store.meta_get(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| StoreError::Other {
            store: store.describe(),
            message: format!("the {what} {key} is damaged ({e}); {next}"),
        })
}

/// Writes the record at `key` (the `what`, for an error).
pub(super) async fn write<T: Serialize>(
    store: &dyn Store,
    key: &str,
    what: &str,
    value: &T,
) -> StoreResult<()> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Other {
        store: store.describe(),
        message: format!("cannot encode the {what} {key}: {e}"),
    })?;
    store.meta_put(key, Bytes::from(body)).await
}
