//! `ObjectWriter`: uploads a stream of chunks to one key (multipart when large);
//! the object appears, whole, when the upload completes.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::io::AsyncWriteExt;

use super::breaker::Breaker;
use crate::store::{StageWriter, StoreError, StoreResult};

pub(super) struct ObjectWriter {
    writer: Option<object_store::buffered::BufWriter>,
    desc: String,
    name: String,
    /// Told when an upload finds the endpoint down (parts of a multipart
    /// upload go around the store's own requests).
    breaker: Arc<Breaker>,
}

impl ObjectWriter {
    /// A writer of the object `key` of `backend`; `name` is the item, for errors.
    pub(super) fn new(
        backend: Arc<dyn ObjectStore>,
        key: Path,
        desc: String,
        name: String,
        breaker: Arc<Breaker>,
    ) -> ObjectWriter {
        ObjectWriter {
            writer: Some(object_store::buffered::BufWriter::new(backend, key)),
            desc,
            name,
            breaker,
        }
    }

    fn failed(&self, source: std::io::Error) -> StoreError {
        // An unreachable or failing server, as the other requests word it.
        let inner = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<object_store::Error>());
        if let Some(e) = inner {
            self.breaker.watch(e);
        }
        let source = inner.and_then(super::errors::unavailable).unwrap_or(source);
        StoreError::Io {
            store: self.desc.clone(),
            action: "upload",
            path: self.name.clone(),
            source,
        }
    }
}

#[async_trait]
impl StageWriter for ObjectWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        let w = self.writer.as_mut().ok_or_else(|| StoreError::Other {
            store: self.desc.clone(),
            message: "write after finish".into(),
        })?;
        if let Err(e) = w.write_all(&chunk).await {
            // A multipart upload that will not complete: drop its parts.
            let _ = w.abort().await;
            self.writer = None;
            return Err(self.failed(e));
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        // No abort after a failed shutdown: the writer is shut down by then,
        // and object_store's `abort` panics on a writer in that state (a
        // server that stopped mid-sync made the whole process report a
        // panic). A multipart upload whose completion failed leaves its
        // parts to the bucket's lifecycle rule (docs/s3.md, Housekeeping).
        w.shutdown().await.map_err(|e| self.failed(e))
    }
}
