//! `poolsync init [DIR] [--s3 ENDPOINT]`: a commented starter deployment, with
//! its stores in local folders or in an S3-compatible bucket.

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
batch_max_items = 5000                      # items in one batch (poolsync's own)
batch_max_kb = 65536                        # bytes in one PresenceFocus/CMSMaster batch, KiB
transfer_parallelism = 8                    # items copied at once within a batch
watch_changes = true                        # the service ships each change within ~1 s
"#;

/// Where `init --s3` puts the stores.
#[derive(Debug, Clone)]
pub(super) struct S3Init {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
}

/// The credentials file `init --s3` writes next to the deployment (mode 600).
const CREDENTIALS_FILE: &str = "s3.credentials";

/// The starter text with every store in `s3` (`s3://BUCKET/FQDN?...`).
fn s3_starter(s3: &S3Init) -> Result<String, Error> {
    let mut text = STARTER.replace(
        "cms_master = \"pool1.contoso.com\"\n",
        &format!(
            "cms_master = \"pool1.contoso.com\"\n# Credentials for the s3:// stores below: never in this file (docs/s3.md).\ns3_credentials = \"{CREDENTIALS_FILE}\"\n"
        ),
    );
    for pool in ["pool1.contoso.com", "pool2.contoso.com"] {
        let url = format!(
            "s3://{}/{pool}?endpoint={}&region={}",
            s3.bucket, s3.endpoint, s3.region
        );
        let owner = crate::store::StoreOwner {
            pool,
            credentials_file: None,
        };
        crate::store::S3Location::parse(url.trim_start_matches("s3://"), owner)
            .map_err(|m| Error::Usage(format!("--s3: {m}")))?;
        text = text.replace(
            &format!("store = \"stores/{pool}\""),
            &format!("store = \"{url}\""),
        );
    }
    Ok(text.replace(
        "  # a directory relative to this file, file:///abs/path, or memory://name",
        "  # a bucket and key prefix; or a directory, or file:///abs/path",
    ))
}

/// Creates `path` with `text`, refusing to overwrite it.
fn create_new(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{} already exists; poolsync init never overwrites it: choose another directory or remove it first",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// Writes `DIR/deployment.toml` and an empty store directory for each pool (or,
/// with `s3`, stores in a bucket and a private credentials file to fill in);
/// refuses to overwrite an existing file. Returns the paths written.
pub(super) fn init(dir: &Path, s3: Option<&S3Init>) -> Result<Vec<PathBuf>, Error> {
    let text = match s3 {
        Some(s3) => s3_starter(s3)?,
        None => STARTER.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join("deployment.toml");
    if let Some(s3) = s3 {
        let creds = dir.join(CREDENTIALS_FILE);
        if path.exists() {
            return Err(Error::Usage(format!(
                "{} already exists; poolsync init never overwrites it: choose another directory or remove it first",
                path.display()
            )));
        }
        create_new(
            &creds,
            &format!(
                "# S3 credentials for the s3:// stores of deployment.toml (docs/s3.md).\n# Keep this file private: poolsync refuses it if others can read it.\n# A [pools.\"FQDN\"] section applies to one pool; [endpoints.\"URL\"] to every\n# pool at that endpoint. Without a section, AWS_ACCESS_KEY_ID and\n# AWS_SECRET_ACCESS_KEY from the environment are used.\n[endpoints.\"{}\"]\naccess_key_id = \"REPLACE-WITH-THE-KEY-ID\"\nsecret_access_key = \"REPLACE-WITH-THE-SECRET\"\n",
                s3.endpoint.trim_end_matches('/')
            ),
            0o600,
        )?;
        create_new(&path, &text, 0o644)?;
        crate::topology::parse(&text, &path, dir)?;
        return Ok(vec![path, creds]);
    }
    create_new(&path, &text, 0o644)?;
    let deployment = crate::topology::parse(&text, &path, dir)?;
    for pool in &deployment.pools {
        if let Some(store) = pool.store.local_path() {
            for module in crate::topology::Module::ALL {
                if deployment.modules_of(pool).contains(&module) {
                    let d = store.join("data").join(module.identity());
                    std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
                }
            }
        }
    }
    Ok(vec![path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_starter_puts_every_store_in_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Init {
            endpoint: "http://10.0.0.5:3900".into(),
            bucket: "pools".into(),
            region: "garage".into(),
        };
        let written = init(dir.path(), Some(&s3)).unwrap();
        let d = crate::topology::load(&written[0]).unwrap();
        for pool in &d.pools {
            let crate::store::StoreLocation::S3(l) = &pool.store else {
                panic!("{} is not in the bucket", pool.fqdn);
            };
            assert_eq!(l.bucket, "pools");
            assert_eq!(l.prefix, pool.fqdn.as_str());
            assert_eq!(l.credentials_file(), Some(written[1].as_path()));
            assert_eq!(l.pool(), pool.fqdn.as_str());
        }
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&written[1]).unwrap().mode() & 0o777,
            0o600
        );
        assert!(init(dir.path(), Some(&s3)).is_err(), "never overwrites");
        let bad = S3Init {
            bucket: "No_Such".into(),
            ..s3
        };
        assert!(init(&dir.path().join("x"), Some(&bad)).is_err());
    }
}
