//! The shape of `deployment.toml` as serde reads it: every table and key,
//! with the position of each value (for messages), before any validation.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub deployment: Spanned<RawDeployment>,
    #[serde(default)]
    pub site: Vec<Spanned<RawSite>>,
    #[serde(default)]
    pub pool: Vec<Spanned<RawPool>>,
    pub backup_service: Option<RawSettings>,
    #[serde(default)]
    pub role: Vec<RawRole>,
    #[serde(default)]
    pub operator: Vec<RawOperator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub identity: Spanned<String>,
    pub template: Spanned<String>,
    pub config_scopes: Vec<Spanned<String>>,
    pub cmdlets: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    pub name: Spanned<String>,
    pub roles: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    pub name: Spanned<String>,
    pub cms_master: Spanned<String>,
    /// The file with S3 credentials for every s3:// store (see store/s3.rs).
    pub s3_credentials: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub identity: Spanned<String>,
    pub site_id: Spanned<i64>,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub fqdn: Spanned<String>,
    pub site: Spanned<String>,
    pub backup_pool: Option<Spanned<String>>,
    pub store: Option<Spanned<String>>,
    /// This pool's own S3 credentials file, instead of the deployment's.
    pub s3_credentials: Option<Spanned<String>>,
    #[serde(default)]
    pub computers: Vec<Spanned<String>>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// `[backup_service]`: one field per setting of
/// [`SETTING_NAMES`](crate::topology::settings::SETTING_NAMES), under its
/// name (serde needs the fields spelled out; a test in `backup_service.rs`
/// fails when the two lists drift).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub sync_interval: Option<Spanned<String>>,
    pub max_batches_per_user_store_sync: Option<Spanned<i64>>,
    pub max_batches_per_cms_sync: Option<Spanned<i64>>,
    pub max_data_conf_package_size_kb: Option<Spanned<i64>>,
    pub max_concurrent_calls: Option<Spanned<i64>>,
    pub batch_max_items: Option<Spanned<i64>>,
    pub batch_max_kb: Option<Spanned<i64>>,
    pub transfer_parallelism: Option<Spanned<i64>>,
    pub watch_changes: Option<Spanned<bool>>,
}
