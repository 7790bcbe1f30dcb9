//! The one table of every function a script can call: signatures, the Lync
//! cmdlet each mirrors, a description and an example (and the typed options
//! map, from `options`). `help()`, `:help`, the
//! completion hints and `docs/functions.md` are all made from it. The cmdlet a
//! function mirrors comes from `rbac::catalog`, not from this table.

use crate::rbac::catalog;

/// The documentation of one script function.
pub struct FnDoc {
    pub name: &'static str,
    pub signatures: &'static [&'static str],
    pub summary: &'static str,
    pub details: &'static str,
    /// A script that runs against the demo deployment (the tests run every one).
    pub example: &'static str,
}

pub const FUNCTIONS: &[FnDoc] = &[
    FnDoc {
        name: "get_pool",
        signatures: &[
            "get_pool() -> array of Pool",
            "get_pool(fqdn: string | Pool) -> Pool",
            "get_pool(#{site: string}) -> array of Pool",
        ],
        summary: "Returns the pools of the deployment: all, one by FQDN, or those of one site.",
        details: "A Pool has fqdn, identity (the FQDN), site, site_id, backup_pool (an FQDN, or () when it has none), computers, services, modules (the module identities it exports), is_cms_master and store, and, read from its stores when asked, active_copy (the folder or URL where its data is active now) and failover (a FailoverStatus: state Home, SwitchingOver, FailedOver, FailingBack or SwitchingBack, active_at, active_copy, epoch, since, last_failover_mode, last_failover_items_lost (() when it never failed over), last_failover_loss (module, last_sync, changed_items, changed), quarantines (every quarantine folder still in its store: folder, items, paths, deleted_at_home, deleted_at_home_paths), cms_active_at, notes). get_pool(P) of one pool also prints Failover (state, since, epoch), ActiveAt and ActiveCopy (placement in JSON). An unknown FQDN or site is an error a script can catch.",
        example: "get_pool(#{site: \"Atlanta\"}).map(|p| p.fqdn)",
    },
    FnDoc {
        name: "get_site",
        signatures: &[
            "get_site() -> array of Site",
            "get_site(identity: string) -> Site",
        ],
        summary: "Returns the sites of the deployment, or one by identity (or \"site:ID\").",
        details: "A Site has identity, site_id, description and pools (their FQDNs).",
        example: "get_site(\"Dallas\").pools",
    },
    FnDoc {
        name: "get_pool_backup_relationship",
        signatures: &["get_pool_backup_relationship(pool: string | Pool) -> string"],
        summary: "Returns the FQDN of a pool's backup pool.",
        details: "Fails with a catchable error when the pool has no backup pool. Method style works too: \"atl-cs-001.litwareinc.com\".get_pool_backup_relationship().",
        example: "\"atl-cs-001.litwareinc.com\".get_pool_backup_relationship()",
    },
    FnDoc {
        name: "invoke_backup_service_sync",
        signatures: &[
            "invoke_backup_service_sync(target: string | Pool) -> SyncReport",
            "invoke_backup_service_sync(target: string | Pool, opts: map) -> SyncReport",
            "invoke_backup_service_sync(targets: array) -> array of SyncReport",
            "invoke_backup_service_sync(targets: array, opts: map) -> array of SyncReport",
        ],
        summary: "Brings a pool and its backup pool into sync, in both directions, copying only what changed.",
        details: "Options: module (a module identity, its short name PresenceFocus, DataConf or CMSMaster, or All; default All), force (true: do not print non-fatal warnings; they stay in the report), what_if (true: compute what would be copied and deleted, change nothing), allow_mass_delete (true: let a sync wipe or shrink a replica by more than half; see docs/restore.md). An array target syncs its pairs concurrently (up to max_concurrent_calls), each pair once. CentralMgmt.CMSMaster flows only from the CMS master to its partner. A SyncReport has pool, backup_pool, what_if, modules (one entry per module and direction: module, from, to, items_copied, bytes_copied, items_deleted, items_unchanged, batches, duration_ms, export_status, pending_items, would_copy, would_delete), warnings, and totals items_copied, bytes_copied, items_deleted.",
        example: "let r = invoke_backup_service_sync(\"atl-cs-001.litwareinc.com\", #{module: \"PresenceFocus\", what_if: true}); r.modules.len()",
    },
    FnDoc {
        name: "get_backup_service_status",
        signatures: &[
            "get_backup_service_status(pool: string | Pool) -> BackupServiceStatus",
            "get_backup_service_status(pool: string | Pool, opts: map) -> BackupServiceStatus",
        ],
        summary: "Returns the Backup Service state of a pool, per module and direction, with what is pending now.",
        details: "Options: module (a module name or All), category (UserData or CMS). A BackupServiceStatus has pool_fqdn, backup_pool_fqdn, overall_export_status, overall_import_status, backup_modules, one ModuleStatus each: identity, export_status, import_status, last_export_time, last_import_time, pending_items, pending_bytes (both () when the partner cannot be reached: unknown, not 0), export_lag_ms and import_lag_ms (the replication lag: the age of the oldest change the copy at the other pool lacks, what losing the pool would lose now; 0 in sync), last_error, and failover (a FailoverStatus, as get_pool(P).failover: where the data is active, since when, the epoch, what the last failover lost, every quarantine). Export is this pool's data going to its partner; import is this pool applying its partner's data. Export states: FinalState (nothing pending), SteadyState (what is pending fits in one batch), NonSteadyState (a backlog), NotInitialized (no export yet, or CMSMaster away from the CMS pool), ErrorState (the last export failed; last_error says why), and while the pool's data is not at home FailingOver, FailedOver or FailingBack (exports refused or waiting; see docs/failover.md). Import states: NormalState, ErrorState, NotInitialized. Pending counts are computed from the stores when you ask.",
        example: "get_backup_service_status(\"atl-cs-001.litwareinc.com\", #{category: \"UserData\"}).backup_modules.map(|m| `${m.identity}: ${m.export_status}`)",
    },
    FnDoc {
        name: "get_backup_service_configuration",
        signatures: &["get_backup_service_configuration() -> BackupServiceConfiguration"],
        summary: "Returns the Backup Service settings in force.",
        details: "Fields: sync_interval (\"hh:mm:ss\"), max_batches_per_user_store_sync, max_batches_per_cms_sync, max_data_conf_package_size_kb, max_concurrent_calls, and poolsync's own batch_max_items, batch_max_kb, transfer_parallelism and watch_changes (true: the service ships each change of a local store within about a second). See docs/deployment.md and docs/service.md.",
        example: "get_backup_service_configuration().sync_interval",
    },
    FnDoc {
        name: "set_backup_service_configuration",
        signatures: &[
            "set_backup_service_configuration(settings: map) -> BackupServiceConfiguration",
        ],
        summary: "Changes Backup Service settings and writes them to the deployment file, keeping its comments.",
        details: "Each value is checked: sync_interval between 00:00:05 and 03:00:00, every limit a positive number, watch_changes true or false; an unknown setting is an error. The change applies to the next sync in this session and to a running service at its next cycle. Needs a role with global scope.",
        example: "set_backup_service_configuration(#{sync_interval: \"00:05:00\"}).sync_interval",
    },
    FnDoc {
        name: "debug_inter_pool_replication",
        signatures: &[
            "debug_inter_pool_replication(pool: string | Pool) -> ReplicationReport",
            "debug_inter_pool_replication(pool: string | Pool, opts: map) -> ReplicationReport",
        ],
        summary: "Compares a pool's data with its copy at the partner (and back) by content hash, item by item.",
        details: "Option: module. A ReplicationReport has pool, backup_pool, in_sync and modules, one ReplicaCheck per module and direction: module, from, to, in_sync, source_items, replica_items, missing, extra, different (item paths) and manifest_mismatches (replica items whose bytes the manifest does not describe). Reads every item: use it to check, not to sync. Fails for a pool without a backup pool.",
        example: "debug_inter_pool_replication(\"atl-cs-001.litwareinc.com\", #{module: \"CMSMaster\"}).modules.len()",
    },
    FnDoc {
        name: "backup_pool",
        signatures: &[
            "backup_pool(pool: string | Pool) -> BackupServiceStatus",
            "backup_pool(pool: string | Pool, opts: map) -> BackupServiceStatus",
        ],
        summary: "Syncs a pool and waits until its exports reach FinalState (full_backup) or SteadyState (steady_state).",
        details: "Without options it waits for FinalState (full_backup). Options: full_backup or steady_state (exactly one, true), category (UserData or CMS), retry_count (default 3, at most 10,000), wait_time (seconds between checks, default 5, at most 86,400). Returns the final status, or fails naming each module that did not get there.",
        example: "backup_pool(\"atl-cs-002.litwareinc.com\", #{full_backup: true, category: \"UserData\"}).overall_export_status",
    },
    FnDoc {
        name: "invoke_pool_failover",
        signatures: &[
            "invoke_pool_failover(pool: string | Pool) -> FailoverReport",
            "invoke_pool_failover(pool: string | Pool, opts: map) -> FailoverReport",
        ],
        summary: "Fails a pool over to its backup pool, which then serves its data from its replica, in place.",
        details: "Planned (the default): the pool must be reachable; its writes are stopped, its last changes shipped, and nothing is lost (items_lost 0). Options: disaster_mode (true: the pool is lost; promote the partner's replica at once without touching the pool; the report says per module when the last sync committed and, if the pool's store can still be read, which items changed after it), what_if (true: say what would happen, change nothing), force (true: in disaster mode, promote a replica that never completed a sync; nothing else is overridden). Refused, with the reason, for a pool without a backup pool, one already failed over, one whose partner is failed over, one holding the active CMS (move it first with invoke_management_server_failover) and, in a planned failover, an unreachable pool or partner. While failed over, syncs of the pair are refused, get_pool(P).active_copy is where the data lives, and demo churn writes there. A FailoverReport has action, pool, backup_pool, what_if, mode, epoch, phase, active_at, active_copy, duration_ms, items_lost, loss, modules, quarantine, would_quarantine, would_restore and warnings. Rerun after a crash, it finishes what was begun. See docs/failover.md.",
        example: "invoke_pool_failover(\"atl-cs-002.litwareinc.com\", #{what_if: true}).active_at",
    },
    FnDoc {
        name: "invoke_pool_failback",
        signatures: &[
            "invoke_pool_failback(pool: string | Pool) -> FailoverReport",
            "invoke_pool_failback(pool: string | Pool, opts: map) -> FailoverReport",
        ],
        summary: "Brings a failed-over pool's data home from its backup pool and makes the pool active again.",
        details: "Both pools must be reachable. Items the pool changed after its last sync, which the active copy never saw, are moved to quarantine/epoch-N/ in the pool's store (listed in the report and in status, kept until you remove them), never overwritten. The active copy then flows home in rounds while it is still written; writes stop for a last round; the pool is active at home again and syncs resume in both directions. Options: what_if (true: list what would be quarantined and copied home), force (true: let the failback delete more than half of the pool's data when the active copy shrank that much). On a pool whose planned failover stopped half-way, it cancels that failover. Rerun after a crash, it goes on where it stopped.",
        example: "invoke_pool_failover(\"atl-cs-002.litwareinc.com\"); invoke_pool_failback(\"atl-cs-002.litwareinc.com\").phase",
    },
    FnDoc {
        name: "restore_pool_data",
        signatures: &[
            "restore_pool_data(pool: string | Pool) -> FailoverReport",
            "restore_pool_data(pool: string | Pool, opts: map) -> FailoverReport",
        ],
        summary: "Copies the items a pool lost back from its partner's replica, keeping every item it still has.",
        details: "The seed's own scenario: a pool that lost some or all of a module while its partner is fine. Options: module (a module name or All, the default), what_if (true: list what would be restored), overwrite (true: also replace items that differ from the replica, moving the pool's version to quarantine/restore-TIME/ first). Nothing is deleted, so the next sync deletes nothing from the replica. The pool must be at home (not failed over). poolsync's own function: Lync repopulates a pool with Invoke-CsBackupServiceSync; its RBAC name is Restore-CsPoolData. See docs/restore.md.",
        example: "restore_pool_data(\"atl-cs-002.litwareinc.com\", #{module: \"DataConf\", what_if: true}).would_restore",
    },
    FnDoc {
        name: "invoke_management_server_failover",
        signatures: &[
            "invoke_management_server_failover() -> FailoverReport",
            "invoke_management_server_failover(opts: map) -> FailoverReport",
        ],
        summary: "Moves the active Central Management Store to the other pool of its pair; the same call again moves it back.",
        details: "CentralMgmt.CMSMaster then flows from the new master to the old one. Planned (the default) first ships the last CMS changes (nothing is lost). disaster_mode: true moves it at once when the master is lost; the report's loss says when the CMS last synced into the new master and, if the old master can still be read, which items it changed after that (they are quarantined at its first sync after it returns). Refused in disaster mode when the new master's replica of the CMS never completed a sync; force: true moves it anyway (the old master's whole CMS is then quarantined at its first sync); force overrides nothing else. Two calls at once move the CMS once: the one that waited for the pair lock changes nothing and says so. Options: disaster_mode, what_if, force. Needs Invoke-CsManagementServerFailover in a role with global scope (a role scoped to sites is refused, even one listing every site), as in Lync.",
        example: "invoke_management_server_failover(#{what_if: true}).active_at",
    },
    FnDoc {
        name: "get_admin_role",
        signatures: &[
            "get_admin_role() -> array of AdminRole",
            "get_admin_role(identity: string) -> AdminRole",
        ],
        summary: "Returns the roles of the deployment (the standard ones and its custom ones), or one.",
        details: "An AdminRole has identity, cmdlets (Lync cmdlet names), config_scopes (\"global\" or \"site:<SiteId>\"), is_standard_role and template. The Lync way to find who may sync, Get-CsAdminRole | Where-Object {$_.Cmdlets -match \"Invoke-CsBackupServiceSync\"}, reads get_admin_role().filter(|r| r.cmdlets.some(|c| c.matches(\"BackupService\"))). See docs/rbac.md.",
        example: "get_admin_role().filter(|r| r.cmdlets.some(|c| c.matches(\"Invoke-CsBackupServiceSync\"))).map(|r| r.identity)",
    },
    FnDoc {
        name: "get_operator",
        signatures: &["get_operator() -> Operator"],
        summary: "Returns who is running poolsync (the operating-system user, or --as NAME) and the roles they hold.",
        details: "An Operator has name and roles. A deployment with no [[operator]] table is single-user: whoever runs it holds CsAdministrator.",
        example: "get_operator().roles",
    },
    FnDoc {
        name: "test_admin_access",
        signatures: &["test_admin_access(cmdlet: string, pool: string | Pool) -> bool"],
        summary: "Tells whether the current operator may run a cmdlet (Lync or function name) on a pool.",
        details: "Lets a script act only on the pools it may touch: get_pool().filter(|p| test_admin_access(\"Invoke-CsBackupServiceSync\", p)). An unknown cmdlet or pool is an error.",
        example: "test_admin_access(\"invoke_backup_service_sync\", \"atl-cs-001.litwareinc.com\")",
    },
    FnDoc {
        name: "matches",
        signatures: &["matches(text: string, regex: string) -> bool"],
        summary: "Tells whether text matches a regular expression (like PowerShell's -match, case-sensitive unless the pattern starts with (?i)).",
        details: "Uses the regex crate's syntax; an invalid pattern is an error.",
        example: "\"Invoke-CsBackupServiceSync\".matches(\"BackupService\")",
    },
    FnDoc {
        name: "to_json",
        signatures: &["to_json(value) -> string"],
        summary: "Renders any value, typed objects included, as JSON.",
        details: "Pools, sites and reports become JSON objects with the same fields as their properties.",
        example: "to_json(get_pool(\"red-cs-003.litwareinc.com\"))",
    },
    FnDoc {
        name: "sleep",
        signatures: &["sleep(seconds: int or float)"],
        summary: "Waits the given number of seconds (0 to 86,400); Ctrl-C cuts it short.",
        details: "Replaces Rhai's own sleep, which ignored Ctrl-C and the operation limit.",
        example: "sleep(0.5)",
    },
    FnDoc {
        name: "exit",
        signatures: &["exit()", "exit(status: int)", "exit(value)"],
        summary: "Ends the script at once with a process exit status (0 to 255; 0 without one).",
        details: "As `exit 3` in PowerShell: a batch job that calls exit(3) ends with status 3, and `try` cannot catch it. In the shell it leaves the shell. A value that is not a status (a string, a float, a status over 255) is printed and the job exits with status 1. Replaces Rhai's own exit, which made its argument the script's value and exited 0.",
        example: "if get_pool(#{site: \"Atlanta\"}).len() == 0 { exit(2) }",
    },
    FnDoc {
        name: "help",
        signatures: &["help() -> string", "help(name: string) -> string"],
        summary: "Returns the overview of the functions, or the help of one.",
        details: "The same text as :help in the shell and as docs/functions.md.",
        example: "help(\"get_pool\")",
    },
];

