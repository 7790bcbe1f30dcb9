//! The one error type the binary reports, with the exit status each kind maps to.

use std::path::PathBuf;

/// Exit status for a script error (the script ran and failed).
pub const EXIT_SCRIPT: i32 = 1;
/// Exit status for a usage, deployment or set-up error (nothing ran).
pub const EXIT_USAGE: i32 = 2;
/// Exit status after Ctrl-C (SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line usage error.
    #[error("{0}")]
    Usage(String),
    /// The deployment file is invalid; the message carries file, line and column.
    #[error("{0}")]
    Deployment(#[from] crate::topology::DeploymentError),
    /// No deployment could be found.
    #[error(
        "no deployment found: pass --deployment PATH, set POOLSYNC_DEPLOYMENT, set `deployment` in {config}, or put a deployment.toml in the current directory; `poolsync --demo` opens the built-in demo and `poolsync init` writes a starter file"
    )]
    NoDeployment { config: String },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A script failed; the message has already been printed with its source context.
    #[error("script failed")]
    ScriptFailed,
    /// A script or sync was interrupted with Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// A script called `exit(N)` with N > 0.
    #[error("exit status {0}")]
    Exit(i32),
    /// Any other fatal error with a one-line message.
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit status for this error.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::ScriptFailed | Error::Other(_) => EXIT_SCRIPT,
            Error::Interrupted => EXIT_INTERRUPTED,
            Error::Exit(status) => *status,
            Error::Usage(_)
            | Error::Deployment(_)
            | Error::NoDeployment { .. }
            | Error::Io { .. } => EXIT_USAGE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
