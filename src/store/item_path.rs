//! Validated item names: the only way a path reaches a store.

use std::fmt;

use crate::printable::printable;

/// A relative, `/`-separated path of an item inside a store, as raw bytes (a local
/// file name may hold any byte but `/` and NUL). It can never be absolute, hold an
/// empty, `.` or `..` segment, or otherwise escape the directory it is joined to.
///
/// Encoded as a byte string, and checked again when decoded: a manifest or journal
/// read back from a store is validated like any other input.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "serde_bytes::ByteBuf")]
pub struct ItemPath(#[serde(with = "serde_bytes")] Vec<u8>);

impl TryFrom<serde_bytes::ByteBuf> for ItemPath {
    type Error = String;
    fn try_from(bytes: serde_bytes::ByteBuf) -> Result<ItemPath, String> {
        let bytes = bytes.into_vec();
        ItemPath::check(&bytes)?;
        Ok(ItemPath(bytes))
    }
}

/// As its bytes, so that a sorted map of paths can be searched from a prefix
/// that is not a path itself (`a/`); the order is the same (the bytes').
impl std::borrow::Borrow<[u8]> for ItemPath {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl ItemPath {
    /// Validates a relative path.
    pub fn parse(bytes: impl AsRef<[u8]>) -> Result<ItemPath, String> {
        let bytes = bytes.as_ref();
        ItemPath::check(bytes)?;
        Ok(ItemPath(bytes.to_vec()))
    }

    fn check(bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            return Err("item path is empty".into());
        }
        if bytes.contains(&0) {
            return Err(format!("item path '{}' contains a NUL byte", lossy(bytes)));
        }
        if bytes[0] == b'/' {
            return Err(format!("item path '{}' is absolute", lossy(bytes)));
        }
        for segment in bytes.split(|b| *b == b'/') {
            match segment {
                b"" => return Err(format!("item path '{}' has an empty segment", lossy(bytes))),
                b"." | b".." => {
                    return Err(format!(
                        "item path '{}' has a '{}' segment",
                        lossy(bytes),
                        lossy(segment)
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `rel/name` (or `name` when `rel` is empty), for a listing: `rel` is a
    /// valid path or empty, so only `name` is checked, as one segment.
    pub fn child_of(rel: &[u8], name: &[u8]) -> Result<ItemPath, String> {
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(format!("'{}' is not a valid item name", lossy(name)));
        }
        let mut bytes = Vec::with_capacity(rel.len() + 1 + name.len());
        if !rel.is_empty() {
            bytes.extend_from_slice(rel);
            bytes.push(b'/');
        }
        bytes.extend_from_slice(name);
        debug_assert!(ItemPath::check(&bytes).is_ok());
        Ok(ItemPath(bytes))
    }

    /// A path of one segment; `segment` must hold no `/`.
    pub fn segment(segment: &str) -> Result<ItemPath, String> {
        if segment.contains('/') {
            return Err(format!("'{segment}' is not a single path segment"));
        }
        ItemPath::parse(segment)
    }

    /// The last segment.
    #[must_use]
    pub fn leaf(&self) -> &[u8] {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// `self/child`; both are valid, so the result is too.
    #[must_use]
    pub fn join(&self, child: &ItemPath) -> ItemPath {
        let mut bytes = Vec::with_capacity(self.0.len() + 1 + child.0.len());
        bytes.extend_from_slice(&self.0);
        bytes.push(b'/');
        bytes.extend_from_slice(&child.0);
        ItemPath(bytes)
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The first segment.
    #[must_use]
    pub fn first_segment(&self) -> &[u8] {
        self.0.split(|b| *b == b'/').next().unwrap_or(&self.0)
    }

    /// The parent path, if this path has more than one segment.
    #[must_use]
    pub fn parent(&self) -> Option<ItemPath> {
        let i = self.0.iter().rposition(|b| *b == b'/')?;
        Some(ItemPath(self.0[..i].to_vec()))
    }

    /// Whether this is `other` or lies below it.
    #[must_use]
    pub fn is_at_or_below(&self, other: &ItemPath) -> bool {
        self.0 == other.0 || self.strip_prefix(other).is_some()
    }

    /// Its proper ancestors, nearest last: `a`, `a/b` for `a/b/c`.
    pub fn ancestors(&self) -> impl Iterator<Item = ItemPath> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| ItemPath(self.0[..i].to_vec()))
    }

    /// The path relative to `prefix`, if it lies below it.
    #[must_use]
    pub fn strip_prefix(&self, prefix: &ItemPath) -> Option<ItemPath> {
        let rest = self.0.strip_prefix(prefix.0.as_slice())?;
        let rest = rest.strip_prefix(b"/")?;
        Some(ItemPath(rest.to_vec()))
    }

    #[must_use]
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

fn lossy(bytes: &[u8]) -> String {
    printable(bytes)
}

/// Shown as text that is safe to print: see [`printable`]. Item names come
/// from the pools' data, not from the operator: every message that shows one
/// goes through here.
impl fmt::Display for ItemPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printable(&self.0))
    }
}

impl fmt::Debug for ItemPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::ItemPath;

    #[test]
    fn a_listed_name_joins_its_folder_and_is_checked_as_one_segment() {
        let top = ItemPath::child_of(b"", b"a#1").unwrap();
        assert_eq!(top.as_bytes(), b"a#1");
        let below = ItemPath::child_of(b"x/y", b"z").unwrap();
        assert_eq!(below.as_bytes(), b"x/y/z");
        assert_eq!(below.leaf(), b"z");
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert!(ItemPath::child_of(b"x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_shown_without_control_characters() {
        let path = ItemPath::parse(b"evil\x1b]0;title\x07/line\nforged\r\xe2\x80\xae\xff").unwrap();
        assert_eq!(
            path.to_string(),
            "evil\\u{1b}]0;title\\u{7}/line\\nforged\\r\\u{202e}\u{fffd}"
        );
        assert_eq!(
            ItemPath::parse("plain/ünï c#1").unwrap().to_string(),
            "plain/ünï c#1"
        );
        let err = ItemPath::parse(b"a\x1b[31m/../b").unwrap_err();
        assert!(!err.contains('\x1b'), "{err}");
    }

    #[test]
    fn rejects_escapes() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/",
            "./a",
            "a/.",
            "a\0b",
        ] {
            assert!(ItemPath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn accepts_odd_names() {
        for good in ["a", "a/b#12", "...", "a/.hidden", "x y/z\u{e9}", "#1"] {
            assert!(ItemPath::parse(good).is_ok(), "{good:?} refused");
        }
        assert!(ItemPath::parse(b"\xff\xfe/x").is_ok());
    }

    #[test]
    fn decoding_validates_and_keeps_the_old_encoding() {
        let good = ItemPath::parse("a/b#1").unwrap();
        let bytes = postcard::to_stdvec(&good).unwrap();
        // The encoding of the plain `Vec<u8>` earlier versions wrote.
        assert_eq!(bytes, postcard::to_stdvec(&b"a/b#1".to_vec()).unwrap());
        assert_eq!(postcard::from_bytes::<ItemPath>(&bytes).unwrap(), good);
        for bad in ["../x", "/etc/passwd", "a//b"] {
            let bytes = postcard::to_stdvec(&bad.as_bytes().to_vec()).unwrap();
            assert!(
                postcard::from_bytes::<ItemPath>(&bytes).is_err(),
                "{bad:?} decoded"
            );
        }
    }

    #[test]
    fn prefix_and_parent() {
        let p = ItemPath::parse("data/m/a/b").unwrap();
        let pre = ItemPath::parse("data/m").unwrap();
        assert_eq!(
            p.strip_prefix(&pre).unwrap(),
            ItemPath::parse("a/b").unwrap()
        );
        assert!(
            ItemPath::parse("data/mx/a")
                .unwrap()
                .strip_prefix(&pre)
                .is_none()
        );
        assert_eq!(p.parent().unwrap(), ItemPath::parse("data/m/a").unwrap());
        assert_eq!(p.first_segment(), b"data");
        assert_eq!(p.leaf(), b"b");
        assert_eq!(pre.leaf(), b"m");
        assert_eq!(ItemPath::parse("x").unwrap().leaf(), b"x");
    }
}
