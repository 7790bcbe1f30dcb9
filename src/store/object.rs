//! A store over the `object_store` crate: S3-compatible buckets (`s3.rs` builds
//! the client) and, for tests, process memory.
//!
//! Objects have no rename and no durable-batch call, but every PUT (multipart ones
//! too, at completion) replaces an object atomically: readers see the old object
//! or the new one, never a torn one. So an item is written straight to its final
//! key (one request, not PUT + COPY + DELETE) and a batch commits when its
//! manifest log document is written. An item written by a batch that never
//! committed is simply not in the manifest: the next run compares it again.
//!
//! Locks: where the server honours conditional writes (`If-None-Match: *`), a lock
//! is one create-only object. Garage (and some others) accept the header and
//! overwrite anyway; a probe finds that out, and such stores use contender keys:
//! each contender writes its own key and lists the lock's folder, and holds the
//! lock only if it is the only live contender (see `try_lock_contender`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use tokio::io::AsyncWriteExt;

use super::{
    ByteStream, ChangeToken, Entry, ItemFailures, ItemPath, Listing, LockHolder, StageWriter,
    Staged, Store, StoreError, StoreLock, StoreResult, check_meta_key, check_writable,
    owner_is_gone, stream_into, system_time_ns,
};

/// How long an object-store lock lives without being renewed. A holder
/// renews every third of it; one that has not renewed for two thirds of it
/// takes its lock as lost and commits nothing more. Another process takes an
/// abandoned lock over when its holder has ended (same machine), when it
/// expired more than a lease ago by its own clock (so clocks may differ by up
/// to a lease), or when it has seen the lock unchanged for a whole lease by
/// its own monotonic clock (whatever the clocks say).
const LEASE: Duration = Duration::from_secs(60);

/// How locks are taken on this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// One create-only object (`PutMode::Create`).
    Conditional,
    /// One key per contender plus a listing: for servers that ignore conditions.
    Contender,
}

pub struct ObjectBackedStore {
    backend: Arc<dyn ObjectStore>,
    prefix: Path,
    desc: String,
    /// The endpoint of a remote store (`None` in memory).
    remote: Option<String>,
    lock_mode: tokio::sync::OnceCell<LockMode>,
    notices: Mutex<Vec<String>>,
    lease: Duration,
    /// Locks of others as this process first saw them: key -> (e-tag, when).
    observed: Mutex<HashMap<String, (String, Instant)>>,
    /// The locks this store holds, by id: set when one is lost.
    held: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
}

static NEXT_LOCK_ID: AtomicU64 = AtomicU64::new(0);

