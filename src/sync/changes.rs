//! Changed paths: what a watcher saw change in a pair's source folders since
//! the last sync, for a sync that looks at those paths alone instead of
//! walking the pool (see `service/watcher.rs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::store::ItemPath;
use crate::topology::{Fqdn, Module};

/// Paths that changed, per source pool and module, each relative to the
/// source folder of that module's direction (the pool's `data/<module>`, or
/// the active copy of a moved CMS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    paths: BTreeMap<(Fqdn, Module), BTreeSet<ItemPath>>,
}

impl ChangeSet {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `path` (a file or a folder, still there or not) changed.
    pub fn insert(&mut self, pool: &Fqdn, module: Module, path: ItemPath) {
        self.paths
            .entry((pool.clone(), module))
            .or_default()
            .insert(path);
    }

    /// Adds every path of `other`.
    pub fn extend(&mut self, other: ChangeSet) {
        for (key, paths) in other.paths {
            self.paths.entry(key).or_default().extend(paths);
        }
    }

    /// Paths recorded, all modules together.
    pub fn len(&self) -> usize {
        self.paths.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.values().all(BTreeSet::is_empty)
    }

    /// Whether anything changed in `module` at `pool`.
    #[must_use]
    pub fn touches(&self, pool: &Fqdn, module: Module) -> bool {
        self.paths
            .get(&(pool.clone(), module))
            .is_some_and(|p| !p.is_empty())
    }

    /// The changed paths of `module` at `pool` to look at, in path order,
    /// without any that lies below another (looking at a folder covers what
    /// is in it).
    #[must_use]
    pub fn scope(&self, pool: &Fqdn, module: Module) -> Vec<ItemPath> {
        let Some(paths) = self.paths.get(&(pool.clone(), module)) else {
            return Vec::new();
        };
        paths
            .iter()
            .filter(|p| !p.ancestors().any(|a| paths.contains(&a)))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fqdn() -> Fqdn {
        Fqdn::parse("a.example.com").unwrap()
    }

    #[test]
    fn a_folder_covers_what_is_below_it_but_not_its_neighbours() {
        let mut set = ChangeSet::new();
        for p in ["a/x", "a", "a.txt", "b/c/d", "b/c"] {
            set.insert(&fqdn(), Module::PresenceFocus, ItemPath::parse(p).unwrap());
        }
        let scope: Vec<String> = set
            .scope(&fqdn(), Module::PresenceFocus)
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(scope, ["a", "a.txt", "b/c"]);
        assert!(set.touches(&fqdn(), Module::PresenceFocus));
        assert!(!set.touches(&fqdn(), Module::DataConf));
        assert_eq!(set.len(), 5);
    }
}
