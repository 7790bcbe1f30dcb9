//! The integration tests: one binary, a module per area, driving the real
//! `poolsync` binary through a small builder (see `common`).

mod common;

mod cli;
mod crash_world;
mod deployment;
mod failover;
mod failover_crash;
mod failover_crash_more;
mod failover_quarantine;
mod failover_race;
mod failover_status;
mod failover_writes;
mod fault_points;
mod faults;
mod messages;
mod rbac;
mod repl;
mod s3;
mod sandbox;
mod scripts;
mod service;
mod status;
mod sync;
mod sync_crash;
mod sync_props;