impl ObjectBackedStore {
    pub fn new(backend: Arc<dyn ObjectStore>, prefix: Path, desc: String) -> Self {
        ObjectBackedStore {
            backend,
            prefix,
            desc,
            remote: None,
            lock_mode: tokio::sync::OnceCell::new(),
            notices: Mutex::new(Vec::new()),
            lease: LEASE,
            observed: Mutex::new(HashMap::new()),
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A shorter lease than the minute of real stores (tests).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Fails once a lock this store holds was lost: another sync may have
    /// taken the pair, so nothing more may be written or committed.
    fn check_held(&self) -> StoreResult<()> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.values().any(|lost| lost.load(Ordering::SeqCst)) {
            return Err(self.other(format!(
                "the pair lock at this store was lost: it could not be renewed within {} s, so another sync may hold the pair now; this sync stopped before writing more; rerun it",
                self.lease.as_secs()
            )));
        }
        Ok(())
    }

    /// Whether this process has seen the lock at `key` with e-tag `etag`, and
    /// nothing newer, for a whole lease: its holder stopped renewing it.
    fn unchanged_for_a_lease(&self, key: &str, etag: &str) -> bool {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        match observed.get(key) {
            Some((seen, since)) if seen == etag => since.elapsed() >= self.lease,
            _ => {
                // Contender keys are new for every attempt: forget the ones
                // not looked at again for many leases, or a long-running
                // service would keep every key it ever waited on.
                let stale = self.lease * 10;
                observed.retain(|_, (_, since)| since.elapsed() < stale);
                observed.insert(key.to_string(), (etag.to_string(), Instant::now()));
                false
            }
        }
    }

    fn forget_observed(&self, key: &str) {
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Holds the lock at `key`, written with e-tag `etag`, and renews it.
    fn hold(
        &self,
        key: Path,
        owner: &str,
        etag: Option<String>,
        mode: LockMode,
    ) -> Box<dyn StoreLock> {
        self.forget_observed(key.as_ref());
        let id = NEXT_LOCK_ID.fetch_add(1, Ordering::Relaxed);
        let lost = Arc::new(AtomicBool::new(false));
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, lost.clone());
        Box::new(ObjectLock::hold(LockState {
            backend: self.backend.clone(),
            key,
            owner: owner.to_string(),
            lease: self.lease,
            etag,
            mode,
            lost,
            id,
            held: self.held.clone(),
        }))
    }

    /// Marks the store as remote (at `endpoint`): `probe` then checks the bucket
    /// and the server's conditional writes.
    pub fn remote(mut self, endpoint: String) -> Self {
        self.remote = Some(endpoint);
        self
    }

    /// Forces a lock mode instead of probing (tests use it to run the contender
    /// protocol on a store that would support the other).
    pub fn with_lock_mode(self, mode: LockMode) -> Self {
        let _ = self.lock_mode.set(mode);
        self
    }

    /// The lock mode, probed once: create a key twice with `PutMode::Create`; a
    /// server that lets the second through does not honour conditional writes.
    pub async fn lock_mode(&self) -> StoreResult<LockMode> {
        self.lock_mode
            .get_or_try_init(|| async {
                let key = self.meta_key(&format!(
                    "probe/conditional-{}",
                    super::registry::unique_suffix()
                ))?;
                let create = || {
                    self.backend.put_opts(
                        &key,
                        PutPayload::from_static(b"probe"),
                        PutOptions::from(PutMode::Create),
                    )
                };
                let first = create().await;
                let mode = match first {
                    Err(object_store::Error::NotImplemented { .. }) => LockMode::Contender,
                    Err(e) => return Err(self.backend_err("probe conditional writes", "probe", e)),
                    Ok(_) => match create().await {
                        Err(
                            object_store::Error::AlreadyExists { .. }
                            | object_store::Error::Precondition { .. },
                        ) => LockMode::Conditional,
                        Ok(_) | Err(object_store::Error::NotImplemented { .. }) => {
                            LockMode::Contender
                        }
                        Err(e) => {
                            let _ = self.backend.delete(&key).await;
                            return Err(self.backend_err("probe conditional writes", "probe", e));
                        }
                    },
                };
                let _ = self.backend.delete(&key).await;
                if mode == LockMode::Contender {
                    self.notices
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!(
                            "{}: the server does not honour conditional writes (If-None-Match); pair locks use one key per contender instead (docs/s3.md)",
                            self.desc
                        ));
                }
                Ok(mode)
            })
            .await
            .copied()
    }

