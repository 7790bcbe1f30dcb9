//! Log events (`tracing`) on standard error.
//!
//! `poolsync service` logs at `info` unless told otherwise. Every other command
//! logs nothing unless `POOLSYNC_LOG` names a level: `debug` shows where a sync
//! spends its time (listing, planning, staging and committing each batch).

use tracing_subscriber::filter::LevelFilter;

use crate::error::Error;

/// The environment variable that sets the level.
pub const ENV: &str = "POOLSYNC_LOG";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The level `POOLSYNC_LOG` asks for, if it is set.
pub fn level_from_env() -> Result<Option<LevelFilter>, Error> {
    let Some(value) = std::env::var_os(ENV) else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim()
        .to_ascii_lowercase()
        .parse::<LevelFilter>()
        .map(Some)
        .map_err(|_| {
            Error::Usage(format!(
                "{ENV} must be one of off, error, warn, info, debug or trace, not '{text}'"
            ))
        })
}

/// Sends log events at `level` and above to standard error.
pub fn init(format: LogFormat, level: LevelFilter) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    // A second call (tests, a library user who set one up) keeps the first.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
