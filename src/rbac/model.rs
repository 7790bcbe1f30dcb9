//! Roles, scopes and operators as the deployment file declares them.

use std::fmt;

/// Where a role applies: everywhere, or the pools of one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Site(u32),
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, String> {
        if text.eq_ignore_ascii_case("global") {
            return Ok(Scope::Global);
        }
        text.strip_prefix("site:")
            .and_then(|id| id.parse().ok())
            .map(Scope::Site)
            .ok_or_else(|| {
                format!("scope '{text}' is not valid: write \"global\" or \"site:<SiteId>\"")
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Site(id) => write!(f, "site:{id}"),
        }
    }
}

/// A role: a standard one, or a custom one made from a standard template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub identity: String,
    /// Lync cmdlet names.
    pub cmdlets: Vec<String>,
    pub scopes: Vec<Scope>,
    pub is_standard: bool,
    /// The standard role a custom role is made from (itself for a standard role).
    pub template: String,
}

/// An operator: an operating-system user and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDef {
    pub name: String,
    pub roles: Vec<String>,
}

impl Role {
    /// The standard roles, each with global scope.
    #[must_use]
    pub fn standard() -> Vec<Role> {
        super::catalog::STANDARD_ROLES
            .iter()
            .map(|r| Role {
                identity: r.identity.to_string(),
                cmdlets: r
                    .cmdlet_names()
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect(),
                scopes: vec![Scope::Global],
                is_standard: true,
                template: r.identity.to_string(),
            })
            .collect()
    }

    #[must_use]
    pub fn allows(&self, cmdlet: &str) -> bool {
        self.cmdlets.iter().any(|c| c.eq_ignore_ascii_case(cmdlet))
    }

    #[must_use]
    pub fn covers_site(&self, site_id: u32) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == Scope::Global || *s == Scope::Site(site_id))
    }

    #[must_use]
    pub fn is_global(&self) -> bool {
        self.scopes.contains(&Scope::Global)
    }
}
