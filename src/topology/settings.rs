//! Backup Service settings (`[backup_service]`), with the Lync defaults.

use crate::printable::printable;
use std::time::Duration;

/// The global Backup Service settings of a deployment.
///
/// The first five mirror `Get-CsBackupServiceConfiguration`; the `batch_*` and
/// `transfer_parallelism` settings are poolsync's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupServiceSettings {
    /// How often the service syncs each pair (Lync: `SyncInterval`, 00:00:05 to 03:00:00).
    #[serde(serialize_with = "serialize_interval")]
    pub sync_interval: Duration,
    /// Batches the user-data modules export per service cycle.
    pub max_batches_per_user_store_sync: u64,
    /// Batches the CMS module exports per service cycle.
    pub max_batches_per_cms_sync: u64,
    /// Size of one `DataConf` batch (package), in KiB.
    pub max_data_conf_package_size_kb: u64,
    /// Pairs synced at once by an array target or the service.
    pub max_concurrent_calls: u64,
    /// Items in one batch (all modules).
    pub batch_max_items: u64,
    /// Bytes in one batch of the `PresenceFocus` and `CMSMaster` modules, in KiB.
    pub batch_max_kb: u64,
    /// Items copied at once within a batch.
    pub transfer_parallelism: u64,
    /// Whether the service watches the `data/` folders of local stores and
    /// ships each change within about a second, between its full scans
    /// (see docs/service.md); off: a full scan every `sync_interval` only.
    pub watch_changes: bool,
}

impl Default for BackupServiceSettings {
    fn default() -> Self {
        BackupServiceSettings {
            sync_interval: Duration::from_mins(2),
            max_batches_per_user_store_sync: 500,
            max_batches_per_cms_sync: 500,
            max_data_conf_package_size_kb: 102_400,
            max_concurrent_calls: 10,
            batch_max_items: 5000,
            batch_max_kb: 65_536,
            transfer_parallelism: 8,
            watch_changes: true,
        }
    }
}

/// A numeric setting: its name (the key in `[backup_service]`, the property
/// of `get_backup_service_configuration()`: the field's own name), its
/// ceiling, and how to read and write its field.
struct NumberSetting {
    name: &'static str,
    max: i64,
    get: fn(&BackupServiceSettings) -> u64,
    set: fn(&mut BackupServiceSettings, u64),
}

/// The [`NumberSetting`] of field `$field`, named after it.
macro_rules! number_setting {
    ($field:ident, $max:expr) => {
        NumberSetting {
            name: stringify!($field),
            max: $max,
            get: |s| s.$field,
            set: |s, value| s.$field = value,
        }
    };
}

/// Every numeric setting, in documentation order (after `sync_interval`). The
/// ceilings are far above any useful value, so that no setting can make a
/// sync or the service ask for more than the system can give (a semaphore of
/// 2^63 permits panics, 2^40 threads cannot start).
const NUMBER_SETTINGS: [NumberSetting; 7] = [
    number_setting!(max_batches_per_user_store_sync, 1_000_000),
    number_setting!(max_batches_per_cms_sync, 1_000_000),
    number_setting!(max_data_conf_package_size_kb, 16 << 20), // 16 GiB
    number_setting!(max_concurrent_calls, 1_000),
    number_setting!(batch_max_items, 1_000_000),
    number_setting!(batch_max_kb, 16 << 20),
    number_setting!(transfer_parallelism, 256),
];

/// The one setting that is a time span.
pub const SYNC_INTERVAL: &str = "sync_interval";

/// The one setting that is a switch.
pub const WATCH_CHANGES: &str = "watch_changes";

