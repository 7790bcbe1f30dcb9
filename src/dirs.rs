//! The user's directories for poolsync (XDG on Linux, via the `directories` crate).

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "poolsync")
}

/// `~/.config/poolsync`: `config.toml`, `init.rhai`.
#[must_use]
pub fn config_dir() -> Option<PathBuf> {
    project().map(|p| p.config_dir().to_path_buf())
}

/// `~/.local/share/poolsync`: the demo deployment.
#[must_use]
pub fn data_dir() -> Option<PathBuf> {
    project().map(|p| p.data_dir().to_path_buf())
}

/// `~/.local/state/poolsync` (or the local data directory where there is no state
/// directory): the REPL history.
#[must_use]
pub fn state_dir() -> Option<PathBuf> {
    project().map(|p| {
        p.state_dir()
            .unwrap_or_else(|| p.data_local_dir())
            .to_path_buf()
    })
}
