//! `LocalWriter`: writes a staged item from a stream of chunks (an item that
//! comes from a store other than a local one).

use async_trait::async_trait;
use bytes::Bytes;

use super::Inner;
use super::errors::{io_err, other};
use crate::store::{ItemPath, StageWriter, StoreResult, check_meta_key};

pub(super) struct LocalWriter {
    file: Option<tokio::fs::File>,
    desc: String,
    name: String,
}

impl LocalWriter {
    /// Creates (or truncates) the staged item `name` of `inner`, for `dest`,
    /// to write into.
    pub(super) async fn create(
        inner: &Inner,
        name: &str,
        dest: &ItemPath,
    ) -> StoreResult<LocalWriter> {
        check_meta_key(name).map_err(|m| other(&inner.desc(), m))?;
        let path = inner
            .staged(name, dest)
            .map_err(|e| io_err(&inner.desc(), "create", name, e))?;
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io_err(&inner.desc(), "create", name, e))?;
        Ok(LocalWriter {
            file: Some(file),
            desc: inner.desc(),
            name: name.to_string(),
        })
    }
}

#[async_trait]
impl StageWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        use tokio::io::AsyncWriteExt;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| other(&self.desc, "write after finish".into()))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| io_err(&self.desc, "write", &self.name, e))
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        use tokio::io::AsyncWriteExt;
        if let Some(mut file) = self.file.take() {
            file.flush()
                .await
                .map_err(|e| io_err(&self.desc, "write", &self.name, e))?;
        }
        Ok(())
    }
}
