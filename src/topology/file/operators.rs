//! The `[[operator]]` tables: who may run what, by the roles they hold
//! (standard or custom).

use super::raw::RawOperator;
use super::{DeploymentError, Source};
use crate::rbac::{OperatorDef, Role, catalog};

/// Every operator, in file order; the first invalid one is an error.
pub(super) fn operators_from(
    src: &Source<'_>,
    roles: &[Role],
    raw: Vec<RawOperator>,
) -> Result<Vec<OperatorDef>, DeploymentError> {
    let mut operators: Vec<OperatorDef> = Vec::new();
    for o in raw {
        let operator = operator_from(src, roles, &operators, &o)?;
        operators.push(operator);
    }
    Ok(operators)
}

/// One operator: a new, non-empty name, and roles that exist (by their
/// identity as the catalog or the `[[role]]` writes it).
fn operator_from(
    src: &Source<'_>,
    roles: &[Role],
    earlier: &[OperatorDef],
    o: &RawOperator,
) -> Result<OperatorDef, DeploymentError> {
    let name = o.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(src.error(o.name.span(), "operator name is empty"));
    }
    if earlier.iter().any(|x| x.name == name) {
        return Err(src.error(o.name.span(), format!("duplicate operator '{name}'")));
    }
    let mut names = Vec::new();
    for r in &o.roles {
        let known = catalog::standard_role(r.get_ref())
            .map(|s| s.identity.to_string())
            .or_else(|| {
                roles
                    .iter()
                    .find(|x| x.identity.eq_ignore_ascii_case(r.get_ref()))
                    .map(|x| x.identity.clone())
            });
        let Some(known) = known else {
            return Err(src.error(
                r.span(),
                format!(
                    "operator '{name}' has role '{}', which does not exist",
                    r.get_ref()
                ),
            ));
        };
        names.push(known);
    }
    Ok(OperatorDef { name, roles: names })
}
