//! What one direction has pending now, and its replication lag: the age of
//! the oldest change its replica does not hold yet, which is what a disaster
//! at the source would lose at this moment (the live recovery point).
//!
//! A pending item changed at its inode change time (local stores: no `touch`
//! can set it back) or its modification time (object stores), and never
//! before the replica was last complete (`complete_as_of`, the start of the
//! last full sync that left nothing pending). A pending deletion is dated
//! there, since a deleted item leaves no time behind.

use super::direction::Direction;
use super::manifest::Manifest;
use super::plan::classify;
use crate::store::{ChangeToken, Entry};

/// What one direction would ship now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pending {
    pub items: u64,
    pub bytes: u64,
    /// Milliseconds; 0 when nothing is pending; `None` when it cannot be told
    /// (deletions pending and the replica never complete).
    pub lag_ms: Option<u64>,
}

/// When an item last changed, as far as its listing can tell.
fn changed_ns(e: &Entry) -> i64 {
    match e.token {
        ChangeToken::Inode { ctime_ns, .. } => ctime_ns,
        _ => e.mtime_ns,
    }
}

/// Lists `d`'s source and compares it with its manifest.
pub(super) async fn pending(
    d: &Direction<'_>,
    complete_as_of: Option<i64>,
    now_ns: i64,
) -> Result<Pending, String> {
    let listing = d
        .src
        .list(d.source_prefix())
        .await
        .map_err(|e| e.to_string())?;
    let manifest = Manifest::load(d.dst, &d.manifest_prefix())
        .await
        .map_err(|e| e.to_string())?;
    let (copies, deletes, _) = classify(listing.entries, &manifest);
    let oldest_copy = copies.iter().map(changed_ns).min();
    let oldest = oldest_change(oldest_copy, !deletes.is_empty(), complete_as_of);
    let items = (copies.len() + deletes.len()) as u64;
    Ok(Pending {
        items,
        bytes: copies.iter().map(|c| c.size).sum(),
        lag_ms: if items == 0 {
            Some(0)
        } else {
            oldest.map(|t| (now_ns.saturating_sub(t).max(0) / 1_000_000) as u64)
        },
    })
}

/// When the oldest pending change was made: the oldest pending copy's change
/// time and, with deletions pending, the time the replica was last complete;
/// none is earlier than that time.
fn oldest_change(
    oldest_copy: Option<i64>,
    deletions: bool,
    complete_as_of: Option<i64>,
) -> Option<i64> {
    let floor = complete_as_of.unwrap_or(i64::MIN);
    let copy = oldest_copy.map(|t| t.max(floor));
    match (copy, deletions) {
        (copy, false) => copy,
        (copy, true) => {
            let deleted = complete_as_of?;
            Some(copy.map_or(deleted, |c| c.min(deleted)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::oldest_change;

    #[test]
    fn the_oldest_change_is_never_before_the_replica_was_complete() {
        // A copy changed at 50 after the replica was complete at 100 (a
        // clock set back, a preserved time): dated 100.
        assert_eq!(oldest_change(Some(50), false, Some(100)), Some(100));
        assert_eq!(oldest_change(Some(150), false, Some(100)), Some(150));
        // Deletions are dated when the replica was last complete.
        assert_eq!(oldest_change(Some(150), true, Some(100)), Some(100));
        assert_eq!(oldest_change(None, true, Some(100)), Some(100));
        // Never complete: copies tell their own time; deletions cannot.
        assert_eq!(oldest_change(Some(150), false, None), Some(150));
        assert_eq!(oldest_change(Some(150), true, None), None);
        assert_eq!(oldest_change(None, false, None), None);
    }
}
