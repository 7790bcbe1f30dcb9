//! Where a pool's store lives, as written in `deployment.toml`.

use std::fmt;
use std::path::{Path, PathBuf};

pub(super) use super::s3::S3Location;

/// Whose store a location is, as far as a store needs to know: the name of
/// the pool (it picks the pool's section of a credentials file) and, for an
/// `s3://` store, the credentials file to read (absolute), if one is named.
#[derive(Debug, Clone, Copy)]
pub struct StoreOwner<'a> {
    pub pool: &'a str,
    pub credentials_file: Option<&'a Path>,
}

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

/// `text` with the value of every query setting that holds an `@` (once
/// percent-decoded) replaced by `<redacted>`: an endpoint written as
/// `https://KEY:SECRET@host` is refused, and the refusal must not print the
/// secret into a terminal, a log or the journal.
fn redact_credentials(text: &str) -> String {
    let Some((head, query)) = text.split_once('?') else {
        return text.to_string();
    };
    let settings: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value))
                if percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .contains('@') =>
            {
                format!("{key}=<redacted>")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}?{}", settings.join("&"))
}

impl StoreLocation {
    /// Parses the store setting of `owner`'s store: a path (relative to
    /// `base`), `file:///abs/path`, `s3://BUCKET/PREFIX?endpoint=URL&region=NAME`
    /// or `memory://name`.
    pub fn parse(text: &str, base: &Path, owner: StoreOwner<'_>) -> Result<StoreLocation, String> {
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
                "s3" => S3Location::parse(rest, owner)
                    .map(StoreLocation::S3)
                    .map_err(|m| format!("store '{}': {m}", redact_credentials(text))),
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

    /// Whether `other` is this store or lies inside it: the same folder or a
    /// folder below it, the same memory store, or the same bucket with a key
    /// prefix at or below this one. Two pools must never share a store: the
    /// pair lock, the manifests and the replicas of one would be the other's
    /// data. Resolves both folders on the disk; to compare many locations,
    /// take each one's [`StoreKey`] once.
    #[must_use]
    pub fn contains(&self, other: &StoreLocation) -> bool {
        self.key().contains(&other.key())
    }

    /// The location as components in which containment is a prefix (see
    /// [`StoreKey`]). A folder is resolved through links here, once.
    #[must_use]
    pub fn key(&self) -> StoreKey {
        match self {
            StoreLocation::Local(path) => StoreKey {
                lexical: folder_key(&lexical(path)),
                // Through links, where the folder already exists.
                real: path.canonicalize().ok().map(|real| folder_key(&real)),
            },
            StoreLocation::Memory(name) => StoreKey {
                lexical: vec![b"memory:".to_vec(), name.as_bytes().to_vec()],
                real: None,
            },
            StoreLocation::S3(s3) => {
                // The same endpoint however it is written; none (Amazon S3)
                // is not any written one.
                let endpoint = match &s3.endpoint {
                    Some(e) => format!("={}", e.trim_end_matches('/').to_ascii_lowercase()),
                    None => String::new(),
                };
                let mut key = vec![
                    b"s3:".to_vec(),
                    endpoint.into_bytes(),
                    s3.bucket.as_bytes().to_vec(),
                ];
                key.extend(
                    s3.prefix
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.as_bytes().to_vec()),
                );
                StoreKey {
                    lexical: key,
                    real: None,
                }
            }
        }
    }

    #[must_use]
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Local(p) => Some(p),
            StoreLocation::Memory(_) | StoreLocation::S3(_) => None,
        }
    }
}

/// A store location as a list of components, resolved once: a location
/// contains another exactly when one of its forms is a prefix of the same form
/// of the other's. Components compare whole (`stores/a` does not contain
/// `stores/ab`), and a list of keys, sorted, puts everything a key contains
/// right after it, so overlaps among many stores are found without comparing
/// every pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKey {
    /// The kind (`file:`, `memory:`, `s3:`), then: a folder's path with `.` and
    /// `..` resolved without the disk; a memory store's name; an S3 store's
    /// endpoint, bucket and key prefix segments.
    lexical: Vec<Vec<u8>>,
    /// A folder that exists: its path through links.
    real: Option<Vec<Vec<u8>>>,
}

