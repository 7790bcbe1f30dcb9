//! Reading an item of the local store: as a stream of chunks read on the
//! blocking threads, or whole, to hash it.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;

use super::errors::io_err;
use super::{Inner, blocking};
use crate::store::{ByteStream, Hash, ItemPath, StoreResult};

/// Bytes read at a time, and the size of the copy buffer.
pub(super) const CHUNK: usize = 256 * 1024;

/// The content of `path`, read `CHUNK` bytes at a time.
pub(super) async fn read_stream(inner: Arc<Inner>, path: &ItemPath) -> StoreResult<ByteStream> {
    let p = path.clone();
    let desc = inner.desc();
    let file = blocking(&desc, move || {
        inner
            .open_beneath(&p)
            .map_err(|e| io_err(&inner.desc(), "open", &p.to_string(), e))
    })
    .await?;
    let name = path.to_string();
    let stream = futures::stream::try_unfold(Some(file), move |file| {
        let desc = desc.clone();
        let name = name.clone();
        async move {
            let Some(mut file) = file else {
                return Ok(None);
            };
            let d2 = desc.clone();
            let (file, chunk) = blocking(&desc, move || {
                let mut buf = vec![0u8; CHUNK];
                let n = file
                    .read(&mut buf)
                    .map_err(|e| io_err(&d2, "read", &name, e))?;
                buf.truncate(n);
                Ok((file, buf))
            })
            .await?;
            if chunk.is_empty() {
                Ok(None)
            } else {
                Ok(Some((Bytes::from(chunk), Some(file))))
            }
        }
    });
    Ok(Box::pin(stream))
}

impl Inner {
    /// The size and hash of the item `path`.
    pub(super) fn hash(&self, path: &ItemPath) -> StoreResult<(u64, Hash)> {
        let mut file = self
            .open_beneath(path)
            .map_err(|e| io_err(&self.desc(), "open", &path.to_string(), e))?;
        let mut hasher = blake3::Hasher::new();
        let size = io::copy(&mut file, &mut hasher)
            .map_err(|e| io_err(&self.desc(), "read", &path.to_string(), e))?;
        Ok((size, *hasher.finalize().as_bytes()))
    }
}
