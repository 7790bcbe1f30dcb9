//! Metadata documents, one file each below `.poolsync/meta/`; a document is
//! written to staging first and renamed over the old one.

use std::fs;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;

use super::Inner;
use super::errors::{io_err, other};
use crate::store::{StoreResult, check_meta_key};

impl Inner {
    /// The file of the metadata document `key`.
    pub(super) fn meta_path(&self, key: &str) -> StoreResult<PathBuf> {
        check_meta_key(key).map_err(|m| other(&self.desc(), m))?;
        Ok(self.meta.join(key))
    }

    /// The document `key`; `None` if there is none.
    pub(super) async fn meta_get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let path = self.meta_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&self.desc(), "read", key, e)),
        }
    }

    /// Writes the document `key` whole: readers see the old one or the new one.
    pub(super) fn meta_put(&self, key: &str, value: &Bytes) -> StoreResult<()> {
        let path = self.meta_path(key)?;
        let desc = self.desc();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(&desc, "create", key, e))?;
        }
        let tmp = self
            .stagings
            .main()
            .path_to_write(&format!(
                "meta-{}-{}",
                std::process::id(),
                crate::store::registry::unique_suffix()
            ))
            .map_err(|e| io_err(&desc, "write", key, e))?;
        // A write that fails (a full disk) leaves no half-written temporary.
        let written = fs::write(&tmp, value).and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&desc, "write", key, e));
        }
        Ok(())
    }

    /// The document's inode, change time and size (`none` when there is
    /// none): a rename over it, as every write is, changes the first two.
    pub(super) fn meta_stamp(&self, key: &str) -> StoreResult<String> {
        use std::os::unix::fs::MetadataExt;
        let path = self.meta_path(key)?;
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(format!(
                "{}:{}.{}:{}",
                m.ino(),
                m.ctime(),
                m.ctime_nsec(),
                m.size()
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok("none".to_string()),
            Err(e) => Err(io_err(&self.desc(), "stat", key, e)),
        }
    }

    /// The keys of the documents in the folder `prefix`, sorted.
    pub(super) fn meta_list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let dir = self.meta_path(prefix)?;
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.desc(), "list", prefix, e)),
        };
        let mut keys: Vec<String> = read
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(|n| format!("{prefix}/{n}")))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Deletes the document `key`; one already gone is no error.
    pub(super) async fn meta_delete(&self, key: &str) -> StoreResult<()> {
        let path = self.meta_path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.desc(), "delete", key, e)),
        }
    }
}
