//! Manifests kept in memory between syncs, for a long-running caller (the
//! service) whose syncs of changed paths would otherwise decode the whole
//! manifest of a large replica each time: a cost that grows with the items,
//! not the changes.
//!
//! A kept manifest is used again only if its documents in the store are
//! exactly as this engine left them: the same snapshot (its store stamp) and
//! the same log documents. Any other writer (a manual sync from a script, a
//! failover, a rebuild) writes a log or a snapshot, and the manifest is then
//! read from the store as usual. A store that cannot stamp its documents
//! cheaply keeps nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use super::manifest::Manifest;
use crate::store::{Store, StoreResult};
use crate::topology::Fqdn;

/// What the store holds of a manifest, cheaply read.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    snapshot: String,
    logs: Vec<String>,
}

async fn stamp(store: &dyn Store, prefix: &str) -> Option<Stamp> {
    let snapshot = store
        .meta_stamp(&format!("{prefix}/snapshot"))
        .await
        .ok()
        .flatten()?;
    let logs = store.meta_list(&format!("{prefix}/log")).await.ok()?;
    Some(Stamp { snapshot, logs })
}

/// Manifests by the pool whose store holds them and their key prefix.
#[derive(Default)]
pub(super) struct ManifestCache {
    kept: Mutex<HashMap<(Fqdn, String), (Stamp, Manifest)>>,
}

impl ManifestCache {
    /// The manifest at `prefix` of `at`'s store: the one kept, if the store
    /// still holds exactly it, else read from the store.
    pub(super) async fn load(
        &self,
        store: &dyn Store,
        at: &Fqdn,
        prefix: &str,
    ) -> StoreResult<Manifest> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(at.clone(), prefix.to_string()));
        if let Some((was, manifest)) = kept
            && stamp(store, prefix).await.as_ref() == Some(&was)
        {
            return Ok(manifest);
        }
        Manifest::load(store, prefix).await
    }

    /// Keeps `manifest`, which is what `at`'s store now holds at `prefix`.
    pub(super) async fn keep(
        &self,
        store: &dyn Store,
        at: &Fqdn,
        prefix: &str,
        manifest: Manifest,
    ) {
        if manifest.damaged.is_some() {
            return;
        }
        if let Some(now) = stamp(store, prefix).await {
            self.kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert((at.clone(), prefix.to_string()), (now, manifest));
        }
    }
}
