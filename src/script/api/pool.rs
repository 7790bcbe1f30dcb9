//! `get_pool`, `get_site`, `get_pool_backup_relationship`.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::{FnResult, fail, func};
use crate::printable::printable;
use crate::script::ScriptContext;
use crate::script::types::{PoolObj, SiteObj};
use crate::topology::{Pair, Pool};

const GET_POOL: &str = "Get-CsPool";
const GET_SITE: &str = "Get-CsSite";
const GET_RELATIONSHIP: &str = "Get-CsPoolBackupRelationship";

/// A pool the operator may run `cmdlet` on, or a catchable refusal.
pub(super) fn authorized_pool<'d>(
    ctx: &'d ScriptContext,
    cmdlet: &str,
    fqdn: &str,
) -> FnResult<&'d Pool> {
    let d = &ctx.deployment;
    let pool = match d.require_pool(fqdn) {
        Ok(p) => p,
        Err(m) => return fail(m),
    };
    match ctx.access.check_pool(d, cmdlet, pool) {
        Ok(()) => Ok(pool),
        Err(m) => fail(m),
    }
}

/// A pool the operator may run `cmdlet` on, with its backup pool, or a
/// catchable refusal (no such pool, access denied, no backup pool).
pub(super) fn authorized_pair(ctx: &ScriptContext, cmdlet: &str, fqdn: &str) -> FnResult<Pair> {
    let pool = authorized_pool(ctx, cmdlet, fqdn)?;
    ctx.sync.pair(pool).or_else(|e| fail(e.to_string()))
}

/// The pools the operator may read (all of them for a global role).
fn visible_pools<'d>(
    ctx: &'d ScriptContext,
    pools: impl Iterator<Item = &'d Pool>,
) -> FnResult<Array> {
    if let Err(m) = ctx.access.check_any(GET_POOL) {
        return fail(m);
    }
    let d = &ctx.deployment;
    Ok(pools
        .filter(|p| ctx.access.may(d, GET_POOL, p))
        .map(|p| Dynamic::from(PoolObj::new(d, p)))
        .collect())
}

fn all_pools(ctx: &ScriptContext) -> FnResult<Array> {
    visible_pools(ctx, ctx.deployment.pools.iter())
}

/// One pool, with where its data is active now (read from its stores).
fn one_pool(ctx: &ScriptContext, fqdn: &str) -> FnResult<PoolObj> {
    let pool = authorized_pool(ctx, GET_POOL, fqdn)?;
    let mut obj = PoolObj::new(&ctx.deployment, pool);
    obj.placement = Some(super::failover::placement(ctx, pool));
    Ok(obj)
}

fn pools_by_filter(ctx: &ScriptContext, filter: &Map) -> FnResult<Array> {
    let d = &ctx.deployment;
    let mut site = None;
    for (key, value) in filter {
        match key.as_str() {
            "site" => {
                let Some(name) = value.clone().into_string().ok() else {
                    return fail(format!(
                        "get_pool: 'site' must be a string, not {}",
                        super::kind(value)
                    ));
                };
                match d.site(&name) {
                    Some(s) => site = Some(s),
                    None => {
                        return fail(format!(
                            "no site '{}' in deployment '{}'",
                            printable(&name),
                            d.name
                        ));
                    }
                }
            }
            other => {
                return fail(format!(
                    "get_pool: unknown filter '{}': the filter is #{{site: \"NAME\"}}",
                    printable(other)
                ));
            }
        }
    }
    match site {
        Some(s) => visible_pools(ctx, d.pools_in_site(s)),
        None => all_pools(ctx),
    }
}

fn relationship(ctx: &ScriptContext, fqdn: &str) -> FnResult<String> {
    let pool = authorized_pool(ctx, GET_RELATIONSHIP, fqdn)?;
    match &pool.backup_pool {
        Some(b) => Ok(b.to_string()),
        None => fail(format!("pool '{}' has no backup pool", pool.fqdn)),
    }
}

fn one_site(ctx: &ScriptContext, identity: &str) -> FnResult<SiteObj> {
    let d = &ctx.deployment;
    let Some(site) = d.site(identity) else {
        return fail(format!(
            "no site '{}' in deployment '{}'",
            printable(identity),
            d.name
        ));
    };
    if !ctx.access.may_on_site(GET_SITE, site.site_id) {
        return fail(format!(
            "access denied: {} ({}) may not run {GET_SITE} on site {}",
            ctx.access.operator,
            ctx.access.role_list(),
            site.identity
        ));
    }
    Ok(SiteObj::new(d, site))
}

fn all_sites(ctx: &ScriptContext) -> FnResult<Array> {
    if let Err(m) = ctx.access.check_any(GET_SITE) {
        return fail(m);
    }
    let d = &ctx.deployment;
    Ok(d.sites
        .iter()
        .filter(|s| ctx.access.may_on_site(GET_SITE, s.site_id))
        .map(|s| Dynamic::from(SiteObj::new(d, s)))
        .collect())
}

pub(super) fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    let c = ctx.clone();
    func("get_pool", &["Array"]).register_into_engine(engine, move || all_pools(&c));
    let c = ctx.clone();
    func("get_pool", &["fqdn: &str", "Pool"])
        .register_into_engine(engine, move |f: &str| one_pool(&c, f));
    let c = ctx.clone();
    func("get_pool", &["pool: Pool", "Pool"])
        .register_into_engine(engine, move |p: PoolObj| one_pool(&c, &p.fqdn));
    let c = ctx.clone();
    func("get_pool", &["filter: Map", "Array"])
        .register_into_engine(engine, move |m: Map| pools_by_filter(&c, &m));

    let c = ctx.clone();
    func("get_site", &["Array"]).register_into_engine(engine, move || all_sites(&c));
    let c = ctx.clone();
    func("get_site", &["identity: &str", "Site"])
        .register_into_engine(engine, move |s: &str| one_site(&c, s));

    let c = ctx.clone();
    func("get_pool_backup_relationship", &["pool: &str", "string"])
        .register_into_engine(engine, move |f: &str| relationship(&c, f));
    let c = ctx.clone();
    func("get_pool_backup_relationship", &["pool: Pool", "string"])
        .register_into_engine(engine, move |p: PoolObj| relationship(&c, &p.fqdn));
}
