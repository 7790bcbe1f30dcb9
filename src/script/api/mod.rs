//! The functions scripts call, split by concern; each binds an engine API.

mod failover;
mod pool;
mod rbac;
mod status;
mod sync;
mod util;

pub use util::take_exit_status;

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration, Map, Position};

use crate::script::types::PoolObj;

use super::ScriptContext;
use super::help;

pub(super) type FnResult<T> = Result<T, Box<EvalAltResult>>;

/// A value's type as the docs name it (`int`, `float`, `string`, `map`, `Pool`),
/// not Rhai's Rust names (`i64`, `f64`, `poolsync::script::types::Pool`).
pub(super) fn kind(value: &rhai::Dynamic) -> &'static str {
    super::diagnostic::friendly_type(value.type_name())
}

/// A catchable script error with one sentence.
pub(super) fn fail<T>(message: impl Into<String>) -> FnResult<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    )))
}

/// Stops the script (not catchable): Ctrl-C.
pub(super) fn interrupted<T>() -> FnResult<T> {
    Err(Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from("interrupted"),
        Position::NONE,
    )))
}

/// Waits `time`, and stops the script at Ctrl-C (`cancelled`, checked every
/// 50 ms): `sleep` and `backup_pool`'s wait between tries.
pub(super) fn pause(time: std::time::Duration, cancelled: impl Fn() -> bool) -> FnResult<()> {
    use std::time::{Duration, Instant};
    let until = Instant::now() + time;
    loop {
        if cancelled() {
            return interrupted();
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// A registration with the parameter names of the help table, marked volatile so
/// the optimiser never runs it at compile time.
pub(super) fn func(name: &str, params: &[&str]) -> FuncRegistration {
    let mut reg = FuncRegistration::new(name)
        .with_volatility(true)
        .with_purity(false)
        .with_params_info(params.iter().copied());
    if let Some(doc) = help::find(name) {
        reg = reg.with_comments(help::doc_comments(doc));
    }
    reg
}

/// A function of a pool (an FQDN) and an options map.
pub(super) type PoolCall<T> = fn(&ScriptContext, &str, &Map) -> FnResult<T>;

/// Registers `name(pool)` and `name(pool, opts)`, the pool given as an FQDN or
/// a Pool: four forms, one call. The forms without options pass `defaults()`.
pub(super) fn register_pool_fn<T: rhai::Variant + Clone>(
    engine: &mut Engine,
    ctx: &Rc<ScriptContext>,
    name: &str,
    returns: &str,
    defaults: fn() -> Map,
    call: PoolCall<T>,
) {
    let c = ctx.clone();
    func(name, &["pool: &str", returns])
        .register_into_engine(engine, move |p: &str| call(&c, p, &defaults()));
    let c = ctx.clone();
    func(name, &["pool: Pool", returns])
        .register_into_engine(engine, move |p: PoolObj| call(&c, &p.fqdn, &defaults()));
    let c = ctx.clone();
    func(name, &["pool: &str", "opts: Map", returns])
        .register_into_engine(engine, move |p: &str, o: Map| call(&c, p, &o));
    let c = ctx.clone();
    func(name, &["pool: Pool", "opts: Map", returns])
        .register_into_engine(engine, move |p: PoolObj, o: Map| call(&c, &p.fqdn, &o));
}

/// Registers every function.
pub(super) fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    failover::register(engine, ctx);
    pool::register(engine, ctx);
    sync::register(engine, ctx);
    rbac::register(engine, ctx);
    status::register(engine, ctx);
    util::register(engine);
}
