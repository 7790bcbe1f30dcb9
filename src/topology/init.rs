//! `poolsync init [DIR]`: a commented starter deployment.

use std::path::{Path, PathBuf};

use crate::error::Error;

const STARTER: &str = r#"# poolsync deployment: sites, pools, their pairing and the Backup Service settings.
# Reference: docs/deployment.md. Every pool FQDN is case-insensitive and stored lower-case.

[deployment]
name = "contoso"
# The pool that hosts the active Central Management Store (CentralMgmt.CMSMaster).
cms_master = "pool1.contoso.com"

[[site]]
identity = "Site1"          # display name: get_pool(#{site: "Site1"})
site_id = 1                 # RBAC scopes name it as "site:1"
description = "First data center"

[[site]]
identity = "Site2"
site_id = 2
description = "Second data center"

[[pool]]
fqdn = "pool1.contoso.com"
site = "Site1"
backup_pool = "pool2.contoso.com"   # pairing is 1:1 and mutual
store = "stores/pool1.contoso.com"  # a directory relative to this file, file:///abs/path, or memory://name
computers = ["fe1.contoso.com"]
services = ["Registrar", "UserServer", "WebServer", "FileStore"]

[[pool]]
fqdn = "pool2.contoso.com"
site = "Site2"
backup_pool = "pool1.contoso.com"
store = "stores/pool2.contoso.com"
computers = ["fe2.contoso.com"]
services = ["Registrar", "UserServer", "WebServer", "FileStore"]

# Optional; these are the defaults.
[backup_service]
sync_interval = "00:02:00"                  # 00:00:05 to 03:00:00
max_batches_per_user_store_sync = 500
max_batches_per_cms_sync = 500
max_data_conf_package_size_kb = 102400
max_concurrent_calls = 10
batch_max_items = 1000                      # items in one batch (poolsync's own)
batch_max_kb = 65536                        # bytes in one PresenceFocus/CMSMaster batch, KiB
transfer_parallelism = 8                    # items copied at once within a batch
"#;

/// Writes `DIR/deployment.toml` and an empty store directory for each pool; refuses
/// to overwrite an existing file. Returns the path written.
pub fn init(dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join("deployment.toml");
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{} already exists; poolsync init never overwrites it: choose another directory or remove it first",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    std::io::Write::write_all(&mut file, STARTER.as_bytes()).map_err(|e| Error::io(&path, e))?;
    let deployment = super::parse(STARTER, &path, dir)?;
    for pool in &deployment.pools {
        if let Some(store) = pool.store.local_path() {
            for module in super::Module::ALL {
                if deployment.modules_of(pool).contains(&module) {
                    let d = store.join("data").join(module.identity());
                    std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
                }
            }
        }
    }
    Ok(path)
}