    fn key(&self, rel: &str) -> StoreResult<Path> {
        let full = if self.prefix.as_ref().is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix.as_ref())
        };
        Path::parse(&full).map_err(|e| self.other(format!("invalid key '{rel}': {e}")))
    }

    /// The object key of an item: each segment percent-encoded by `object_store`
    /// (which also encodes `%`), so any byte string maps to one key and back.
    fn item_key(&self, path: &ItemPath) -> StoreResult<Path> {
        let mut key = self.prefix.clone();
        for segment in path.as_bytes().split(|b| *b == b'/') {
            key = key.join(segment);
        }
        Ok(key)
    }

    fn meta_key(&self, key: &str) -> StoreResult<Path> {
        check_meta_key(key).map_err(|m| self.other(m))?;
        self.key(&format!(".poolsync/meta/{key}"))
    }

    fn staging_key(&self, name: &str) -> StoreResult<Path> {
        check_meta_key(name).map_err(|m| self.other(m))?;
        self.key(&format!(".poolsync/staging/{name}"))
    }

    fn other(&self, message: String) -> StoreError {
        StoreError::Other {
            store: self.desc.clone(),
            message,
        }
    }

    fn backend_err(&self, action: &str, key: &str, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                store: self.desc.clone(),
                path: key.to_string(),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => self.access_denied(action, key, &e),
            e if matches!(http_status(&e), Some(401 | 403)) => self.access_denied(action, key, &e),
            e if is_unreachable(&e) => self.other(format!(
                "{action} '{key}': cannot reach the endpoint (is the server running, and the endpoint in deployment.toml right?): {}",
                one_line(&e)
            )),
            e => self.other(format!("{action} '{key}': {}", one_line(&e))),
        }
    }

    fn access_denied(&self, action: &str, key: &str, e: &object_store::Error) -> StoreError {
        self.other(format!(
            "{action} '{key}': access denied: check the access key for this endpoint (s3_credentials file or AWS_ACCESS_KEY_ID) and its rights on the bucket (server said: {})",
            server_said(e)
        ))
    }

    /// Checks bucket and credentials with one listing request.
    async fn check_bucket(&self) -> StoreResult<()> {
        let base = self.key(".poolsync")?;
        match self.backend.list_with_delimiter(Some(&base)).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(e, object_store::Error::NotFound { .. })
                    || http_status(&e) == Some(404) =>
            {
                Err(self.other(
                "the bucket does not exist: create it (e.g. `garage bucket create NAME`, `aws s3 mb`) or fix the store URL in deployment.toml".into(),
                ))
            }
            Err(e) => Err(self.backend_err("list", ".poolsync", e)),
        }
    }

    /// Takes folder markers out of a listing. An S3 console's "create folder"
    /// writes an empty object whose key ends in `/`; the listing shows it
    /// without the `/`, as an empty item named like the folder, which then
    /// cannot be read under that name and would fail at every sync (holding
    /// back every deletion). `empty` holds the listing index and key of each
    /// empty object listed; one that a HEAD under its listed key does not find
    /// is such a marker. Only empty objects cost a request.
    async fn drop_folder_markers(&self, listing: &mut Listing, empty: Vec<(usize, Path)>) {
        let found: Vec<(usize, bool)> =
            futures::stream::iter(empty.into_iter().map(|(at, key)| async move {
                let marker = matches!(
                    self.backend.head(&key).await,
                    Err(object_store::Error::NotFound { .. })
                );
                (at, marker)
            }))
            .buffer_unordered(8)
            .collect()
            .await;
        let mut markers: Vec<usize> = found
            .into_iter()
            .filter_map(|(at, marker)| marker.then_some(at))
            .collect();
        if markers.is_empty() {
            return;
        }
        markers.sort_unstable();
        let mut at = 0;
        listing.entries.retain(|_| {
            let keep = markers.binary_search(&at).is_err();
            at += 1;
            keep
        });
    }

    /// Writes an item's content straight to its final key.
    async fn write_in_place(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        self.check_held()?;
        check_writable(dest).map_err(|m| self.other(m))?;
        let key = self.item_key(dest)?;
        let writer = Box::new(ObjectWriter {
            writer: Some(object_store::buffered::BufWriter::new(
                self.backend.clone(),
                key,
            )),
            desc: self.desc.clone(),
            name: dest.to_string(),
        });
        stream_into(writer, source, path, name, true).await
    }

    /// The contender-key lock: write our own key under the lock's folder, list
    /// the folder, and hold the lock only if no other live contender is there.
    /// Two contenders that both see each other both withdraw and retry later
    /// (after a random pause). It is safe because a listing that starts after a
    /// write has completed shows that write (read-after-write consistency, which
    /// Garage's default `consistent` mode and Amazon S3 give): of two contenders,
    /// the one whose listing starts last sees the other.
    async fn try_lock_contender(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        let folder = self.meta_key(&format!("locks/{name}.d"))?;
        let mine = folder.clone().join(super::registry::unique_suffix());
        self.check_held()?;
        self.backend
            .put(&mine, PutPayload::from(lease_body(owner, self.lease)))
            .await
            .map_err(|e| self.backend_err("lock", name, e))?;
        let contenders: Vec<_> = match self.backend.list(Some(&folder)).try_collect().await {
            Ok(c) => c,
            Err(e) => {
                let _ = self.backend.delete(&mine).await;
                return Err(self.backend_err("lock", name, e));
            }
        };
        let now = chrono_now_ms();
        let mut rival = None;
        for c in &contenders {
            if c.location == mine {
                continue;
            }
            let renewed = c.last_modified.timestamp_millis();
            let unchanged = c
                .e_tag
                .as_deref()
                .is_some_and(|tag| self.unchanged_for_a_lease(c.location.as_ref(), tag));
            if renewed + 2 * (self.lease.as_millis() as i64) < now || unchanged {
                // Not renewed for a lease (by the server's clock, allowing a
                // lease of difference from ours, or as seen by us): gone.
                let _ = self.backend.delete(&c.location).await;
                self.forget_observed(c.location.as_ref());
                continue;
            }
            let holder = match self.backend.get(&c.location).await {
                Ok(r) => r.bytes().await.ok().map(|b| lease_holder(&b)),
                Err(object_store::Error::NotFound { .. }) => continue, // withdrew
                Err(_) => None,
            };
            if holder.as_deref().is_some_and(owner_is_gone) {
                // A process of this machine that no longer runs (killed): its
                // key will never be renewed; do not wait for the lease.
                let _ = self.backend.delete(&c.location).await;
                continue;
            }
            rival = Some(holder);
        }
        if let Some(holder) = rival {
            let _ = self.backend.delete(&mine).await;
            // A random pause, so two contenders do not collide in step forever.
            let pause = 20 + u64::from(rand_byte()) * 2;
            tokio::time::sleep(Duration::from_millis(pause)).await;
            return Ok(Err(LockHolder(
                holder.unwrap_or_else(|| "another process".into()),
            )));
        }
        Ok(Ok(self.hold(mine, owner, None, LockMode::Contender)))
    }
}

