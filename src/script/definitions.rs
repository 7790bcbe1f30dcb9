//! Definition files (`.d.rhai`) for the Rhai language server and editor
//! plugins: every function, type and constant a poolsync script sees, with
//! its doc comments, generated from the engine itself (Rhai's
//! `Engine::definitions`), so they cannot drift from what is registered.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Array, Scope};

use super::{Limits, ScriptContext, build_engine};
use crate::rbac::Access;
use crate::sync::CancelFlag;

/// A deployment just large enough to build an engine on: registering
/// functions reads nothing of it.
const PLACEHOLDER: &str = "[deployment]\nname = \"definitions\"\ncms_master = \"p.definitions.invalid\"\n[[site]]\nidentity = \"S\"\nsite_id = 1\n[[pool]]\nfqdn = \"p.definitions.invalid\"\nsite = \"S\"\nstore = \"memory://definitions\"\n";

/// An engine with every poolsync function, as a script gets it.
pub(crate) fn engine() -> Result<rhai::Engine, String> {
    let here = Path::new("definitions.toml");
    let deployment = crate::topology::parse(PLACEHOLDER, here, Path::new("/"))
        .map_err(|e| format!("cannot build the engine: {e}"))?;
    let deployment = Arc::new(deployment);
    let access = Access::for_user(&deployment, "definitions");
    let ctx = ScriptContext::new(deployment, access, CancelFlag::new(), false)
        .map_err(|e| format!("cannot build the engine: {e}"))?;
    Ok(build_engine(&Rc::new(ctx), &Limits::default(), None))
}

/// The definition files, by file name: Rhai's standard library and
/// operators, poolsync's functions and types (`__static__.d.rhai`), and the
/// constants every script has (`__scope__.d.rhai`: `ARGS`).
pub fn files() -> Result<Vec<(String, String)>, String> {
    let engine = engine()?;
    let scope = scope();
    let files = engine
        .definitions_with_scope(&scope)
        .with_headers(true)
        .iter_files()
        .map(|(name, text)| (name, without_indexers(&text)))
        .collect();
    Ok(files)
}

/// What every script has in scope.
fn scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_constant("ARGS", Array::new());
    scope
}

/// The text less its indexer definitions (`fn index$get$(...)`, a record's
/// `r["field"]`): a `.d.rhai` file has no syntax for them, and a language
/// server stops at the `$`. Each record's fields are declared as properties
/// (`fn get pool_fqdn(...)`) instead.
fn without_indexers(text: &str) -> String {
    text.split("\n\n")
        .filter(|block| {
            !block
                .lines()
                .any(|line| line.starts_with("fn index$") || line.starts_with("op index$"))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Writes [`files`] into `dir` (created if needed); returns their paths.
pub fn write(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let files = files()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
