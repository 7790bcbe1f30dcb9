//! The script sandbox: limits, and `import` confined to the script's own folder.

use std::path::{Component, Path, PathBuf};

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Shared};

type SharedModule = Shared<Module>;

/// Resource limits of a script.
///
/// Memory is bounded by what the process holds ([`crate::memory`]), checked
/// at every operation, not by Rhai's array, map and string size limits: those
/// measure the whole value after each change, so a loop of a million pushes
/// costs a million walks of the array. They stay off.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Operations before a script is stopped (0: unlimited).
    pub max_operations: u64,
    /// Heap bytes the process may hold while a script runs (0: unlimited).
    pub max_memory: usize,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
}

/// The default `--max-memory`, in MiB.
pub const DEFAULT_MAX_MEMORY_MIB: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // About ten minutes of plain Rhai on this machine's kind: far
            // beyond any job, and an endless loop still ends.
            max_operations: 10_000_000_000,
            max_memory: DEFAULT_MAX_MEMORY_MIB << 20,
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
            .set_max_call_levels(self.max_call_levels)
            .set_max_expr_depths(self.max_expr_depth, self.max_function_expr_depth)
            .set_max_modules(64);
    }

    /// Why a script must stop now, if it must: it holds more memory than
    /// allowed. Cheap enough for every operation.
    pub fn exceeded(&self) -> Option<String> {
        let held = crate::memory::held();
        (self.max_memory > 0 && held > self.max_memory).then(|| self.memory_message())
    }

    /// Whether `more` bytes would take the process past the memory limit.
    pub fn would_exceed(&self, more: usize) -> bool {
        self.max_memory > 0 && crate::memory::held().saturating_add(more) > self.max_memory
    }

    /// The error of a script stopped for its memory.
    pub fn memory_message(&self) -> String {
        format!(
            "the script holds more than {} MiB of memory, the limit; raise it with --max-memory MIB (0: no limit)",
            self.max_memory >> 20
        )
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
