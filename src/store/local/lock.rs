//! Named locks, one file each below `.poolsync/locks/`, held with `flock`:
//! the kernel releases it when the holder dies. The file names its holder.

use std::fs::{self, File};
use std::io::{Read, Write};

use super::Inner;
use super::errors::{io_err, other};
use crate::store::{LockHolder, StoreLock, StoreResult, check_meta_key};

struct LocalLock {
    _file: File,
}

/// The kernel releases the `flock` when the file closes.
impl StoreLock for LocalLock {}

impl Inner {
    /// Takes the lock `name` for `owner`, or says who holds it.
    pub(super) fn try_lock(
        &self,
        name: &str,
        owner: &str,
    ) -> StoreResult<Result<Box<dyn StoreLock>, LockHolder>> {
        let desc = self.desc();
        check_meta_key(name).map_err(|m| other(&desc, m))?;
        let path = self.locks.join(format!("{name}.lock"));
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&desc, "open lock", &path.display().to_string(), e))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .map_err(|e| io_err(&desc, "write lock", "", e))?;
                file.write_all(owner.as_bytes())
                    .map_err(|e| io_err(&desc, "write lock", "", e))?;
                Ok(Ok(Box::new(LocalLock { _file: file }) as Box<dyn StoreLock>))
            }
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Ok(Err(LockHolder(holder)))
            }
            Err(fs::TryLockError::Error(e)) => {
                Err(io_err(&desc, "lock", &path.display().to_string(), e))
            }
        }
    }
}
