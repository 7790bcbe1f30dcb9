//! Reading and validating `deployment.toml`.
//!
//! Every error names the file, line and column of the offending value, so an
//! administrator can jump straight to it.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::settings::parse_sync_interval;
use super::{BackupServiceSettings, Deployment, Fqdn, Pool, Site};
use crate::rbac::{OperatorDef, Role, Scope, catalog};
use crate::store::{StoreLocation, StoreOwner};

/// An invalid or unreadable deployment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentError {
    pub file: PathBuf,
    /// 1-based line and column, when the error has a position.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for DeploymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for DeploymentError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    deployment: Spanned<RawDeployment>,
    #[serde(default)]
    site: Vec<Spanned<RawSite>>,
    #[serde(default)]
    pool: Vec<Spanned<RawPool>>,
    backup_service: Option<RawSettings>,
    #[serde(default)]
    role: Vec<RawRole>,
    #[serde(default)]
    operator: Vec<RawOperator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    identity: Spanned<String>,
    template: Spanned<String>,
    config_scopes: Vec<Spanned<String>>,
    cmdlets: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    name: Spanned<String>,
    roles: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    name: Spanned<String>,
    cms_master: Spanned<String>,
    /// The file with S3 credentials for every s3:// store (see store/s3.rs).
    s3_credentials: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    identity: Spanned<String>,
    site_id: Spanned<i64>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    fqdn: Spanned<String>,
    site: Spanned<String>,
    backup_pool: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    /// This pool's own S3 credentials file, instead of the deployment's.
    s3_credentials: Option<Spanned<String>>,
    #[serde(default)]
    computers: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    sync_interval: Option<Spanned<String>>,
    max_batches_per_user_store_sync: Option<Spanned<i64>>,
    max_batches_per_cms_sync: Option<Spanned<i64>>,
    max_data_conf_package_size_kb: Option<Spanned<i64>>,
    max_concurrent_calls: Option<Spanned<i64>>,
    batch_max_items: Option<Spanned<i64>>,
    batch_max_kb: Option<Spanned<i64>>,
    transfer_parallelism: Option<Spanned<i64>>,
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> DeploymentError {
        DeploymentError {
            file: self.file.to_path_buf(),
            position: Some(line_col(self.text, span.start)),
            message: message.into(),
        }
    }

    fn warning(&self, span: Range<usize>, message: impl fmt::Display) -> String {
        let (line, col) = line_col(self.text, span.start);
        format!("{}:{line}:{col}: warning: {message}", self.file.display())
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Reads and validates a deployment file.
pub fn load(path: &Path) -> Result<Deployment, DeploymentError> {
    let text = std::fs::read_to_string(path).map_err(|e| DeploymentError {
        file: path.to_path_buf(),
        position: None,
        message: format!("cannot read the deployment file: {e}"),
    })?;
    // Store paths are relative to the file's folder; resolve it once, absolutely,
    // so a store shows (and stays) the same whatever the working directory.
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = std::path::absolute(&folder).unwrap_or(folder);
    parse(&text, path, &base)
}

/// The key of a `key = value` line whose value starts at `offset`.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text.get(line_start..offset)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then_some(key)
}

