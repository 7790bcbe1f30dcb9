//! Running scripts: files, `-c` snippets, standard input; `--check`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rhai::{Array, Dynamic, Scope};

use super::sandbox::Limits;
use super::{ScriptContext, build_engine, diagnostic, render};
use crate::error::Error;

/// Runs scripts against one deployment.
pub struct Runner {
    pub ctx: Rc<ScriptContext>,
    pub limits: Limits,
    /// Print values as JSON.
    pub json: bool,
}

/// Blanks a `#!` first line, keeping line numbers.
pub fn strip_shebang(source: &str) -> String {
    if source.starts_with("#!") {
        match source.find('\n') {
            Some(i) => source[i..].to_string(),
            None => String::new(),
        }
    } else {
        source.to_string()
    }
}

impl Runner {
    /// Compiles and runs `source`; prints its value when `print_value`.
    pub fn run_source(
        &self,
        name: &str,
        source: &str,
        import_base: Option<PathBuf>,
        args: &[String],
        print_value: bool,
    ) -> Result<(), Error> {
        let source = strip_shebang(source);
        let engine = build_engine(&self.ctx, &self.limits, import_base);
        let ast = engine.compile(&source).map_err(|e| {
            crate::errln!("{}", diagnostic::format_parse(name, &source, &e));
            Error::ScriptFailed
        })?;
        let mut scope = Scope::new();
        let args: Array = args.iter().map(|a| Dynamic::from(a.clone())).collect();
        scope.push_constant("ARGS", args);
        // A Ctrl-C while the script was read (a slow pipe) or compiled stops
        // it before it starts: the flag is not cleared here (the shell clears
        // it before each input).
        if crate::interrupt::is_set() {
            crate::errln!("{name}: interrupted");
            return Err(Error::Interrupted);
        }
        // A status from `exit` in an earlier run of this process is not this run's.
        let _ = super::api::take_exit_status();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
        }));
        match result {
            Ok(Ok(_)) if let Some(status) = super::api::take_exit_status() => match status {
                0 => Ok(()),
                status => Err(Error::Exit(status)),
            },
            Ok(Ok(value)) => {
                if print_value {
                    self.print_value(&value);
                }
                Ok(())
            }
            Ok(Err(err)) => {
                if diagnostic::is_interrupt(&err) {
                    crate::errln!("{name}: interrupted");
                    return Err(Error::Interrupted);
                }
                crate::errln!("{}", diagnostic::format_eval(name, &source, &err));
                Err(Error::ScriptFailed)
            }
            Err(_) => {
                crate::errln!(
                    "{name}: internal error: a poolsync function panicked; please report it"
                );
                Err(Error::ScriptFailed)
            }
        }
    }

    pub fn print_value(&self, value: &Dynamic) {
        if self.json {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&render::to_json(value)).unwrap_or_default()
            );
        } else if let Some(text) = render::render(value) {
            crate::outln!("{text}");
        }
    }

    /// Runs a script file; its folder is where it may import from.
    pub fn run_file(&self, path: &Path, args: &[String]) -> Result<(), Error> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = Some(script_folder(path));
        self.run_source(&path.display().to_string(), &source, base, args, false)
    }
}

/// The folder a script file may import from: its own.
fn script_folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Only compiles a script (no deployment needed), and the modules it imports
/// from its folder.
pub fn check_file(path: &Path, limits: &Limits) -> Result<(), Error> {
    let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    check(
        &path.display().to_string(),
        &source,
        limits,
        Some(script_folder(path)),
    )
}

/// Only compiles `source`, named `name` in messages.
pub fn check_source(name: &str, source: &str, limits: &Limits) -> Result<(), Error> {
    check(name, source, limits, None)
}

fn check(
    name: &str,
    source: &str,
    limits: &Limits,
    import_base: Option<PathBuf>,
) -> Result<(), Error> {
    let source = strip_shebang(source);
    let engine = super::engine::sandboxed_engine(limits, import_base);
    let ast = engine.compile(&source).map_err(|e| {
        crate::errln!("{}", diagnostic::format_parse(name, &source, &e));
        Error::ScriptFailed
    })?;
    let mut seen = std::collections::HashSet::new();
    check_imports(&engine, &ast, &mut seen).map_err(|e| {
        crate::errln!("{}", diagnostic::format_eval(name, &source, &e));
        Error::ScriptFailed
    })?;
    crate::outln!("{name}: ok");
    Ok(())
}

/// Compiles, without running, every module `ast` imports by a literal path,
/// and theirs in turn: a syntax error in one fails `--check` as it would fail
/// the run. Imports by a computed path are only known when the script runs.
fn check_imports(
    engine: &rhai::Engine,
    ast: &rhai::AST,
    seen: &mut std::collections::HashSet<String>,
) -> Result<(), Box<rhai::EvalAltResult>> {
    let mut imports = Vec::new();
    ast.walk(&mut |nodes: &[rhai::ASTNode]| {
        if let Some(rhai::ASTNode::Stmt(rhai::Stmt::Import(x, pos))) = nodes.last()
            && let rhai::Expr::StringConstant(path, _) = &x.0
        {
            imports.push((path.to_string(), *pos));
        }
        true
    });
    for (path, pos) in imports {
        if !seen.insert(path.clone()) {
            continue;
        }
        let wrap = |e: Box<rhai::EvalAltResult>| match *e {
            // The resolver names the module already.
            rhai::EvalAltResult::ErrorInModule(ref p, ..) if *p == path => e,
            _ => Box::new(rhai::EvalAltResult::ErrorInModule(path.clone(), e, pos)),
        };
        match engine
            .module_resolver()
            .resolve_ast(engine, None, &path, pos)
        {
            Some(Ok(module)) => check_imports(engine, &module, seen).map_err(wrap)?,
            Some(Err(e)) => return Err(wrap(e)),
            None => {}
        }
    }
    Ok(())
}
