//! poolsync: keeps paired server pools in sync, after the Lync Server Backup Service.
//!
//! See `src/README.md` for the map of this crate.

pub mod cli;
pub mod demo;
pub mod dirs;
pub mod error;
pub mod input;
pub mod interrupt;
pub mod log;
pub mod memory;
pub mod open_files;
pub mod output;
pub mod printable;
pub mod rbac;
pub mod repl;
pub mod script;
pub mod service;
pub mod store;
pub mod sync;
pub mod table;
pub mod topology;

pub use error::{Error, Result};

/// Runs the command line; returns the exit status.
#[must_use]
pub fn run() -> i32 {
    open_files::raise_soft_limit();
    cli::main()
}
