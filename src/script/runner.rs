//! Running scripts: files, `-c` snippets, standard input; `--check`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rhai::{Array, Dynamic, Scope};

use super::sandbox::{Limits, ScriptDirResolver};
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
#[must_use]
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
        script: Option<&Path>,
        args: &[String],
        print_value: bool,
    ) -> Result<(), Error> {
        let source = strip_shebang(source);
        let engine = build_engine(&self.ctx, &self.limits, script);
        let ast = engine.compile(&source).map_err(|e| {
            crate::errln!(
                "{}",
                diagnostic::format_parse(name, &source, &e, &self.limits)
            );
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
                crate::errln!(
                    "{}",
                    diagnostic::format_eval(name, &source, &err, &self.limits)
                );
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
        let source = crate::input::read_text(path).map_err(|e| Error::io(path, e))?;
        self.run_source(
            &path.display().to_string(),
            &source,
            Some(path),
            args,
            false,
        )
    }
}

/// Only compiles a script (no deployment needed), and the modules it imports
/// from its folder.
pub fn check_file(path: &Path, limits: &Limits) -> Result<(), Error> {
    let source = crate::input::read_text(path).map_err(|e| Error::io(path, e))?;
    check(&path.display().to_string(), &source, limits, Some(path))
}

/// Only compiles `source`, named `name` in messages.
pub fn check_source(name: &str, source: &str, limits: &Limits) -> Result<(), Error> {
    check(name, source, limits, None)
}

fn check(name: &str, source: &str, limits: &Limits, script: Option<&Path>) -> Result<(), Error> {
    let source = strip_shebang(source);
    let engine = super::engine::sandboxed_engine(limits, script);
    // The same resolution as the engine's, for the cycle check.
    let files = ScriptDirResolver::new(script);
    let ast = engine.compile(&source).map_err(|e| {
        crate::errln!("{}", diagnostic::format_parse(name, &source, &e, limits));
        Error::ScriptFailed
    })?;
    let mut seen = std::collections::HashSet::new();
    let mut chain = files.chain();
    check_imports(&engine, &files, &ast, &mut chain, &mut seen).map_err(|e| {
        crate::errln!("{}", diagnostic::format_eval(name, &source, &e, limits));
        Error::ScriptFailed
    })?;
    crate::outln!("{name}: ok");
    Ok(())
}

/// Compiles, without running, every module `ast` imports by a literal path,
/// and theirs in turn: a syntax error in one, or an import cycle, fails
/// `--check` as it would fail the run. `chain` is the files being checked,
/// the script first. Imports by a computed path are only known when the
/// script runs.
fn check_imports(
    engine: &rhai::Engine,
    files: &ScriptDirResolver,
    ast: &rhai::AST,
    chain: &mut Vec<PathBuf>,
    seen: &mut std::collections::HashSet<PathBuf>,
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
        let file = files.resolved(&path);
        files.check_cycle(chain, &file, pos)?;
        if !seen.insert(file.clone()) {
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
            Some(Ok(module)) => {
                chain.push(file);
                let checked = check_imports(engine, files, &module, chain, seen);
                chain.pop();
                checked.map_err(wrap)?;
            }
            Some(Err(e)) => return Err(wrap(e)),
            None => {}
        }
    }
    Ok(())
}
