//! get_backup_service_status, get/set_backup_service_configuration,
//! debug_inter_pool_replication, backup_pool.

use std::rc::Rc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map};

use super::pool::authorized_pair;
use super::{FnResult, fail, func, interrupted, pause};
use crate::script::ScriptContext;
use crate::script::record::{
    ConfigKind, ModuleStatusKind, Record, ReplicaCheckKind, ReplicationKind, StatusKind,
};
use crate::script::types::PoolObj;
use crate::sync::{ExportState, PoolStatus, ReplicationReport, SyncError, SyncOptions};
use crate::topology::settings::{SETTING_NAMES, WATCH_CHANGES, parse_sync_interval};
use crate::topology::{Category, Module, ModuleSelection};

fn time(ns: Option<i64>) -> Dynamic {
    ns.map_or(Dynamic::UNIT, |ns| {
        Dynamic::from(crate::sync::format_time(ns))
    })
}

fn int(v: u64) -> Dynamic {
    Dynamic::from(i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_str(v: &Option<String>) -> Dynamic {
    v.clone().map_or(Dynamic::UNIT, Dynamic::from)
}

fn status_record(s: &PoolStatus) -> Record<StatusKind> {
    let modules: Array = s
        .backup_modules
        .iter()
        .map(|m| {
            let mut f = Map::new();
            f.insert(
                "identity".into(),
                Dynamic::from(m.identity.identity().to_string()),
            );
            f.insert(
                "export_status".into(),
                Dynamic::from(m.export_status.to_string()),
            );
            f.insert(
                "import_status".into(),
                Dynamic::from(m.import_status.to_string()),
            );
            f.insert("last_export_time".into(), time(m.last_export_time));
            f.insert("last_import_time".into(), time(m.last_import_time));
            f.insert("pending_items".into(), int(m.pending_items));
            f.insert("pending_bytes".into(), int(m.pending_bytes));
            f.insert("last_error".into(), opt_str(&m.last_error));
            let json = serde_json::to_value(m).unwrap_or_default();
            Dynamic::from(Record::<ModuleStatusKind>::new(f, json))
        })
        .collect();
    let mut f = Map::new();
    f.insert("pool_fqdn".into(), Dynamic::from(s.pool_fqdn.to_string()));
    f.insert(
        "backup_pool_fqdn".into(),
        Dynamic::from(s.backup_pool_fqdn.to_string()),
    );
    f.insert(
        "overall_export_status".into(),
        Dynamic::from(s.overall_export_status.to_string()),
    );
    f.insert(
        "overall_import_status".into(),
        Dynamic::from(s.overall_import_status.to_string()),
    );
    f.insert("backup_modules".into(), Dynamic::from_array(modules));
    f.insert(
        "failover".into(),
        Dynamic::from(super::failover::failover_record(&s.failover)),
    );
    Record::new(f, serde_json::to_value(s).unwrap_or_default())
}

fn replication_record(r: &ReplicationReport) -> Record<ReplicationKind> {
    let strings = |v: &[String]| -> Dynamic {
        Dynamic::from_array(v.iter().map(|s| Dynamic::from(s.clone())).collect())
    };
    let modules: Array = r
        .modules
        .iter()
        .map(|c| {
            let mut f = Map::new();
            f.insert(
                "module".into(),
                Dynamic::from(c.module.identity().to_string()),
            );
            f.insert("from".into(), Dynamic::from(c.from.to_string()));
            f.insert("to".into(), Dynamic::from(c.to.to_string()));
            f.insert("in_sync".into(), Dynamic::from(c.in_sync()));
            f.insert("source_items".into(), int(c.source_items));
            f.insert("replica_items".into(), int(c.replica_items));
            f.insert("missing".into(), strings(&c.missing));
            f.insert("extra".into(), strings(&c.extra));
            f.insert("different".into(), strings(&c.different));
            f.insert(
                "manifest_mismatches".into(),
                strings(&c.manifest_mismatches),
            );
            let mut json = serde_json::to_value(c).unwrap_or_default();
            json["in_sync"] = c.in_sync().into();
            Dynamic::from(Record::<ReplicaCheckKind>::new(f, json))
        })
        .collect();
    let module_json: Vec<serde_json::Value> = modules
        .iter()
        .filter_map(|m| {
            m.read_lock::<Record<ReplicaCheckKind>>()
                .map(|r| r.json.clone())
        })
        .collect();
    let mut f = Map::new();
    f.insert("pool".into(), Dynamic::from(r.pool.to_string()));
    f.insert(
        "backup_pool".into(),
        Dynamic::from(r.backup_pool.to_string()),
    );
    f.insert("in_sync".into(), Dynamic::from(r.in_sync()));
    f.insert("modules".into(), Dynamic::from_array(modules));
    let json = serde_json::json!({
        "pool": r.pool,
        "backup_pool": r.backup_pool,
        "in_sync": r.in_sync(),
        "modules": module_json,
    });
    Record::new(f, json)
}

/// `#{module, category}` → the modules to cover.
fn module_filter(fname: &str, opts: &Map, allow_category: bool) -> FnResult<Vec<Module>> {
    let mut modules: Vec<Module> = Module::ALL.to_vec();
    for (key, value) in opts {
        let text = || {
            value.clone().into_string().or_else(|_| {
                fail(format!(
                    "{fname}: option '{key}' must be a string, not {}",
                    super::kind(value)
                ))
            })
        };
        match key.as_str() {
            "module" => match ModuleSelection::parse(&text()?) {
                Ok(sel) => modules.retain(|m| sel.includes(*m)),
                Err(e) => return fail(format!("{fname}: {e}")),
            },
            "category" if allow_category => match Category::parse(&text()?) {
                Ok(c) => modules.retain(|m| m.category() == c),
                Err(e) => return fail(format!("{fname}: {e}")),
            },
            other => {
                let allowed = if allow_category {
                    "module, category"
                } else {
                    "module"
                };
                return fail(format!(
                    "{fname}: unknown option '{other}': the options are {allowed}"
                ));
            }
        }
    }
    Ok(modules)
}

fn sync_error(e: SyncError) -> FnResult<Dynamic> {
    match e {
        SyncError::Interrupted(_) => interrupted(),
        e => fail(e.to_string()),
    }
}

fn status(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    const F: &str = "get_backup_service_status";
    let modules = module_filter(F, opts, true)?;
    let pair = authorized_pair(ctx, "Get-CsBackupServiceStatus", fqdn)?;
    match ctx.block_on(ctx.sync.pool_status(&pair, &modules)) {
        Ok(s) => Ok(Dynamic::from(status_record(&s))),
        Err(e) => sync_error(e),
    }
}

fn configuration(ctx: &ScriptContext) -> FnResult<Record<ConfigKind>> {
    if let Err(m) = ctx.access.check_any("Get-CsBackupServiceConfiguration") {
        return fail(m);
    }
    Ok(Record::from_serde(&ctx.sync.settings()))
}

fn set_configuration(ctx: &ScriptContext, changes: &Map) -> FnResult<Record<ConfigKind>> {
    const F: &str = "set_backup_service_configuration";
    if let Err(m) = ctx
        .access
        .check_global_if_required("Set-CsBackupServiceConfiguration")
    {
        return fail(m);
    }
    let mut settings = ctx.sync.settings();
    let mut changed = Vec::new();
    for (key, value) in changes {
        let key = key.as_str();
        if !SETTING_NAMES.contains(&key) {
            return fail(format!(
                "{F}: unknown setting '{key}': the settings are {}",
                SETTING_NAMES.join(", ")
            ));
        }
        if key == "sync_interval" {
            let Ok(text) = value.clone().into_string() else {
                return fail(format!(
                    "{F}: sync_interval must be a string like \"00:02:00\", not {}",
                    super::kind(value)
                ));
            };
            match parse_sync_interval(&text) {
                Ok(d) => settings.sync_interval = d,
                Err(e) => return fail(format!("{F}: {e}")),
            }
        } else if key == WATCH_CHANGES {
            let Ok(on) = value.as_bool() else {
                return fail(format!(
                    "{F}: {key} must be true or false, not {}",
                    super::kind(value)
                ));
            };
            settings.watch_changes = on;
        } else {
            let Ok(n) = value.as_int() else {
                return fail(format!(
                    "{F}: {key} must be a whole number, not {}",
                    super::kind(value)
                ));
            };
            if let Err(e) = settings.set_number(key, n) {
                return fail(format!("{F}: {e}"));
            }
        }
        changed.push(key);
    }
    let path = &ctx.deployment.path;
    if let Err(e) = crate::topology::settings::save(path, &settings, &changed) {
        return fail(format!("{F}: cannot write the settings: {e}"));
    }
    ctx.sync.set_settings(settings.clone());
    Ok(Record::from_serde(&settings))
}

fn debug_replication(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    const F: &str = "debug_inter_pool_replication";
    let modules = module_filter(F, opts, false)?;
    let pair = authorized_pair(ctx, "Debug-CsInterPoolReplication", fqdn)?;
    let pool = &pair.pool;
    if modules == [Module::CmsMaster] && !ctx.deployment.pair_hosts_cms(pool) {
        // Nothing would be compared: "in sync" would be a report of nothing.
        return fail(format!(
            "{F}: pool '{}' and its backup pool do not host the Central Management Store (its master is '{}'), so there is no CMSMaster copy to check here; name the CMS master's pool",
            pool.fqdn, ctx.deployment.cms_master
        ));
    }
    match ctx.block_on(ctx.sync.verify_pair(&pair, &modules, &ctx.cancel)) {
        Ok(r) => Ok(Dynamic::from(replication_record(&r))),
        Err(e) => sync_error(e),
    }
}

/// `backup_pool` tries at most this many times, and waits at most this long
/// between tries (a day): larger values are taken as these.
const MAX_RETRIES: i64 = 10_000;
const MAX_WAIT_SECONDS: i64 = 86_400;

fn backup_pool(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    const F: &str = "backup_pool";
    let mut category: Option<Category> = None;
    let mut full_backup = false;
    let mut steady_state = false;
    let mut retry_count: i64 = 3;
    let mut wait_time: i64 = 5;
    for (key, value) in opts {
        let flag = || {
            value
                .as_bool()
                .or_else(|_| fail(format!("{F}: option '{key}' must be true or false")))
        };
        let number = || {
            value.as_int().ok().filter(|n| *n >= 0).map_or_else(
                || {
                    fail(format!(
                        "{F}: option '{key}' must be a whole number of 0 or more"
                    ))
                },
                Ok,
            )
        };
        match key.as_str() {
            "category" => {
                let Ok(text) = value.clone().into_string() else {
                    return fail(format!(
                        "{F}: option 'category' must be a string, CMS or UserData, not {}",
                        super::kind(value)
                    ));
                };
                category = Some(Category::parse(&text).or_else(|e| fail(format!("{F}: {e}")))?);
            }
            "full_backup" => full_backup = flag()?,
            "steady_state" => steady_state = flag()?,
            "retry_count" => retry_count = number()?.min(MAX_RETRIES),
            "wait_time" => wait_time = number()?.min(MAX_WAIT_SECONDS),
            other => {
                return fail(format!(
                    "{F}: unknown option '{other}': the options are category, full_backup, steady_state, retry_count, wait_time"
                ));
            }
        }
    }
    if full_backup == steady_state {
        return fail(format!(
            "{F}: give exactly one of full_backup: true or steady_state: true"
        ));
    }
    let pair = authorized_pair(ctx, "Backup-CsPool", fqdn)?;
    let pool = &pair.pool;
    let modules: Vec<Module> = Module::ALL
        .into_iter()
        .filter(|m| category.is_none_or(|c| m.category() == c))
        .collect();
    if !ctx.deployment.pair_hosts_cms(pool) && modules.iter().all(|m| *m == Module::CmsMaster) {
        // Nothing to sync or wait for: reporting success would be a lie.
        return fail(format!(
            "{F}: pool '{}' and its backup pool do not host the Central Management Store (its master is '{}'), so category CMS has nothing to back up here; use category UserData, or name the CMS master's pool",
            pool.fqdn, ctx.deployment.cms_master
        ));
    }
    let goal_met = |s: &ExportState| {
        *s == ExportState::FinalState || (steady_state && *s == ExportState::SteadyState)
    };
    let cms = ctx.deployment.cms_master.clone();
    let mut last = None;
    for attempt in 0..=retry_count {
        for module in &modules {
            if *module == Module::CmsMaster && !ctx.deployment.pair_hosts_cms(pool) {
                continue;
            }
            let opts = SyncOptions {
                modules: ModuleSelection::One(*module),
                cancel: ctx.cancel.clone(),
                ..SyncOptions::default()
            };
            if let Err(e) = ctx.block_on(ctx.sync.sync_pair(&pair, &opts)) {
                return sync_error(e);
            }
        }
        let status = match ctx.block_on(ctx.sync.pool_status(&pair, &modules)) {
            Ok(s) => s,
            Err(e) => return sync_error(e),
        };
        let lagging: Vec<String> = status
            .backup_modules
            .iter()
            .filter(|m| m.identity != Module::CmsMaster || pool.fqdn == cms)
            .filter(|m| !goal_met(&m.export_status))
            .map(|m| format!("{} is {}", m.identity.identity(), m.export_status))
            .collect();
        if lagging.is_empty() {
            return Ok(Dynamic::from(status_record(&status)));
        }
        last = Some(lagging);
        if attempt < retry_count {
            pause(Duration::from_secs(wait_time as u64), || {
                ctx.cancel.is_cancelled()
            })?;
        }
    }
    let goal = if full_backup {
        "FinalState"
    } else {
        "SteadyState"
    };
    fail(format!(
        "{F}: {} did not reach {goal} after {} tries: {}",
        pool.fqdn,
        retry_count + 1,
        last.unwrap_or_default().join("; ")
    ))
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    let c = ctx.clone();
    func(
        "get_backup_service_status",
        &["pool: &str", "BackupServiceStatus"],
    )
    .register_into_engine(engine, move |p: &str| status(&c, p, &Map::new()));
    let c = ctx.clone();
    func(
        "get_backup_service_status",
        &["pool: Pool", "BackupServiceStatus"],
    )
    .register_into_engine(engine, move |p: PoolObj| status(&c, &p.fqdn, &Map::new()));
    let c = ctx.clone();
    func(
        "get_backup_service_status",
        &["pool: &str", "opts: Map", "BackupServiceStatus"],
    )
    .register_into_engine(engine, move |p: &str, o: Map| status(&c, p, &o));
    let c = ctx.clone();
    func(
        "get_backup_service_status",
        &["pool: Pool", "opts: Map", "BackupServiceStatus"],
    )
    .register_into_engine(engine, move |p: PoolObj, o: Map| status(&c, &p.fqdn, &o));

    let c = ctx.clone();
    func(
        "get_backup_service_configuration",
        &["BackupServiceConfiguration"],
    )
    .register_into_engine(engine, move || configuration(&c));
    let c = ctx.clone();
    func(
        "set_backup_service_configuration",
        &["settings: Map", "BackupServiceConfiguration"],
    )
    .register_into_engine(engine, move |m: Map| set_configuration(&c, &m));

    let c = ctx.clone();
    func(
        "debug_inter_pool_replication",
        &["pool: &str", "ReplicationReport"],
    )
    .register_into_engine(engine, move |p: &str| debug_replication(&c, p, &Map::new()));
    let c = ctx.clone();
    func(
        "debug_inter_pool_replication",
        &["pool: Pool", "ReplicationReport"],
    )
    .register_into_engine(engine, move |p: PoolObj| {
        debug_replication(&c, &p.fqdn, &Map::new())
    });
    let c = ctx.clone();
    func(
        "debug_inter_pool_replication",
        &["pool: &str", "opts: Map", "ReplicationReport"],
    )
    .register_into_engine(engine, move |p: &str, o: Map| debug_replication(&c, p, &o));
    let c = ctx.clone();
    func(
        "debug_inter_pool_replication",
        &["pool: Pool", "opts: Map", "ReplicationReport"],
    )
    .register_into_engine(engine, move |p: PoolObj, o: Map| {
        debug_replication(&c, &p.fqdn, &o)
    });

    let c = ctx.clone();
    func("backup_pool", &["pool: &str", "BackupServiceStatus"]).register_into_engine(
        engine,
        move |p: &str| {
            let mut o = Map::new();
            o.insert("full_backup".into(), Dynamic::from(true));
            backup_pool(&c, p, &o)
        },
    );
    let c = ctx.clone();
    func("backup_pool", &["pool: Pool", "BackupServiceStatus"]).register_into_engine(
        engine,
        move |p: PoolObj| {
            let mut o = Map::new();
            o.insert("full_backup".into(), Dynamic::from(true));
            backup_pool(&c, &p.fqdn, &o)
        },
    );
    let c = ctx.clone();
    func(
        "backup_pool",
        &["pool: &str", "opts: Map", "BackupServiceStatus"],
    )
    .register_into_engine(engine, move |p: &str, o: Map| backup_pool(&c, p, &o));
    let c = ctx.clone();
    func(
        "backup_pool",
        &["pool: Pool", "opts: Map", "BackupServiceStatus"],
    )
    .register_into_engine(engine, move |p: PoolObj, o: Map| {
        backup_pool(&c, &p.fqdn, &o)
    });
}
