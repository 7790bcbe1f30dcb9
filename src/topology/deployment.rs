//! The validated model of one deployment: sites, pools, pairs, the CMS and settings.

use std::path::PathBuf;

use super::{BackupServiceSettings, Fqdn, Module};
use crate::store::StoreLocation;

/// One site of the deployment (Get-CsSite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub identity: String,
    pub site_id: u32,
    pub description: String,
}

/// One pool (Get-CsPool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub fqdn: Fqdn,
    pub site: String,
    pub backup_pool: Option<Fqdn>,
    pub store: StoreLocation,
    pub computers: Vec<String>,
    pub services: Vec<String>,
}

/// A whole deployment, as read from `deployment.toml`.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    pub cms_master: Fqdn,
    pub sites: Vec<Site>,
    pub pools: Vec<Pool>,
    pub settings: BackupServiceSettings,
    /// Custom roles (`[[role]]`); the standard roles are implied.
    pub roles: Vec<crate::rbac::Role>,
    /// Operators (`[[operator]]`); none means single-user.
    pub operators: Vec<crate::rbac::OperatorDef>,
    /// Non-fatal findings (e.g. a pair inside one site), each `file:line:col: warning: ...`.
    pub warnings: Vec<String>,
}

impl Deployment {
    /// Finds a pool by FQDN, case-insensitively.
    pub fn pool(&self, fqdn: &str) -> Option<&Pool> {
        let wanted = fqdn.strip_suffix('.').unwrap_or(fqdn);
        self.pools
            .iter()
            .find(|p| p.fqdn.as_str().eq_ignore_ascii_case(wanted))
    }

    /// Finds a pool or explains that it does not exist.
    pub fn require_pool(&self, fqdn: &str) -> Result<&Pool, String> {
        self.pool(fqdn)
            .ok_or_else(|| format!("no pool '{fqdn}' in deployment '{}'", self.name))
    }

    /// Finds a site by identity (case-insensitive) or by `site:ID`.
    pub fn site(&self, identity: &str) -> Option<&Site> {
        if let Some(id) = identity.strip_prefix("site:") {
            let id: u32 = id.parse().ok()?;
            return self.sites.iter().find(|s| s.site_id == id);
        }
        self.sites
            .iter()
            .find(|s| s.identity.eq_ignore_ascii_case(identity))
    }

    pub fn site_of(&self, pool: &Pool) -> &Site {
        // Validation guarantees every pool's site exists.
        self.site(&pool.site)
            .unwrap_or_else(|| unreachable!("pool {} names a validated site", pool.fqdn))
    }

    pub fn pools_in_site<'a>(&'a self, site: &'a Site) -> impl Iterator<Item = &'a Pool> + 'a {
        self.pools
            .iter()
            .filter(move |p| p.site.eq_ignore_ascii_case(&site.identity))
    }

    /// The modules a pool exports: both user-data modules, and the CMS at the CMS master.
    pub fn modules_of(&self, pool: &Pool) -> Vec<Module> {
        let mut modules = vec![Module::PresenceFocus, Module::DataConf];
        if pool.fqdn == self.cms_master {
            modules.push(Module::CmsMaster);
        }
        modules
    }

    /// Whether the CMS lives at this pool or its partner (the pair that carries CMSMaster).
    pub fn pair_hosts_cms(&self, pool: &Pool) -> bool {
        pool.fqdn == self.cms_master || pool.backup_pool.as_ref() == Some(&self.cms_master)
    }

    /// The pairs of the deployment, each once, ordered by their first FQDN.
    pub fn pairs(&self) -> Vec<(&Pool, &Pool)> {
        let mut pairs = Vec::new();
        for pool in &self.pools {
            if let Some(partner) = pool
                .backup_pool
                .as_ref()
                .and_then(|b| self.pool(b.as_str()))
                && pool.fqdn < partner.fqdn
            {
                pairs.push((pool, partner));
            }
        }
        pairs
    }
}