/// The HTTP status an error reports, if any (object_store keeps it only in the
/// message of most request errors).
fn http_status(e: &object_store::Error) -> Option<u16> {
    let text = e.to_string();
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// A connection that could not be made or broke, after the retries.
fn is_unreachable(e: &object_store::Error) -> bool {
    let text = e.to_string();
    text.contains("error sending request") || text.contains("onnection refused")
}

/// What the server said: the status and the S3 error code, without the body.
fn server_said(e: &object_store::Error) -> String {
    let text = e.to_string();
    let status = text.find("status code: ").map(|at| {
        text[at + 13..]
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    });
    let element = |name: &str| {
        let open = format!("<{name}>");
        text.find(&open).and_then(|at| {
            text[at + open.len()..]
                .split('<')
                .next()
                .map(str::to_string)
        })
    };
    let code = match (element("Code"), element("Message")) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m),
    };
    match (status, code) {
        (Some(s), Some(c)) => format!("{s}, {c}"),
        (Some(s), None) => s,
        _ => one_line(e),
    }
}

/// The first line of an error, without the server's XML body.
fn one_line(e: &object_store::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("").trim();
    match line.find("<?xml") {
        Some(i) => line[..i].trim_end().to_string(),
        None => line.to_string(),
    }
}

fn chrono_now_ms() -> i64 {
    system_time_ns(SystemTime::now()) / 1_000_000
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(system_time_ns(SystemTime::now()) as u64);
    h.finish() as u8
}

struct ObjectWriter {
    writer: Option<object_store::buffered::BufWriter>,
    desc: String,
    name: String,
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
        if let Err(e) = w.shutdown().await {
            let _ = w.abort().await;
            return Err(self.failed(e));
        }
        Ok(())
    }
}

impl ObjectWriter {
    fn failed(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            store: self.desc.clone(),
            action: "upload",
            path: self.name.clone(),
            source,
        }
    }
}

/// What a held lock's renewals need.
struct LockState {
    backend: Arc<dyn ObjectStore>,
    key: Path,
    owner: String,
    lease: Duration,
    /// The e-tag of our last write of the lock (conditional mode).
    etag: Option<String>,
    mode: LockMode,
    lost: Arc<AtomicBool>,
    id: u64,
    held: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
}

