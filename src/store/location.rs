//! Where a pool's store lives, as written in `deployment.toml`.

use std::fmt;
use std::path::{Path, PathBuf};

pub use super::s3::S3Location;

/// The location of a pool store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreLocation {
    /// A directory on a local disk (native store).
    Local(PathBuf),
    /// A named in-process memory store (`memory://NAME`), for tests; its data lives
    /// only as long as the process.
    Memory(String),
    /// A bucket (and key prefix) of an S3-compatible object store.
    S3(S3Location),
}

impl StoreLocation {
    /// Parses a store setting: a path (relative to `base`), `file:///abs/path`,
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=NAME` or `memory://name`.
    pub fn parse(text: &str, base: &Path) -> Result<StoreLocation, String> {
        if text.trim().is_empty() {
            return Err("store is empty: give a directory (e.g. \"stores/pool1\") or a URL".into());
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "file" => {
                    if !rest.starts_with('/') {
                        return Err(format!(
                            "store '{text}' is not an absolute file URL: write file:///absolute/path"
                        ));
                    }
                    Ok(StoreLocation::Local(PathBuf::from(rest)))
                }
                "memory" => {
                    if rest.is_empty() || rest.contains('/') {
                        return Err(format!(
                            "store '{text}' needs a plain name: write memory://NAME"
                        ));
                    }
                    Ok(StoreLocation::Memory(rest.to_string()))
                }
                "s3" => S3Location::parse(rest)
                    .map(StoreLocation::S3)
                    .map_err(|m| format!("store '{text}': {m}")),
                other => Err(format!(
                    "store '{text}' has an unknown scheme '{other}': use a path, file://, s3:// or memory://"
                )),
            };
        }
        if text.contains('\0') {
            return Err("store path contains a NUL byte".into());
        }
        Ok(StoreLocation::Local(base.join(text)))
    }

    pub fn local_path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Local(p) => Some(p),
            StoreLocation::Memory(_) | StoreLocation::S3(_) => None,
        }
    }
}

/// Displays the location; it never holds credentials (they live in the
/// environment or a credentials file, see `s3.rs`).
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Local(p) => write!(f, "{}", p.display()),
            StoreLocation::Memory(name) => write!(f, "memory://{name}"),
            StoreLocation::S3(s3) => write!(f, "{s3}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let base = Path::new("/d");
        assert_eq!(
            StoreLocation::parse("stores/a", base),
            Ok(StoreLocation::Local("/d/stores/a".into()))
        );
        assert_eq!(
            StoreLocation::parse("file:///x/y", base),
            Ok(StoreLocation::Local("/x/y".into()))
        );
        assert_eq!(
            StoreLocation::parse("memory://p1", base),
            Ok(StoreLocation::Memory("p1".into()))
        );
        assert!(
            StoreLocation::parse("ftp://x", base)
                .unwrap_err()
                .contains("unknown scheme")
        );
        assert!(StoreLocation::parse("file://rel", base).is_err());
        assert!(StoreLocation::parse("", base).is_err());
    }
}
