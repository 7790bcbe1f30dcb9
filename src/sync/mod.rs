//! The backup service engine: delta sync between paired pool stores.
//!
//! Depends on `topology` and `store`; knows nothing of scripts or terminals.

mod engine;
mod inspect;
pub mod manifest;
mod plan;
mod report;
mod state;
pub mod status;

pub use engine::{CancelFlag, GUARD_MIN_ITEMS, Progress, SyncEngine, SyncError, SyncOptions};
pub use inspect::{ModuleStatus, PoolStatus, ReplicaCheck, ReplicationReport, format_time};
pub use plan::batch_byte_limit;
pub use report::{DirectionReport, SyncReport, human_bytes};
pub use state::{ExportState, ImportState};