impl LockState {
    /// Writes the lease again. `Ok(false)`: the lock is not ours any more.
    async fn renew(&mut self) -> object_store::Result<bool> {
        let body = PutPayload::from(lease_body(&self.owner, self.lease));
        let result = match (self.mode, &self.etag) {
            // Only over our own last write: if another process took the lock
            // (after we failed to renew in time), it stays theirs.
            (LockMode::Conditional, Some(etag)) => {
                let version = UpdateVersion {
                    e_tag: Some(etag.clone()),
                    version: None,
                };
                self.backend
                    .put_opts(&self.key, body, PutOptions::from(PutMode::Update(version)))
                    .await
            }
            // A contender key is ours alone, unless another process judged
            // it dead and deleted it: then the lock may be someone else's.
            (LockMode::Contender, _) => match self.backend.head(&self.key).await {
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e),
                Ok(_) => self.backend.put(&self.key, body).await,
            },
            (LockMode::Conditional, None) => self.backend.put(&self.key, body).await,
        };
        match result {
            Ok(put) => {
                self.etag = put.e_tag;
                Ok(true)
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }
}

/// A held object lock: renewed every third of a lease; lost (and left alone)
/// when a renewal finds it taken or none succeeds for two thirds of a lease.
struct ObjectLock {
    heartbeat: tokio::task::JoinHandle<()>,
    backend: Arc<dyn ObjectStore>,
    key: Path,
    lost: Arc<AtomicBool>,
    id: u64,
    held: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>,
    released: bool,
}

impl ObjectLock {
    fn hold(mut state: LockState) -> ObjectLock {
        let (backend, key, lost, id, held) = (
            state.backend.clone(),
            state.key.clone(),
            state.lost.clone(),
            state.id,
            state.held.clone(),
        );
        let heartbeat = tokio::spawn(async move {
            let mut renewed = Instant::now();
            let mut pause = state.lease / 3;
            loop {
                tokio::time::sleep(pause).await;
                let started = Instant::now();
                match tokio::time::timeout(state.lease / 6, state.renew()).await {
                    Ok(Ok(true)) => {
                        renewed = started;
                        pause = state.lease / 3;
                    }
                    Ok(Ok(false)) => {
                        state.mark_lost();
                        return;
                    }
                    // Failed or slow: try again soon, but not past the point
                    // where another process could take the lock over.
                    Ok(Err(_)) | Err(_) => {
                        if renewed.elapsed() >= state.lease * 2 / 3 {
                            state.mark_lost();
                            return;
                        }
                        pause = state.lease / 12;
                    }
                }
            }
        });
        ObjectLock {
            heartbeat,
            backend,
            key,
            lost,
            id,
            held,
            released: false,
        }
    }

    fn finish(&mut self) -> Option<(Arc<dyn ObjectStore>, Path)> {
        self.heartbeat.abort();
        self.released = true;
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        // A lost lock may be someone else's by now: leave it to them.
        (!self.lost.load(Ordering::SeqCst)).then(|| (self.backend.clone(), self.key.clone()))
    }
}

#[async_trait]
impl StoreLock for ObjectLock {
    async fn release(mut self: Box<Self>) {
        if let Some((backend, key)) = self.finish() {
            let _ = backend.delete(&key).await;
        }
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Not released (a panic, a cancelled task): delete in the background; if
        // the process ends first, the lease runs out.
        if let Some((backend, key)) = self.finish()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = backend.delete(&key).await;
            });
        }
    }
}

fn lease_body(owner: &str, lease: Duration) -> Bytes {
    let expires = system_time_ns(SystemTime::now() + lease);
    Bytes::from(format!("{expires}\n{owner}"))
}

/// Who a lease body names.
fn lease_holder(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split_once('\n')
        .map_or(text.as_ref(), |(_, h)| h)
        .to_string()
}

