//! Role-based access: which operator may run which cmdlet on which pools.
//!
//! `catalog` is the table of cmdlets and standard roles; `model` the roles and
//! operators a deployment declares; `access` the decision, made inside every
//! script function before it touches anything; `trust` the check that the
//! deployment file (which holds the rights) is not writable by others.

mod access;
pub mod catalog;
mod model;
mod trust;

pub use access::{Access, AccessError, all_roles, os_user};
pub use model::{OperatorDef, Role, Scope};
pub use trust::check_trusted;
