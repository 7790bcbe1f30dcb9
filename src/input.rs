//! Reading the files poolsync takes as input (deployment, config, scripts,
//! modules, standard input): regular files only, and at most
//! [`MAX_INPUT_BYTES`]. A FIFO would block for ever, `/dev/zero` would be
//! read until memory ran out; both are refused before they are opened.

use std::io::{self, Read};
use std::path::Path;

/// The largest deployment file, script or module poolsync reads: 16 MiB.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Why `path` cannot be read as input, if it cannot: not a regular file, or
/// larger than [`MAX_INPUT_BYTES`]. Follows links (a script may be one).
pub fn check_regular(path: &Path) -> io::Result<()> {
    let md = std::fs::metadata(path)?;
    let kind = md.file_type();
    if kind.is_dir() {
        return Err(io::Error::other("is a folder, not a file"));
    }
    if !kind.is_file() {
        return Err(io::Error::other(
            "is not a regular file (a FIFO, a socket or a device); give a file",
        ));
    }
    if md.len() > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(())
}

fn too_large() -> io::Error {
    io::Error::other(format!(
        "is larger than {} MiB, the most poolsync reads as a deployment, script or module",
        MAX_INPUT_BYTES >> 20
    ))
}

/// Reads a regular file of at most [`MAX_INPUT_BYTES`] as UTF-8 text.
pub fn read_text(path: &Path) -> io::Result<String> {
    check_regular(path)?;
    let file = std::fs::File::open(path)?;
    read_capped(file)
}

/// Reads at most [`MAX_INPUT_BYTES`] of text from `reader` (a file that grew
/// since it was checked, or standard input); more is an error.
pub fn read_capped(reader: impl Read) -> io::Result<String> {
    let mut text = String::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(text)
}
