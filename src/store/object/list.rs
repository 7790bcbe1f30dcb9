//! Listing a prefix of an object store as items: keys decoded back into item
//! paths, and the empty "folder" objects of S3 consoles left out.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::ObjectBackedStore;
use crate::store::{ChangeToken, Entry, ItemPath, Listing, StoreResult};

impl ObjectBackedStore {
    /// Every item below `prefix`, in key order.
    pub(super) async fn list_objects(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        let base = self.item_key(prefix);
        let mut listing = Listing::default();
        let mut empty = Vec::new();
        let mut stream = self.backend.list(Some(&base));
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| self.backend_err("list", &prefix.to_string(), e))?;
            listing.exists = true;
            let Some(parts) = meta.location.prefix_match(&base) else {
                continue;
            };
            let mut rel: Vec<u8> = Vec::new();
            for part in parts {
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend(percent_encoding::percent_decode_str(part.as_ref()));
            }
            match ItemPath::parse(&rel) {
                Ok(path) => {
                    if meta.size == 0 {
                        empty.push((listing.entries.len(), meta.location.clone()));
                    }
                    listing.entries.push(Entry {
                        path,
                        size: meta.size,
                        mtime_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                        token: meta.e_tag.map_or(ChangeToken::None, ChangeToken::ETag),
                    });
                }
                Err(m) => listing.warnings.push(format!("skipped an object: {m}")),
            }
        }
        self.drop_folder_markers(&mut listing, empty).await;
        Ok(listing)
    }

    /// Takes folder markers out of a listing. An S3 console's "create folder"
    /// writes an empty object whose key ends in `/`; the listing shows it
    /// without the `/`, as an empty item named like the folder, which then
    /// cannot be read under that name and would fail at every sync (holding
    /// back every deletion). `empty` holds the listing index and key of each
    /// empty object listed; one that a HEAD under its listed key does not find
    /// is such a marker. Only empty objects cost a request.
    async fn drop_folder_markers(&self, listing: &mut Listing, empty: Vec<(usize, Path)>) {
        let found: Vec<(usize, bool)> =
            futures::stream::iter(empty.into_iter().map(|(at, key)| async move {
                let marker = matches!(
                    self.backend.head(&key).await,
                    Err(object_store::Error::NotFound { .. })
                );
                (at, marker)
            }))
            .buffer_unordered(8)
            .collect()
            .await;
        let mut markers: Vec<usize> = found
            .into_iter()
            .filter_map(|(at, marker)| marker.then_some(at))
            .collect();
        if markers.is_empty() {
            return;
        }
        markers.sort_unstable();
        let mut at = 0;
        listing.entries.retain(|_| {
            let keep = markers.binary_search(&at).is_err();
            at += 1;
            keep
        });
    }
}
