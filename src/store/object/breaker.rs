//! Breaker: an endpoint found down stays down for the rest of the run.
//!
//! Every request is retried for up to 30 seconds (`s3.rs`). Once one has
//! spent that on an endpoint that cannot be reached, or that kept answering
//! 5xx, the requests after it (the rest of a batch, the other direction, the
//! status records, the lock's release) fail at once with the same reason,
//! instead of each paying the retries again: a sync whose server stopped
//! fails within the retry budget, not minutes later. `probe`, which every
//! sync (and every cycle of the service) begins with, resets it.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

use super::errors::unavailable;

/// Why the endpoint is taken as down, once it is.
#[derive(Debug, Default)]
pub(super) struct Breaker(Mutex<Option<String>>);

/// The error of a request not made because the endpoint is down.
#[derive(Debug)]
pub(super) struct NotTried(pub(super) String);

impl fmt::Display for NotTried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not tried: the endpoint stopped answering earlier in this run ({})",
            self.0
        )
    }
}

impl std::error::Error for NotTried {}

impl Breaker {
    /// Takes the endpoint as down if `e` says it cannot be reached.
    pub(super) fn watch(&self, e: &object_store::Error) {
        if let Some(why) = unavailable(e) {
            let mut down = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            down.get_or_insert_with(|| why.to_string());
        }
    }

    /// Takes the endpoint as up again (a new sync tries it).
    pub(super) fn reset(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Fails if the endpoint is down.
    fn check(&self) -> Result<()> {
        match &*self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(why) => Err(object_store::Error::Generic {
                store: "S3",
                source: Box::new(NotTried(why.clone())),
            }),
            None => Ok(()),
        }
    }

    fn watched<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.watch(e);
        }
        result
    }
}

/// An object store behind a [`Breaker`].
#[derive(Debug)]
pub(super) struct BreakerStore {
    inner: Arc<dyn ObjectStore>,
    breaker: Arc<Breaker>,
}

impl BreakerStore {
    pub(super) fn new(inner: Arc<dyn ObjectStore>, breaker: Arc<Breaker>) -> BreakerStore {
        BreakerStore { inner, breaker }
    }

    /// `stream`, unless the endpoint is down; its errors watched.
    fn stream<T: Send + 'static>(
        &self,
        open: impl FnOnce() -> BoxStream<'static, Result<T>>,
    ) -> BoxStream<'static, Result<T>> {
        if let Err(e) = self.breaker.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let breaker = self.breaker.clone();
        open().inspect_err(move |e| breaker.watch(e)).boxed()
    }
}

impl fmt::Display for BreakerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Breaker({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for BreakerStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.put_opts(location, payload, opts).await)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.put_multipart_opts(location, opts).await)
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.get_opts(location, options).await)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.get_ranges(location, ranges).await)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = self.inner.clone();
        self.stream(move || inner.delete_stream(locations))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, prefix) = (self.inner.clone(), prefix.cloned());
        self.stream(move || inner.list(prefix.as_ref()))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, prefix, offset) = (self.inner.clone(), prefix.cloned(), offset.clone());
        self.stream(move || inner.list_with_offset(prefix.as_ref(), &offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.list_with_delimiter(prefix).await)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.copy_opts(from, to, options).await)
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.breaker.check()?;
        self.breaker
            .watched(self.inner.rename_opts(from, to, options).await)
    }
}
