//! The validated model of one deployment: sites, pools, pairs, the CMS and settings.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{BackupServiceSettings, Fqdn, Module};
use crate::printable::printable;
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
    /// Pools and sites by name, built once when the file is read.
    pub(super) lookup: Lookup,
}

/// Where each pool and site is in a [`Deployment`]'s lists, by lower-cased
/// name (and sites by number), so that a look-up does not scan them: a
/// deployment of 20,000 pools looks up each pool's partner and site to load.
/// Every hit is checked against the list, and a miss looks through it, so a
/// list changed after loading is still searched correctly, only slower.
#[derive(Debug, Clone)]
pub(super) struct Lookup {
    pools: HashMap<String, usize>,
    sites: HashMap<String, usize>,
    site_ids: HashMap<u32, usize>,
}

impl Lookup {
    /// The index of validated lists: FQDNs and site identities unique
    /// case-insensitively, site numbers unique.
    pub(super) fn new(sites: &[Site], pools: &[Pool]) -> Lookup {
        Lookup {
            pools: (pools.iter().enumerate())
                .map(|(i, p)| (p.fqdn.as_str().to_ascii_lowercase(), i))
                .collect(),
            sites: (sites.iter().enumerate())
                .map(|(i, s)| (s.identity.to_ascii_lowercase(), i))
                .collect(),
            site_ids: (sites.iter().enumerate())
                .map(|(i, s)| (s.site_id, i))
                .collect(),
        }
    }
}

/// The item at `hit` if `matches` says it is the one, else the first that is.
fn checked<'a, T>(
    list: &'a [T],
    hit: Option<&usize>,
    matches: impl Fn(&T) -> bool,
) -> Option<&'a T> {
    match hit.and_then(|&i| list.get(i)) {
        Some(item) if matches(item) => Some(item),
        _ => list.iter().find(|item| matches(item)),
    }
}

impl Deployment {
    /// Finds a pool by FQDN, case-insensitively.
    #[must_use]
    pub fn pool(&self, fqdn: &str) -> Option<&Pool> {
        let wanted = fqdn.strip_suffix('.').unwrap_or(fqdn);
        let hit = self.lookup.pools.get(&wanted.to_ascii_lowercase());
        checked(&self.pools, hit, |p| {
            p.fqdn.as_str().eq_ignore_ascii_case(wanted)
        })
    }

    /// Finds a pool or explains that it does not exist.
    pub fn require_pool(&self, fqdn: &str) -> Result<&Pool, String> {
        self.pool(fqdn).ok_or_else(|| {
            format!(
                "no pool '{}' in deployment '{}'",
                printable(fqdn),
                self.name
            )
        })
    }

    /// Finds a site by identity (case-insensitive) or by `site:ID`.
    #[must_use]
    pub fn site(&self, identity: &str) -> Option<&Site> {
        if let Some(id) = identity.strip_prefix("site:") {
            let id: u32 = id.parse().ok()?;
            let hit = self.lookup.site_ids.get(&id);
            return checked(&self.sites, hit, |s| s.site_id == id);
        }
        let hit = self.lookup.sites.get(&identity.to_ascii_lowercase());
        checked(&self.sites, hit, |s| {
            s.identity.eq_ignore_ascii_case(identity)
        })
    }

    #[must_use]
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
    #[must_use]
    pub fn modules_of(&self, pool: &Pool) -> Vec<Module> {
        let mut modules = vec![Module::PresenceFocus, Module::DataConf];
        if pool.fqdn == self.cms_master {
            modules.push(Module::CmsMaster);
        }
        modules
    }

    /// Whether the CMS lives at this pool or its partner (the pair that carries `CMSMaster`).
    #[must_use]
    pub fn pair_hosts_cms(&self, pool: &Pool) -> bool {
        pool.fqdn == self.cms_master || pool.backup_pool.as_ref() == Some(&self.cms_master)
    }

    /// The pairs of the deployment, each once, ordered by their first FQDN.
    #[must_use]
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const TEXT: &str = r#"
[deployment]
name = "t"
cms_master = "a.x.com"

[[site]]
identity = "Atlanta"
site_id = 7

[[site]]
identity = "Dallas"
site_id = 3

[[pool]]
fqdn = "a.x.com"
site = "atlanta"
backup_pool = "b.x.com"

[[pool]]
fqdn = "B.x.com"
site = "Dallas"
backup_pool = "a.x.com"
"#;

    fn deployment() -> Deployment {
        crate::topology::parse(TEXT, Path::new("d.toml"), Path::new("/base")).unwrap()
    }

    #[test]
    fn pools_and_sites_are_found_by_any_spelling() {
        let d = deployment();
        assert_eq!(d.pool("A.X.COM.").map(|p| p.site.as_str()), Some("Atlanta"));
        assert_eq!(d.pool("b.x.com").map(|p| p.fqdn.as_str()), Some("b.x.com"));
        assert!(d.pool("c.x.com").is_none());
        assert_eq!(d.site("DALLAS").map(|s| s.site_id), Some(3));
        assert_eq!(
            d.site("site:7").map(|s| s.identity.as_str()),
            Some("Atlanta")
        );
        assert!(d.site("site:1").is_none() && d.site("Austin").is_none());
        assert_eq!(d.site_of(&d.pools[1]).identity, "Dallas");
        let pairs = d.pairs();
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].0.fqdn.as_str(), pairs[0].1.fqdn.as_str()),
            ("a.x.com", "b.x.com")
        );
    }

    #[test]
    fn lists_changed_after_loading_are_still_searched_correctly() {
        let mut d = deployment();
        d.pools.swap(0, 1);
        d.sites.remove(0);
        assert_eq!(d.pool("a.x.com").map(|p| p.fqdn.as_str()), Some("a.x.com"));
        assert_eq!(d.pool("b.x.com").map(|p| p.fqdn.as_str()), Some("b.x.com"));
        assert_eq!(d.site("Dallas").map(|s| s.site_id), Some(3));
        assert!(d.site("Atlanta").is_none() && d.site("site:7").is_none());
    }
}
