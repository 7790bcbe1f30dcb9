//! `get_admin_role`, `get_operator`, `test_admin_access`, matches.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine};

use super::{FnResult, fail, func};
use crate::printable::printable;
use crate::rbac::catalog;
use crate::script::ScriptContext;
use crate::script::types::{AdminRoleObj, OperatorObj, PoolObj};

const GET_ADMIN_ROLE: &str = "Get-CsAdminRole";

fn roles(ctx: &ScriptContext) -> FnResult<Array> {
    if let Err(m) = ctx.access.check_any(GET_ADMIN_ROLE) {
        return fail(m);
    }
    Ok(crate::rbac::all_roles(&ctx.deployment)
        .iter()
        .map(|r| Dynamic::from(AdminRoleObj::new(r)))
        .collect())
}

fn role(ctx: &ScriptContext, identity: &str) -> FnResult<AdminRoleObj> {
    if let Err(m) = ctx.access.check_any(GET_ADMIN_ROLE) {
        return fail(m);
    }
    match crate::rbac::all_roles(&ctx.deployment)
        .iter()
        .find(|r| r.identity.eq_ignore_ascii_case(identity))
    {
        Some(r) => Ok(AdminRoleObj::new(r)),
        None => fail(format!(
            "no role '{}' in deployment '{}'",
            printable(identity),
            ctx.deployment.name
        )),
    }
}

fn test_access(ctx: &ScriptContext, cmdlet: &str, fqdn: &str) -> FnResult<bool> {
    let Some(c) = catalog::cmdlet(cmdlet) else {
        return fail(format!(
            "unknown cmdlet '{}': use a Lync name (e.g. Invoke-CsBackupServiceSync) or a function name (invoke_backup_service_sync)",
            printable(cmdlet)
        ));
    };
    let d = &ctx.deployment;
    match d.require_pool(fqdn) {
        // A cmdlet that acts on the whole deployment needs global scope too.
        Ok(pool) => {
            Ok(ctx.access.may(d, c.name, pool)
                && ctx.access.check_global_if_required(c.name).is_ok())
        }
        Err(m) => fail(m),
    }
}

fn matches(text: &str, pattern: &str) -> FnResult<bool> {
    match regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
    {
        Ok(re) => Ok(re.is_match(text)),
        Err(e) => {
            // The regex crate shows a syntax error over several lines (the
            // pattern, a caret, "error: ..."); keep the last one.
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .map_or_else(
                    || text.split_whitespace().collect::<Vec<_>>().join(" "),
                    str::to_string,
                );
            fail(format!(
                "matches: invalid regular expression '{}': {reason}",
                printable(pattern)
            ))
        }
    }
}

pub(super) fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    let c = ctx.clone();
    func("get_admin_role", &["Array"]).register_into_engine(engine, move || roles(&c));
    let c = ctx.clone();
    func("get_admin_role", &["identity: &str", "AdminRole"])
        .register_into_engine(engine, move |i: &str| role(&c, i));
    let c = ctx.clone();
    func("get_operator", &["Operator"])
        .register_into_engine(engine, move || OperatorObj::new(&c.access));
    let c = ctx.clone();
    func("test_admin_access", &["cmdlet: &str", "pool: &str", "bool"])
        .register_into_engine(engine, move |cmd: &str, p: &str| test_access(&c, cmd, p));
    let c = ctx.clone();
    func("test_admin_access", &["cmdlet: &str", "pool: Pool", "bool"])
        .register_into_engine(engine, move |cmd: &str, p: PoolObj| {
            test_access(&c, cmd, &p.fqdn)
        });
    func("matches", &["text: &str", "regex: &str", "bool"]).register_into_engine(engine, matches);
}
