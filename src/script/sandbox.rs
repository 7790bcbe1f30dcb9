//! The script sandbox: limits, and `import` confined to the script's own folder.

use std::path::{Component, Path, PathBuf};

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Shared};

type SharedModule = Shared<Module>;

/// Resource limits of a script.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Operations before a script is stopped (0: unlimited).
    pub max_operations: u64,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000_000,
            max_string_size: 16 * 1024 * 1024,
            max_array_size: 1_000_000,
            max_map_size: 100_000,
            max_call_levels: 64,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
        }
    }
}

impl Limits {
    pub fn apply(&self, engine: &mut Engine) {
        engine
            .set_max_operations(self.max_operations)
            .set_max_string_size(self.max_string_size)
            .set_max_array_size(self.max_array_size)
            .set_max_map_size(self.max_map_size)
            .set_max_call_levels(self.max_call_levels)
            .set_max_expr_depths(self.max_expr_depth, self.max_function_expr_depth)
            .set_max_modules(64);
    }
}

/// Resolves `import "name"` to `name.rhai` inside one folder, never outside it.
pub struct ScriptDirResolver {
    base: Option<PathBuf>,
    inner: FileModuleResolver,
}

impl ScriptDirResolver {
    /// `base`: the running script's folder; `None` (code from `-c` or standard
    /// input, the shell) refuses every import.
    pub fn new(base: Option<PathBuf>) -> Self {
        let base = base.map(|b| b.canonicalize().unwrap_or(b));
        let inner = match &base {
            Some(b) => FileModuleResolver::new_with_path(b.clone()),
            None => FileModuleResolver::new(),
        };
        ScriptDirResolver { base, inner }
    }

    fn check(&self, path: &str, pos: Position) -> Result<(), Box<EvalAltResult>> {
        let refuse = |why: String| -> Result<(), Box<EvalAltResult>> {
            Err(Box::new(EvalAltResult::ErrorInModule(
                path.to_string(),
                why.into(),
                pos,
            )))
        };
        let Some(base) = &self.base else {
            return refuse(
                "import is only available to script files, from their own folder".into(),
            );
        };
        let p = Path::new(path);
        if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return refuse(format!(
                "import '{path}' leaves the script's folder; only .rhai files in {} (or below) can be imported",
                base.display()
            ));
        }
        let file = self.inner.get_file_path(path, None);
        if let Ok(real) = file.canonicalize()
            && !real.starts_with(base)
        {
            return refuse(format!(
                "import '{path}' resolves outside the script's folder (through a link)"
            ));
        }
        Ok(())
    }
}

impl ModuleResolver for ScriptDirResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        self.check(path, pos)?;
        self.inner.resolve(engine, source, path, pos)
    }

    fn resolve_ast(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Option<Result<rhai::AST, Box<EvalAltResult>>> {
        if let Err(e) = self.check(path, pos) {
            return Some(Err(e));
        }
        self.inner.resolve_ast(engine, source, path, pos)
    }
}
