//! The interactive shell: a rustyline editor over a script [`Session`].
//!
//! Knows the script layer; nothing below it knows the shell.

mod commands;
mod helper;
mod session;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::rc::Rc;

use rustyline::Editor;
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History};

pub use helper::{colorize, is_incomplete};
pub use session::{Outcome, Session};

use crate::error::Error;
use crate::script::{Runner, help, render, types};
use helper::{Knowledge, ShellHelper};

/// History entries kept.
pub const HISTORY_SIZE: usize = 10_000;

/// Whether to colour output: a terminal, `NO_COLOR` unset, `TERM` not dumb.
#[must_use]
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
        && std::io::stdout().is_terminal()
}

fn history_path() -> Option<PathBuf> {
    crate::dirs::state_dir().map(|d| d.join("history"))
}

fn refresh(knowledge: &Rc<RefCell<Knowledge>>, session: &Session<'_>) {
    let mut k = knowledge.borrow_mut();
    k.variables = session
        .variables()
        .into_iter()
        .map(|(n, _, p)| (n, p))
        .collect();
}

fn print_error(message: &str, color: bool) {
    if color {
        let message = crate::printable::printable_lines(message);
        crate::output::err_raw(&format!("\x1b[31m{message}\x1b[0m\n"));
    } else {
        crate::errln!("{message}");
    }
}

fn show(outcome: Outcome, color: bool) {
    match outcome {
        Outcome::Value(v) => {
            if let Some(text) = render::render(&v) {
                crate::outln!("{text}");
            }
        }
        Outcome::Error(e) => print_error(&e, color),
        Outcome::Interrupted => print_error("interrupted", color),
    }
}

/// What completion knows at start: every function, property, pool and site.
fn knowledge(session: &Session<'_>, deployment: &crate::topology::Deployment) -> Knowledge {
    let mut functions: Vec<String> = session
        .engine
        .gen_fn_signatures(true)
        .iter()
        .filter_map(|s| s.split('(').next())
        .map(|s| s.rsplit(' ').next().unwrap_or(s).to_string())
        .filter(|s| {
            s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        })
        .collect();
    functions.extend(help::FUNCTIONS.iter().map(|f| f.name.to_string()));
    functions.sort();
    functions.dedup();
    // Every property of every type, as the engine registers them.
    let mut all_properties: Vec<String> = types::properties(&session.engine)
        .into_values()
        .flatten()
        .collect();
    all_properties.sort();
    all_properties.dedup();
    Knowledge {
        functions,
        variables: Vec::new(),
        pools: deployment
            .pools
            .iter()
            .map(|p| p.fqdn.to_string())
            .collect(),
        sites: deployment
            .sites
            .iter()
            .map(|s| s.identity.clone())
            .collect(),
        all_properties,
    }
}

/// The line editor: history, completion, highlighting, the validator.
fn editor(
    runner: &Runner,
    knowledge: &Rc<RefCell<Knowledge>>,
    color: bool,
) -> Result<Editor<ShellHelper, FileHistory>, Error> {
    let setup = |e: rustyline::error::ReadlineError| {
        Error::Other(format!("cannot set up the line editor: {e}"))
    };
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)
        .map_err(setup)?
        .history_ignore_dups(true)
        .map_err(setup)?
        .history_ignore_space(true)
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .color_mode(if color {
            ColorMode::Enabled
        } else {
            ColorMode::Disabled
        })
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> = Editor::with_config(config)
        .map_err(|e| Error::Other(format!("cannot start the line editor: {e}")))?;
    editor.set_helper(Some(ShellHelper {
        knowledge: knowledge.clone(),
        color,
        checker: crate::script::sandboxed_engine(&runner.limits, None),
    }));
    Ok(editor)
}

/// Runs `init.rhai` from the config directory, if there is one.
fn run_init(session: &mut Session<'_>, knowledge: &Rc<RefCell<Knowledge>>, color: bool) {
    let Some(init) = crate::dirs::config_dir().map(|d| d.join("init.rhai")) else {
        return;
    };
    if !init.exists() {
        return;
    }
    match crate::input::read_text(&init) {
        Ok(source) => {
            let name = init.display().to_string();
            if let Outcome::Error(e) = session.eval(&name, &crate::script::strip_shebang(&source)) {
                print_error(&e, color);
            }
        }
        Err(e) => print_error(&format!("{}: {e}", init.display()), color),
    }
    // `exit` in init.rhai ends init.rhai, not the shell.
    let _ = crate::script::take_exit_status();
    refresh(knowledge, session);
}

