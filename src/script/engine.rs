//! Building the sandboxed Rhai engine with every poolsync function.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use rhai::{Dynamic, Engine};

use super::sandbox::{Limits, ScriptDirResolver};
use super::{ScriptContext, api, types};

/// A new engine: poolsync's types and functions, the limits, no `eval`, imports
/// only from `import_base`, and Ctrl-C checked at every operation.
pub fn build_engine(
    ctx: &Rc<ScriptContext>,
    limits: &Limits,
    import_base: Option<PathBuf>,
) -> Engine {
    let mut engine = Engine::new();
    engine.disable_symbol("eval");
    limits.apply(&mut engine);
    engine.set_module_resolver(ScriptDirResolver::new(import_base));
    let flag = crate::interrupt::flag();
    engine.on_progress(move |_| {
        if flag.load(Ordering::Relaxed) {
            Some(Dynamic::from("interrupted"))
        } else {
            None
        }
    });
    types::register(&mut engine);
    api::register(&mut engine, ctx);
    engine
}
