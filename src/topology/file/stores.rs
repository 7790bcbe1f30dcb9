//! Every pool has a store of its own, not inside another pool's: the pair
//! lock, the manifests and the replicas of one would be the other's data.

use super::pools::ParsedPool;
use super::{DeploymentError, Source};

/// The first pool (in file order) whose store is, lies inside or contains an
/// earlier pool's store is an error that names both.
pub(super) fn check_stores(src: &Source<'_>, parsed: &[ParsedPool]) -> Result<(), DeploymentError> {
    for (i, later) in parsed.iter().enumerate() {
        for earlier in &parsed[..i] {
            let (a, b) = (&earlier.pool, &later.pool);
            let relation = if a.store.contains(&b.store) && b.store.contains(&a.store) {
                "is also the store of"
            } else if a.store.contains(&b.store) {
                "lies inside the store of"
            } else if b.store.contains(&a.store) {
                "contains the store of"
            } else {
                continue;
            };
            return Err(src.error(
                later.store_span.clone(),
                format!(
                    "the store of pool '{}' ({}) {relation} pool '{}' ({}): give each pool a store of its own, side by side",
                    b.fqdn, b.store, a.fqdn, a.store
                ),
            ));
        }
    }
    Ok(())
}
