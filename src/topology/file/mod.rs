//! Reading and validating `deployment.toml`, a file in tables: `[deployment]`,
//! `[[site]]`, `[[pool]]`, `[backup_service]`, `[[role]]` and `[[operator]]`.
//! Each table has its own file here, and so has each check that spans the
//! whole deployment (stores, pairs, computers).
//!
//! Every error names the file, line and column of the offending value, so an
//! administrator can jump straight to it. The file is read in order and the
//! first error found is the one reported.

mod backup_service;
mod computers;
mod deployment;
mod operators;
mod pairs;
mod pools;
mod raw;
mod roles;
mod sites;
mod source;
mod stores;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::deployment::Lookup;
use super::{BackupServiceSettings, Deployment, Fqdn, Pool};
use pools::StoreDefaults;
use raw::RawFile;
pub use source::DeploymentError;
use source::Source;

/// Reads and validates a deployment file.
pub fn load(path: &Path) -> Result<Deployment, DeploymentError> {
    let text = crate::input::read_text(path).map_err(|e| DeploymentError {
        file: path.to_path_buf(),
        position: None,
        message: format!("cannot read the deployment file: {e}"),
    })?;
    // Store paths are relative to the file's folder; resolve it once, absolutely,
    // so a store shows (and stays) the same whatever the working directory.
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = std::path::absolute(&folder).unwrap_or(folder);
    parse(&text, path, &base)
}

/// Parses and validates deployment text; `file` is used in messages, `base` resolves
/// relative store paths.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Deployment, DeploymentError> {
    let src = Source::new(file, text);
    let raw: RawFile = toml::from_str(text).map_err(|e| src.syntax_error(&e))?;
    let header = raw.deployment.into_inner();
    let name = deployment::name_from(&src, &header)?;
    let sites = sites::sites_from(&src, raw.site)?;
    let defaults = StoreDefaults {
        base,
        s3_credentials: header.s3_credentials.as_ref(),
    };
    let parsed = pools::pools_from(&src, raw.pool, &sites, &defaults)?;
    stores::check_stores(&src, &parsed)?;
    let index: HashMap<&Fqdn, &Pool> = parsed.iter().map(|p| (&p.pool.fqdn, &p.pool)).collect();
    let warnings = pairs::check_pairs(&src, &parsed, &index)?;
    let cms_master = deployment::cms_master_from(&src, &header, &index)?;
    let settings = match raw.backup_service {
        Some(raw) => backup_service::settings_from(&src, raw)?,
        None => BackupServiceSettings::default(),
    };
    let roles = roles::roles_from(&src, &sites, raw.role)?;
    let operators = operators::operators_from(&src, &roles, raw.operator)?;
    let pools: Vec<Pool> = parsed.into_iter().map(|p| p.pool).collect();
    Ok(Deployment {
        lookup: Lookup::new(&sites, &pools),
        roles,
        operators,
        name,
        path: file.to_path_buf(),
        cms_master,
        sites,
        pools,
        settings,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreLocation;

    const GOOD: &str = r#"
[deployment]
name = "t"
cms_master = "a.x.com"

[[site]]
identity = "S1"
site_id = 1

[[site]]
identity = "S2"
site_id = 2

[[pool]]
fqdn = "A.x.com"
site = "S1"
backup_pool = "b.x.com"

[[pool]]
fqdn = "b.x.com"
site = "s2"
backup_pool = "a.x.com"
store = "memory://b"
"#;

    fn parse_str(text: &str) -> Result<Deployment, DeploymentError> {
        parse(text, Path::new("d.toml"), Path::new("/base"))
    }

    #[test]
    fn good_file() {
        let d = parse_str(GOOD).unwrap();
        assert_eq!(d.pools.len(), 2);
        assert_eq!(d.pools[0].fqdn.as_str(), "a.x.com");
        assert_eq!(d.pools[1].site, "S2");
        assert_eq!(
            d.pools[0].store,
            StoreLocation::Local("/base/stores/a.x.com".into())
        );
        assert!(d.warnings.is_empty());
        assert_eq!(d.pairs().len(), 1);
    }

    #[test]
    fn non_mutual_pairing_points_at_backup_pool() {
        let text = GOOD.replace("backup_pool = \"a.x.com\"\n", "");
        let e = parse_str(&text).unwrap_err();
        assert_eq!(e.position, Some((17, 15)));
        assert!(e.message.contains("pairing must be mutual"), "{e}");
    }

    #[test]
    fn same_site_pairing_warns() {
        let text = GOOD.replace("site = \"s2\"", "site = \"S1\"");
        let d = parse_str(&text).unwrap();
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("inside one site"));
    }

    #[test]
    fn unknown_key_has_position() {
        let text = GOOD.replace("site_id = 2", "site_id = 2\ncolour = 3");
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(13));
    }
}
