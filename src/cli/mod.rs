//! The command line: parses arguments and dispatches to the engine parts.

mod args;
mod churn;
mod init;
mod locate;

use std::io::IsTerminal;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

pub use args::{Cli, Command, DemoAction};

use crate::error::Error;
use crate::script::{Limits, Runner, ScriptContext};
use crate::sync::CancelFlag;
use crate::topology::{self, Deployment};
use crate::{demo, interrupt};

/// Parses the command line and runs it; returns the exit status.
#[must_use]
pub fn main() -> i32 {
    // Like every Unix filter: a closed pipe (`poolsync ... | head`) ends us quietly.
    // SAFETY: setting a signal disposition to its default is always sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = Cli::command();
    if let Some((name, before)) = subcommand_after_script(&command, &args) {
        crate::errln!("poolsync: {}", subcommand_after(&name, &before));
        return crate::error::EXIT_USAGE;
    }
    let parsed = command
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        // An error goes through our standard error, which escapes what it
        // echoes of the arguments; `--help` and `--version` print as clap does.
        Err(e) if e.use_stderr() => {
            crate::output::err(&e.render().to_string());
            return crate::error::EXIT_USAGE;
        }
        Err(e) => {
            let _ = e.print();
            return 0;
        }
    };
    // Scripts may recurse deeply, and dropping a long chain of closures that
    // capture each other recurses once per closure: give the interpreter room.
    // 1 GiB of which only the touched pages are used, or 64 MiB where the
    // kernel will not reserve that much (strict overcommit).
    let cli = std::sync::Arc::new(std::sync::Mutex::new(Some(cli)));
    let spawn = |stack: usize| {
        let cli = cli.clone();
        std::thread::Builder::new()
            .name("poolsync".into())
            .stack_size(stack)
            .spawn(move || match cli.lock().ok().and_then(|mut c| c.take()) {
                Some(cli) => execute(&cli),
                None => Err(Error::Other(
                    "internal error: the command line was taken".into(),
                )),
            })
    };
    let worker = spawn(1 << 30).or_else(|_| spawn(64 << 20));
    let outcome = match worker {
        Ok(handle) => handle.join().unwrap_or_else(|_| {
            Err(Error::Other(
                "internal error: poolsync panicked; please report it".into(),
            ))
        }),
        Err(e) => Err(Error::Other(format!("cannot start: {e}"))),
    };
    let status = match outcome {
        Ok(()) => 0,
        Err(e) => {
            if !matches!(e, Error::ScriptFailed | Error::Interrupted | Error::Exit(_)) {
                crate::errln!("poolsync: {e}");
            }
            e.exit_code()
        }
    };
    // Output that could not be written fails the run, after the work itself
    // went on (a sync is not abandoned for its printout).
    match crate::output::stdout_failure() {
        Some(e) if status == 0 => {
            crate::errln!("poolsync: cannot write to standard output: {e}");
            1
        }
        _ => status,
    }
}

/// Loads the deployment the flags name, printing its warnings.
pub fn load_deployment(cli: &Cli) -> Result<Deployment, Error> {
    let path = if cli.demo {
        demo::ensure()?
    } else {
        let (path, origin) = locate::locate(cli.deployment.as_deref())?;
        if !path.exists() {
            use locate::Origin;
            let named_by = match origin {
                Origin::Flag => "--deployment".to_string(),
                Origin::Environment => locate::ENV_VAR.to_string(),
                Origin::Config(config) => format!("`deployment` in {}", config.display()),
                Origin::WorkingDirectory => "the current directory".to_string(),
            };
            return Err(Error::Usage(format!(
                "{}: no deployment file there (named by {named_by}): fix the path, or run `poolsync init DIR` to write a starter DIR/deployment.toml",
                path.display()
            )));
        }
        path
    };
    // Before the trust check, which would otherwise judge the folder's
    // permissions as if it were the file (and suggest `chmod go-w /tmp`).
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "the deployment file {} is a folder: name the file itself, e.g. {}",
            path.display(),
            path.join("deployment.toml").display()
        )));
    }
    crate::rbac::check_trusted(&path).map_err(Error::Usage)?;
    let deployment = topology::load(&path)?;
    for w in &deployment.warnings {
        crate::errln!("{w}");
    }
    Ok(deployment)
}

fn subcommand_after(name: &str, before: &str) -> String {
    format!(
        "'{name}' after {before} is read as the subcommand `poolsync {name}`, and the script would not run; to pass it to the script in ARGS, put `--` first: `poolsync {before} -- {name} ...`"
    )
}

