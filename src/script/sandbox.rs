//! The script sandbox: limits, and `import` confined to the script's own folder.

use std::cell::RefCell;
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

/// The default `--max-operations`.
pub const DEFAULT_MAX_OPERATIONS: u64 = 3_000_000_000;

/// The default `--max-memory`, in MiB.
pub const DEFAULT_MAX_MEMORY_MIB: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // About 80 seconds of plain Rhai on the 2-core benchmark
            // machine (rhai-run does some 36 million operations a second
            // there): a script rhai-run finishes in a minute runs, and an
            // endless loop in a batch job stops within two minutes.
            max_operations: DEFAULT_MAX_OPERATIONS,
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
            .set_max_modules(MAX_MODULES);
    }

    /// Why a script must stop now, if it must: it holds more memory than
    /// allowed. Cheap enough for every operation.
    #[must_use]
    pub fn exceeded(&self) -> Option<String> {
        let held = crate::memory::held();
        (self.max_memory > 0 && held > self.max_memory).then(|| self.memory_message())
    }

    /// Whether `more` bytes would take the process past the memory limit.
    #[must_use]
    pub fn would_exceed(&self, more: usize) -> bool {
        self.max_memory > 0 && crate::memory::held().saturating_add(more) > self.max_memory
    }

    /// The error of a script stopped for its memory.
    #[must_use]
    pub fn memory_message(&self) -> String {
        format!(
            "the script holds more than {} MiB of memory, the limit; raise it with --max-memory MIB (0: no limit)",
            self.max_memory >> 20
        )
    }

    /// A limit's error in words: which limit stopped the script, its value,
    /// and the flag that raises it (or what to do where it is fixed). `None`
    /// for any other error.
    #[must_use]
    pub fn explain(&self, err: &EvalAltResult) -> Option<String> {
        Some(match err {
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "the script ran {} operations, the limit (an endless loop?); raise it with --max-operations N (0: no limit)",
                group_digits(self.max_operations)
            ),
            EvalAltResult::ErrorStackOverflow(_) => format!(
                "functions called each other more than {} levels deep, the limit (an endless recursion?); raise it with --max-call-depth N (at most {}), or turn the recursion into a loop",
                self.max_call_levels, MAX_CALL_DEPTH
            ),
            EvalAltResult::ErrorTooManyModules(_) => format!(
                "the script imports more than {MAX_MODULES} modules, a fixed limit: import fewer, larger modules"
            ),
            EvalAltResult::ErrorParsing(rhai::ParseErrorType::ExprTooDeep, _) => format!(
                "an expression is nested more than {} levels deep ({} inside a function), a fixed limit of the parser: split it with variables",
                self.max_expr_depth, self.max_function_expr_depth
            ),
            _ => return None,
        })
    }
}

/// Modules a script may import, in all (a fixed limit).
const MAX_MODULES: usize = 64;

/// The deepest `--max-call-depth`: each level of calls takes room on the
/// interpreter's stack (1 GiB, or 64 MiB where the system will not reserve
/// that), and past it the process would die instead of the script failing.
pub const MAX_CALL_DEPTH: usize = 2_000;

/// `10000000000` as `10,000,000,000`.
#[must_use]
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Resolves `import "name"` to `name.rhai` inside one folder, never outside it,
/// and refuses an import cycle (a module that imports itself, directly or
/// not), which would otherwise recurse until the stack overflows.
pub struct ScriptDirResolver {
    base: Option<PathBuf>,
    inner: FileModuleResolver,
    /// The script, then each module being loaded, innermost last: real paths.
    chain: RefCell<Vec<PathBuf>>,
}

/// The folder a script file may import from: its own.
#[must_use]
pub fn script_folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl ScriptDirResolver {
    /// `script`: the running script file, whose folder imports come from;
    /// `None` (code from `-c` or standard input, the shell) refuses every import.
    pub fn new(script: Option<&Path>) -> Self {
        let base = script
            .map(script_folder)
            .map(|b| b.canonicalize().unwrap_or(b));
        let inner = match &base {
            Some(b) => FileModuleResolver::new_with_path(b.clone()),
            None => FileModuleResolver::new(),
        };
        let top = script.map(|s| s.canonicalize().unwrap_or_else(|_| s.to_path_buf()));
        ScriptDirResolver {
            base,
            inner,
            chain: RefCell::new(top.into_iter().collect()),
        }
    }

    /// The real path of the module `path` names.
    fn file_of(&self, path: &str) -> PathBuf {
        let file = self.inner.get_file_path(path, None);
        file.canonicalize().unwrap_or(file)
    }

    /// Refuses `path` if it is already being loaded: `import cycle: a.rhai ->
    /// b.rhai -> a.rhai`, each file as it stands in the script's folder.
    pub fn check_cycle(
        &self,
        chain: &[PathBuf],
        file: &Path,
        pos: Position,
    ) -> Result<(), Box<EvalAltResult>> {
        let Some(start) = chain.iter().position(|p| p == file) else {
            return Ok(());
        };
        let shown = |p: &PathBuf| {
            let rel = self.base.as_ref().and_then(|b| p.strip_prefix(b).ok());
            rel.unwrap_or(p).display().to_string()
        };
        let mut names: Vec<String> = chain[start..].iter().map(shown).collect();
        names.push(shown(&file.to_path_buf()));
        Err(Box::new(EvalAltResult::ErrorRuntime(
            format!("import cycle: {}", names.join(" -> ")).into(),
            pos,
        )))
    }

    /// Loads a module with its file on the chain (for the cycle check).
    fn loading<T>(
        &self,
        path: &str,
        pos: Position,
        load: impl FnOnce() -> Result<T, Box<EvalAltResult>>,
    ) -> Result<T, Box<EvalAltResult>> {
        let file = self.file_of(path);
        self.check_cycle(&self.chain.borrow(), &file, pos)?;
        self.chain.borrow_mut().push(file);
        let result = load();
        self.chain.borrow_mut().pop();
        result
    }

    /// The chain of files being loaded now (the script first).
    pub fn chain(&self) -> Vec<PathBuf> {
        self.chain.borrow().clone()
    }

    /// The real path of `path` as an import resolves it.
    pub fn resolved(&self, path: &str) -> PathBuf {
        self.file_of(path)
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
        // A missing module is Rhai's own error; anything else must be a file
        // that reads at once (not a FIFO, not a device).
        match crate::input::check_regular(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                refuse(format!("{}: {e}", file.display()))
            }
            _ => Ok(()),
        }
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
        self.loading(path, pos, || self.inner.resolve(engine, source, path, pos))
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
