//! What the object store's unit tests share: a throttled in-memory bucket
//! that two stores (two processes) use at once.

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{LockMode, ObjectBackedStore};

/// A runtime with two worker threads and timers.
pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One process's view of a shared bucket: with `bucket`, every request
/// takes 5 ms, so two processes' requests interleave.
pub(super) fn process(backend: &Arc<dyn ObjectStore>, lease: Duration) -> ObjectBackedStore {
    ObjectBackedStore::new(backend.clone(), Path::from("pool"), "memory://t".into())
        .with_lock_mode(LockMode::Conditional)
        .with_lease(lease)
}

/// A bucket in memory in which every request takes 5 ms.
pub(super) fn bucket() -> Arc<dyn ObjectStore> {
    let wait = Duration::from_millis(5);
    Arc::new(ThrottledStore::new(
        InMemory::new(),
        ThrottleConfig {
            wait_get_per_call: wait,
            wait_put_per_call: wait,
            wait_delete_per_call: wait,
            ..ThrottleConfig::default()
        },
    ))
}

/// The key of the lock `pair` of the stores `process` makes.
pub(super) const KEY: &str = "pool/.poolsync/meta/locks/pair";

/// Writes the lock `pair` with `body`, as another process would.
pub(super) async fn seed(backend: &Arc<dyn ObjectStore>, body: &str) {
    backend
        .put(&Path::from(KEY), PutPayload::from(body.to_string()))
        .await
        .unwrap();
}
