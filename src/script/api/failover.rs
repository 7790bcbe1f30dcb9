//! invoke_pool_failover, invoke_pool_failback, restore_pool_data and
//! invoke_management_server_failover: thin bindings over the engine's
//! recovery, each refusing unless the operator may act on both pools of the
//! pair.

use std::rc::Rc;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::{FnResult, fail, func, interrupted, register_pool_fn};
use crate::script::ScriptContext;
use crate::script::progress::SyncProgress;
use crate::script::record::{
    FailoverKind, FailoverStatusKind, ModuleLossKind, QuarantineKind, Record,
};
use crate::script::types::{Placement, PoolObj};
use crate::sync::{FailoverOptions, FailoverReport, FailoverStatus, Phase, SyncError};
use crate::topology::{Module, ModuleSelection, Pair, Pool};

const FAILOVER: &str = "invoke_pool_failover";
const FAILBACK: &str = "invoke_pool_failback";
const RESTORE: &str = "restore_pool_data";
const CMS_MOVE: &str = "invoke_management_server_failover";

/// The options each function takes.
fn allowed(fname: &str) -> &'static [&'static str] {
    match fname {
        FAILOVER | CMS_MOVE => &["disaster_mode", "what_if", "force"],
        FAILBACK => &["what_if", "force"],
        _ => &["module", "what_if", "overwrite"],
    }
}

/// Parses the options map of `fname`.
fn parse_options(ctx: &ScriptContext, fname: &str, opts: &Map) -> FnResult<FailoverOptions> {
    let mut parsed = FailoverOptions {
        cancel: ctx.cancel.clone(),
        ..FailoverOptions::default()
    };
    let names = allowed(fname);
    for (key, value) in opts {
        let key = key.as_str();
        if !names.contains(&key) {
            return fail(format!(
                "{fname}: unknown option '{key}': the options are {}",
                names.join(", ")
            ));
        }
        if key == "module" {
            parsed.modules = module_option(fname, value)?;
            continue;
        }
        let Ok(on) = value.as_bool() else {
            return fail(format!(
                "{fname}: option '{key}' must be true or false, not {}",
                super::kind(value)
            ));
        };
        match key {
            "disaster_mode" => parsed.disaster_mode = on,
            "what_if" => parsed.what_if = on,
            "force" => parsed.force = on,
            _ => parsed.overwrite = on,
        }
    }
    Ok(parsed)
}

fn module_option(fname: &str, value: &Dynamic) -> FnResult<Vec<Module>> {
    let Ok(text) = value.clone().into_string() else {
        return fail(format!(
            "{fname}: option 'module' must be a string, not {}",
            super::kind(value)
        ));
    };
    match ModuleSelection::parse(&text) {
        Ok(ModuleSelection::All) => Ok(Vec::new()),
        Ok(ModuleSelection::One(m)) => Ok(vec![m]),
        Err(e) => fail(format!("{fname}: {e}")),
    }
}

/// The pair of `fqdn`, refused unless the operator may run `cmdlet` on both
/// of its pools: a failover acts on both.
fn both_pools(ctx: &ScriptContext, cmdlet: &str, fqdn: &str) -> FnResult<Pair> {
    let pair = super::pool::authorized_pair(ctx, cmdlet, fqdn)?;
    if let Err(m) = ctx
        .access
        .check_pool(&ctx.deployment, cmdlet, &pair.partner)
    {
        return fail(format!("{m}: {cmdlet} acts on both pools of the pair"));
    }
    Ok(pair)
}

/// Where a pool's data is active, as a script sees it.
pub fn failover_record(status: &FailoverStatus) -> Record<FailoverStatusKind> {
    Record::from_serde(status)
        .nest::<ModuleLossKind>("last_failover_loss")
        .nest::<QuarantineKind>("quarantines")
}

/// Runs one operation with a progress bar and turns its result into a record.
fn finish(
    ctx: &ScriptContext,
    opts: &mut FailoverOptions,
    run: impl AsyncFnOnce(&FailoverOptions) -> Result<FailoverReport, SyncError>,
) -> FnResult<Dynamic> {
    let progress = Arc::new(SyncProgress::new(ctx.progress));
    opts.progress = Some(progress.clone());
    let result = ctx.block_on(run(opts));
    progress.finish();
    match result {
        Ok(report) => {
            for w in &report.warnings {
                crate::errln!("warning: {w}");
            }
            let record = Record::<FailoverKind>::from_serde(&report).nest::<ModuleLossKind>("loss");
            Ok(Dynamic::from(record))
        }
        Err(SyncError::Interrupted(_)) => interrupted(),
        Err(e) => fail(e.to_string()),
    }
}

