//! How the local store words its errors: an I/O error names the store, what
//! was being done and the item; anything else is a message for the store.

use std::io;

use crate::store::StoreError;

/// An I/O error of `action` on `path` (empty: the store itself). An item that
/// is not there is `StoreError::NotFound`.
pub(super) fn io_err(
    store: &str,
    action: &'static str,
    path: &str,
    source: io::Error,
) -> StoreError {
    if source.kind() == io::ErrorKind::NotFound && !path.is_empty() {
        return StoreError::NotFound {
            store: store.to_string(),
            path: path.to_string(),
        };
    }
    StoreError::Io {
        store: store.to_string(),
        action,
        path: path.to_string(),
        source,
    }
}

/// Any other failure of the store.
pub(super) fn other(store: &str, message: String) -> StoreError {
    StoreError::Other {
        store: store.to_string(),
        message,
    }
}
