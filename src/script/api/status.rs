//! `get_backup_service_status`, `get/set_backup_service_configuration`,
//! `debug_inter_pool_replication`, `backup_pool`.

use std::rc::Rc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map};

use super::pool::authorized_pair;
use super::{FnResult, fail, func, interrupted, pause, register_pool_fn};
use crate::printable::printable;
use crate::script::ScriptContext;
use crate::script::options::{self, Options, Value};
use crate::script::record::{
    ConfigKind, ModuleStatusKind, Record, ReplicaCheckKind, ReplicationKind, StatusKind,
};
use crate::sync::{ExportState, PoolStatus, ReplicationReport, SyncError, SyncOptions};
use crate::topology::settings::{SETTING_NAMES, WATCH_CHANGES, parse_sync_interval};
use crate::topology::{Category, Module, ModuleSelection, Pair};

fn time(ns: Option<i64>) -> Dynamic {
    ns.map_or(Dynamic::UNIT, |ns| {
        Dynamic::from(crate::sync::format_time(ns))
    })
}

fn int(v: u64) -> Dynamic {
    Dynamic::from(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A count that may be unknown (`()`).
fn opt_int(v: Option<u64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, int)
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
            f.insert("pending_items".into(), opt_int(m.pending_items));
            f.insert("pending_bytes".into(), opt_int(m.pending_bytes));
            f.insert("export_lag_ms".into(), opt_int(m.export_lag_ms));
            f.insert("import_lag_ms".into(), opt_int(m.import_lag_ms));
            f.insert(
                "last_error".into(),
                crate::script::types::opt(m.last_error.as_ref()),
            );
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

/// The modules that `#{module, category}` select, checked against `table`.
fn module_filter(table: &Options, opts: &Map) -> FnResult<Vec<Module>> {
    let mut modules: Vec<Module> = Module::ALL.to_vec();
    for (name, value) in table.parse(opts)? {
        apply_filter(table.function, &mut modules, name, value)?;
    }
    Ok(modules)
}

/// Narrows `modules` by one option of a module filter, checked already.
fn apply_filter(f: &str, modules: &mut Vec<Module>, name: &str, value: Value) -> FnResult<()> {
    match (name, value) {
        ("module", Value::String(text)) => {
            let selection = ModuleSelection::parse(&text).or_else(|e| fail(format!("{f}: {e}")))?;
            modules.retain(|m| selection.includes(*m));
        }
        ("category", Value::String(text)) => {
            let category = Category::parse(&text).or_else(|e| fail(format!("{f}: {e}")))?;
            modules.retain(|m| m.category() == category);
        }
        (name, _) => return options::unhandled(f, name),
    }
    Ok(())
}

fn sync_error<T>(e: SyncError) -> FnResult<T> {
    match e {
        SyncError::Interrupted(_) => interrupted(),
        e => fail(e.to_string()),
    }
}

fn status(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let modules = module_filter(&options::STATUS, opts)?;
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
                "{F}: unknown setting '{}': the settings are {}",
                printable(key),
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
    const F: &str = options::VERIFY.function;
    let modules = module_filter(&options::VERIFY, opts)?;
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

const BACKUP: &str = options::BACKUP_POOL.function;

/// What `backup_pool` is asked to do.
struct BackupPoolOptions {
    category: Option<Category>,
    full_backup: bool,
    steady_state: bool,
    retry_count: i64,
    wait_time: i64,
}

impl Default for BackupPoolOptions {
    fn default() -> Self {
        BackupPoolOptions {
            category: None,
            full_backup: false,
            steady_state: false,
            retry_count: 3,
            wait_time: 5,
        }
    }
}

/// Reads one option of [`options::BACKUP_POOL`], checked already.
fn apply_backup(o: &mut BackupPoolOptions, name: &str, value: Value) -> FnResult<()> {
    let count = |n: i64| {
        if n < 0 {
            fail(format!(
                "{BACKUP}: option '{name}' must be a whole number of 0 or more"
            ))
        } else {
            Ok(n)
        }
    };
    match (name, value) {
        ("category", Value::String(text)) => {
            o.category = Some(Category::parse(&text).or_else(|e| fail(format!("{BACKUP}: {e}")))?);
        }
        ("full_backup", Value::Bool(on)) => o.full_backup = on,
        ("steady_state", Value::Bool(on)) => o.steady_state = on,
        ("retry_count", Value::Int(n)) => o.retry_count = count(n)?.min(MAX_RETRIES),
        ("wait_time", Value::Int(n)) => o.wait_time = count(n)?.min(MAX_WAIT_SECONDS),
        (name, _) => return options::unhandled(BACKUP, name),
    }
    Ok(())
}

fn backup_options(opts: &Map) -> FnResult<BackupPoolOptions> {
    let mut o = BackupPoolOptions::default();
    for (name, value) in options::BACKUP_POOL.parse(opts)? {
        apply_backup(&mut o, name, value)?;
    }
    if o.full_backup == o.steady_state {
        return fail(format!(
            "{BACKUP}: give exactly one of full_backup: true or steady_state: true"
        ));
    }
    Ok(o)
}

/// `Backup-CsPool`: syncs the pair module by module until every export the
/// pool makes reaches the goal, or the tries run out.
fn backup_pool(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let o = backup_options(opts)?;
    let pair = authorized_pair(ctx, "Backup-CsPool", fqdn)?;
    let pool = &pair.pool;
    let modules: Vec<Module> = Module::ALL
        .into_iter()
        .filter(|m| o.category.is_none_or(|c| m.category() == c))
        .collect();
    if !ctx.deployment.pair_hosts_cms(pool) && modules.iter().all(|m| *m == Module::CmsMaster) {
        // Nothing to sync or wait for: reporting success would be a lie.
        return fail(format!(
            "{BACKUP}: pool '{}' and its backup pool do not host the Central Management Store (its master is '{}'), so category CMS has nothing to back up here; use category UserData, or name the CMS master's pool",
            pool.fqdn, ctx.deployment.cms_master
        ));
    }
    let mut last = Vec::new();
    for attempt in 0..=o.retry_count {
        let status = sync_and_read(ctx, &pair, &modules)?;
        last = lagging(ctx, &pair, &status, o.steady_state);
        if last.is_empty() {
            return Ok(Dynamic::from(status_record(&status)));
        }
        if attempt < o.retry_count {
            pause(Duration::from_secs(o.wait_time.unsigned_abs()), || {
                ctx.cancel.is_cancelled()
            })?;
        }
    }
    let goal = if o.full_backup {
        "FinalState"
    } else {
        "SteadyState"
    };
    fail(format!(
        "{BACKUP}: {} did not reach {goal} after {} tries: {}",
        pool.fqdn,
        o.retry_count + 1,
        last.join("; ")
    ))
}

/// One try of `backup_pool`: a sync of each module, then the pool's status.
fn sync_and_read(ctx: &ScriptContext, pair: &Pair, modules: &[Module]) -> FnResult<PoolStatus> {
    for module in modules {
        if *module == Module::CmsMaster && !ctx.deployment.pair_hosts_cms(&pair.pool) {
            continue;
        }
        let opts = SyncOptions {
            modules: ModuleSelection::One(*module),
            cancel: ctx.cancel.clone(),
            ..SyncOptions::default()
        };
        if let Err(e) = ctx.block_on(ctx.sync.sync_pair(pair, &opts)) {
            return sync_error(e);
        }
    }
    ctx.block_on(ctx.sync.pool_status(pair, modules))
        .or_else(sync_error)
}

/// The exports of the pool that have not reached the goal (`FinalState`, or
/// `SteadyState` when `steady_state`), named with their state.
fn lagging(
    ctx: &ScriptContext,
    pair: &Pair,
    status: &PoolStatus,
    steady_state: bool,
) -> Vec<String> {
    let goal_met = |s: &ExportState| {
        *s == ExportState::FinalState || (steady_state && *s == ExportState::SteadyState)
    };
    status
        .backup_modules
        .iter()
        .filter(|m| m.identity != Module::CmsMaster || pair.pool.fqdn == ctx.deployment.cms_master)
        .filter(|m| !goal_met(&m.export_status))
        .map(|m| format!("{} is {}", m.identity.identity(), m.export_status))
        .collect()
}

/// The options of `backup_pool(pool)`: wait for `FinalState`.
fn full_backup() -> Map {
    let mut o = Map::new();
    o.insert("full_backup".into(), Dynamic::from(true));
    o
}

pub(super) fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    register_pool_fn(
        engine,
        ctx,
        options::STATUS.function,
        "BackupServiceStatus",
        Map::new,
        status,
    );
    register_pool_fn(
        engine,
        ctx,
        options::VERIFY.function,
        "ReplicationReport",
        Map::new,
        debug_replication,
    );
    register_pool_fn(
        engine,
        ctx,
        BACKUP,
        "BackupServiceStatus",
        full_backup,
        backup_pool,
    );
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::options::assert_every_option_is_read;

    #[test]
    fn every_option_is_read() {
        for table in [&options::STATUS, &options::VERIFY] {
            assert_every_option_is_read(table, |m: &mut Vec<Module>, n, v| {
                apply_filter(table.function, m, n, v)
            });
        }
        assert_every_option_is_read(&options::BACKUP_POOL, apply_backup);
    }
}