impl FnDoc {
    /// The Lync Server cmdlet it mirrors, if any: the one `rbac::catalog` runs
    /// through this function (the catalog is the one list of cmdlets).
    #[must_use]
    pub fn cmdlet(&self) -> Option<&'static str> {
        catalog::cmdlet(self.name)
            .filter(|c| c.lync)
            .map(|c| c.name)
    }
}

/// Finds a function's documentation.
#[must_use]
pub fn find(name: &str) -> Option<&'static FnDoc> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The doc comment a function is registered with, for editors (the
/// definition files of `poolsync definitions`) and Rhai's metadata: the
/// summary, the details (its options among them) and the example, as `///`
/// lines of at most about 100 characters.
#[must_use]
pub fn doc_comments(doc: &FnDoc) -> Vec<String> {
    let mut lines = vec![format!("/// {}", doc.summary), "///".to_string()];
    if let Some(cmdlet) = doc.cmdlet() {
        lines.push(format!("/// Mirrors `{cmdlet}`."));
        lines.push("///".to_string());
    }
    let mut line = String::from("///");
    for word in doc.details.split_whitespace() {
        if line.len() + word.len() > 100 && line.len() > 3 {
            lines.push(std::mem::replace(&mut line, String::from("///")));
        }
        line.push(' ');
        line.push_str(word);
    }
    lines.push(line);
    if let Some(map) = super::options::typed_map_of(doc.name) {
        lines.push("///".to_string());
        lines.push(format!("/// Options: `{map}`"));
    }
    lines.push("///".to_string());
    lines.push("/// ```rhai".to_string());
    lines.push(format!("/// {}", doc.example));
    lines.push("/// ```".to_string());
    lines
}

