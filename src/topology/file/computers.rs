//! A computer is in one pool only, once: no two pools list the same computer,
//! and no pool is listed as another pool's computer. (A Standard Edition
//! server is its own pool: a pool may list its own name.)

use toml::Spanned;

use super::pools::ParsedPool;
use super::{DeploymentError, Source};
use crate::topology::Fqdn;

/// A new pool's name is no earlier pool's computer.
pub(super) fn check_pool_name(
    src: &Source<'_>,
    earlier: &[ParsedPool],
    fqdn: &Fqdn,
    span: std::ops::Range<usize>,
) -> Result<(), DeploymentError> {
    if let Some(owner) = earlier
        .iter()
        .find(|p| p.pool.computers.contains(&fqdn.to_string()))
    {
        return Err(src.error(
            span,
            format!(
                "pool '{fqdn}' is listed as a computer of pool '{}': a computer is in one pool only",
                owner.pool.fqdn
            ),
        ));
    }
    Ok(())
}

/// The computers of pool `fqdn`, lower-cased: each a valid FQDN, listed once,
/// and neither an earlier pool nor one of its computers.
pub(super) fn computers_from(
    src: &Source<'_>,
    earlier: &[ParsedPool],
    fqdn: &Fqdn,
    raw: &[Spanned<String>],
) -> Result<Vec<String>, DeploymentError> {
    let mut computers = Vec::new();
    for c in raw {
        let computer =
            Fqdn::parse(c.get_ref()).map_err(|m| src.error(c.span(), format!("computer: {m}")))?;
        let owner = earlier
            .iter()
            .map(|p| &p.pool)
            .find(|p| p.fqdn == computer || p.computers.contains(&computer.to_string()));
        if let Some(owner) = owner {
            return Err(src.error(
                c.span(),
                format!(
                    "computer '{computer}' of pool '{fqdn}' already belongs to pool '{}': a computer is in one pool only",
                    owner.fqdn
                ),
            ));
        }
        if computers.contains(&computer.to_string()) {
            return Err(src.error(
                c.span(),
                format!("computer '{computer}' is listed twice in pool '{fqdn}'"),
            ));
        }
        computers.push(computer.to_string());
    }
    Ok(computers)
}
