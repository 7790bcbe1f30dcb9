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
fn engine() -> Result<rhai::Engine, String> {
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
    let mut scope = Scope::new();
    scope.push_constant("ARGS", Array::new());
    let files = engine
        .definitions_with_scope(&scope)
        .with_headers(true)
        .iter_files()
        .collect();
    Ok(files)
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
mod tests {
    #[test]
    fn every_function_poolsync_registers_is_defined_with_its_docs() {
        let files = super::files().unwrap();
        let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
        let ours = &files
            .iter()
            .find(|(n, _)| n == "__static__.d.rhai")
            .expect("a file for the global namespace")
            .1;
        for doc in crate::script::help::FUNCTIONS {
            let at = ours
                .find(&format!("fn {}(", doc.name))
                .unwrap_or_else(|| panic!("{} is not defined", doc.name));
            let before = &ours[..at];
            assert!(
                before.trim_end().ends_with("```") && before.contains(doc.summary),
                "{} has no doc comment",
                doc.name
            );
        }
        // Whatever else the engine registers (getters, operators, overrides
        // of Rhai's own functions) is defined too.
        let engine = super::engine().unwrap();
        for signature in engine.gen_fn_signatures(false) {
            let name = signature.split('(').next().unwrap_or_default().trim();
            let name = name.rsplit(' ').next().unwrap_or(name);
            let defined = match name.split_once('$') {
                Some(("get", prop)) => format!("fn get {prop}("),
                Some(("set", prop)) => format!("fn set {prop}("),
                Some(_) => format!("fn {name}("),
                _ if name.chars().all(|c| c.is_alphanumeric() || c == '_') => format!("fn {name}("),
                _ => format!("op {name}("),
            };
            assert!(
                all.contains(&defined),
                "{signature} has no definition ({defined})"
            );
        }
        // The typed objects and the ARGS constant are there too.
        for needle in [
            "Pool",
            "FailoverReport",
            "BackupServiceStatus",
            "const ARGS: array",
        ] {
            assert!(all.contains(needle), "{needle} is not defined");
        }
    }
}