/// Runs the interactive shell until the user quits.
pub fn run(runner: &Runner) -> Result<(), Error> {
    let color = use_color();
    let deployment = runner.ctx.deployment.clone();
    let mut session = Session::new(runner);
    let knowledge = Rc::new(RefCell::new(knowledge(&session, &deployment)));
    let mut editor = editor(runner, &knowledge, color)?;
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path); // missing on first use
    }
    crate::outln!(
        "poolsync {} - deployment '{}' ({} pools, {} sites) - operator {}",
        env!("CARGO_PKG_VERSION"),
        deployment.name,
        deployment.pools.len(),
        deployment.sites.len(),
        runner.ctx.access.operator
    );
    crate::outln!(":help for help, Tab to complete, Ctrl-D or :quit to leave");
    run_init(&mut session, &knowledge, color);
    let prompt = format!("{}> ", deployment.name);
    loop {
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C clears the line
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Other(format!("the terminal failed: {e}"))),
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        if let Some(path) = &history {
            // Append this session's new entry now: two shells never clobber each other.
            let _ = editor.append_history(path);
        }
        let trimmed = line.trim();
        if trimmed.starts_with(':') {
            if !command(trimmed, &mut session, &mut editor, color) {
                break;
            }
        } else {
            show(session.eval("<input>", &line), color);
        }
        // `exit(N)` (typed, or in a :load-ed file) leaves the shell with status N.
        match crate::script::take_exit_status() {
            Some(0) => break,
            Some(status) => return Err(Error::Exit(status)),
            None => {}
        }
        refresh(&knowledge, &session);
    }
    Ok(())
}

/// Runs a `:command`; false to quit.
fn command(
    line: &str,
    session: &mut Session<'_>,
    editor: &mut Editor<ShellHelper, FileHistory>,
    color: bool,
) -> bool {
    let (name, arg) = match line.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (line, ""),
    };
    match name {
        ":quit" | ":q" | ":exit" => return false,
        ":help" if arg.is_empty() => crate::out!("{}", commands::overview()),
        ":help" => match help::find(arg) {
            Some(doc) => crate::out!("{}", help::render(doc)),
            None => print_error(
                &format!("no help for '{arg}': :help lists the functions"),
                color,
            ),
        },
        ":functions" => {
            for f in help::FUNCTIONS {
                for s in f.signatures {
                    crate::outln!("{s}");
                }
            }
            for f in session.user_functions() {
                crate::outln!("{f}  (yours)");
            }
        }
        ":vars" => {
            let vars = session.variables();
            if vars.is_empty() {
                crate::outln!("no variables yet");
            }
            for (n, t, _) in vars {
                let value = match session.value_of(&n) {
                    Some(v) if v.is_array() => {
                        format!("[{} items]", v.clone().into_array().map_or(0, |a| a.len()))
                    }
                    Some(v) => render::render(v).map_or_else(
                        || "()".into(),
                        |s| s.lines().next().unwrap_or("").to_string(),
                    ),
                    None => "()".into(),
                };
                let value: String = value.chars().take(60).collect();
                crate::outln!("{n:<20} {t:<18} {value}");
            }
        }
        ":load" if arg.is_empty() => print_error(":load needs a FILE", color),
        ":load" => match crate::input::read_text(std::path::Path::new(arg)) {
            Ok(source) => show(
                session.eval(arg, &crate::script::strip_shebang(&source)),
                color,
            ),
            Err(e) => print_error(&format!("{arg}: {e}"), color),
        },
        ":history" => {
            let n: usize = arg.parse().unwrap_or(20);
            let h = editor.history();
            let len = h.len();
            for i in len.saturating_sub(n)..len {
                if let Ok(Some(entry)) = h.get(i, rustyline::history::SearchDirection::Forward) {
                    crate::outln!("{:>5}  {}", i + 1, entry.entry.replace('\n', "\n       "));
                }
            }
        }
        ":clear" => {
            let _ = editor.clear_screen();
        }
        other => print_error(
            &format!("unknown command '{other}': :help lists the commands"),
            color,
        ),
    }
    true
}
