//! Where the deployment file comes from. First match wins:
//! `--deployment PATH`, `POOLSYNC_DEPLOYMENT`, `deployment = "..."` in the user's
//! `config.toml`, then `./deployment.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

/// Where the deployment path was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    Flag,
    Environment,
    Config(PathBuf),
    WorkingDirectory,
}

pub(super) const ENV_VAR: &str = "POOLSYNC_DEPLOYMENT";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserConfig {
    deployment: Option<PathBuf>,
}

/// Finds the deployment file to use.
pub(super) fn locate(flag: Option<&Path>) -> Result<(PathBuf, Origin), Error> {
    if let Some(path) = flag {
        return Ok((path.to_path_buf(), Origin::Flag));
    }
    if let Some(value) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        return Ok((PathBuf::from(value), Origin::Environment));
    }
    let config_dir = crate::dirs::config_dir();
    if let Some(dir) = &config_dir {
        let config = dir.join("config.toml");
        if config.exists() {
            let text = crate::input::read_text(&config).map_err(|e| Error::io(&config, e))?;
            let parsed: UserConfig = toml::from_str(&text).map_err(|e| {
                Error::Usage(format!(
                    "{}: {}",
                    config.display(),
                    e.message().trim().replace('\n', " ")
                ))
            })?;
            if let Some(path) = parsed.deployment {
                let path = if path.is_relative() {
                    dir.join(path)
                } else {
                    path
                };
                return Ok((path, Origin::Config(config)));
            }
        }
    }
    let local = PathBuf::from("deployment.toml");
    if local.exists() {
        return Ok((local, Origin::WorkingDirectory));
    }
    Err(Error::NoDeployment {
        config: config_dir.map_or_else(
            || "config.toml".into(),
            |d| d.join("config.toml").display().to_string(),
        ),
    })
}
