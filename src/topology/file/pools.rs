//! The `[[pool]]` tables: each pool on its own (its name, site, partner and
//! store), in file order; its name and computers are checked against the
//! earlier pools' by `computers.rs`.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::computers::Owners;
use super::raw::RawPool;
use super::{DeploymentError, Source};
use crate::store::{StoreLocation, StoreOwner};
use crate::topology::{Fqdn, Pool, Site};

/// A pool, with the positions the deployment-wide checks point at.
pub(super) struct ParsedPool {
    pub pool: Pool,
    pub backup_span: Option<Range<usize>>,
    /// The `store` setting, or the pool's `fqdn` when it has none.
    pub store_span: Range<usize>,
}

/// What every pool's store is resolved against: the deployment file's folder,
/// and the deployment's S3 credentials file (`[deployment] s3_credentials`).
pub(super) struct StoreDefaults<'a> {
    pub base: &'a Path,
    pub s3_credentials: Option<&'a Spanned<String>>,
}

/// Every pool, in file order; the first invalid one is an error.
pub(super) fn pools_from(
    src: &Source<'_>,
    raw: Vec<Spanned<RawPool>>,
    sites: &[Site],
    defaults: &StoreDefaults<'_>,
) -> Result<Vec<ParsedPool>, DeploymentError> {
    let sites: HashMap<String, &Site> = sites
        .iter()
        .map(|s| (s.identity.to_ascii_lowercase(), s))
        .collect();
    let mut parsed: Vec<ParsedPool> = Vec::new();
    let mut owners = Owners::default();
    for pool in raw {
        let raw = pool.into_inner();
        let fqdn = Fqdn::parse(raw.fqdn.get_ref())
            .map_err(|m| src.error(raw.fqdn.span(), format!("pool fqdn: {m}")))?;
        if owners.has_pool(&fqdn) {
            return Err(src.error(raw.fqdn.span(), format!("duplicate pool '{fqdn}'")));
        }
        let mut pool = pool_from(src, &raw, fqdn, &sites, defaults)?;
        owners.check_pool_name(src, &parsed, &pool.fqdn, raw.fqdn.span())?;
        pool.computers = owners.computers_from(src, &parsed, &pool.fqdn, &raw.computers)?;
        owners.add(parsed.len(), &pool);
        parsed.push(ParsedPool {
            backup_span: raw.backup_pool.as_ref().map(toml::Spanned::span),
            store_span: raw
                .store
                .as_ref()
                .map_or(raw.fqdn.span(), toml::Spanned::span),
            pool,
        });
    }
    Ok(parsed)
}

/// One pool named `fqdn`, without its computers: its site must exist, its
/// backup pool be a valid FQDN (that it exists is checked in `pairs.rs`) and
/// its store a valid location.
fn pool_from(
    src: &Source<'_>,
    raw: &RawPool,
    fqdn: Fqdn,
    sites: &HashMap<String, &Site>,
    defaults: &StoreDefaults<'_>,
) -> Result<Pool, DeploymentError> {
    let site = sites
        .get(&raw.site.get_ref().trim().to_ascii_lowercase())
        .ok_or_else(|| {
            src.error(
                raw.site.span(),
                format!(
                    "pool '{fqdn}' names site '{}', which does not exist: add a [[site]] with that identity",
                    raw.site.get_ref()
                ),
            )
        })?;
    let backup_pool = match &raw.backup_pool {
        Some(b) => Some(
            Fqdn::parse(b.get_ref())
                .map_err(|m| src.error(b.span(), format!("backup_pool: {m}")))?,
        ),
        None => None,
    };
    let store = store_from(src, raw, &fqdn, defaults)?;
    Ok(Pool {
        site: site.identity.clone(),
        backup_pool,
        store,
        computers: Vec::new(),
        services: raw.services.clone(),
        fqdn,
    })
}

/// The pool's store: its `store` setting, or `stores/FQDN` beside the file.
/// An `s3://` store reads the pool's credentials file, else the deployment's;
/// a pool's own `s3_credentials` needs an `s3://` store.
fn store_from(
    src: &Source<'_>,
    raw: &RawPool,
    fqdn: &Fqdn,
    defaults: &StoreDefaults<'_>,
) -> Result<StoreLocation, DeploymentError> {
    let base = defaults.base;
    let credentials = raw
        .s3_credentials
        .as_ref()
        .or(defaults.s3_credentials)
        .map(|c| base.join(c.get_ref()));
    let owner = StoreOwner {
        pool: fqdn.as_str(),
        credentials_file: credentials.as_deref(),
    };
    let store = match &raw.store {
        Some(s) => {
            StoreLocation::parse(s.get_ref(), base, owner).map_err(|m| src.error(s.span(), m))?
        }
        None => StoreLocation::Local(base.join("stores").join(fqdn.as_str())),
    };
    if let Some(c) = &raw.s3_credentials
        && !matches!(store, StoreLocation::S3(_))
    {
        return Err(src.error(
            c.span(),
            format!(
                "pool '{fqdn}' has s3_credentials but its store is not an s3:// URL: remove the setting or change the store"
            ),
        ));
    }
    Ok(store)
}
