//! A computer is in one pool only, once: no two pools list the same computer,
//! and no pool is listed as another pool's computer. (A Standard Edition
//! server is its own pool: a pool may list its own name.)

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use toml::Spanned;

use super::pools::ParsedPool;
use super::{DeploymentError, Source};
use crate::topology::{Fqdn, Pool};

/// The pools read so far, by name, and the pool each of their computers
/// belongs to: what a new pool's name and computers are checked against.
#[derive(Default)]
pub(super) struct Owners {
    pools: HashMap<Fqdn, usize>,
    computers: HashMap<String, usize>,
}

impl Owners {
    /// Whether an earlier pool has this name.
    pub(super) fn has_pool(&self, fqdn: &Fqdn) -> bool {
        self.pools.contains_key(fqdn)
    }

    /// Adds `pool`, the `index`th of the file, once its checks passed.
    pub(super) fn add(&mut self, index: usize, pool: &Pool) {
        self.pools.insert(pool.fqdn.clone(), index);
        for computer in &pool.computers {
            self.computers.insert(computer.clone(), index);
        }
    }

    /// A new pool's name is no earlier pool's computer.
    pub(super) fn check_pool_name(
        &self,
        src: &Source<'_>,
        earlier: &[ParsedPool],
        fqdn: &Fqdn,
        span: Range<usize>,
    ) -> Result<(), DeploymentError> {
        if let Some(&owner) = self.computers.get(fqdn.as_str()) {
            return Err(src.error(
                span,
                format!(
                    "pool '{fqdn}' is listed as a computer of pool '{}': a computer is in one pool only",
                    earlier[owner].pool.fqdn
                ),
            ));
        }
        Ok(())
    }

    /// The computers of pool `fqdn`, lower-cased: each a valid FQDN, listed
    /// once, and neither an earlier pool nor one of its computers.
    pub(super) fn computers_from(
        &self,
        src: &Source<'_>,
        earlier: &[ParsedPool],
        fqdn: &Fqdn,
        raw: &[Spanned<String>],
    ) -> Result<Vec<String>, DeploymentError> {
        let mut computers = Vec::new();
        let mut listed = HashSet::new();
        for c in raw {
            let computer = Fqdn::parse(c.get_ref())
                .map_err(|m| src.error(c.span(), format!("computer: {m}")))?;
            // The first earlier pool that is this computer or lists it.
            let owner = [
                self.pools.get(&computer),
                self.computers.get(computer.as_str()),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(&owner) = owner {
                return Err(src.error(
                    c.span(),
                    format!(
                        "computer '{computer}' of pool '{fqdn}' already belongs to pool '{}': a computer is in one pool only",
                        earlier[owner].pool.fqdn
                    ),
                ));
            }
            if !listed.insert(computer.clone()) {
                return Err(src.error(
                    c.span(),
                    format!("computer '{computer}' is listed twice in pool '{fqdn}'"),
                ));
            }
            computers.push(computer.to_string());
        }
        Ok(computers)
    }
}
