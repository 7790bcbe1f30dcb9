//! A pool and its backup pool, resolved once: what a sync, a status or a
//! verification works on.

use super::{Deployment, Fqdn, Pool};

/// A pool and its partner, in the order the user named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The pool that was named.
    pub pool: Pool,
    /// Its backup pool.
    pub partner: Pool,
}

impl Pair {
    /// The two FQDNs in sorted order: the same however the pair was named.
    #[must_use]
    pub fn key(&self) -> (&Fqdn, &Fqdn) {
        let (a, b) = (&self.pool.fqdn, &self.partner.fqdn);
        if a < b { (a, b) } else { (b, a) }
    }

    /// The two pools in the order of [`Pair::key`].
    #[must_use]
    pub fn ordered(&self) -> (&Pool, &Pool) {
        if self.pool.fqdn < self.partner.fqdn {
            (&self.pool, &self.partner)
        } else {
            (&self.partner, &self.pool)
        }
    }
}

impl Deployment {
    /// `pool` with its backup pool, or `None` when it has none.
    #[must_use]
    pub fn pair_of(&self, pool: &Pool) -> Option<Pair> {
        let partner = self.pool(pool.backup_pool.as_ref()?.as_str())?;
        Some(Pair {
            pool: pool.clone(),
            partner: partner.clone(),
        })
    }
}