/// The full help text of one function.
#[must_use]
pub fn render(doc: &FnDoc) -> String {
    let mut out = String::new();
    out.push_str(doc.name);
    if let Some(cmdlet) = doc.cmdlet() {
        out.push_str(&format!("  (mirrors {cmdlet})"));
    }
    out.push_str("\n\n");
    for sig in doc.signatures {
        out.push_str(&format!("    {sig}\n"));
    }
    out.push_str(&format!("\n{}\n\n{}\n", doc.summary, doc.details));
    if let Some(map) = super::options::typed_map_of(doc.name) {
        out.push_str(&format!("\nOptions:\n    {map}\n"));
    }
    out.push_str(&format!("\nExample:\n    {}\n", doc.example));
    out
}

/// The overview: one line per function (wrapped to the terminal's width).
#[must_use]
pub fn overview() -> String {
    overview_at(crate::table::width())
}

/// The overview laid out `width` columns wide.
#[must_use]
pub fn overview_at(width: usize) -> String {
    let rows: Vec<(String, String)> = FUNCTIONS
        .iter()
        .map(|f| {
            let cmdlet = f.cmdlet().map(|c| format!(" [{c}]")).unwrap_or_default();
            (f.name.to_string(), format!("{}{cmdlet}", f.summary))
        })
        .collect();
    format!(
        "poolsync functions (help(\"NAME\") for one):\n\n{}",
        crate::table::two_columns(&rows, width)
    )
}

/// `docs/functions.md`, generated from this table.
#[must_use]
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Function reference\n\n<!-- Generated by `poolsync reference`; do not edit by hand. -->\n\n| function | Lync cmdlet | summary |\n|---|---|---|\n",
    );
    for f in FUNCTIONS {
        out.push_str(&format!(
            "| [`{0}`](#{0}) | {1} | {2} |\n",
            f.name,
            f.cmdlet().unwrap_or("—"),
            f.summary
        ));
    }
    for f in FUNCTIONS {
        out.push_str(&format!("\n## {}\n\n", f.name));
        if let Some(c) = f.cmdlet() {
            out.push_str(&format!("Mirrors `{c}`.\n\n"));
        }
        out.push_str("```text\n");
        for s in f.signatures {
            out.push_str(&format!("{s}\n"));
        }
        out.push_str("```\n\n");
        out.push_str(&format!("{}\n\n{}\n\n", f.summary, f.details));
        if let Some(map) = super::options::typed_map_of(f.name) {
            out.push_str(&format!("Options: `{map}`\n\n"));
        }
        out.push_str(&format!("Example:\n\n```rhai\n{}\n```\n", f.example));
    }
    out
}
