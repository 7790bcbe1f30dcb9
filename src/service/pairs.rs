//! Which pairs a service serves: every pair of the deployment, or those of
//! the pools named with `--pool`, each once, each checked against the
//! operator's rights.

use crate::error::Error;
use crate::rbac::Access;
use crate::topology::{Deployment, Pair, Pool};

/// The pairs to serve, each once, each checked against the operator's rights.
pub(super) fn to_serve(
    d: &Deployment,
    access: &Access,
    pools: &[String],
) -> Result<Vec<Pair>, Error> {
    const CMDLET: &str = "Invoke-CsBackupServiceSync";
    let named: Vec<&Pool> = if pools.is_empty() {
        // Every pair, served if the operator may sync either of its pools.
        d.pairs()
            .into_iter()
            .map(|(a, b)| if access.may(d, CMDLET, a) { a } else { b })
            .collect()
    } else {
        pools
            .iter()
            .map(|p| d.require_pool(p).map_err(Error::Usage))
            .collect::<Result<_, _>>()?
    };
    let mut chosen: Vec<Pair> = Vec::new();
    for pool in named {
        let Some(pair) = d.pair_of(pool) else {
            return Err(Error::Usage(format!(
                "--pool {}: it has no backup pool, so there is nothing to serve",
                pool.fqdn
            )));
        };
        // The right is checked on the pool named, as for a script's sync.
        access.check_pool(d, CMDLET, pool).map_err(Error::Usage)?;
        // One loop per pair, however it was named.
        if !chosen.iter().any(|c| c.key() == pair.key()) {
            chosen.push(pair);
        }
    }
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "deployment '{}' has no backup pairs to serve",
            d.name
        )));
    }
    Ok(chosen)
}
