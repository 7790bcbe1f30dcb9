//! The built-in demo deployment: litwareinc.com, seven pools, generated data.

mod churn;
mod data;

use std::path::{Path, PathBuf};

pub use churn::{ChurnSummary, ChurnTarget, churn};

use crate::error::Error;
use crate::topology::{self, Deployment, Module};

/// The demo's `deployment.toml`.
pub const DEPLOYMENT_TOML: &str = include_str!("deployment.toml");

/// Users per pool and conference files per pool.
pub const USERS_PER_POOL: u64 = 600;
pub const CONFERENCE_FILES_PER_POOL: u64 = 10;

const COMPLETE_MARKER: &str = ".demo-complete";

/// Where the demo lives: `<data dir>/demo`.
pub fn demo_dir() -> Result<PathBuf, Error> {
    crate::dirs::data_dir()
        .map(|d| d.join("demo"))
        .ok_or_else(|| Error::Other("cannot find the user's data directory (is HOME set?)".into()))
}

/// Opens the demo deployment, creating it on first use; returns its file.
pub fn ensure() -> Result<PathBuf, Error> {
    let dir = demo_dir()?;
    let file = dir.join("deployment.toml");
    let complete = || dir.join(COMPLETE_MARKER).exists() && file.exists();
    if complete() {
        return Ok(file);
    }
    // Two first uses at once: one makes the demo, the other waits for it.
    let _lock = lock(&dir)?;
    if !complete() {
        create(&dir)?;
    }
    Ok(file)
}

/// Deletes and recreates the demo.
pub fn reset() -> Result<PathBuf, Error> {
    let dir = demo_dir()?;
    let _lock = lock(&dir)?;
    create(&dir)?;
    Ok(dir.join("deployment.toml"))
}

/// An exclusive lock on `demo.lock` beside the demo folder, held until the
/// file is dropped: makers of the demo take turns (the kernel releases the
/// lock if a maker dies).
fn lock(dir: &Path) -> Result<std::fs::File, Error> {
    let path = dir.with_extension("lock");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(&path, e.into()))?;
    Ok(file)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Generates the demo in `dir` (a half-made demo is redone from scratch).
fn create(dir: &Path) -> Result<(), Error> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file = dir.join("deployment.toml");
    write(&file, DEPLOYMENT_TOML.as_bytes())?;
    let deployment = topology::load(&file)?;
    for pool in &deployment.pools {
        generate_pool(&deployment, pool)?;
    }
    write(&dir.join(COMPLETE_MARKER), b"")?;
    Ok(())
}

fn module_dir(pool: &topology::Pool, module: Module) -> Result<PathBuf, Error> {
    let root = pool.store.local_path().ok_or_else(|| {
        Error::Other(format!(
            "pool '{}': the demo works on local stores only",
            pool.fqdn
        ))
    })?;
    Ok(root.join("data").join(module.identity()))
}

fn generate_pool(deployment: &Deployment, pool: &topology::Pool) -> Result<(), Error> {
    let name = pool.fqdn.as_str();
    let users = module_dir(pool, Module::PresenceFocus)?;
    for i in 0..USERS_PER_POOL {
        write(
            &users.join(data::user_path(name, i)),
            &data::user_document(name, i, 0, USERS_PER_POOL),
        )?;
    }
    let conf = module_dir(pool, Module::DataConf)?;
    for i in 0..CONFERENCE_FILES_PER_POOL {
        let (path, size) = data::conference_file(name, i, 0);
        write(
            &conf.join(&path),
            &data::content_bytes(name, &path, 0, size),
        )?;
    }
    if deployment.modules_of(pool).contains(&Module::CmsMaster) {
        let cms = module_dir(pool, Module::CmsMaster)?;
        for (path, body) in data::cms_documents(DEPLOYMENT_TOML) {
            write(&cms.join(path), &body)?;
        }
    }
    if let Some(root) = pool.store.local_path() {
        std::fs::create_dir_all(root.join("backup")).map_err(|e| Error::io(root, e))?;
    }
    Ok(())
}
