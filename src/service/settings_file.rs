//! The deployment file as the running service re-reads it: its
//! `[backup_service]` settings apply from the next cycle, but only from a
//! file the service would accept at start (valid, and writable by no one but
//! its owner). Anything else is refused the same way: a warning, once per
//! distinct problem, and the settings in force stay.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::sync::SyncEngine;
use crate::topology;

pub(super) struct SettingsFile {
    path: PathBuf,
    /// The last problem warned about, so a lasting one is said once.
    warned: Mutex<Option<String>>,
}

impl SettingsFile {
    pub(super) fn new(path: PathBuf) -> SettingsFile {
        SettingsFile {
            path,
            warned: Mutex::new(None),
        }
    }

    /// Re-reads the settings and applies a change; logs what it did.
    pub(super) fn reload(&self, engine: &SyncEngine) {
        let read = crate::rbac::check_trusted(&self.path)
            .and_then(|()| topology::load(&self.path).map_err(|e| e.to_string()));
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match read {
            Ok(d) => {
                *warned = None;
                if d.settings != engine.settings() {
                    tracing::info!(
                        sync_interval = %topology::settings::format_interval(d.settings.sync_interval),
                        watch_changes = d.settings.watch_changes,
                        "settings changed; applying from the next cycle"
                    );
                    engine.set_settings(d.settings);
                }
            }
            Err(e) => {
                if warned.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "cannot re-read the settings; keeping the current ones");
                    *warned = Some(e);
                }
            }
        }
    }
}