/// `job.rhai demo path`, `job.rhai help`, `-c CODE init`: clap reads the first
/// word after SCRIPT (or after `-c CODE`) as a subcommand when it names one,
/// so the script never runs. `help` even prints the help and exits 0, and
/// `demo` alone fails with the demo's usage; both before any check of ours
/// could see the parse. So the raw words are read first: the subcommand name
/// and what came before it, if a subcommand's name follows the script.
fn subcommand_after_script(
    cmd: &clap::Command,
    args: &[std::ffi::OsString],
) -> Option<(String, String)> {
    let raw: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .chain(["help".to_string()])
        .collect();
    // Options that take a value: their next word is not a positional one.
    let mut valued: Vec<String> = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.get_action().takes_values() {
            valued.extend(arg.get_long().map(|l| format!("--{l}")));
            valued.extend(arg.get_short().map(|c| format!("-{c}")));
        }
    }
    // clap tries the subcommands on the first two positional words (SCRIPT,
    // then the first of ARGS); after that every word is one of ARGS.
    let mut code = false;
    let mut positional: Vec<&String> = Vec::new();
    let mut words = raw.iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if word == "-c" {
            words.next();
            code = true;
        } else if word.starts_with('-') && word.len() > 1 {
            if valued.contains(word) {
                words.next();
            }
        } else {
            positional.push(word);
        }
    }
    let is_name = |w: &String| names.contains(w);
    let code_text = || if code { "-c CODE " } else { "" };
    match positional.as_slice() {
        // A subcommand first is meant as one, unless code came with it.
        [first, ..] if is_name(first) => code.then(|| ((*first).clone(), "-c CODE".to_string())),
        [first, second, ..] if is_name(second) => {
            Some(((*second).clone(), format!("{}{first}", code_text())))
        }
        _ => None,
    }
}

/// Refuses combinations that clap accepts but that would silently drop part of
/// the command line.
fn check_combination(cli: &Cli) -> Result<(), Error> {
    let Some(command) = &cli.command else {
        return Ok(());
    };
    let name = match command {
        Command::Init { .. } => "init",
        Command::Demo { .. } => "demo",
        Command::Service { .. } => "service",
        Command::Reference { .. } => "reference",
        Command::Definitions { .. } => "definitions",
    };
    // Caught before parsing (`subcommand_after_script`); kept as a backstop.
    let before = match (&cli.code, &cli.script) {
        (Some(_), _) => Some("-c CODE".to_string()),
        (None, Some(script)) => Some(script.clone()),
        (None, None) => None,
    };
    if let Some(before) = before {
        return Err(Error::Usage(subcommand_after(name, &before)));
    }
    if cli.check
        || cli.json
        || cli.max_operations.is_some()
        || cli.max_memory.is_some()
        || cli.max_call_depth.is_some()
    {
        return Err(Error::Usage(format!(
            "--check, --json, --max-operations, --max-memory and --max-call-depth apply to scripts, not to `poolsync {name}`"
        )));
    }
    // The deployment options only matter to commands that load one.
    let ignored = match command {
        Command::Service { .. } => None,
        Command::Demo { .. } => cli
            .deployment
            .as_ref()
            .map(|_| "--deployment")
            .or(cli.as_user.as_ref().map(|_| "--as")),
        Command::Init { .. } | Command::Reference { .. } | Command::Definitions { .. } => cli
            .deployment
            .as_ref()
            .map(|_| "--deployment")
            .or(cli.as_user.as_ref().map(|_| "--as"))
            .or(cli.demo.then_some("--demo")),
    };
    match ignored {
        Some(option) => Err(Error::Usage(format!(
            "{option} has no effect on `poolsync {name}`; leave it out"
        ))),
        None => Ok(()),
    }
}

/// The script limits the flags ask for, over the defaults, each checked.
fn script_limits(cli: &Cli) -> Result<Limits, Error> {
    let mut limits = Limits::default();
    if let Some(n) = cli.max_operations {
        limits.max_operations = n;
    }
    if let Some(mib) = cli.max_memory {
        limits.max_memory = mib.checked_mul(1 << 20).ok_or_else(|| {
            Error::Usage(format!(
                "--max-memory {mib} is too large: give MiB, e.g. 8192"
            ))
        })?;
    }
    if let Some(depth) = cli.max_call_depth {
        if !(1..=crate::script::MAX_CALL_DEPTH).contains(&depth) {
            return Err(Error::Usage(format!(
                "--max-call-depth {depth}: give a depth from 1 to {} (the interpreter's stack holds no more)",
                crate::script::MAX_CALL_DEPTH
            )));
        }
        limits.max_call_levels = depth;
    }
    Ok(limits)
}