/// The names of every setting, in documentation order: `sync_interval`, then
/// [`NUMBER_SETTINGS`], then `watch_changes`. The configuration record's
/// properties, the valid names in messages and the order settings are shown
/// in all come from here.
pub const SETTING_NAMES: [&str; 2 + NUMBER_SETTINGS.len()] = {
    let mut names = [SYNC_INTERVAL; 2 + NUMBER_SETTINGS.len()];
    let mut i = 0;
    while i < NUMBER_SETTINGS.len() {
        names[i + 1] = NUMBER_SETTINGS[i].name;
        i += 1;
    }
    names[1 + NUMBER_SETTINGS.len()] = WATCH_CHANGES;
    names
};

/// Whether `name` is one of the numeric settings.
#[must_use]
pub fn is_number_setting(name: &str) -> bool {
    number_setting(name).is_some()
}

fn number_setting(name: &str) -> Option<&'static NumberSetting> {
    NUMBER_SETTINGS.iter().find(|n| n.name == name)
}

pub const MIN_SYNC_INTERVAL: Duration = Duration::from_secs(5);
pub const MAX_SYNC_INTERVAL: Duration = Duration::from_hours(3);

/// Parses a Lync time span `hh:mm:ss` and checks the `SyncInterval` range.
pub fn parse_sync_interval(text: &str) -> Result<Duration, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let parsed = if parts.len() == 3 {
        let nums: Option<Vec<u64>> = parts
            .iter()
            .map(|p| {
                if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            })
            .collect();
        nums.filter(|n| n[1] < 60 && n[2] < 60)
            .map(|n| Duration::from_secs(n[0] * 3600 + n[1] * 60 + n[2]))
    } else {
        None
    };
    let interval = parsed.ok_or_else(|| {
        format!(
            "sync_interval '{}' is not a time span: write hh:mm:ss, e.g. \"00:02:00\"",
            printable(text)
        )
    })?;
    if !(MIN_SYNC_INTERVAL..=MAX_SYNC_INTERVAL).contains(&interval) {
        return Err(format!(
            "sync_interval '{}' is out of range: it must be between 00:00:05 and 03:00:00",
            printable(text)
        ));
    }
    Ok(interval)
}

/// Formats a duration as `hh:mm:ss`.
#[must_use]
pub fn format_interval(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn serialize_interval<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_interval(*d))
}

impl BackupServiceSettings {
    /// Sets one numeric setting by name, checking it is in its range (from 1
    /// to the setting's ceiling, see [`NUMBER_SETTINGS`]).
    pub fn set_number(&mut self, name: &str, value: i64) -> Result<(), String> {
        let Some(setting) = number_setting(name) else {
            return Err(format!(
                "unknown setting '{}': the settings are {}",
                printable(name),
                SETTING_NAMES.join(", ")
            ));
        };
        let max = setting.max;
        if !(1..=max).contains(&value) {
            return Err(format!(
                "{name} must be a number from 1 to {max}, not {value}"
            ));
        }
        (setting.set)(self, value as u64);
        Ok(())
    }

    /// One setting's value as it is written in the file.
    fn toml_value(&self, name: &str) -> Option<toml_edit::Item> {
        if name == SYNC_INTERVAL {
            return Some(toml_edit::value(format_interval(self.sync_interval)));
        }
        if name == WATCH_CHANGES {
            return Some(toml_edit::value(self.watch_changes));
        }
        let setting = number_setting(name)?;
        Some(toml_edit::value((setting.get)(self) as i64))
    }
}

