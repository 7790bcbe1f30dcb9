//! The `[[site]]` tables: each site on its own, then that no two share an
//! identity or a number.

use std::collections::HashSet;

use toml::Spanned;

use super::raw::RawSite;
use super::{DeploymentError, Source};
use crate::topology::Site;

/// Every site, in file order; the first invalid or duplicate one is an error.
pub(super) fn sites_from(
    src: &Source<'_>,
    raw: Vec<Spanned<RawSite>>,
) -> Result<Vec<Site>, DeploymentError> {
    let mut sites: Vec<Site> = Vec::new();
    let mut seen = Seen::default();
    for site in raw {
        let site = site.into_inner();
        let parsed = site_from(src, &site)?;
        seen.check_unique(src, &site, &parsed)?;
        sites.push(parsed);
    }
    Ok(sites)
}

/// One site: a non-empty identity that cannot be taken for a site number, and
/// a `site_id` that fits in 32 bits.
fn site_from(src: &Source<'_>, site: &RawSite) -> Result<Site, DeploymentError> {
    let identity = site.identity.get_ref().trim().to_string();
    if identity.is_empty() {
        return Err(src.error(site.identity.span(), "site identity is empty"));
    }
    // `site:<SiteId>` names a site by number (in scopes and look-ups): an
    // identity of that form would be taken for another site's number.
    if identity
        .as_bytes()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"site:"))
    {
        return Err(src.error(
            site.identity.span(),
            format!("site identity '{identity}' starts with 'site:', which names a site by its number: choose a name such as 'Atlanta'"),
        ));
    }
    let id = *site.site_id.get_ref();
    if !(1..=i64::from(u32::MAX)).contains(&id) {
        return Err(src.error(
            site.site_id.span(),
            format!("site_id {id} is out of range: use a positive whole number"),
        ));
    }
    Ok(Site {
        identity,
        site_id: id as u32,
        description: site.description.clone(),
    })
}

/// The identities (lower-cased) and numbers of the sites so far.
#[derive(Default)]
struct Seen {
    identities: HashSet<String>,
    ids: HashSet<u32>,
}

impl Seen {
    /// A site's identity (case-insensitively) and number are its own.
    fn check_unique(
        &mut self,
        src: &Source<'_>,
        raw: &RawSite,
        site: &Site,
    ) -> Result<(), DeploymentError> {
        let identity = &site.identity;
        if !self.identities.insert(identity.to_ascii_lowercase()) {
            return Err(src.error(raw.identity.span(), format!("duplicate site '{identity}'")));
        }
        let id = site.site_id;
        if !self.ids.insert(id) {
            return Err(src.error(
                raw.site_id.span(),
                format!("duplicate site_id {id}: each site needs its own"),
            ));
        }
        Ok(())
    }
}
