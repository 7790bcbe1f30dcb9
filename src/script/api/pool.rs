//! get_pool, get_site, get_pool_backup_relationship.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::{FnResult, fail, func};
use crate::script::ScriptContext;
use crate::script::types::{PoolObj, SiteObj};

fn all_pools(ctx: &ScriptContext) -> Array {
    let d = &ctx.deployment;
    d.pools
        .iter()
        .map(|p| Dynamic::from(PoolObj::new(d, p)))
        .collect()
}

fn one_pool(ctx: &ScriptContext, fqdn: &str) -> FnResult<PoolObj> {
    let d = &ctx.deployment;
    match d.require_pool(fqdn) {
        Ok(p) => Ok(PoolObj::new(d, p)),
        Err(m) => fail(m),
    }
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
                        value.type_name()
                    ));
                };
                match d.site(&name) {
                    Some(s) => site = Some(s),
                    None => return fail(format!("no site '{name}' in deployment '{}'", d.name)),
                }
            }
            other => {
                return fail(format!(
                    "get_pool: unknown filter '{other}': the filter is #{{site: \"NAME\"}}"
                ));
            }
        }
    }
    Ok(match site {
        Some(s) => d
            .pools_in_site(s)
            .map(|p| Dynamic::from(PoolObj::new(d, p)))
            .collect(),
        None => all_pools(ctx),
    })
}

fn relationship(ctx: &ScriptContext, fqdn: &str) -> FnResult<String> {
    let d = &ctx.deployment;
    let pool = match d.require_pool(fqdn) {
        Ok(p) => p,
        Err(m) => return fail(m),
    };
    match &pool.backup_pool {
        Some(b) => Ok(b.to_string()),
        None => fail(format!("pool '{}' has no backup pool", pool.fqdn)),
    }
}

fn one_site(ctx: &ScriptContext, identity: &str) -> FnResult<SiteObj> {
    let d = &ctx.deployment;
    match d.site(identity) {
        Some(s) => Ok(SiteObj::new(d, s)),
        None => fail(format!("no site '{identity}' in deployment '{}'", d.name)),
    }
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
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
    func("get_site", &["Array"]).register_into_engine(engine, move || -> Array {
        let d = &c.deployment;
        d.sites
            .iter()
            .map(|s| Dynamic::from(SiteObj::new(d, s)))
            .collect()
    });
    let c = ctx.clone();
    func("get_site", &["identity: &str", "Site"])
        .register_into_engine(engine, move |s: &str| one_site(&c, s));

    let c = ctx.clone();
    func("get_pool_backup_relationship", &["pool: &str", "String"])
        .register_into_engine(engine, move |f: &str| relationship(&c, f));
    let c = ctx.clone();
    func("get_pool_backup_relationship", &["pool: Pool", "String"])
        .register_into_engine(engine, move |p: PoolObj| relationship(&c, &p.fqdn));
}
