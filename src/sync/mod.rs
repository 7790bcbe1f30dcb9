//! The backup service engine: delta sync between paired pool stores.
//!
//! Depends on `topology` and `store`; knows nothing of scripts or terminals.

mod changes;
mod direction;
mod dry_run;
mod engine;
mod error;
mod failover;
mod fault;
mod guard;
mod journal;
mod lag;
mod live_status;
pub mod manifest;
mod manifest_cache;
mod meta_json;
mod options;
mod pair_lock;
mod plan;
mod recovery;
mod report;
mod run;
mod ship;
mod stage;
mod state;
pub mod status;
mod time;
mod verify;
mod watch;

pub use changes::ChangeSet;
pub use engine::SyncEngine;
pub use error::SyncError;
pub use failover::{
    FailoverOptions, FailoverReport, Mode, ModuleLoss, PairState, PairView, Phase, PoolState,
    Quarantine, WriteHold, active_copy, active_copy_home, cms_copy,
};
pub use guard::GUARD_MIN_ITEMS;
pub use live_status::{FailoverStatus, ModuleStatus, PoolStatus};
pub use options::{CancelFlag, Progress, SyncOptions};
pub use plan::batch_byte_limit;
pub use report::{DirectionReport, SyncReport, human_bytes};
pub use state::{ExportState, ImportState};
pub use time::format_time;
pub use verify::{ReplicaCheck, ReplicationReport};
pub use watch::{WatchPlan, WatchTarget, WatchedRecord};

/// Milliseconds, with a tenth, for the debug log.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
