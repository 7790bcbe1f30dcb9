//! What a sync of one direction will do, worked out before anything is copied:
//! which items changed ([`classify`]), which deletions must go with a copy
//! ([`in_the_way`]), and how the copies split into batches ([`partition`]).

use std::collections::HashMap;

use super::manifest::{Manifest, ManifestEntry};
use crate::store::{Entry, ItemPath};
use crate::topology::Module;

/// Splits a source listing against a manifest: the items whose metadata changed
/// (or that are new), the manifest items the source no longer has, and how many
/// are unchanged, each list in path order. Reads no content.
///
/// One merge pass over the listing (sorted here unless the store listed it in
/// order) and the manifest (kept sorted).
pub(super) fn classify(
    entries: Vec<Entry>,
    manifest: &Manifest,
) -> (Vec<Entry>, Vec<ItemPath>, u64) {
    classify_against(entries, manifest.iter())
}

/// [`classify`] against the recorded items `recorded`, in path order: the
/// whole manifest, or the part of it a sync of changed paths looks at.
pub(super) fn classify_against<'a>(
    mut entries: Vec<Entry>,
    recorded: impl Iterator<Item = (&'a ItemPath, &'a ManifestEntry)>,
) -> (Vec<Entry>, Vec<ItemPath>, u64) {
    if !entries.is_sorted_by(|a, b| a.path < b.path) {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    }
    let mut candidates: Vec<Entry> = Vec::new();
    let mut deletes: Vec<ItemPath> = Vec::new();
    let mut unchanged = 0;
    let mut recorded = recorded.peekable();
    for entry in entries {
        // Recorded items that sort before this one are gone from the source.
        while let Some((path, _)) = recorded.next_if(|(p, _)| **p < entry.path) {
            deletes.push(path.clone());
        }
        match recorded.next_if(|(p, _)| **p == entry.path) {
            Some((_, m))
                if m.size == entry.size
                    && m.mtime_ns == entry.mtime_ns
                    && m.token == entry.token =>
            {
                unchanged += 1;
            }
            _ => candidates.push(entry),
        }
    }
    deletes.extend(recorded.map(|(p, _)| p.clone()));
    (candidates, deletes, unchanged)
}

/// Takes out of `deletes` those that stand in the way of a copy, keyed by the
/// copied item's path: an item whose path is a folder of a copied item (a file
/// `x/y` that became a folder `x/y/`), and items below a copied item's path (a
/// folder `x/y/` that became a file `x/y`). A replica on a file system cannot
/// hold both, so such deletions go with the batch of that copy, ahead of its
/// moves, instead of waiting for every copy to succeed: the source listed the
/// new item, so the old one is known to be gone from it, not just unseen.
/// Each deletion goes with the first copy (in path order) that needs it.
///
/// `candidates` and `deletes` are sorted by path (as [`classify`] returns them).
pub(super) fn in_the_way(
    candidates: &[Entry],
    deletes: &mut Vec<ItemPath>,
) -> HashMap<ItemPath, Vec<ItemPath>> {
    let mut found: HashMap<ItemPath, Vec<ItemPath>> = HashMap::new();
    if candidates.is_empty() || deletes.is_empty() {
        return found;
    }
    let mut taken = vec![false; deletes.len()];
    let mut below = Vec::new();
    for candidate in candidates {
        let path = candidate.path.as_bytes();
        let mut hits = Vec::new();
        // Its folders: each prefix that ends before a '/'.
        for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            if let Ok(at) = deletes.binary_search_by(|d| d.as_bytes().cmp(&path[..i])) {
                hits.push(at);
            }
        }
        // What lies below it: every path starting with `path/`, one run in byte order.
        below.clear();
        below.extend_from_slice(path);
        below.push(b'/');
        let from = deletes.partition_point(|d| d.as_bytes() < below.as_slice());
        hits.extend(
            (from..deletes.len()).take_while(|&at| deletes[at].as_bytes().starts_with(&below)),
        );
        for at in hits {
            if !std::mem::replace(&mut taken[at], true) {
                found
                    .entry(candidate.path.clone())
                    .or_default()
                    .push(deletes[at].clone());
            }
        }
    }
    if !found.is_empty() {
        let mut taken = taken.into_iter();
        deletes.retain(|_| !taken.next().unwrap_or(false));
    }
    found
}

/// Bytes in one batch of a module.
#[must_use]
pub fn batch_byte_limit(module: Module, s: &crate::topology::BackupServiceSettings) -> u64 {
    match module {
        Module::DataConf => s.max_data_conf_package_size_kb,
        _ => s.batch_max_kb,
    }
    .saturating_mul(1024)
}

