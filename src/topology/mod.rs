//! The deployment: sites, pools, pairs and settings, read from `deployment.toml`.
//!
//! Knows nothing of scripts or of how data is copied.

mod deployment;
mod file;
mod fqdn;
mod module;
mod pair;
pub mod settings;

pub use deployment::{Deployment, Pool, Site};
pub use file::{DeploymentError, load, parse};
pub use fqdn::Fqdn;
pub use module::{Category, Module, ModuleSelection};
pub use pair::Pair;
pub use settings::BackupServiceSettings;
