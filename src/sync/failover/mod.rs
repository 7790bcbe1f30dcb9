//! Recovery, the reason pairs exist: failing a pool over to its partner
//! (planned, or in disaster mode), failing it back, restoring lost items from
//! the partner's replica, and moving the Central Management Store.
//!
//! The model (see docs/failover.md): a promoted replica becomes the active
//! copy where it is, so a failover copies nothing; the pair's failover record
//! lives in both stores with an epoch, and the newer record fences a pool
//! that comes back still believing it is active; what a pool changed that the
//! active copy never saw is quarantined, never overwritten.

mod cms;
mod cms_reconcile;
mod failback;
mod fence;
mod locked;
mod loss;
mod promote;
mod quarantine;
mod reconcile;
mod report;
mod restore;
pub(super) mod seed;
pub(super) mod state;
mod transfer;
pub(super) mod view;

pub use fence::WriteHold;
pub(super) use quarantine::listed as quarantines;
pub use report::{FailoverOptions, FailoverReport};
pub use state::{Mode, ModuleLoss, PairState, PairView, Phase, PoolState, Quarantine};

use crate::store::StoreLocation;
use crate::topology::{Deployment, Pair, Pool};

/// `rel` below a store's location, as a path or a URL (before any query).
fn below(location: &StoreLocation, rel: &str) -> String {
    match location {
        StoreLocation::Local(path) => path.join(rel).display().to_string(),
        other => {
            let text = other.to_string();
            match text.split_once('?') {
                Some((head, query)) => format!("{}/{rel}?{query}", head.trim_end_matches('/')),
                None => format!("{}/{rel}", text.trim_end_matches('/')),
            }
        }
    }
}

/// Where the active copy of `pair.pool`'s data is in `phase`: its own
/// `data/` folder, or its replica folder at the partner.
#[must_use]
pub fn active_copy(pair: &Pair, phase: Phase) -> String {
    if phase.at_partner() {
        below(&pair.partner.store, &format!("backup/{}", pair.pool.fqdn))
    } else {
        active_copy_home(&pair.pool)
    }
}

/// The active copy of an unpaired pool's data: its own `data/`.
#[must_use]
pub fn active_copy_home(pool: &Pool) -> String {
    below(&pool.store, "data")
}

/// Where the active CMS is when `holder` holds it: the master's own data, or
/// the master's replica folder at its partner.
#[must_use]
pub fn cms_copy(deployment: &Deployment, holder: &Pool) -> String {
    let module = crate::topology::Module::CmsMaster.identity();
    if holder.fqdn == deployment.cms_master {
        below(&holder.store, &format!("data/{module}"))
    } else {
        below(
            &holder.store,
            &format!("backup/{}/{module}", deployment.cms_master),
        )
    }
}
