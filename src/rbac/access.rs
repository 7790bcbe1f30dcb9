//! The access decision.

use super::model::Role;
use crate::printable::printable;
use crate::topology::{Deployment, Pool};

/// Who is running poolsync and what they may do.
#[derive(Debug, Clone)]
pub struct Access {
    pub operator: String,
    pub roles: Vec<Role>,
}

/// A refusal at start-up (`--as`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccessError(pub String);

/// The operating-system user running this process (from the real uid, not the
/// environment, which anyone can set).
#[must_use]
pub fn os_user() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0u8; 4096];
    // SAFETY: `passwd` is a C struct of integers and pointers, for which all
    // zeroes is a valid (empty) value; getpwuid_r fills it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: the buffers outlive the call; `result` points into `pwd` on success.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &raw mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        // SAFETY: pw_name is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    format!("uid{uid}")
}

/// Every role of a deployment: the standard ones, then its custom ones.
#[must_use]
pub fn all_roles(d: &Deployment) -> Vec<Role> {
    let mut roles = Role::standard();
    roles.extend(d.roles.iter().cloned());
    roles
}

impl Access {
    /// The rights of `user` in `d`. A deployment without operators is single-user:
    /// whoever runs it is `CsAdministrator`.
    #[must_use]
    pub fn for_user(d: &Deployment, user: &str) -> Access {
        let all = all_roles(d);
        let roles = if d.operators.is_empty() {
            all.into_iter()
                .filter(|r| r.identity == "CsAdministrator")
                .collect()
        } else {
            d.operators
                .iter()
                .filter(|o| o.name == user)
                .flat_map(|o| o.roles.iter())
                .filter_map(|name| {
                    all.iter()
                        .find(|r| r.identity.eq_ignore_ascii_case(name))
                        .cloned()
                })
                .collect()
        };
        Access {
            operator: user.to_string(),
            roles,
        }
    }

    /// The rights to use: the real user's, or with `as_user` another operator's,
    /// which only a global `CsAdministrator` may take.
    pub fn resolve(
        d: &Deployment,
        real_user: &str,
        as_user: Option<&str>,
    ) -> Result<Access, AccessError> {
        let real = Access::for_user(d, real_user);
        let Some(other) = as_user else {
            return Ok(real);
        };
        if !real
            .roles
            .iter()
            .any(|r| r.identity == "CsAdministrator" && r.is_global())
        {
            return Err(AccessError(format!(
                "--as {} refused: only an operator holding CsAdministrator may act as another; {real_user} holds {}",
                printable(other),
                real.role_list()
            )));
        }
        if !d.operators.iter().any(|o| o.name == other) {
            return Err(AccessError(format!(
                "--as {0}: no operator '{0}' in deployment '{1}'",
                printable(other),
                d.name
            )));
        }
        Ok(Access::for_user(d, other))
    }

    /// The operator's roles, for messages: `AtlantaServerAdmins, CsHelpDesk`.
    #[must_use]
    pub fn role_list(&self) -> String {
        if self.roles.is_empty() {
            "no roles".to_string()
        } else {
            self.roles
                .iter()
                .map(|r| r.identity.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// May the operator run `cmdlet` on pools of site `site_id`?
    #[must_use]
    pub fn may_on_site(&self, cmdlet: &str, site_id: u32) -> bool {
        self.roles
            .iter()
            .any(|r| r.allows(cmdlet) && r.covers_site(site_id))
    }

    /// May the operator run `cmdlet` on `pool`?
    #[must_use]
    pub fn may(&self, d: &Deployment, cmdlet: &str, pool: &Pool) -> bool {
        self.may_on_site(cmdlet, d.site_of(pool).site_id)
    }

    /// Refuses, with who, what and where, unless the operator may run `cmdlet` on `pool`.
    pub fn check_pool(&self, d: &Deployment, cmdlet: &str, pool: &Pool) -> Result<(), String> {
        if self.may(d, cmdlet, pool) {
            return Ok(());
        }
        Err(format!(
            "access denied: {} ({}) may not run {cmdlet} on {} (site {})",
            self.operator,
            self.role_list(),
            pool.fqdn,
            pool.site
        ))
    }

    /// Refuses unless the operator may run `cmdlet` somewhere.
    pub fn check_any(&self, cmdlet: &str) -> Result<(), String> {
        if self.roles.iter().any(|r| r.allows(cmdlet)) {
            return Ok(());
        }
        Err(format!(
            "access denied: {} ({}) may not run {cmdlet}",
            self.operator,
            self.role_list()
        ))
    }

    /// Refuses unless the operator may run `cmdlet` with global scope, if
    /// the catalog says it acts on the whole deployment.
    pub fn check_global_if_required(&self, cmdlet: &str) -> Result<(), String> {
        match super::catalog::cmdlet(cmdlet) {
            Some(c) if c.global_only => self.check_global(c.name),
            _ => Ok(()),
        }
    }

    /// Refuses unless the operator may run `cmdlet` with global scope.
    pub fn check_global(&self, cmdlet: &str) -> Result<(), String> {
        if self.roles.iter().any(|r| r.allows(cmdlet) && r.is_global()) {
            return Ok(());
        }
        Err(format!(
            "access denied: {} ({}) may not run {cmdlet}: it changes the whole deployment and needs a role with global scope",
            self.operator,
            self.role_list()
        ))
    }
}
