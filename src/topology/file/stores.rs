//! Every pool has a store of its own, not inside another pool's: the pair
//! lock, the manifests and the replicas of one would be the other's data.
//!
//! Each store is resolved once (a [`StoreKey`]) and kept in a sorted map, so
//! a deployment of n pools is checked in O(n log n), not by comparing every
//! pair (which resolved both folders through links each time).

use std::collections::BTreeMap;

use super::pools::ParsedPool;
use super::{DeploymentError, Source};
use crate::store::StoreKey;

/// The first pool (in file order) whose store is, lies inside or contains an
/// earlier pool's store is an error that names it and the first such earlier
/// pool.
pub(super) fn check_stores(src: &Source<'_>, parsed: &[ParsedPool]) -> Result<(), DeploymentError> {
    let keys: Vec<StoreKey> = parsed.iter().map(|p| p.pool.store.key()).collect();
    let Some((earlier, later)) = first_overlap(&keys) else {
        return Ok(());
    };
    let (a, b) = (&parsed[earlier].pool, &parsed[later].pool);
    let relation = match (
        keys[earlier].contains(&keys[later]),
        keys[later].contains(&keys[earlier]),
    ) {
        (true, true) => "is also the store of",
        (true, false) => "lies inside the store of",
        _ => "contains the store of",
    };
    Err(src.error(
        parsed[later].store_span.clone(),
        format!(
            "the store of pool '{}' ({}) {relation} pool '{}' ({}): give each pool a store of its own, side by side",
            b.fqdn, b.store, a.fqdn, a.store
        ),
    ))
}

/// `(earlier, later)`: the first key that overlaps an earlier one (is it,
/// lies inside it or contains it), and the first earlier key it overlaps —
/// the pair comparing each key with every earlier one, in order, would find.
fn first_overlap(keys: &[StoreKey]) -> Option<(usize, usize)> {
    let mut lexical = Seen::default();
    let mut real = Seen::default();
    for (i, key) in keys.iter().enumerate() {
        let hit = [
            lexical.overlap(key.lexical()),
            key.real().and_then(|r| real.overlap(r)),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(earlier) = hit {
            return Some((earlier, i));
        }
        lexical.insert(key.lexical(), i);
        if let Some(r) = key.real() {
            real.insert(r, i);
        }
    }
    None
}

/// Keys (of one form) seen so far, sorted, each with its position. No two
/// overlap: the first overlap ends the search.
#[derive(Default)]
struct Seen<'a> {
    keys: BTreeMap<&'a [Vec<u8>], usize>,
}

impl<'a> Seen<'a> {
    fn insert(&mut self, key: &'a [Vec<u8>], index: usize) {
        self.keys.insert(key, index);
    }

    /// The first position of a key that is `key`, contains it or lies inside
    /// it. Those that contain it are its prefixes (at most one lookup per
    /// component); those inside it sort right after it.
    fn overlap(&self, key: &[Vec<u8>]) -> Option<usize> {
        let containing = (1..=key.len())
            .filter_map(|n| self.keys.get(&key[..n]))
            .copied()
            .min();
        let inside = self
            .keys
            .range(key..)
            .take_while(|(k, _)| k.starts_with(key))
            .map(|(_, &i)| i)
            .min();
        containing.into_iter().chain(inside).min()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{StoreLocation, StoreOwner};

    fn keys_in(base: &Path, stores: &[&str]) -> Vec<StoreKey> {
        let owner = StoreOwner {
            pool: "p.x.com",
            credentials_file: None,
        };
        stores
            .iter()
            .map(|s| StoreLocation::parse(s, base, owner).unwrap().key())
            .collect()
    }

    fn keys(stores: &[&str]) -> Vec<StoreKey> {
        keys_in(Path::new("/d"), stores)
    }

    /// What comparing every pair in order finds.
    fn every_pair(keys: &[StoreKey]) -> Option<(usize, usize)> {
        (0..keys.len()).find_map(|later| {
            (0..later)
                .find(|&e| keys[e].contains(&keys[later]) || keys[later].contains(&keys[e]))
                .map(|earlier| (earlier, later))
        })
    }

    #[test]
    fn finds_the_pair_comparing_every_pair_would() {
        // The stores, and the pair (earlier, later) that is reported.
        type Case = (&'static [&'static str], Option<(usize, usize)>);
        let cases: &[Case] = &[
            (&["s/a", "s/b", "s/ab", "s/a.b", "memory://a"], None),
            (&["s/a", "s/b", "s/a"], Some((0, 2))),
            (&["s/b/x", "s/a", "s/b"], Some((0, 2))),
            (&["s/a/x", "s/a/y", "s/a"], Some((0, 2))),
            (&["s/b", "s/a", "s"], Some((0, 2))),
            (&["s/a", "t", "s"], Some((0, 2))),
            (&["s", "t", "s/a/b"], Some((0, 2))),
            (&["/", "t"], Some((0, 1))),
            (&["t", "s/x", "s/y", "u", "s/x/../y/z"], Some((2, 4))),
            (
                &[
                    "s3://bkt/p?endpoint=http://h:1",
                    "s3://bkt/q?endpoint=http://h:1",
                    "s3://bkt/p/x?endpoint=http://H:1/",
                ],
                Some((0, 2)),
            ),
            (&["s3://bkt/p", "s3://bkt/p?endpoint=http://h:1"], None),
            (&["memory://a", "memory://b", "memory://a"], Some((0, 2))),
        ];
        for (stores, want) in cases {
            let keys = keys(stores);
            assert_eq!(every_pair(&keys), *want, "the reference, on {stores:?}");
            assert_eq!(first_overlap(&keys), *want, "{stores:?}");
        }
    }

    #[test]
    fn finds_stores_that_meet_through_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("real/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let keys = keys_in(dir.path(), &["link/sub", "other", "real"]);
        assert_eq!(every_pair(&keys), Some((0, 2)));
        assert_eq!(first_overlap(&keys), Some((0, 2)));
    }
}