fn execute(cli: &Cli) -> Result<(), Error> {
    check_combination(cli)?;
    // The service sets up its own log (info by default); other commands log
    // only when asked.
    let level = crate::log::level_from_env()?;
    if let Some(level) = level
        && !matches!(cli.command, Some(Command::Service { .. }))
    {
        crate::log::init(crate::log::LogFormat::Text, level);
    }
    match &cli.command {
        Some(Command::Init {
            dir,
            s3,
            bucket,
            region,
        }) => {
            let s3 = s3.as_ref().map(|endpoint| init::S3Init {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
            });
            return init_command(dir.as_deref(), s3.as_ref());
        }
        Some(Command::Reference { rbac }) => {
            if *rbac {
                crate::out!("{}", crate::rbac::catalog::reference_markdown());
            } else {
                crate::out!("{}", crate::script::help::reference_markdown());
            }
            return Ok(());
        }
        Some(Command::Definitions { dir }) => return definitions_command(dir.as_deref()),
        Some(Command::Demo { action }) => return demo_command(action),
        Some(Command::Service { .. }) | None => {}
    }
    let limits = script_limits(cli)?;
    if cli.check {
        return check_command(cli, &limits);
    }
    interrupt::install();
    let deployment = Arc::new(load_deployment(cli)?);
    let access =
        crate::rbac::Access::resolve(&deployment, &crate::rbac::os_user(), cli.as_user.as_deref())
            .map_err(|e| Error::Usage(e.to_string()))?;
    if let Some(Command::Service { pools, log_format }) = &cli.command {
        let path = deployment.path.clone();
        return crate::service::run(path, deployment, &access, pools, *log_format);
    }
    let ctx = ScriptContext::new(
        deployment.clone(),
        access,
        CancelFlag::from_shared(interrupt::flag()),
        std::io::stderr().is_terminal(),
    )
    .map_err(|e| Error::Other(format!("cannot start the I/O runtime: {e}")))?;
    let runner = Runner {
        ctx: Rc::new(ctx),
        limits,
        json: cli.json,
    };
    run_scripts(cli, &runner)
}

/// `-c CODE`, a script file, standard input or the shell.
fn run_scripts(cli: &Cli, runner: &Runner) -> Result<(), Error> {
    if let Some(code) = &cli.code {
        let mut args: Vec<String> = cli.script.iter().cloned().collect();
        args.extend(cli.args.iter().cloned());
        return runner.run_source("<code>", code, None, &args, true);
    }
    match cli.script.as_deref() {
        Some("-") => run_stdin(runner, &cli.args),
        Some(script) => runner.run_file(Path::new(script), &cli.args),
        None if std::io::stdin().is_terminal() => crate::repl::run(runner),
        None => run_stdin(runner, &cli.args),
    }
}

/// `poolsync init [DIR] [--s3 ...]`: writes the starter files, says what next.
fn init_command(dir: Option<&Path>, s3: Option<&init::S3Init>) -> Result<(), Error> {
    let dir = dir.unwrap_or_else(|| Path::new("."));
    let written = init::init(dir, s3)?;
    for path in &written {
        crate::outln!("wrote {}", path.display());
    }
    if let Some(s3) = s3 {
        crate::outln!(
            "next: create the bucket '{}' at {} (Garage: `garage bucket create {}`), put a key with read and write rights on it into {}, edit the deployment, then run `poolsync --deployment {}`",
            s3.bucket,
            s3.endpoint,
            s3.bucket,
            written[1].display(),
            written[0].display()
        );
    } else {
        crate::outln!(
            "next: edit it, then run `poolsync --deployment {}`",
            written[0].display()
        );
    }
    Ok(())
}

/// `poolsync definitions [DIR]`: writes the .d.rhai files, says where.
fn definitions_command(dir: Option<&Path>) -> Result<(), Error> {
    let dir = dir.unwrap_or_else(|| Path::new(".rhai/definitions"));
    let written = crate::script::definitions::write(dir).map_err(Error::Other)?;
    crate::outln!(
        "wrote {} definition files to {}: {}",
        written.len(),
        dir.display(),
        written
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// `--check SCRIPT`: compiles it and runs nothing.
fn check_command(cli: &Cli, limits: &Limits) -> Result<(), Error> {
    let Some(script) = &cli.script else {
        return Err(Error::Usage("--check needs a SCRIPT to compile".into()));
    };
    if script == "-" {
        return crate::script::check_source("<stdin>", &read_stdin()?, limits);
    }
    crate::script::check_file(Path::new(script), limits)
}

fn read_stdin() -> Result<String, Error> {
    crate::input::read_capped(std::io::stdin().lock()).map_err(|e| Error::io("<stdin>", e))
}

fn run_stdin(runner: &Runner, args: &[String]) -> Result<(), Error> {
    runner.run_source("<stdin>", &read_stdin()?, None, args, true)
}

fn demo_command(action: &DemoAction) -> Result<(), Error> {
    match action {
        DemoAction::Reset => {
            let path = demo::reset()?;
            crate::outln!("demo deployment recreated at {}", path.display());
        }
        DemoAction::Path => crate::outln!("{}", demo::demo_dir()?.display()),
        DemoAction::Churn { pool, percent } => {
            let file = demo::ensure()?;
            let deployment = topology::load(&file)?;
            let pools: Vec<&topology::Pool> = match pool {
                Some(name) => vec![deployment.require_pool(name).map_err(Error::Usage)?],
                None => deployment.pools.iter().collect(),
            };
            for p in pools {
                let s = churn::churn_pool(&deployment, p, *percent)?;
                crate::outln!(
                    "{}: round {}: {} modified, {} added, {} deleted",
                    s.pool,
                    s.round,
                    s.modified,
                    s.added,
                    s.deleted
                );
            }
        }
    }
    Ok(())
}
