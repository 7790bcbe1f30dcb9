//! The safety guard: a sync never wipes a replica, or deletes more than half
//! of it, because its source vanished or shrank; the partner's copy is what a
//! pool that lost its data is restored from.

use super::direction::{Direction, DirectionFailure};

/// A replica below this many items is never "non-trivial" for the mass-delete guard.
pub const GUARD_MIN_ITEMS: usize = 20;

/// What the plan of one direction found, as the guard weighs it.
pub(super) struct Shrinkage {
    /// Items the manifest records in the replica.
    pub(super) replica_items: usize,
    /// Whether the source folder exists at all.
    pub(super) source_exists: bool,
    /// The source listed no item.
    pub(super) source_empty: bool,
    /// Items the plan would delete from the replica.
    pub(super) deleting: usize,
}

/// Refuses a plan that would wipe the replica, or delete more than half of a
/// non-trivial one, unless `allow_mass_delete`.
pub(super) fn check(
    d: &Direction<'_>,
    plan: &Shrinkage,
    allow_mass_delete: bool,
) -> Result<(), DirectionFailure> {
    let replica_items = plan.replica_items;
    if allow_mass_delete || replica_items == 0 {
        return Ok(());
    }
    let folder = format!("data/{}", d.module.identity());
    let (to, from, module) = (&d.to.fqdn, &d.from.fqdn, d.module.short_name());
    if !plan.source_exists || plan.source_empty {
        return Err(DirectionFailure::Export(format!(
            "refusing to wipe the replica at {to}: {folder} at {from} is {state}, but the replica holds {replica_items} items; if {from} lost its data, restore it from {to} (see docs/restore.md); if the data is meant to be gone, sync it once with invoke_backup_service_sync(\"{from}\", #{{module: \"{module}\", allow_mass_delete: true}})",
            state = if plan.source_exists {
                "empty"
            } else {
                "missing"
            },
        )));
    }
    let deleting = plan.deleting;
    if replica_items >= GUARD_MIN_ITEMS && deleting * 2 > replica_items {
        return Err(DirectionFailure::Export(format!(
            "refusing to delete {deleting} of the {replica_items} items of the replica at {to} (more than half): {folder} at {from} shrank that much; check it; if that is intended, sync it once with invoke_backup_service_sync(\"{from}\", #{{module: \"{module}\", allow_mass_delete: true}})"
        )));
    }
    Ok(())
}
