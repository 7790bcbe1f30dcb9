//! The deployment: sites, pools, pairs, settings, and where the file comes from.
//!
//! Knows nothing of scripts or of how data is copied.

mod deployment;
mod file;
mod fqdn;
pub mod init;
pub mod locate;
mod module;
mod pair;
pub mod settings;

pub use deployment::{Deployment, Pool, Site};
pub use file::{DeploymentError, load, parse};
pub use fqdn::Fqdn;
pub use module::{Category, Module, ModuleSelection};
pub use pair::Pair;
pub use settings::BackupServiceSettings;
