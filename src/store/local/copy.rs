//! Copies from one local store into another's staging, hashing on the way:
//! on a pool of copy threads, one reused buffer per thread, a small item read
//! only once, and nothing written for an item whose content is unchanged.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use rayon::prelude::*;

use super::errors::{io_err, other};
use super::read::CHUNK;
use super::{Inner, blocking};
use crate::store::{Hash, ItemPath, StageRequest, Staged, StoreError, StoreResult, check_meta_key};

thread_local! {
    /// One copy buffer per I/O thread: most items are a few KiB, and zeroing a
    /// fresh 256 KiB buffer for each was a seventh of an initial sync's CPU.
    static COPY_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; CHUNK]);
}

/// Gives `dst` the permission bits (never set-id bits) and times of `src`, so a
/// replica restores as the item was.
fn copy_attributes(src: &File, dst: &File) -> io::Result<()> {
    let md = src.metadata()?;
    use std::os::unix::fs::PermissionsExt;
    dst.set_permissions(fs::Permissions::from_mode(md.mode() & 0o777))?;
    dst.set_times(
        fs::FileTimes::new()
            .set_accessed(md.accessed()?)
            .set_modified(md.modified()?),
    )
}

/// What [`read_small`] found.
enum SmallRead {
    /// The whole item, `size` bytes, is in the buffer; its hash.
    Whole { size: usize, hash: Hash },
    /// The item does not fit in the buffer.
    TooLarge,
}

/// Reads `src` whole into `buf` and hashes it, if it fits.
fn read_small(src: &mut File, buf: &mut [u8]) -> io::Result<SmallRead> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Ok(SmallRead::TooLarge);
        }
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(SmallRead::Whole {
        size: filled,
        hash: *blake3::hash(&buf[..filled]).as_bytes(),
    })
}

/// Copies `src` to `dst`, hashing on the way, then gives `dst` the source's
/// permission bits and times.
fn copy_hashing(src: &mut File, dst: &mut File) -> io::Result<(u64, Hash)> {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    COPY_BUFFER.with_borrow_mut(|buf| -> io::Result<()> {
        loop {
            let n = match src.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            dst.write_all(&buf[..n])?;
            size += n as u64;
        }
    })?;
    copy_attributes(src, dst)?;
    Ok((size, *hasher.finalize().as_bytes()))
}

/// The threads that copy between local stores: as many as the
/// `transfer_parallelism` of the first sync that needs them. `None` when no
/// thread could be started (the copies then go one by one through the runtime).
pub(super) fn copy_pool(parallelism: usize) -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(parallelism.clamp(1, 64))
            .thread_name(|i| format!("poolsync-copy-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Stages the items of `requests` from the local store `src` into `dst`: the
/// whole group in one hand-over to the copy threads of `pool`, not one thread
/// hand-over per item. One result per request, in order.
pub(super) async fn copy_group(
    pool: &'static rayon::ThreadPool,
    src: &Arc<Inner>,
    dst: &Arc<Inner>,
    requests: &[StageRequest],
) -> Vec<StoreResult<Option<Staged>>> {
    let desc = dst.desc();
    let (src, dst) = (src.clone(), dst.clone());
    let requests = requests.to_vec();
    let count = requests.len();
    let result = blocking(&desc, move || {
        Ok(pool.install(|| {
            requests
                .par_iter()
                .with_max_len(1)
                .map(|r| match &r.known {
                    Some(known) => {
                        copy_local_if_changed(&src, &dst, &r.path, &r.name, &r.dest, known)
                    }
                    None => copy_local(&src, &dst, &r.path, &r.name, &r.dest).map(Some),
                })
                .collect::<Vec<_>>()
        }))
    })
    .await;
    match result {
        Ok(results) => results,
        Err(e) => {
            // The copy task itself failed (it panicked): every item of the
            // group fails with that reason.
            let message = match &e {
                StoreError::Other { message, .. } => message.clone(),
                e => e.to_string(),
            };
            (0..count)
                .map(|_| Err(other(&desc, message.clone())))
                .collect()
        }
    }
}

/// Copies `path` of a local store into the staged item `name` of another.
pub(super) fn copy_local(
    src: &Inner,
    dst: &Inner,
    path: &ItemPath,
    name: &str,
    dest: &ItemPath,
) -> StoreResult<Staged> {
    check_meta_key(name).map_err(|m| other(&dst.desc(), m))?;
    let mut input = src
        .open_beneath(path)
        .map_err(|e| io_err(&src.desc(), "open", &path.to_string(), e))?;
    let mut output = dst
        .create_staged(name, dest)
        .map_err(|e| io_err(&dst.desc(), "create", name, e))?;
    let (size, hash) = copy_hashing(&mut input, &mut output)
        .map_err(|e| io_err(&dst.desc(), "copy", &path.to_string(), e))?;
    Ok(Staged {
        name: name.to_string(),
        size,
        hash,
        in_place: false,
    })
}

/// [`copy_local`] for an item whose content hashed to `known`: nothing is staged
/// (`None`) when it still does.
pub(super) fn copy_local_if_changed(
    src: &Inner,
    dst: &Inner,
    path: &ItemPath,
    name: &str,
    dest: &ItemPath,
    known: &Hash,
) -> StoreResult<Option<Staged>> {
    check_meta_key(name).map_err(|m| other(&dst.desc(), m))?;
    let src_err = |action, e| io_err(&src.desc(), action, &path.to_string(), e);
    let dst_err = |action, e| io_err(&dst.desc(), action, name, e);
    let mut input = src.open_beneath(path).map_err(|e| src_err("open", e))?;
    // A small item is read once: hashed in the buffer, and written from it only
    // if it changed.
    let small = COPY_BUFFER.with_borrow_mut(|buf| -> StoreResult<Option<Option<Staged>>> {
        let SmallRead::Whole { size, hash } =
            read_small(&mut input, buf).map_err(|e| src_err("read", e))?
        else {
            return Ok(None);
        };
        if hash == *known {
            return Ok(Some(None));
        }
        let mut output = dst
            .create_staged(name, dest)
            .map_err(|e| dst_err("create", e))?;
        output
            .write_all(&buf[..size])
            .and_then(|()| copy_attributes(&input, &output))
            .map_err(|e| dst_err("write", e))?;
        Ok(Some(Some(Staged {
            name: name.to_string(),
            size: size as u64,
            hash,
            in_place: false,
        })))
    })?;
    if let Some(result) = small {
        return Ok(result);
    }
    // A larger one: hash it, then copy it from the start if it changed.
    let mut hasher = blake3::Hasher::new();
    input.rewind().map_err(|e| src_err("read", e))?;
    io::copy(&mut input, &mut hasher).map_err(|e| src_err("read", e))?;
    if hasher.finalize().as_bytes() == known {
        return Ok(None);
    }
    input.rewind().map_err(|e| src_err("read", e))?;
    let mut output = dst
        .create_staged(name, dest)
        .map_err(|e| dst_err("create", e))?;
    let (size, hash) = copy_hashing(&mut input, &mut output).map_err(|e| src_err("copy", e))?;
    Ok(Some(Staged {
        name: name.to_string(),
        size,
        hash,
        in_place: false,
    }))
}
