//! The `[[role]]` tables: custom roles, each made from a standard role (its
//! template) and limited to some scopes and, optionally, some of the
//! template's cmdlets. Checked against `rbac::catalog`.

use std::collections::HashSet;

use toml::Spanned;

use super::raw::RawRole;
use super::{DeploymentError, Source};
use crate::rbac::{Role, Scope, catalog};
use crate::topology::Site;

/// Every custom role, in file order; the first invalid one is an error.
pub(super) fn roles_from(
    src: &Source<'_>,
    sites: &[Site],
    raw: Vec<RawRole>,
) -> Result<Vec<Role>, DeploymentError> {
    let site_ids: HashSet<u32> = sites.iter().map(|s| s.site_id).collect();
    let mut identities = HashSet::new();
    let mut roles: Vec<Role> = Vec::new();
    for r in raw {
        let role = role_from(src, &site_ids, &mut identities, &r)?;
        roles.push(role);
    }
    Ok(roles)
}

/// One role: a new identity (not a standard role's, nor an earlier one's in
/// `identities`, lower-cased), a standard template, scopes and cmdlets.
fn role_from(
    src: &Source<'_>,
    site_ids: &HashSet<u32>,
    identities: &mut HashSet<String>,
    r: &RawRole,
) -> Result<Role, DeploymentError> {
    let identity = r.identity.get_ref().trim().to_string();
    if identity.is_empty() {
        return Err(src.error(r.identity.span(), "role identity is empty"));
    }
    if catalog::standard_role(&identity).is_some()
        || !identities.insert(identity.to_ascii_lowercase())
    {
        return Err(src.error(
            r.identity.span(),
            format!("duplicate role '{identity}' (standard roles exist already)"),
        ));
    }
    let template = catalog::standard_role(r.template.get_ref()).ok_or_else(|| {
        src.error(
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
    let scopes = scopes_from(src, site_ids, &r.config_scopes)?;
    if scopes.is_empty() {
        return Err(src.error(
            r.identity.span(),
            format!(
                "role '{identity}' has no config_scopes: give [\"global\"] or [\"site:<SiteId>\"]"
            ),
        ));
    }
    let cmdlets = cmdlets_from(src, &identity, template, r.cmdlets.as_deref())?;
    Ok(Role {
        identity,
        cmdlets,
        scopes,
        is_standard: false,
        template: template.identity.to_string(),
    })
}

/// `config_scopes`: `global` or `site:<SiteId>` of a site of this deployment.
fn scopes_from(
    src: &Source<'_>,
    site_ids: &HashSet<u32>,
    raw: &[Spanned<String>],
) -> Result<Vec<Scope>, DeploymentError> {
    let mut scopes = Vec::new();
    for s in raw {
        let scope = Scope::parse(s.get_ref()).map_err(|m| src.error(s.span(), m))?;
        if let Scope::Site(id) = scope
            && !site_ids.contains(&id)
        {
            return Err(src.error(
                s.span(),
                format!("scope '{scope}' names no site of this deployment"),
            ));
        }
        scopes.push(scope);
    }
    Ok(scopes)
}

/// `cmdlets`: some of the template's cmdlets, by their catalog names; all of
/// them when the role lists none.
fn cmdlets_from(
    src: &Source<'_>,
    identity: &str,
    template: &catalog::StandardRole,
    raw: Option<&[Spanned<String>]>,
) -> Result<Vec<String>, DeploymentError> {
    let allowed = template.cmdlet_names();
    let Some(list) = raw else {
        return Ok(allowed
            .iter()
            .map(std::string::ToString::to_string)
            .collect());
    };
    let mut out = Vec::new();
    for c in list {
        let Some(known) = catalog::cmdlet(c.get_ref()) else {
            return Err(src.error(c.span(), format!("unknown cmdlet '{}'", c.get_ref())));
        };
        if !allowed.contains(&known.name) {
            return Err(src.error(
                c.span(),
                format!(
                    "role '{identity}' cannot grant {}: its template {} does not have it",
                    known.name, template.identity
                ),
            ));
        }
        out.push(known.name.to_string());
    }
    Ok(out)
}
