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

/// Sends log events at `level` and above to standard error. The file-system
/// watcher's own messages (the `notify` crate's) are kept to warnings and
/// errors: it reports routine events, such as a watch of a deleted folder
/// that is gone already, at `info`.
pub fn init(format: LogFormat, level: LevelFilter) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter = Targets::new()
        .with_default(level)
        .with_target("notify", level.min(LevelFilter::WARN));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    // A second call (tests, a library user who set one up) keeps the first.
    let _ = match format {
        LogFormat::Json => builder.json().finish().with(filter).try_init(),
        LogFormat::Text => builder.finish().with(filter).try_init(),
    };
}