impl StoreKey {
    /// Whether `other` is this store or lies inside it (see
    /// [`StoreLocation::contains`]).
    #[must_use]
    pub fn contains(&self, other: &StoreKey) -> bool {
        other.lexical.starts_with(&self.lexical)
            || matches!((&self.real, &other.real), (Some(a), Some(b)) if b.starts_with(a))
    }

    /// The form every location has; compare it only with another's `lexical`.
    #[must_use]
    pub fn lexical(&self) -> &[Vec<u8>] {
        &self.lexical
    }

    /// The form through links, for a folder that exists; compare it only with
    /// another's `real`.
    #[must_use]
    pub fn real(&self) -> Option<&[Vec<u8>]> {
        self.real.as_deref()
    }
}

/// A folder's key: `file:`, then its components (`/` for the root).
fn folder_key(path: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    std::iter::once(b"file:".to_vec())
        .chain(path.components().map(|c| c.as_os_str().as_bytes().to_vec()))
        .collect()
}

/// `path` with `.` and `..` resolved without looking at the disk.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
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

    /// A location whose owner does not matter to the test.
    fn parse(text: &str, base: &Path) -> Result<StoreLocation, String> {
        let owner = StoreOwner {
            pool: "p.x.com",
            credentials_file: None,
        };
        StoreLocation::parse(text, base, owner)
    }

    #[test]
    fn a_refused_endpoint_does_not_print_its_secret() {
        for endpoint in [
            "https://AKID:s3cr3t@s3.example.com",
            "https%3A%2F%2FAKID%3As3cr3t%40s3.example.com",
        ] {
            let text = format!("s3://pools/p1?endpoint={endpoint}&region=garage");
            let err = parse(&text, Path::new("/")).unwrap_err();
            assert!(err.contains("must not carry credentials"), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
            assert!(
                err.contains("s3://pools/p1?endpoint=<redacted>&region=garage"),
                "{err}"
            );
        }
    }

    #[test]
    fn parses_forms() {
        let base = Path::new("/d");
        assert_eq!(
            parse("stores/a", base),
            Ok(StoreLocation::Local("/d/stores/a".into()))
        );
        assert_eq!(
            parse("file:///x/y", base),
            Ok(StoreLocation::Local("/x/y".into()))
        );
        assert_eq!(
            parse("memory://p1", base),
            Ok(StoreLocation::Memory("p1".into()))
        );
        assert!(
            parse("ftp://x", base)
                .unwrap_err()
                .contains("unknown scheme")
        );
        assert!(parse("file://rel", base).is_err());
        assert!(parse("", base).is_err());
    }

    #[test]
    fn a_store_contains_itself_and_what_lies_below_it() {
        let base = Path::new("/d");
        let at = |t: &str| parse(t, base).unwrap();
        assert!(at("stores/a").contains(&at("stores/a")));
        assert!(at("stores/a").contains(&at("stores/x/../a/./data/b")));
        assert!(at("stores").contains(&at("file:///d/stores/b")));
        assert!(!at("stores/a").contains(&at("stores/ab")));
        assert!(!at("stores/a/b").contains(&at("stores/a")));
        assert!(at("memory://p").contains(&at("memory://p")));
        assert!(!at("memory://p").contains(&at("memory://q")));
        let s3 = "s3://bkt/pools?endpoint=http://h:3900";
        assert!(at(s3).contains(&at("s3://bkt/pools/a?endpoint=HTTP://h:3900/")));
        assert!(at("s3://bkt?endpoint=http://h:3900").contains(&at(s3)));
        assert!(!at(s3).contains(&at("s3://bkt/poolsx?endpoint=http://h:3900")));
        assert!(!at(s3).contains(&at("s3://bkt/pools?endpoint=http://other:3900")));
        assert!(!at(s3).contains(&at("s3://other/pools?endpoint=http://h:3900")));
        assert!(!at("stores/a").contains(&at("memory://a")));
        assert!(!at("s3://bkt/a").contains(&at("s3://bkt/a?endpoint=http://h:3900")));
    }

    #[test]
    fn folders_that_exist_are_compared_through_links_too() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let at = |t: &str| parse(t, dir.path()).unwrap();
        assert!(at("real").contains(&at("link/sub")));
        assert!(at("link").contains(&at("real")) && at("real").contains(&at("link")));
        assert!(!at("link/sub").contains(&at("real")));
        // Where one does not exist, only the written paths count.
        assert!(!at("real").contains(&at("link/missing")));
        assert!(at("link").contains(&at("link/missing")));
    }
}
