//! Command-line arguments.

// clap prints these doc comments as `--help`, where Markdown backticks would
// show as they are.
#![expect(clippy::doc_markdown, reason = "doc comments here are --help text")]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "poolsync",
    version,
    about = "Keeps paired server pools in sync: a shell and a batch runner for the Backup Service.",
    long_about = "Keeps paired server pools in sync, after the Lync Server Backup Service.\n\nWith no SCRIPT, opens the interactive shell (or, when standard input is not a terminal, runs it as a script). Scripts call invoke_backup_service_sync, get_pool, get_site and more: see `poolsync --demo -c 'help()'` and docs/.",
    after_help = "Examples:\n  poolsync --demo                         open the shell on the built-in demo\n  poolsync --demo scripts/sync-all.rhai   run a batch script\n  poolsync --demo -c 'get_pool().len()'   run one snippet and print its value\n  poolsync init mydeployment              write a starter deployment.toml\n\nEnvironment:\n  POOLSYNC_DEPLOYMENT   the deployment file, when --deployment is not given\n  POOLSYNC_LOG          log level on stderr: off, error, warn, info, debug (times each sync step) or trace"
)]
pub struct Cli {
    /// The deployment file (default: $POOLSYNC_DEPLOYMENT, then `deployment` in the
    /// user's config.toml, then ./deployment.toml).
    #[arg(long, value_name = "PATH", global = true)]
    pub deployment: Option<PathBuf>,

    /// Use the built-in demo deployment (created under the user's data directory on first use).
    #[arg(long, global = true, conflicts_with = "deployment")]
    pub demo: bool,

    /// Act as operator NAME (only for an operator holding CsAdministrator): shows what
    /// a delegated administrator could do.
    #[arg(long = "as", value_name = "NAME", global = true)]
    pub as_user: Option<String>,

    /// Run CODE and print its value.
    #[arg(short = 'c', value_name = "CODE", conflicts_with = "check")]
    pub code: Option<String>,

    /// Only compile SCRIPT and report syntax errors.
    #[arg(long)]
    pub check: bool,

    /// Print values as JSON.
    #[arg(long)]
    pub json: bool,

    /// Stop a script after N operations (0: no limit; default 3,000,000,000,
    /// about 80 seconds of plain Rhai).
    #[arg(long, value_name = "N")]
    pub max_operations: Option<u64>,

    /// Stop a script once the process holds more than MIB MiB of memory
    /// (0: no limit; default 4096).
    #[arg(long, value_name = "MIB")]
    pub max_memory: Option<usize>,

    /// Stop a script whose functions call each other more than N levels deep
    /// (1 to 2000; default 64, as Rhai's own).
    #[arg(long, value_name = "N")]
    pub max_call_depth: Option<usize>,

    /// The script to run (`-` reads standard input).
    #[arg(value_name = "SCRIPT")]
    pub script: Option<String>,

    /// Arguments for the script, in the constant ARGS.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter deployment.toml (and store folders) into DIR.
    Init {
        /// Where to write it (default: the current directory).
        dir: Option<PathBuf>,
        /// Put the pools' stores in a bucket of this S3-compatible endpoint
        /// (e.g. http://127.0.0.1:3900) and write a credentials file to fill in.
        #[arg(long, value_name = "ENDPOINT")]
        s3: Option<String>,
        /// The bucket for --s3.
        #[arg(long, value_name = "NAME", default_value = "poolsync", requires = "s3")]
        bucket: String,
        /// The region for --s3 (Garage's default is "garage").
        #[arg(long, value_name = "NAME", default_value = "garage", requires = "s3")]
        region: String,
    },
    /// Manage the built-in demo deployment.
    Demo {
        #[command(subcommand)]
        action: DemoAction,
    },
    /// Run the Backup Service in the foreground: sync every pair each sync_interval.
    Service {
        /// Serve only this pool's pair (repeatable; default: every pair).
        #[arg(long = "pool", value_name = "FQDN")]
        pools: Vec<String>,
        /// One log line per cycle and pair, as text or JSON (for log collectors).
        #[arg(long, value_enum, default_value = "text")]
        log_format: crate::log::LogFormat,
    },
    /// Write definition files (.d.rhai) of every poolsync function, type and
    /// constant, for the Rhai language server and editor plugins.
    Definitions {
        /// Where to write them (default ./.rhai/definitions).
        dir: Option<PathBuf>,
    },
    /// Print the function reference (docs/functions.md) in Markdown.
    #[command(hide = true)]
    Reference {
        /// Print the role and cmdlet tables of docs/rbac.md instead.
        #[arg(long)]
        rbac: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Delete the demo and create it anew.
    Reset,
    /// Change, add and delete a deterministic share of items, as live users would.
    Churn {
        /// Only this pool (default: every pool).
        #[arg(long, value_name = "FQDN")]
        pool: Option<String>,
        /// The share of each module's items to change, in percent.
        #[arg(long, value_name = "P", default_value_t = 1.0)]
        percent: f64,
    },
    /// Print where the demo lives.
    Path,
}
