//! `invoke_pool_failover`, `invoke_pool_failback`, `restore_pool_data` and
//! `invoke_management_server_failover`: thin bindings over the engine's
//! recovery, each refusing unless the operator may act on both pools of the
//! pair.

use std::rc::Rc;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::{FnResult, fail, func, interrupted, register_pool_fn};
use crate::script::ScriptContext;
use crate::script::options::{self, Options, Value};
use crate::script::progress::SyncProgress;
use crate::script::property::fallible_getter;
use crate::script::record::{
    FailoverKind, FailoverStatusKind, ModuleLossKind, QuarantineKind, Record, RecordKind,
};
use crate::script::types::{Placement, PoolObj};
use crate::sync::{FailoverOptions, FailoverReport, FailoverStatus, Phase, SyncError};
use crate::topology::{ModuleSelection, Pair, Pool};

const FAILOVER: &str = options::FAILOVER.function;
const FAILBACK: &str = options::FAILBACK.function;
const RESTORE: &str = options::RESTORE.function;
const CMS_MOVE: &str = options::CMS_MOVE.function;

/// Parses the options map of one of the four functions, checked against its
/// `table`.
fn parse_options(ctx: &ScriptContext, table: &Options, opts: &Map) -> FnResult<FailoverOptions> {
    let mut parsed = FailoverOptions::default();
    for (name, value) in table.parse(opts)? {
        apply(table.function, &mut parsed, name, value)?;
    }
    parsed.cancel = ctx.cancel.clone();
    Ok(parsed)
}

/// Reads one option, checked already.
fn apply(f: &str, o: &mut FailoverOptions, name: &str, value: Value) -> FnResult<()> {
    match (name, value) {
        ("module", Value::String(text)) => {
            o.modules = match ModuleSelection::parse(&text) {
                Ok(ModuleSelection::All) => Vec::new(),
                Ok(ModuleSelection::One(m)) => vec![m],
                Err(e) => return fail(format!("{f}: {e}")),
            };
        }
        ("disaster_mode", Value::Bool(on)) => o.disaster_mode = on,
        ("what_if", Value::Bool(on)) => o.what_if = on,
        ("force", Value::Bool(on)) => o.force = on,
        ("overwrite", Value::Bool(on)) => o.overwrite = on,
        (name, _) => return options::unhandled(f, name),
    }
    Ok(())
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
pub(super) fn failover_record(status: &FailoverStatus) -> Record<FailoverStatusKind> {
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
    let mut opts = parse_options(ctx, &options::FAILOVER, opts)?;
    let pair = both_pools(ctx, "Invoke-CsPoolFailOver", fqdn)?;
    finish(ctx, &mut opts, async |o| ctx.sync.fail_over(&pair, o).await)
}

fn failback(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, &options::FAILBACK, opts)?;
    let pair = both_pools(ctx, "Invoke-CsPoolFailBack", fqdn)?;
    finish(ctx, &mut opts, async |o| ctx.sync.fail_back(&pair, o).await)
}

fn restore(ctx: &ScriptContext, fqdn: &str, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, &options::RESTORE, opts)?;
    let pair = both_pools(ctx, "Restore-CsPoolData", fqdn)?;
    finish(ctx, &mut opts, async |o| {
        ctx.sync.restore_pool_data(&pair, o).await
    })
}

fn move_cms(ctx: &ScriptContext, opts: &Map) -> FnResult<Dynamic> {
    let mut opts = parse_options(ctx, &options::CMS_MOVE, opts)?;
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
pub(super) fn placement(ctx: &ScriptContext, pool: &Pool) -> Placement {
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

pub(super) fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    let c = ctx.clone();
    fallible_getter(
        engine,
        "failover",
        FailoverStatusKind::TYPE_NAME,
        move |p: &mut PoolObj| -> FnResult<Dynamic> {
            let status = pool_failover(&c, p)?;
            Ok(Dynamic::from(failover_record(&status)))
        },
    );
    let c = ctx.clone();
    fallible_getter(
        engine,
        "active_copy",
        "string",
        move |p: &mut PoolObj| -> FnResult<String> {
            let pool = super::pool::authorized_pool(&c, "Get-CsPool", &p.fqdn)?;
            match c.deployment.pair_of(pool) {
                None => Ok(crate::sync::active_copy_home(pool)),
                Some(_) => Ok(pool_failover(&c, p)?.active_copy),
            }
        },
    );
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_option_is_read() {
        use crate::script::options::{self, assert_every_option_is_read};
        for table in [
            &options::FAILOVER,
            &options::FAILBACK,
            &options::RESTORE,
            &options::CMS_MOVE,
        ] {
            assert_every_option_is_read(table, |o, n, v| super::apply(table.function, o, n, v));
        }
    }
}
