//! One shell session: the engine, the variables and the functions defined so far.

use rhai::{AST, Dynamic, Engine, Scope};

use crate::script::{Runner, build_engine, diagnostic, types};

/// What one input did.
pub enum Outcome {
    Value(Dynamic),
    Error(String),
    Interrupted,
}

pub struct Session<'r> {
    pub runner: &'r Runner,
    pub engine: Engine,
    pub scope: Scope<'static>,
    /// Every `fn` defined so far (a later definition replaces an earlier one).
    lib: AST,
}

impl<'r> Session<'r> {
    #[must_use]
    pub fn new(runner: &'r Runner) -> Self {
        Session {
            runner,
            engine: build_engine(&runner.ctx, &runner.limits, None),
            scope: Scope::new(),
            lib: AST::empty(),
        }
    }

    /// Evaluates one input; variables, constants and functions persist.
    pub fn eval(&mut self, name: &str, input: &str) -> Outcome {
        crate::interrupt::reset();
        let ast = match self.engine.compile_with_scope(&self.scope, input) {
            Ok(ast) => ast,
            Err(e) => {
                return Outcome::Error(diagnostic::format_parse(
                    name,
                    input,
                    &e,
                    &self.runner.limits,
                ));
            }
        };
        let merged = self.lib.merge(&ast);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.engine
                .eval_ast_with_scope::<Dynamic>(&mut self.scope, &merged)
        }));
        self.lib = merged.clone_functions_only();
        let outcome = match result {
            Ok(Ok(value)) => Outcome::Value(value),
            Ok(Err(err)) if diagnostic::is_interrupt(&err) => Outcome::Interrupted,
            Ok(Err(err)) => Outcome::Error(diagnostic::format_eval(
                name,
                input,
                &err,
                &self.runner.limits,
            )),
            Err(_) => Outcome::Error(format!(
                "{name}: internal error: a poolsync function panicked; please report it"
            )),
        };
        crate::interrupt::reset();
        outcome
    }

    /// The variables in scope: name, type, and the properties of typed values.
    pub fn variables(&self) -> Vec<(String, String, Option<&'static [&'static str]>)> {
        // A name shadowed by a later `let` is listed once, with its latest value.
        let all: Vec<_> = self.scope.iter_raw().collect();
        let mut seen = std::collections::HashSet::new();
        let mut vars: Vec<_> = all
            .into_iter()
            .rev()
            .filter(|(name, _, _)| seen.insert(name.to_string()))
            .map(|(name, _, value)| {
                (
                    name.to_string(),
                    self.engine.map_type_name(value.type_name()).to_string(),
                    types::properties_of(value),
                )
            })
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Signatures of the functions the user defined in this session. Closures
    /// are kept as functions too (Rhai names them `anon$<hash>`); they are not
    /// listed.
    pub fn user_functions(&self) -> Vec<String> {
        self.lib
            .iter_functions()
            .filter(|f| !f.name.starts_with("anon$"))
            .map(|f| format!("{}({})", f.name, f.params.join(", ")))
            .collect()
    }

    pub fn value_of(&self, name: &str) -> Option<&Dynamic> {
        self.scope.get(name)
    }
}
