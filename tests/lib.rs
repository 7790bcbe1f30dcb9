//! The integration tests: one binary, a module per area, driving the real
//! `poolsync` binary through a small builder (see `common`).

mod common;

mod cli;
mod crash_world;
mod deployment;
mod failover;
mod failover_crash;
mod fault_points;
mod faults;
mod faulty_store;
mod messages;
mod rbac;
mod repl;
mod s3;
mod s3_faults;
mod s3_harness;
mod s3_proxy;
mod sandbox;
mod scripts;
mod status;
mod sync;
mod sync_crash;
mod sync_faults;
mod sync_props;
