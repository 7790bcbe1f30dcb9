//! The one table of cmdlets and standard roles: used by the access checks, by
//! `help`, by `get_admin_role` and by `docs/rbac.md`.

/// A cmdlet poolsync implements, and the script function that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmdlet {
    /// The Lync Server name, e.g. `Invoke-CsBackupServiceSync`.
    pub name: &'static str,
    /// The script function, e.g. `invoke_backup_service_sync`.
    pub function: &'static str,
    /// Reads only (view-only roles may run it).
    pub read_only: bool,
    /// Acts on the whole deployment (its settings, its CMS): needs a role
    /// with `global` scope.
    pub global_only: bool,
    /// A Lync Server cmdlet (false: poolsync's own, named the same way for
    /// roles, with no Lync counterpart).
    pub lync: bool,
}

const fn read(name: &'static str, function: &'static str) -> Cmdlet {
    Cmdlet {
        name,
        function,
        read_only: true,
        global_only: false,
        lync: true,
    }
}

const fn write(name: &'static str, function: &'static str) -> Cmdlet {
    Cmdlet {
        name,
        function,
        read_only: false,
        global_only: false,
        lync: true,
    }
}

/// poolsync's own function, with a cmdlet-style name for roles.
const fn own(name: &'static str, function: &'static str) -> Cmdlet {
    Cmdlet {
        lync: false,
        ..write(name, function)
    }
}

pub const CMDLETS: &[Cmdlet] = &[
    read("Get-CsPool", "get_pool"),
    read("Get-CsSite", "get_site"),
    read(
        "Get-CsPoolBackupRelationship",
        "get_pool_backup_relationship",
    ),
    read("Get-CsAdminRole", "get_admin_role"),
    write("Invoke-CsBackupServiceSync", "invoke_backup_service_sync"),
    read("Get-CsBackupServiceStatus", "get_backup_service_status"),
    read(
        "Get-CsBackupServiceConfiguration",
        "get_backup_service_configuration",
    ),
    Cmdlet {
        name: "Set-CsBackupServiceConfiguration",
        function: "set_backup_service_configuration",
        read_only: false,
        global_only: true,
        lync: true,
    },
    read(
        "Debug-CsInterPoolReplication",
        "debug_inter_pool_replication",
    ),
    write("Backup-CsPool", "backup_pool"),
    write("Invoke-CsPoolFailOver", "invoke_pool_failover"),
    write("Invoke-CsPoolFailBack", "invoke_pool_failback"),
    // Lync grants it to RTCUniversalServerAdmins only: it moves the
    // deployment's one Central Management Store.
    Cmdlet {
        name: "Invoke-CsManagementServerFailover",
        function: "invoke_management_server_failover",
        read_only: false,
        global_only: true,
        lync: true,
    },
    // poolsync's own: Lync restores with Invoke-CsBackupServiceSync.
    own("Restore-CsPoolData", "restore_pool_data"),
];

/// A standard role: global scope, a fixed set of cmdlets.
pub struct StandardRole {
    pub identity: &'static str,
    pub description: &'static str,
    /// `None`: every cmdlet.
    pub cmdlets: Option<&'static [&'static str]>,
}

const READ_ALL: &[&str] = &[
    "Get-CsPool",
    "Get-CsSite",
    "Get-CsPoolBackupRelationship",
    "Get-CsAdminRole",
    "Get-CsBackupServiceStatus",
    "Get-CsBackupServiceConfiguration",
    "Debug-CsInterPoolReplication",
];
const POOLS_ONLY: &[&str] = &["Get-CsPool", "Get-CsSite"];