#[async_trait]
impl Store for ObjectBackedStore {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    async fn probe(&self) -> StoreResult<()> {
        if self.remote.is_some() {
            self.check_bucket().await?;
            self.lock_mode().await?;
        }
        Ok(())
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        let base = self.item_key(prefix)?;
        let mut listing = Listing::default();
        let mut empty = Vec::new();
        let mut stream = self.backend.list(Some(&base));
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| self.backend_err("list", &prefix.to_string(), e))?;
            listing.exists = true;
            let Some(parts) = meta.location.prefix_match(&base) else {
                continue;
            };
            let mut rel: Vec<u8> = Vec::new();
            for part in parts {
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend(percent_encoding::percent_decode_str(part.as_ref()));
            }
            match ItemPath::parse(&rel) {
                Ok(path) => {
                    if meta.size == 0 {
                        empty.push((listing.entries.len(), meta.location.clone()));
                    }
                    listing.entries.push(Entry {
                        path,
                        size: meta.size,
                        mtime_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                        token: meta.e_tag.map_or(ChangeToken::None, ChangeToken::ETag),
                    });
                }
                Err(m) => listing.warnings.push(format!("skipped an object: {m}")),
            }
        }
        self.drop_folder_markers(&mut listing, empty).await;
        Ok(listing)
    }

    async fn read(&self, path: &ItemPath) -> StoreResult<ByteStream> {
        let key = self.item_key(path)?;
        let result = self
            .backend
            .get(&key)
            .await
            .map_err(|e| self.backend_err("read", &path.to_string(), e))?;
        let desc = self.desc.clone();
        let name = path.to_string();
        Ok(Box::pin(result.into_stream().map_err(move |e| {
            StoreError::Other {
                store: desc.clone(),
                message: format!("read '{name}': {e}"),
            }
        })))
    }

    async fn stage_writer(&self, name: &str) -> StoreResult<Box<dyn StageWriter>> {
        let key = self.staging_key(name)?;
        Ok(Box::new(ObjectWriter {
            writer: Some(object_store::buffered::BufWriter::new(
                self.backend.clone(),
                key,
            )),
            desc: self.desc.clone(),
            name: name.to_string(),
        }))
    }

    async fn stage_from(
        &self,
        source: &dyn Store,
        path: &ItemPath,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<Staged> {
        self.write_in_place(source, path, name, dest).await
    }

    fn writes_in_place(&self) -> bool {
        true
    }

    async fn make_durable(&self) -> StoreResult<()> {
        Ok(()) // a completed PUT is durable
    }

    async fn commit(
        &self,
        moves: &[(String, ItemPath)],
        deletes: &[ItemPath],
    ) -> StoreResult<ItemFailures> {
        self.check_held()?;
        for path in deletes.iter().chain(moves.iter().map(|(_, dest)| dest)) {
            check_writable(path).map_err(|m| self.other(m))?;
        }
        for path in deletes {
            let key = self.item_key(path)?;
            match self.backend.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_err("delete", &path.to_string(), e)),
            }
        }
        for (name, dest) in moves {
            let from = self.staging_key(name)?;
            let to = self.item_key(dest)?;
            match self.backend.copy(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.backend_err("copy into place", &dest.to_string(), e)),
            }
            let _ = self.backend.delete(&from).await;
        }
        Ok(ItemFailures::new())
    }

    async fn discard_staged(&self, names: &[String]) -> StoreResult<()> {
        for name in names {
            let key = self.staging_key(name)?;
            match self.backend.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_err("delete", name, e)),
            }
        }
        Ok(())
    }

    async fn clear_staging(&self, prefix: &str) -> StoreResult<()> {
        let base = self.key(".poolsync/staging")?;
        let metas: Vec<_> = self
            .backend
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.backend_err("list", "staging", e))?;
        for meta in metas {
            if meta
                .location
                .filename()
                .is_some_and(|f| f.starts_with(prefix))
            {
                let _ = self.backend.delete(&meta.location).await;
            }
        }
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let path = self.meta_key(key)?;
        match self.backend.get(&path).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.backend_err("read", key, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend_err("read", key, e)),
        }
    }

    async fn meta_put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        self.check_held()?;
        let path = self.meta_key(key)?;
        self.backend
            .put(&path, PutPayload::from(value))
            .await
            .map(|_| ())
            .map_err(|e| self.backend_err("write", key, e))
    }

    /// Create-only where the server honours it (the manifest log of a batch is
    /// written this way: one conditional write commits the batch); elsewhere a
    /// plain write, and the pair lock is what keeps writers apart.
    async fn meta_create(&self, key: &str, value: Bytes) -> StoreResult<bool> {
        self.check_held()?;
        let path = self.meta_key(key)?;
        let mode = match self.lock_mode().await? {
            LockMode::Conditional => PutMode::Create,
            LockMode::Contender => PutMode::Overwrite,
        };
        match self
            .backend
            .put_opts(&path, PutPayload::from(value), PutOptions::from(mode))
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.backend_err("write", key, e)),
        }
    }

    async fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let base = self.meta_key(prefix)?;
        let metas: Vec<_> = self
            .backend
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.backend_err("list", prefix, e))?;
        let mut keys: Vec<String> = metas
            .iter()
            .filter_map(|m| m.location.filename().map(|f| format!("{prefix}/{f}")))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        let path = self.meta_key(key)?;
        match self.backend.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend_err("delete", key, e)),
        }
    }

    async fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        if self.lock_mode().await? == LockMode::Contender {
            return self.try_lock_contender(name, owner).await;
        }
        self.check_held()?;
        let key = self.meta_key(&format!("locks/{name}"))?;
        let body = || PutPayload::from(lease_body(owner, self.lease));
        let held = |why: &str| Ok(Err(LockHolder(format!("another process ({why})"))));
        match self
            .backend
            .put_opts(&key, body(), PutOptions::from(PutMode::Create))
            .await
        {
            Ok(put) => return Ok(Ok(self.hold(key, owner, put.e_tag, LockMode::Conditional))),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {}
            Err(e) => return Err(self.backend_err("lock", name, e)),
        }
        let found = match self.backend.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return held("the lock changed hands"),
            Err(e) => return Err(self.backend_err("lock", name, e)),
        };
        let meta = found.meta.clone();
        // A lock that cannot be read, or does not parse, is held by someone:
        // only an expiry actually read, or a lock seen unchanged for a whole
        // lease, lets us take it over.
        let Ok(bytes) = found.bytes().await else {
            return held("its lock could not be read");
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = text
            .split_once('\n')
            .and_then(|(expires, holder)| Some((expires.parse::<i64>().ok()?, holder)));
        let stale_by_body = parsed.is_some_and(|(expires, holder)| {
            owner_is_gone(holder)
                || expires.saturating_add(self.lease.as_nanos() as i64)
                    < system_time_ns(SystemTime::now())
        });
        let stale = stale_by_body
            || meta
                .e_tag
                .as_deref()
                .is_some_and(|tag| self.unchanged_for_a_lease(key.as_ref(), tag));
        let holder = parsed.map_or(
            "another process (an unreadable lock)".to_string(),
            |(_, h)| h.to_string(),
        );
        if !stale {
            return Ok(Err(LockHolder(holder)));
        }
        // Take it over only if it is still what we read: of two processes
        // that find it abandoned at once, one wins and the other waits.
        let Some(etag) = meta.e_tag else {
            return Ok(Err(LockHolder(holder)));
        };
        let version = UpdateVersion {
            e_tag: Some(etag),
            version: meta.version,
        };
        match self
            .backend
            .put_opts(&key, body(), PutOptions::from(PutMode::Update(version)))
            .await
        {
            Ok(put) => Ok(Ok(self.hold(key, owner, put.e_tag, LockMode::Conditional))),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => held("the lock changed hands"),
            Err(e) => Err(self.backend_err("lock", name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// One process's view of a shared bucket: every request takes 5 ms, so
    /// two processes' requests interleave.
    fn process(backend: &Arc<dyn ObjectStore>, lease: Duration) -> ObjectBackedStore {
        ObjectBackedStore::new(backend.clone(), Path::from("pool"), "memory://t".into())
            .with_lock_mode(LockMode::Conditional)
            .with_lease(lease)
    }

    fn bucket() -> Arc<dyn ObjectStore> {
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

    const KEY: &str = "pool/.poolsync/meta/locks/pair";

    async fn seed(backend: &Arc<dyn ObjectStore>, body: &str) {
        backend
            .put(&Path::from(KEY), PutPayload::from(body.to_string()))
            .await
            .unwrap();
    }

    #[test]
    fn two_processes_never_both_take_an_abandoned_lock() {
        runtime().block_on(async {
            for round in 0..10 {
                let backend = bucket();
                // Expired long ago, by a process of another machine.
                seed(
                    &backend,
                    "1000\npoolsync pid 7 on elsewhere [x/y] since then",
                )
                .await;
                let (a, b) = (process(&backend, LEASE), process(&backend, LEASE));
                // B starts 0-9 ms after A: a different interleaving of their
                // requests each round.
                let b_later = async {
                    tokio::time::sleep(Duration::from_millis(round)).await;
                    b.try_lock("pair", "B").await
                };
                let (ra, rb) = tokio::join!(a.try_lock("pair", "A"), b_later);
                let winners = [ra.unwrap(), rb.unwrap()]
                    .into_iter()
                    .filter_map(|r| r.ok())
                    .collect::<Vec<_>>();
                assert_eq!(winners.len(), 1, "round {round}: both took the lock");
                for lock in winners {
                    lock.release().await;
                }
            }
        });
    }

    #[test]
    fn an_unreadable_lock_is_waited_out_not_taken() {
        runtime().block_on(async {
            let backend = bucket();
            seed(&backend, "garbage").await;
            let lease = Duration::from_millis(300);
            let store = process(&backend, lease);
            let first = store.try_lock("pair", "A").await.unwrap();
            assert!(
                first.is_err(),
                "a lock that does not parse was taken at once"
            );
            // Seen unchanged for a whole lease: its holder is gone.
            tokio::time::sleep(lease + Duration::from_millis(50)).await;
            let lock = store.try_lock("pair", "A").await.unwrap();
            assert!(lock.is_ok(), "an abandoned lock was never taken");
        });
    }

    #[test]
    fn a_lock_taken_by_another_process_is_lost_and_left_to_it() {
        runtime().block_on(async {
            let backend = bucket();
            let lease = Duration::from_millis(300);
            let store = process(&backend, lease);
            let lock = store.try_lock("pair", "A").await.unwrap().ok().unwrap();
            assert!(store.meta_create("x/1", Bytes::from("1")).await.unwrap());
            // Another process took the lock over (say this one was stalled).
            seed(&backend, "99999999999999999999\nB").await;
            tokio::time::sleep(lease / 3 + Duration::from_millis(100)).await;
            let err = store
                .meta_create("x/2", Bytes::from("2"))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("pair lock at this store was lost"),
                "{err}"
            );
            // Releasing it must not delete the other process's lock.
            lock.release().await;
            let body = backend
                .get(&Path::from(KEY))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&body[..], b"99999999999999999999\nB");
            // A new lock of this store, once taken, is not affected.
            backend.delete(&Path::from(KEY)).await.unwrap();
            let again = store.try_lock("pair", "A").await.unwrap().ok().unwrap();
            assert!(store.meta_create("x/3", Bytes::from("3")).await.unwrap());
            again.release().await;
        });
    }

    #[test]
    fn keys_seen_long_ago_are_forgotten() {
        let store = process(&bucket(), Duration::from_millis(10));
        assert!(!store.unchanged_for_a_lease("locks/x.d/1", "e1"));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!store.unchanged_for_a_lease("locks/x.d/2", "e2"));
        let observed = store.observed.lock().unwrap();
        assert_eq!(observed.keys().collect::<Vec<_>>(), vec!["locks/x.d/2"]);
    }

    #[test]
    fn a_held_lock_is_renewed_and_not_taken_over() {
        runtime().block_on(async {
            let backend = bucket();
            let lease = Duration::from_millis(300);
            let (a, b) = (process(&backend, lease), process(&backend, lease));
            let lock = a.try_lock("pair", "A").await.unwrap().ok().unwrap();
            // Two leases later, B still finds it held: A kept renewing it.
            let until = Instant::now() + lease * 2;
            while Instant::now() < until {
                assert!(b.try_lock("pair", "B").await.unwrap().is_err());
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            assert!(a.meta_create("x/1", Bytes::from("1")).await.unwrap());
            lock.release().await;
            assert!(b.try_lock("pair", "B").await.unwrap().is_ok());
        });
    }
}
