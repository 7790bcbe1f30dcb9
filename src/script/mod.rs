//! The script layer: binds the deployment and the sync engine to Rhai.
//!
//! The only part of poolsync that knows Rhai; the REPL and the command line use it.

mod api;
pub mod bounded;
mod context;
pub mod definitions;
pub mod diagnostic;
mod engine;
pub mod help;
mod options;
mod progress;
mod property;
pub mod record;
pub mod render;
mod runner;
pub mod sandbox;
pub mod types;

pub use api::take_exit_status;
pub use context::ScriptContext;
pub use engine::{build_engine, sandboxed_engine};
pub use runner::{Runner, check_file, check_source, strip_shebang};
pub use sandbox::{Limits, MAX_CALL_DEPTH, group_digits};