fn failover(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, FAILOVER, opts)?;
    let pair = both_pools(ctx, "Invoke-CsPoolFailOver", fqdn)?;
    finish(ctx, &mut opts, async |o| ctx.sync.fail_over(&pair, o).await)
}

fn failback(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, FAILBACK, opts)?;
    let pair = both_pools(ctx, "Invoke-CsPoolFailBack", fqdn)?;
    finish(ctx, &mut opts, async |o| ctx.sync.fail_back(&pair, o).await)
}

fn restore(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, RESTORE, opts)?;
    let pair = both_pools(ctx, "Restore-CsPoolData", fqdn)?;
    finish(ctx, &mut opts, async |o| {
        ctx.sync.restore_pool_data(&pair, o).await
    })
}

fn move_cms(ctx: &ScriptContext, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, CMS_MOVE, opts)?;
    const CMDLET: &str = "Invoke-CsManagementServerFailover";
    if let Err(m) = ctx.access.check_global_if_required(CMDLET) {
        return fail(m);
    }
    let master = ctx.deployment.cms_master.to_string();
    both_pools(ctx, CMDLET, &master)?;
    finish(ctx, &mut opts, async |o| ctx.sync.move_cms(o).await)
}

/// Where a pool's data is active now, read from its pair's stores when asked
/// (a Pool is a snapshot of the deployment; this is live).
fn pool_failover(ctx: &ScriptContext, pool: &PoolObj) -> FnResult<FailoverStatus> {
    let p = super::pool::authorized_pool(ctx, "Get-CsPool", &pool.fqdn)?;
    let Some(pair) = ctx.deployment.pair_of(p) else {
        return fail(format!(
            "pool '{}' has no backup pool, so it cannot fail over",
            p.fqdn
        ));
    };
    Ok(ctx.block_on(ctx.sync.failover_status(&pair)))
}

/// Where a pool's data is active, for `get_pool(P)`'s record (a pool
/// without a backup pool is always at home).
pub fn placement(ctx: &ScriptContext, pool: &Pool) -> Placement {
    match ctx.deployment.pair_of(pool) {
        None => Placement {
            state: Phase::Home.to_string(),
            active_at: pool.fqdn.to_string(),
            active_copy: crate::sync::active_copy_home(pool),
            epoch: 0,
            since: None,
        },
        Some(pair) => {
            let s = ctx.block_on(ctx.sync.failover_status(&pair));
            Placement {
                state: s.state.to_string(),
                active_at: s.active_at.to_string(),
                active_copy: s.active_copy,
                epoch: s.epoch,
                since: s.since.map(crate::sync::format_time),
            }
        }
    }
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    let c = ctx.clone();
    engine.register_get("failover", move |p: &mut PoolObj| -> FnResult<Dynamic> {
        let status = pool_failover(&c, p)?;
        Ok(Dynamic::from(failover_record(&status)))
    });
    let c = ctx.clone();
    engine.register_get("active_copy", move |p: &mut PoolObj| -> FnResult<String> {
        let pool = super::pool::authorized_pool(&c, "Get-CsPool", &p.fqdn)?;
        match c.deployment.pair_of(pool) {
            None => Ok(crate::sync::active_copy_home(pool)),
            Some(_) => Ok(pool_failover(&c, p)?.active_copy),
        }
    });
    register_pool_fn(engine, ctx, FAILOVER, "FailoverReport", Map::new, failover);
    register_pool_fn(engine, ctx, FAILBACK, "FailoverReport", Map::new, failback);
    register_pool_fn(engine, ctx, RESTORE, "FailoverReport", Map::new, restore);
    let c = ctx.clone();
    func(CMS_MOVE, &["FailoverReport"])
        .register_into_engine(engine, move || move_cms(&c, &Map::new()));
    let c = ctx.clone();
    func(CMS_MOVE, &["opts: Map", "FailoverReport"])
        .register_into_engine(engine, move |o: Map| move_cms(&c, &o));
}
