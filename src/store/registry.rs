//! Opening a store from its location.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::memory::InMemory;

use super::{LocalStore, ObjectBackedStore, Store, StoreLocation, StoreResult};

/// Opens the store at `location`.
pub fn open_store(location: &StoreLocation) -> StoreResult<Arc<dyn Store>> {
    match location {
        StoreLocation::Local(path) => Ok(Arc::new(LocalStore::open(path)?)),
        StoreLocation::Memory(name) => Ok(Arc::new(ObjectBackedStore::new(
            memory_backend(name),
            object_store::path::Path::default(),
            location.to_string(),
        ))),
        StoreLocation::S3(s3) => Ok(Arc::new(super::s3::open(s3)?)),
    }
}

/// The process-wide in-memory object store called `name` (created on first use).
pub fn memory_backend(name: &str) -> Arc<InMemory> {
    static MEMORY: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let map = MEMORY.get_or_init(Default::default);
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// A process-unique suffix for temporary names.
pub(super) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
