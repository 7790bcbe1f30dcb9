//! A store over the `object_store` crate (in-memory today; S3-compatible buckets
//! use the same code).
//!
//! Objects have no rename and no durable-batch call: a staged object is copied to
//! its final key (each PUT and COPY is atomic, so no torn item is ever visible under
//! its final name) and the staged copy deleted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

use super::{
    ByteStream, ChangeToken, Entry, ItemPath, Listing, LockHolder, StageWriter, Store, StoreError,
    StoreLock, StoreResult, check_meta_key, check_writable, system_time_ns,
};

/// How long an object-store lock lives without being renewed.
const LEASE: Duration = Duration::from_secs(60);

pub struct ObjectBackedStore {
    backend: Arc<dyn ObjectStore>,
    prefix: Path,
    desc: String,
}

impl ObjectBackedStore {
    pub fn new(backend: Arc<dyn ObjectStore>, prefix: Path, desc: String) -> Self {
        ObjectBackedStore {
            backend,
            prefix,
            desc,
        }
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
            e => self.other(format!("{action} '{key}': {e}")),
        }
    }
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
        w.write_all(&chunk).await.map_err(|e| StoreError::Io {
            store: self.desc.clone(),
            action: "upload",
            path: self.name.clone(),
            source: e,
        })
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        if let Some(mut w) = self.writer.take() {
            w.shutdown().await.map_err(|e| StoreError::Io {
                store: self.desc.clone(),
                action: "upload",
                path: self.name.clone(),
                source: e,
            })?;
        }
        Ok(())
    }
}

struct ObjectLock {
    heartbeat: tokio::task::JoinHandle<()>,
    backend: Arc<dyn ObjectStore>,
    key: Path,
}

impl StoreLock for ObjectLock {}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        let backend = self.backend.clone();
        let key = self.key.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = backend.delete(&key).await;
            });
        }
    }
}

fn lease_body(owner: &str) -> Bytes {
    let expires = system_time_ns(SystemTime::now() + LEASE);
    Bytes::from(format!("{expires}\n{owner}"))
}

#[async_trait]
impl Store for ObjectBackedStore {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    async fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        let base = self.item_key(prefix)?;
        let mut listing = Listing::default();
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
                Ok(path) => listing.entries.push(Entry {
                    path,
                    size: meta.size,
                    mtime_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    token: meta.e_tag.map_or(ChangeToken::None, ChangeToken::ETag),
                }),
                Err(m) => listing.warnings.push(format!("skipped an object: {m}")),
            }
        }
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

    async fn make_durable(&self) -> StoreResult<()> {
        Ok(()) // a completed PUT is durable
    }

    async fn commit(&self, moves: &[(String, ItemPath)], deletes: &[ItemPath]) -> StoreResult<()> {
        for (name, dest) in moves {
            check_writable(dest).map_err(|m| self.other(m))?;
            let from = self.staging_key(name)?;
            let to = self.item_key(dest)?;
            match self.backend.copy(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.backend_err("copy into place", &dest.to_string(), e)),
            }
            let _ = self.backend.delete(&from).await;
        }
        for path in deletes {
            check_writable(path).map_err(|m| self.other(m))?;
            let key = self.item_key(path)?;
            match self.backend.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_err("delete", &path.to_string(), e)),
            }
        }
        Ok(())
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
        let path = self.meta_key(key)?;
        self.backend
            .put(&path, PutPayload::from(value))
            .await
            .map(|_| ())
            .map_err(|e| self.backend_err("write", key, e))
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
        let key = self.meta_key(&format!("locks/{name}"))?;
        for _ in 0..2 {
            let opts = PutOptions::from(PutMode::Create);
            match self
                .backend
                .put_opts(&key, PutPayload::from(lease_body(owner)), opts)
                .await
            {
                Ok(_) => {
                    let backend = self.backend.clone();
                    let k = key.clone();
                    let owner = owner.to_string();
                    let heartbeat = tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(LEASE / 3).await;
                            let _ = backend.put(&k, PutPayload::from(lease_body(&owner))).await;
                        }
                    });
                    return Ok(Ok(Box::new(ObjectLock {
                        heartbeat,
                        backend: self.backend.clone(),
                        key,
                    })));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let body = match self.backend.get(&key).await {
                        Ok(r) => r.bytes().await.unwrap_or_default(),
                        Err(_) => continue,
                    };
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let (expires, holder) = text.split_once('\n').unwrap_or(("0", &text));
                    let expires: i64 = expires.parse().unwrap_or(0);
                    if expires < system_time_ns(SystemTime::now()) {
                        // The holder stopped renewing: it is gone. Take over.
                        let _ = self.backend.delete(&key).await;
                        continue;
                    }
                    return Ok(Err(LockHolder(holder.to_string())));
                }
                Err(e) => return Err(self.backend_err("lock", name, e)),
            }
        }
        Ok(Err(LockHolder(
            "another process (lock changed hands)".into(),
        )))
    }
}