/// Writes changed settings back into the deployment file's `[backup_service]`
/// table, keeping everything else (comments, order, other tables) as it was; the
/// file is replaced atomically and keeps its permissions.
pub fn save(
    path: &std::path::Path,
    settings: &BackupServiceSettings,
    changed: &[&str],
) -> Result<(), String> {
    // Through a link, rewrite the file it points to, not the link.
    let real = path.canonicalize();
    let path = real.as_deref().unwrap_or(path);
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    // Writers take turns on the folder (a lock on the file itself would be
    // lost when the rename replaces it): each reads the file the one before
    // wrote, so two changes of different settings both stay.
    let dir = std::fs::File::open(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("{}: lock: {e}", folder.display()))?;
    let text = crate::input::read_text(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !doc.contains_key("backup_service") {
        doc["backup_service"] = toml_edit::table();
    }
    let table = &mut doc["backup_service"];
    for name in changed {
        let Some(value) = settings.toml_value(name) else {
            return Err(format!("unknown setting '{}'", printable(name)));
        };
        // Keep a comment at the end of the line being changed.
        let decor = table
            .get(*name)
            .and_then(|i| i.as_value())
            .map(|v| v.decor().clone());
        let mut value = value;
        if let (Some(decor), Some(v)) = (decor, value.as_value_mut()) {
            *v.decor_mut() = decor;
        }
        table[*name] = value;
    }
    // A unique temporary file beside it, made durable before the rename and
    // the rename after it: a crash leaves the old file or the new one.
    let write = |tmp: &mut tempfile::NamedTempFile| -> std::io::Result<()> {
        use std::io::Write;
        tmp.write_all(doc.to_string().as_bytes())?;
        if let Ok(md) = std::fs::metadata(path) {
            tmp.as_file().set_permissions(md.permissions())?;
        }
        tmp.as_file().sync_all()
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".deployment.toml.")
        .suffix(".poolsync-tmp")
        .tempfile_in(folder)
        .map_err(|e| format!("{}: {e}", folder.display()))?;
    write(&mut tmp).map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| format!("{}: {}", path.display(), e.error))?;
    dir.sync_all()
        .map_err(|e| format!("{}: {e}", folder.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_the_fields_in_order() {
        // Serialised, the settings are their fields in declaration order; the
        // configuration record and the file use these names.
        let json = serde_json::to_string(&BackupServiceSettings::default()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let fields = value.as_object().unwrap();
        assert_eq!(fields.len(), SETTING_NAMES.len(), "{json}");
        let mut at = 0;
        for name in SETTING_NAMES {
            let key = format!("\"{name}\":");
            let found = json[at..].find(&key);
            assert!(
                found.is_some(),
                "{name} is not where it should be in {json}"
            );
            at += found.unwrap_or(0) + key.len();
        }
    }

    #[test]
    fn every_number_can_be_set_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.toml");
        std::fs::write(&path, "[deployment]\n").unwrap();
        let mut settings = BackupServiceSettings::default();
        let numbers = || {
            SETTING_NAMES
                .iter()
                .enumerate()
                .filter(|(_, n)| is_number_setting(n))
        };
        assert_eq!(numbers().count(), NUMBER_SETTINGS.len());
        for (i, name) in numbers() {
            settings.set_number(name, 100 + i as i64).unwrap();
        }
        settings.watch_changes = false;
        let json = serde_json::to_value(&settings).unwrap();
        for (i, name) in numbers() {
            assert_eq!(json[name], 100 + i as u64, "{name}");
        }
        save(&path, &settings, &SETTING_NAMES).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("sync_interval = \"00:02:00\""), "{text}");
        assert!(text.contains("watch_changes = false"), "{text}");
        for (i, name) in numbers() {
            assert!(text.contains(&format!("{name} = {}", 100 + i)), "{text}");
        }
        let err = settings.set_number("colour", 1).unwrap_err();
        assert!(err.ends_with(&SETTING_NAMES.join(", ")), "{err}");
    }

    #[test]
    fn interval_range_and_format() {
        assert_eq!(parse_sync_interval("00:02:00"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_sync_interval("03:00:00"), Ok(Duration::from_hours(3)));
        assert!(
            parse_sync_interval("00:00:04")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(parse_sync_interval("03:00:01").is_err());
        assert!(parse_sync_interval("2m").unwrap_err().contains("hh:mm:ss"));
        assert!(parse_sync_interval("00:61:00").is_err());
        assert_eq!(format_interval(Duration::from_secs(3725)), "01:02:05");
    }
}