pub const STANDARD_ROLES: &[StandardRole] = &[
    StandardRole {
        identity: "CsAdministrator",
        description: "every cmdlet, on every pool",
        cmdlets: None,
    },
    StandardRole {
        identity: "CsServerAdministrator",
        description: "every pool, status, sync and backup cmdlet, but not the deployment-wide settings (manage, monitor, troubleshoot servers and services)",
        cmdlets: Some(&[
            "Get-CsPool",
            "Get-CsSite",
            "Get-CsPoolBackupRelationship",
            "Get-CsAdminRole",
            "Invoke-CsBackupServiceSync",
            "Get-CsBackupServiceStatus",
            "Get-CsBackupServiceConfiguration",
            "Debug-CsInterPoolReplication",
            "Backup-CsPool",
            "Invoke-CsPoolFailOver",
            "Invoke-CsPoolFailBack",
            "Invoke-CsManagementServerFailover",
            "Restore-CsPoolData",
        ]),
    },
    StandardRole {
        identity: "CsViewOnlyAdministrator",
        description: "only the cmdlets that read (Get- and Debug-)",
        cmdlets: Some(READ_ALL),
    },
    StandardRole {
        identity: "CsHelpDesk",
        description: "read pools, sites, pairs and backup status",
        cmdlets: Some(&[
            "Get-CsPool",
            "Get-CsSite",
            "Get-CsPoolBackupRelationship",
            "Get-CsBackupServiceStatus",
        ]),
    },
    StandardRole {
        identity: "CsUserAdministrator",
        description: "users; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
    StandardRole {
        identity: "CsVoiceAdministrator",
        description: "voice; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
    StandardRole {
        identity: "CsArchivingAdministrator",
        description: "archiving; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
    StandardRole {
        identity: "CsResponseGroupAdministrator",
        description: "response groups; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
    StandardRole {
        identity: "CsResponseGroupManager",
        description: "response groups; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
    StandardRole {
        identity: "CsLocationAdministrator",
        description: "locations; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
    StandardRole {
        identity: "CsPersistentChatAdministrator",
        description: "persistent chat; here: read pools and sites",
        cmdlets: Some(POOLS_ONLY),
    },
];

impl StandardRole {
    /// The cmdlets this role may run, Lync names.
    #[must_use]
    pub fn cmdlet_names(&self) -> Vec<&'static str> {
        match self.cmdlets {
            Some(list) => list.to_vec(),
            None => CMDLETS.iter().map(|c| c.name).collect(),
        }
    }
}

/// Finds a standard role, case-insensitively.
#[must_use]
pub fn standard_role(identity: &str) -> Option<&'static StandardRole> {
    STANDARD_ROLES
        .iter()
        .find(|r| r.identity.eq_ignore_ascii_case(identity))
}

/// Finds a cmdlet by its Lync name or its script function, case-insensitively.
#[must_use]
pub fn cmdlet(name: &str) -> Option<&'static Cmdlet> {
    CMDLETS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name) || c.function.eq_ignore_ascii_case(name))
}

/// `docs/rbac.md`'s tables, generated from this file.
#[must_use]
pub fn reference_markdown() -> String {
    let mut out = String::from("| role | may run |\n|---|---|\n");
    for r in STANDARD_ROLES {
        out.push_str(&format!(
            "| `{}` | {} ({}) |\n",
            r.identity,
            r.cmdlet_names().join(", "),
            r.description
        ));
    }
    out.push_str("\n| cmdlet | function | kind |\n|---|---|---|\n");
    for c in CMDLETS {
        let kind = if c.global_only {
            "changes the whole deployment (global scope)"
        } else if c.read_only {
            "read"
        } else {
            "changes data"
        };
        out.push_str(&format!("| `{}` | `{}` | {kind} |\n", c.name, c.function));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_roles_name_known_cmdlets_and_view_only_reads() {
        for r in STANDARD_ROLES {
            for c in r.cmdlet_names() {
                assert!(cmdlet(c).is_some(), "{} names unknown {c}", r.identity);
            }
        }
        let view = standard_role("csviewonlyadministrator").unwrap();
        assert!(
            view.cmdlet_names()
                .iter()
                .all(|c| cmdlet(c).unwrap().read_only)
        );
        assert_eq!(
            cmdlet("invoke_backup_service_sync").unwrap().name,
            "Invoke-CsBackupServiceSync"
        );
    }
}
