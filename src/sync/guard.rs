//! The safety guard: a sync never wipes a replica, or deletes more than half
//! of it, because its source vanished or shrank; the partner's copy is what a
//! pool that lost its data is restored from.

use super::direction::{Direction, DirectionFailure, Kind};

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
    let wipes = !plan.source_exists || plan.source_empty;
    let halves = replica_items >= GUARD_MIN_ITEMS && plan.deleting * 2 > replica_items;
    if !wipes && !halves {
        return Ok(());
    }
    let (to, from) = (&d.to.fqdn, &d.from.fqdn);
    let source = d.source_prefix();
    let dest = if d.kind() == Kind::Replication {
        "the replica".to_string()
    } else {
        d.dest_prefix().to_string()
    };
    let state = if plan.source_exists {
        "empty"
    } else {
        "missing"
    };
    let what = if wipes {
        format!(
            "refusing to wipe {dest} at {to}: {source} at {from} is {state}, but {dest} holds {replica_items} items"
        )
    } else {
        format!(
            "refusing to delete {} of the {replica_items} items of {dest} at {to} (more than half): {source} at {from} shrank that much",
            plan.deleting
        )
    };
    let advice = if d.kind() == Kind::Replication {
        let module = d.module.short_name();
        let restore = if wipes {
            format!(
                "if {from} lost its data, restore it from {to} with restore_pool_data(\"{from}\"); "
            )
        } else {
            "check it; ".to_string()
        };
        format!(
            "{restore}if the data is meant to be gone, sync it once with invoke_backup_service_sync(\"{from}\", #{{module: \"{module}\", allow_mass_delete: true}})"
        )
    } else {
        "check it; if that is intended, run it again with force: true".to_string()
    };
    Err(DirectionFailure::Export(format!("{what}; {advice}")))
}