/// Splits items into batches bounded by count and bytes (an item larger than the
/// byte limit gets a batch of its own).
pub(super) fn partition(items: Vec<Entry>, max_items: u64, max_bytes: u64) -> Vec<Vec<Entry>> {
    let mut batches: Vec<Vec<Entry>> = Vec::new();
    let mut current: Vec<Entry> = Vec::new();
    let mut bytes = 0u64;
    for item in items {
        if !current.is_empty()
            && (current.len() as u64 >= max_items || bytes + item.size > max_bytes)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item.size;
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// What one direction will do, worked out before anything is copied.
pub(super) struct Plan {
    /// The items to copy (new, or their metadata changed), in batches, in path order.
    pub(super) batches: Vec<Vec<Entry>>,
    /// Items the source no longer has: deleted at the end, once every copy
    /// got through.
    pub(super) deletes: Vec<ItemPath>,
    /// Deletions that go with a copy, by the copied item's path ([`in_the_way`]).
    pub(super) in_the_way: HashMap<ItemPath, Vec<ItemPath>>,
    /// Deletions not made because the source could not be listed in full.
    pub(super) held_back: Vec<ItemPath>,
    /// Items whose metadata did not change.
    pub(super) unchanged: u64,
}

impl Plan {
    /// Plans a direction from a source listing (sorted or not) and the
    /// replica's recorded items (the manifest, or the part of it a listing
    /// of changed paths covers), in path order. After an `incomplete` listing
    /// an item missing from it may still exist, so no deletion is planned but
    /// those in the way of a copy (the source listed what replaced them).
    pub(super) fn new<'a>(
        entries: Vec<Entry>,
        incomplete: bool,
        recorded: impl Iterator<Item = (&'a ItemPath, &'a ManifestEntry)>,
        max_items: u64,
        max_bytes: u64,
    ) -> Plan {
        let (candidates, mut deletes, unchanged) = classify_against(entries, recorded);
        let in_the_way = in_the_way(&candidates, &mut deletes);
        let held_back = if incomplete {
            std::mem::take(&mut deletes)
        } else {
            Vec::new()
        };
        Plan {
            batches: partition(candidates, max_items, max_bytes),
            deletes,
            in_the_way,
            held_back,
            unchanged,
        }
    }

    /// The items to copy, in path order.
    pub(super) fn copies(&self) -> impl Iterator<Item = &Entry> {
        self.batches.iter().flatten()
    }

    /// Deletions that wait for a copy and have not gone with it yet.
    pub(super) fn in_the_way_count(&self) -> usize {
        self.in_the_way.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ChangeToken;

    fn entry(name: &str, size: u64) -> Entry {
        Entry {
            path: ItemPath::parse(name).unwrap(),
            size,
            mtime_ns: 0,
            token: ChangeToken::None,
        }
    }

    fn paths(names: &[&str]) -> Vec<ItemPath> {
        names.iter().map(|n| ItemPath::parse(n).unwrap()).collect()
    }

    #[test]
    fn deletions_in_the_way_of_a_copy_go_with_it() {
        // x/y was a file and is now a folder; d/ was a folder and is now a file;
        // "x/y.txt" and "d0" only share a prefix of bytes and must stay.
        let candidates = vec![entry("d", 1), entry("x/y/a", 1), entry("x/y/b", 1)];
        let mut deletes = paths(&["d/e/f", "d/g", "d0", "x/y", "x/y.txt"]);
        let found = in_the_way(&candidates, &mut deletes);
        assert_eq!(deletes, paths(&["d0", "x/y.txt"]));
        let key = |n: &str| ItemPath::parse(n).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[&key("d")], paths(&["d/e/f", "d/g"]));
        // Taken by the first copy that needs it, not twice.
        assert_eq!(found[&key("x/y/a")], paths(&["x/y"]));
        assert!(!found.contains_key(&key("x/y/b")));
    }

    #[test]
    fn no_deletion_is_in_the_way_when_paths_only_share_bytes() {
        let candidates = vec![entry("a/b", 1), entry("ab", 1)];
        let mut deletes = paths(&["a.b", "a/bc", "a/b0/c", "abc"]);
        assert!(in_the_way(&candidates, &mut deletes).is_empty());
        assert_eq!(deletes.len(), 4);
    }

    #[test]
    fn partition_bounds_count_and_bytes() {
        let items: Vec<Entry> = (0..7).map(|i| entry(&format!("f{i}"), 10)).collect();
        let b = partition(items.clone(), 3, 1000);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
        let b = partition(items, 100, 25);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2, 1]);
        let big = vec![entry("a", 5), entry("huge", 500), entry("b", 5)];
        let b = partition(big, 100, 100);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1, 1]);
    }
}
