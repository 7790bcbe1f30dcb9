//! The `[[operator]]` tables: who may run what, by the roles they hold
//! (standard or custom).

use std::collections::{HashMap, HashSet};

use super::raw::RawOperator;
use super::{DeploymentError, Source};
use crate::rbac::{OperatorDef, Role, catalog};

/// Every operator, in file order; the first invalid one is an error.
pub(super) fn operators_from(
    src: &Source<'_>,
    roles: &[Role],
    raw: Vec<RawOperator>,
) -> Result<Vec<OperatorDef>, DeploymentError> {
    // Custom roles by lower-cased identity; the first of a name, as a search
    // in file order would find.
    let mut custom: HashMap<String, &str> = HashMap::new();
    for role in roles {
        custom
            .entry(role.identity.to_ascii_lowercase())
            .or_insert(&role.identity);
    }
    let mut names = HashSet::new();
    let mut operators: Vec<OperatorDef> = Vec::new();
    for o in raw {
        let operator = operator_from(src, &custom, &mut names, &o)?;
        operators.push(operator);
    }
    Ok(operators)
}

/// One operator: a new, non-empty name (not in `names`), and roles that
/// exist (standard, or custom by lower-cased identity), under the identity
/// the catalog or the `[[role]]` writes.
fn operator_from(
    src: &Source<'_>,
    custom: &HashMap<String, &str>,
    names: &mut HashSet<String>,
    o: &RawOperator,
) -> Result<OperatorDef, DeploymentError> {
    let name = o.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(src.error(o.name.span(), "operator name is empty"));
    }
    if !names.insert(name.clone()) {
        return Err(src.error(o.name.span(), format!("duplicate operator '{name}'")));
    }
    let mut roles = Vec::new();
    for r in &o.roles {
        let known = catalog::standard_role(r.get_ref())
            .map(|s| s.identity)
            .or_else(|| custom.get(&r.get_ref().to_ascii_lowercase()).copied());
        let Some(known) = known else {
            return Err(src.error(
                r.span(),
                format!(
                    "operator '{name}' has role '{}', which does not exist",
                    r.get_ref()
                ),
            ));
        };
        roles.push(known.to_string());
    }
    Ok(OperatorDef { name, roles })
}
