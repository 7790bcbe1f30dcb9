//! Pairing is 1:1 and mutual: a pool's backup pool exists, is not the pool
//! itself, and names it back. A pair inside one site is allowed, with a
//! warning.

use std::collections::HashMap;

use super::pools::ParsedPool;
use super::{DeploymentError, Source};
use crate::topology::{Fqdn, Pool};

/// Checks every pool's pairing; returns the warnings (pairs inside one site).
/// Every backup pool must exist before any pairing is judged mutual, so the
/// first broken link is reported, not a symptom of it.
pub(super) fn check_pairs(
    src: &Source<'_>,
    parsed: &[ParsedPool],
    index: &HashMap<&Fqdn, &Pool>,
) -> Result<Vec<String>, DeploymentError> {
    for p in parsed {
        check_partner_exists(src, p, index)?;
    }
    let mut warnings = Vec::new();
    for p in parsed {
        warnings.extend(check_mutual(src, p, index)?);
    }
    Ok(warnings)
}

/// The backup pool is another pool of the deployment.
fn check_partner_exists(
    src: &Source<'_>,
    p: &ParsedPool,
    index: &HashMap<&Fqdn, &Pool>,
) -> Result<(), DeploymentError> {
    let (Some(backup), Some(span)) = (&p.pool.backup_pool, &p.backup_span) else {
        return Ok(());
    };
    if *backup == p.pool.fqdn {
        return Err(src.error(
            span.clone(),
            format!("pool '{}' names itself as its backup pool", p.pool.fqdn),
        ));
    }
    if !index.contains_key(backup) {
        return Err(src.error(
            span.clone(),
            format!(
                "backup pool '{backup}' of pool '{}' does not exist: add a [[pool]] with that fqdn",
                p.pool.fqdn
            ),
        ));
    }
    Ok(())
}

/// The backup pool names this pool back; a warning (once per pair) when
/// both are in one site.
fn check_mutual(
    src: &Source<'_>,
    p: &ParsedPool,
    index: &HashMap<&Fqdn, &Pool>,
) -> Result<Option<String>, DeploymentError> {
    let (Some(backup), Some(span)) = (&p.pool.backup_pool, &p.backup_span) else {
        return Ok(None);
    };
    let Some(partner) = index.get(backup) else {
        return Ok(None);
    };
    if partner.backup_pool.as_ref() != Some(&p.pool.fqdn) {
        let names = match &partner.backup_pool {
            Some(other) => format!("names '{other}'"),
            None => "names no backup pool".to_string(),
        };
        return Err(src.error(
            span.clone(),
            format!(
                "pairing must be mutual: pool '{}' has backup pool '{backup}', but '{backup}' {names}; set its backup_pool = \"{}\"",
                p.pool.fqdn, p.pool.fqdn
            ),
        ));
    }
    if partner.site == p.pool.site && p.pool.fqdn < partner.fqdn {
        return Ok(Some(src.warning(
            span.clone(),
            format!(
                "pools '{}' and '{backup}' are paired inside one site ('{}'): a site disaster takes both",
                p.pool.fqdn, p.pool.site
            ),
        )));
    }
    Ok(None)
}
