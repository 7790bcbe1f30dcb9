//! Manifests made without reading content: the items of a folder as listed
//! now, each with the content hash another manifest records for it.
//!
//! When a replica is promoted, its items hold exactly the content the
//! replication's manifest records (every batch committed or rolled forward),
//! so a listing of it plus those hashes describes the active copy by its own
//! metadata: a failback later copies only what changed since. The same step
//! run the other way, on the pool's own data after a failback, gives the
//! replication its manifest back.

use crate::store::{Entry, ItemPath, Store, StoreResult};
use crate::sync::manifest::{Manifest, ManifestEntry};

/// The items of `store` below `prefix`, with their metadata as listed now and
/// the hash `known` records for each; an item `known` lacks, or records with
/// another size, is left out (so it is compared by content or copied again).
pub(crate) async fn listed_with_hashes(
    store: &dyn Store,
    prefix: &ItemPath,
    known: &Manifest,
) -> StoreResult<Vec<(ItemPath, ManifestEntry)>> {
    let mut entries = store.list(prefix).await?.entries;
    if !entries.is_sorted_by(|a, b| a.path < b.path) {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(with_hashes(entries, known))
}

/// `entries` (sorted by path) paired with the hashes of `known`.
pub(crate) fn with_hashes(entries: Vec<Entry>, known: &Manifest) -> Vec<(ItemPath, ManifestEntry)> {
    entries
        .into_iter()
        .filter_map(|e| {
            let hash = known.get(&e.path).filter(|m| m.size == e.size)?.hash;
            Some((
                e.path,
                ManifestEntry {
                    size: e.size,
                    mtime_ns: e.mtime_ns,
                    token: e.token,
                    hash,
                },
            ))
        })
        .collect()
}

/// The metadata prefix of the seed kept at the active copy's store for
/// `owner`'s `module`: what a failback starts from.
pub(crate) fn seed_prefix(owner: &str, module: &str) -> String {
    format!("failover/seed/{owner}/{module}")
}
