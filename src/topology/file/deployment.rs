//! The `[deployment]` table: the deployment's name, and its CMS master, which
//! must be one of its pools.

use std::collections::HashMap;

use super::raw::RawDeployment;
use super::{DeploymentError, Source};
use crate::topology::{Fqdn, Pool};

/// The deployment's name, trimmed; it may not be empty.
pub(super) fn name_from(src: &Source<'_>, raw: &RawDeployment) -> Result<String, DeploymentError> {
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(src.error(raw.name.span(), "deployment name is empty"));
    }
    Ok(name)
}

/// `cms_master`: a valid FQDN, and a pool of this deployment.
pub(super) fn cms_master_from(
    src: &Source<'_>,
    raw: &RawDeployment,
    pools: &HashMap<&Fqdn, &Pool>,
) -> Result<Fqdn, DeploymentError> {
    let span = raw.cms_master.span();
    let cms_master = Fqdn::parse(raw.cms_master.get_ref())
        .map_err(|m| src.error(span.clone(), format!("cms_master: {m}")))?;
    if !pools.contains_key(&cms_master) {
        return Err(src.error(
            span,
            format!("cms_master '{cms_master}' is not a pool of this deployment"),
        ));
    }
    Ok(cms_master)
}
