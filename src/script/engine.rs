//! Building the sandboxed Rhai engine with every poolsync function.

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use rhai::{Dynamic, Engine};

use super::sandbox::{Limits, ScriptDirResolver};
use super::{ScriptContext, api, types};

/// A new engine: poolsync's types and functions on top of [`sandboxed_engine`].
pub fn build_engine(ctx: &Rc<ScriptContext>, limits: &Limits, script: Option<&Path>) -> Engine {
    let mut engine = sandboxed_engine(limits, script);
    types::register(&mut engine);
    api::register(&mut engine, ctx);
    engine
}

/// The sandbox alone: the limits, no `eval`, imports only from the folder of
/// `script` (none without one), and Ctrl-C checked at every operation. Enough
/// to compile (`--check`).
#[must_use]
pub fn sandboxed_engine(limits: &Limits, script: Option<&Path>) -> Engine {
    let mut engine = Engine::new();
    engine.disable_symbol("eval");
    // `curry` builds function pointers nested in function pointers, which the
    // size limits do not count: a loop of them ends in a stack overflow when
    // the chain is dropped. Closures (which capture variables) still work.
    engine.disable_symbol("curry");
    allow_module_as_name(&mut engine);
    // Rhai's own print and debug use println!, which panics when standard
    // output is gone (a closed terminal, a full disk); these never do.
    engine.on_print(|text| crate::output::out(&format!("{text}\n")));
    engine.on_debug(|text, source, pos| {
        let text = match (source, pos.is_none()) {
            (Some(source), _) => format!("{source} @ {pos:?} | {text}\n"),
            (None, true) => format!("{text}\n"),
            (None, false) => format!("{pos:?} | {text}\n"),
        };
        crate::output::out(&text);
    });
    limits.apply(&mut engine);
    engine.set_module_resolver(ScriptDirResolver::new(script));
    let flag = crate::interrupt::flag();
    let stop = limits.clone();
    engine.on_progress(move |_| {
        if flag.load(Ordering::Relaxed) {
            return Some(Dynamic::from(INTERRUPTED));
        }
        stop.exceeded().map(Dynamic::from)
    });
    super::bounded::register(&mut engine, limits);
    engine
}

/// The token of a Ctrl-C stop (any other token is a limit's message).
pub(super) const INTERRUPTED: &str = "interrupted";

/// `module` is a word Rhai reserves for itself but never uses; poolsync's options
/// and reports are about Backup Service modules (`#{module: "DataConf"}`,
/// `report.module`), so the word is handed back to scripts as a plain name.
#[allow(deprecated)] // on_parse_token is stable in use, marked volatile upstream
fn allow_module_as_name(engine: &mut Engine) {
    use rhai::Token;
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(word) if word.as_str() == "module" => Token::Identifier(word),
        other => other,
    });
}
