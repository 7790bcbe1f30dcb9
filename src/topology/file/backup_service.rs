//! The `[backup_service]` table: the settings, each checked against its range
//! (see `topology/settings.rs`); a missing one keeps its default.

use super::raw::RawSettings;
use super::{DeploymentError, Source};
use crate::topology::BackupServiceSettings;
use crate::topology::settings::parse_sync_interval;

/// The settings the table sets, over the defaults.
pub(super) fn settings_from(
    src: &Source<'_>,
    raw: RawSettings,
) -> Result<BackupServiceSettings, DeploymentError> {
    let mut settings = BackupServiceSettings::default();
    if let Some(interval) = raw.sync_interval {
        settings.sync_interval =
            parse_sync_interval(interval.get_ref()).map_err(|m| src.error(interval.span(), m))?;
    }
    let numbers = [
        (
            "max_batches_per_user_store_sync",
            raw.max_batches_per_user_store_sync,
        ),
        ("max_batches_per_cms_sync", raw.max_batches_per_cms_sync),
        (
            "max_data_conf_package_size_kb",
            raw.max_data_conf_package_size_kb,
        ),
        ("max_concurrent_calls", raw.max_concurrent_calls),
        ("batch_max_items", raw.batch_max_items),
        ("batch_max_kb", raw.batch_max_kb),
        ("transfer_parallelism", raw.transfer_parallelism),
    ];
    if let Some(watch) = raw.watch_changes {
        settings.watch_changes = *watch.get_ref();
    }
    for (name, value) in numbers {
        if let Some(value) = value {
            settings
                .set_number(name, *value.get_ref())
                .map_err(|m| src.error(value.span(), m))?;
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::topology::settings::SETTING_NAMES;

    const DEPLOYMENT: &str = "[deployment]\nname = \"t\"\ncms_master = \"a.x.com\"\n\n[[site]]\nidentity = \"S\"\nsite_id = 1\n\n[[pool]]\nfqdn = \"a.x.com\"\nsite = \"S\"\n\n[backup_service]\n";

    fn parse(settings: &str) -> Result<crate::topology::Deployment, String> {
        let text = format!("{DEPLOYMENT}{settings}");
        crate::topology::parse(&text, Path::new("d.toml"), Path::new("/base"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_setting_is_a_key_of_the_table_and_takes_effect() {
        for (i, name) in SETTING_NAMES.iter().enumerate() {
            let (text, want) = if *name == "sync_interval" {
                ("\"00:00:42\"".to_string(), serde_json::json!("00:00:42"))
            } else if *name == "watch_changes" {
                // The default is on: off shows that the key was read.
                ("false".to_string(), serde_json::json!(false))
            } else {
                ((100 + i).to_string(), serde_json::json!(100 + i))
            };
            let d = parse(&format!("{name} = {text}\n")).unwrap();
            let got = serde_json::to_value(&d.settings).unwrap();
            assert_eq!(got[name], want, "{name} was not read");
        }
    }

    #[test]
    fn the_table_has_no_key_that_is_not_a_setting() {
        // serde lists the keys it knows: they must be the settings, in order.
        let err = parse("colour = 1\n").unwrap_err();
        let (_, known) = err
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("{err}"));
        let known: Vec<&str> = known
            .split(", ")
            .map(|k| k.trim().trim_matches('`'))
            .collect();
        assert_eq!(known, SETTING_NAMES, "{err}");
    }
}