/// Parses and validates deployment text; `file` is used in messages, `base` resolves
/// relative store paths.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Deployment, DeploymentError> {
    let ctx = Ctx { file, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', " ");
        // serde says what type it found, not for which key: name the key the
        // value belongs to, and what to write ("expected i64" is Rust's word).
        let message = match key_before(text, span.start) {
            Some(key) if message.starts_with("invalid type") => {
                let wanted =
                    if message.ends_with("expected i64") || message.ends_with("expected u64") {
                        ": write a whole number without quotes".to_string()
                    } else if message.ends_with("expected a string") {
                        ": write it in double quotes".to_string()
                    } else {
                        String::new()
                    };
                format!(
                    "{key}: {}{wanted}",
                    message
                        .replace("expected i64", "expected a whole number")
                        .replace("expected u64", "expected a whole number")
                )
            }
            _ => message,
        };
        ctx.error(span, message)
    })?;
    let mut warnings = Vec::new();

    let deployment = raw.deployment.into_inner();
    let name = deployment.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(ctx.error(deployment.name.span(), "deployment name is empty"));
    }

    // Sites.
    let mut sites: Vec<Site> = Vec::new();
    for site in raw.site {
        let site = site.into_inner();
        let identity = site.identity.get_ref().trim().to_string();
        if identity.is_empty() {
            return Err(ctx.error(site.identity.span(), "site identity is empty"));
        }
        // `site:<SiteId>` names a site by number (in scopes and look-ups): an
        // identity of that form would be taken for another site's number.
        if identity
            .as_bytes()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"site:"))
        {
            return Err(ctx.error(
                site.identity.span(),
                format!("site identity '{identity}' starts with 'site:', which names a site by its number: choose a name such as 'Atlanta'"),
            ));
        }
        let id = *site.site_id.get_ref();
        if !(1..=i64::from(u32::MAX)).contains(&id) {
            return Err(ctx.error(
                site.site_id.span(),
                format!("site_id {id} is out of range: use a positive whole number"),
            ));
        }
        if sites
            .iter()
            .any(|s| s.identity.eq_ignore_ascii_case(&identity))
        {
            return Err(ctx.error(site.identity.span(), format!("duplicate site '{identity}'")));
        }
        if sites.iter().any(|s| i64::from(s.site_id) == id) {
            return Err(ctx.error(
                site.site_id.span(),
                format!("duplicate site_id {id}: each site needs its own"),
            ));
        }
        sites.push(Site {
            identity,
            site_id: id as u32,
            description: site.description,
        });
    }

    // Pools, first pass: each pool on its own.
    struct Parsed {
        pool: Pool,
        backup_span: Option<Range<usize>>,
        /// The `store` setting, or the pool's `fqdn` when it has none.
        store_span: Range<usize>,
    }
    let mut parsed: Vec<Parsed> = Vec::new();
    for pool in raw.pool {
        let pool = pool.into_inner();
        let fqdn = Fqdn::parse(pool.fqdn.get_ref())
            .map_err(|m| ctx.error(pool.fqdn.span(), format!("pool fqdn: {m}")))?;
        if parsed.iter().any(|p| p.pool.fqdn == fqdn) {
            return Err(ctx.error(pool.fqdn.span(), format!("duplicate pool '{fqdn}'")));
        }
        let site = sites
            .iter()
            .find(|s| s.identity.eq_ignore_ascii_case(pool.site.get_ref().trim()))
            .ok_or_else(|| {
                ctx.error(
                    pool.site.span(),
                    format!(
                        "pool '{fqdn}' names site '{}', which does not exist: add a [[site]] with that identity",
                        pool.site.get_ref()
                    ),
                )
            })?;
        let backup_pool = match &pool.backup_pool {
            Some(b) => Some(
                Fqdn::parse(b.get_ref())
                    .map_err(|m| ctx.error(b.span(), format!("backup_pool: {m}")))?,
            ),
            None => None,
        };
        let credentials = pool
            .s3_credentials
            .as_ref()
            .or(deployment.s3_credentials.as_ref())
            .map(|c| base.join(c.get_ref()));
        let owner = StoreOwner {
            pool: fqdn.as_str(),
            credentials_file: credentials.as_deref(),
        };
        let store = match &pool.store {
            Some(s) => StoreLocation::parse(s.get_ref(), base, owner)
                .map_err(|m| ctx.error(s.span(), m))?,
            None => StoreLocation::Local(base.join("stores").join(fqdn.as_str())),
        };
        if let Some(c) = &pool.s3_credentials
            && !matches!(store, StoreLocation::S3(_))
        {
            return Err(ctx.error(
                c.span(),
                format!(
                    "pool '{fqdn}' has s3_credentials but its store is not an s3:// URL: remove the setting or change the store"
                ),
            ));
        }
        if let Some(owner) = parsed
            .iter()
            .find(|p| p.pool.computers.contains(&fqdn.to_string()))
        {
            return Err(ctx.error(
                pool.fqdn.span(),
                format!(
                    "pool '{fqdn}' is listed as a computer of pool '{}': a computer is in one pool only",
                    owner.pool.fqdn
                ),
            ));
        }
        let mut computers = Vec::new();
        for c in &pool.computers {
            let computer = Fqdn::parse(c.get_ref())
                .map_err(|m| ctx.error(c.span(), format!("computer: {m}")))?;
            // A computer belongs to one pool, once. Its name may be its own
            // pool's (a Standard Edition server is its pool), not another's.
            let owner = parsed
                .iter()
                .map(|p| &p.pool)
                .find(|p| p.fqdn == computer || p.computers.contains(&computer.to_string()));
            if let Some(owner) = owner {
                return Err(ctx.error(
                    c.span(),
                    format!(
                        "computer '{computer}' of pool '{fqdn}' already belongs to pool '{}': a computer is in one pool only",
                        owner.fqdn
                    ),
                ));
            }
            if computers.contains(&computer.to_string()) {
                return Err(ctx.error(
                    c.span(),
                    format!("computer '{computer}' is listed twice in pool '{fqdn}'"),
                ));
            }
            computers.push(computer.to_string());
        }
        parsed.push(Parsed {
            backup_span: pool.backup_pool.as_ref().map(|b| b.span()),
            store_span: pool.store.as_ref().map_or(pool.fqdn.span(), |s| s.span()),
            pool: Pool {
                fqdn,
                site: site.identity.clone(),
                backup_pool,
                store,
                computers,
                services: pool.services,
            },
        });
    }

    // Every pool has a store of its own, not inside another pool's.
    for (i, later) in parsed.iter().enumerate() {
        for earlier in &parsed[..i] {
            let (a, b) = (&earlier.pool, &later.pool);
            let relation = if a.store.contains(&b.store) && b.store.contains(&a.store) {
                "is also the store of"
            } else if a.store.contains(&b.store) {
                "lies inside the store of"
            } else if b.store.contains(&a.store) {
                "contains the store of"
            } else {
                continue;
            };
            return Err(ctx.error(
                later.store_span.clone(),
                format!(
                    "the store of pool '{}' ({}) {relation} pool '{}' ({}): give each pool a store of its own, side by side",
                    b.fqdn, b.store, a.fqdn, a.store
                ),
            ));
        }
    }

    // Second pass: pairing is 1:1 and mutual.
    let index: HashMap<&Fqdn, &Pool> = parsed.iter().map(|p| (&p.pool.fqdn, &p.pool)).collect();
    for p in &parsed {
        let (Some(backup), Some(span)) = (&p.pool.backup_pool, &p.backup_span) else {
            continue;
        };
        if *backup == p.pool.fqdn {
            return Err(ctx.error(
                span.clone(),
                format!("pool '{}' names itself as its backup pool", p.pool.fqdn),
            ));
        }
        if !index.contains_key(backup) {
            return Err(ctx.error(
                span.clone(),
                format!(
                    "backup pool '{backup}' of pool '{}' does not exist: add a [[pool]] with that fqdn",
                    p.pool.fqdn
                ),
            ));
        }
    }
    for p in &parsed {
        let (Some(backup), Some(span)) = (&p.pool.backup_pool, &p.backup_span) else {
            continue;
        };
        let Some(partner) = index.get(backup) else {
            continue;
        };
        if partner.backup_pool.as_ref() != Some(&p.pool.fqdn) {
            let names = match &partner.backup_pool {
                Some(other) => format!("names '{other}'"),
                None => "names no backup pool".to_string(),
            };
            return Err(ctx.error(
                span.clone(),
                format!(
                    "pairing must be mutual: pool '{}' has backup pool '{backup}', but '{backup}' {names}; set its backup_pool = \"{}\"",
                    p.pool.fqdn, p.pool.fqdn
                ),
            ));
        }
        if partner.site == p.pool.site && p.pool.fqdn < partner.fqdn {
            warnings.push(ctx.warning(
                span.clone(),
                format!(
                    "pools '{}' and '{backup}' are paired inside one site ('{}'): a site disaster takes both",
                    p.pool.fqdn, p.pool.site
                ),
            ));
        }
    }

    let cms_master = Fqdn::parse(deployment.cms_master.get_ref())
        .map_err(|m| ctx.error(deployment.cms_master.span(), format!("cms_master: {m}")))?;
    if !index.contains_key(&cms_master) {
        return Err(ctx.error(
            deployment.cms_master.span(),
            format!("cms_master '{cms_master}' is not a pool of this deployment"),
        ));
    }

    let settings = match raw.backup_service {
        Some(raw) => settings_from(&ctx, raw)?,
        None => BackupServiceSettings::default(),
    };

    let (roles, operators) = rbac_from(&ctx, &sites, raw.role, raw.operator)?;

    Ok(Deployment {
        roles,
        operators,
        name,
        path: file.to_path_buf(),
        cms_master,
        sites,
        pools: parsed.into_iter().map(|p| p.pool).collect(),
        settings,
        warnings,
    })
}

fn rbac_from(
    ctx: &Ctx<'_>,
    sites: &[Site],
    raw_roles: Vec<RawRole>,
    raw_operators: Vec<RawOperator>,
) -> Result<(Vec<Role>, Vec<OperatorDef>), DeploymentError> {
    let mut roles: Vec<Role> = Vec::new();
    for r in raw_roles {
        let identity = r.identity.get_ref().trim().to_string();
        if identity.is_empty() {
            return Err(ctx.error(r.identity.span(), "role identity is empty"));
        }
        if catalog::standard_role(&identity).is_some()
            || roles
                .iter()
                .any(|x| x.identity.eq_ignore_ascii_case(&identity))
        {
            return Err(ctx.error(
                r.identity.span(),
                format!("duplicate role '{identity}' (standard roles exist already)"),
            ));
        }
        let template = catalog::standard_role(r.template.get_ref()).ok_or_else(|| {
            ctx.error(
                r.template.span(),
                format!(
                    "template '{}' is not a standard role: use one of {}",
                    r.template.get_ref(),
                    catalog::STANDARD_ROLES
                        .iter()
                        .map(|s| s.identity)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let allowed = template.cmdlet_names();
        let mut scopes = Vec::new();
        for s in &r.config_scopes {
            let scope = Scope::parse(s.get_ref()).map_err(|m| ctx.error(s.span(), m))?;
            if let Scope::Site(id) = scope
                && !sites.iter().any(|site| site.site_id == id)
            {
                return Err(ctx.error(
                    s.span(),
                    format!("scope '{scope}' names no site of this deployment"),
                ));
            }
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err(ctx.error(r.identity.span(), format!("role '{identity}' has no config_scopes: give [\"global\"] or [\"site:<SiteId>\"]")));
        }
        let cmdlets = match &r.cmdlets {
            None => allowed.iter().map(|s| s.to_string()).collect(),
            Some(list) => {
                let mut out = Vec::new();
                for c in list {
                    let Some(known) = catalog::cmdlet(c.get_ref()) else {
                        return Err(
                            ctx.error(c.span(), format!("unknown cmdlet '{}'", c.get_ref()))
                        );
                    };
                    if !allowed.contains(&known.name) {
                        return Err(ctx.error(c.span(), format!(
                            "role '{identity}' cannot grant {}: its template {} does not have it",
                            known.name, template.identity
                        )));
                    }
                    out.push(known.name.to_string());
                }
                out
            }
        };
        roles.push(Role {
            identity,
            cmdlets,
            scopes,
            is_standard: false,
            template: template.identity.to_string(),
        });
    }
    let mut operators: Vec<OperatorDef> = Vec::new();
    for o in raw_operators {
        let name = o.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(ctx.error(o.name.span(), "operator name is empty"));
        }
        if operators.iter().any(|x| x.name == name) {
            return Err(ctx.error(o.name.span(), format!("duplicate operator '{name}'")));
        }
        let mut names = Vec::new();
        for r in &o.roles {
            let known = catalog::standard_role(r.get_ref())
                .map(|s| s.identity.to_string())
                .or_else(|| {
                    roles
                        .iter()
                        .find(|x| x.identity.eq_ignore_ascii_case(r.get_ref()))
                        .map(|x| x.identity.clone())
                });
            match known {
                Some(k) => names.push(k),
                None => {
                    return Err(ctx.error(
                        r.span(),
                        format!(
                            "operator '{name}' has role '{}', which does not exist",
                            r.get_ref()
                        ),
                    ));
                }
            }
        }
        operators.push(OperatorDef { name, roles: names });
    }
    Ok((roles, operators))
}

fn settings_from(
    ctx: &Ctx<'_>,
    raw: RawSettings,
) -> Result<BackupServiceSettings, DeploymentError> {
    let mut settings = BackupServiceSettings::default();
    if let Some(interval) = raw.sync_interval {
        settings.sync_interval =
            parse_sync_interval(interval.get_ref()).map_err(|m| ctx.error(interval.span(), m))?;
    }
    let numbers = [
        (
            "max_batches_per_user_store_sync",
            raw.max_batches_per_user_store_sync,
        ),
        ("max_batches_per_cms_sync", raw.max_batches_per_cms_sync),
        (
            "max_data_conf_package_size_kb",
            raw.max_data_conf_package_size_kb,
        ),
        ("max_concurrent_calls", raw.max_concurrent_calls),
        ("batch_max_items", raw.batch_max_items),
        ("batch_max_kb", raw.batch_max_kb),
        ("transfer_parallelism", raw.transfer_parallelism),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            settings
                .set_number(name, *value.get_ref())
                .map_err(|m| ctx.error(value.span(), m))?;
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[deployment]
name = "t"
cms_master = "a.x.com"

[[site]]
identity = "S1"
site_id = 1

[[site]]
identity = "S2"
site_id = 2

[[pool]]
fqdn = "A.x.com"
site = "S1"
backup_pool = "b.x.com"

[[pool]]
fqdn = "b.x.com"
site = "s2"
backup_pool = "a.x.com"
store = "memory://b"
"#;

    fn parse_str(text: &str) -> Result<Deployment, DeploymentError> {
        parse(text, Path::new("d.toml"), Path::new("/base"))
    }

    #[test]
    fn good_file() {
        let d = parse_str(GOOD).unwrap();
        assert_eq!(d.pools.len(), 2);
        assert_eq!(d.pools[0].fqdn.as_str(), "a.x.com");
        assert_eq!(d.pools[1].site, "S2");
        assert_eq!(
            d.pools[0].store,
            StoreLocation::Local("/base/stores/a.x.com".into())
        );
        assert!(d.warnings.is_empty());
        assert_eq!(d.pairs().len(), 1);
    }

    #[test]
    fn non_mutual_pairing_points_at_backup_pool() {
        let text = GOOD.replace("backup_pool = \"a.x.com\"\n", "");
        let e = parse_str(&text).unwrap_err();
        assert_eq!(e.position, Some((17, 15)));
        assert!(e.message.contains("pairing must be mutual"), "{e}");
    }

    #[test]
    fn same_site_pairing_warns() {
        let text = GOOD.replace("site = \"s2\"", "site = \"S1\"");
        let d = parse_str(&text).unwrap();
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("inside one site"));
    }

    #[test]
    fn unknown_key_has_position() {
        let text = GOOD.replace("site_id = 2", "site_id = 2\ncolour = 3");
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(13));
    }
}
