//! Pool stores in S3-compatible buckets (Amazon S3, `MinIO`, Ceph, Garage).
//!
//! A store is written `s3://BUCKET/PREFIX?endpoint=URL&region=NAME` in
//! `deployment.toml`. Credentials never appear there: they come from the
//! credentials file the deployment names (`s3_credentials`, a section per pool
//! or per endpoint) or from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). Nothing here prints them: the
//! secret is handed to `object_store` and dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::{ObjectBackedStore, StoreError, StoreOwner, StoreResult};

/// Where an S3 pool store lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// The service's URL (`http://127.0.0.1:3900`); Amazon S3 when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The credentials file named by the deployment (absolute), if any.
    credentials_file: Option<PathBuf>,
    /// The pool whose store this is (selects its section in the credentials file).
    pool: String,
}

impl S3Location {
    /// Parses what follows `s3://`: `BUCKET[/PREFIX][?endpoint=URL&region=NAME]`,
    /// the store of `owner`, complete: the pool and its credentials file are
    /// part of the location from the start.
    pub fn parse(rest: &str, owner: StoreOwner<'_>) -> Result<S3Location, String> {
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let (bucket, prefix) = match path.split_once('/') {
            Some((b, p)) => (b, p.trim_end_matches('/')),
            None => (path, ""),
        };
        check_bucket(bucket)?;
        if !prefix.is_empty()
            && prefix
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(format!(
                "the key prefix '{prefix}' has an empty, '.' or '..' segment: write s3://BUCKET/folder/sub"
            ));
        }
        let mut location = S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: None,
            region: None,
            credentials_file: owner.credentials_file.map(Path::to_path_buf),
            pool: owner.pool.to_string(),
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("the value of '{key}' is not UTF-8 once decoded"))?
                .into_owned();
            if value.is_empty() {
                return Err(format!("'{key}' has no value: write {key}=..."));
            }
            match key {
                "endpoint" => {
                    // Before anything that would print the value.
                    if value.contains('@') {
                        return Err(
                            "the endpoint must not carry credentials: put them in the s3_credentials file or the environment".into(),
                        );
                    }
                    let lower = value.to_ascii_lowercase();
                    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                        return Err(format!(
                            "endpoint '{value}' is not an http:// or https:// URL"
                        ));
                    }
                    location.endpoint = Some(value.trim_end_matches('/').to_string());
                }
                "region" => location.region = Some(value),
                other => {
                    return Err(format!(
                        "unknown setting '{other}': an s3:// store takes endpoint= and region="
                    ));
                }
            }
        }
        Ok(location)
    }

    /// The pool whose store this is.
    #[must_use]
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The credentials file to look in before the environment, if any.
    #[must_use]
    pub fn credentials_file(&self) -> Option<&Path> {
        self.credentials_file.as_deref()
    }

    /// The endpoint as shown to people: the URL, or Amazon S3's.
    #[must_use]
    pub fn endpoint_label(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| {
            format!(
                "https://s3.{}.amazonaws.com",
                self.region.as_deref().unwrap_or("us-east-1")
            )
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        let mut sep = '?';
        if let Some(e) = &self.endpoint {
            write!(f, "{sep}endpoint={e}")?;
            sep = '&';
        }
        if let Some(r) = &self.region {
            write!(f, "{sep}region={r}")?;
        }
        Ok(())
    }
}

/// Bucket names as S3 defines them: 3–63 of `a-z 0-9 . -`, starting and ending
/// with a letter or digit.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{bucket}' is not a valid bucket name (3 to 63 characters of a-z, 0-9, '.' and '-'): write s3://BUCKET/PREFIX"
        ))
    }
}

/// A key pair. `Debug` never shows the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Credentials {
    pub access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// The credentials file: `[pools."FQDN"]` and `[endpoints."URL"]` sections.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    pools: BTreeMap<String, S3Credentials>,
    #[serde(default)]
    endpoints: BTreeMap<String, S3Credentials>,
}

/// Finds the credentials for a store: the pool's section of the credentials
/// file, then its endpoint's section, then the environment.
pub fn resolve_credentials(
    location: &S3Location,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<S3Credentials, String> {
    if let Some(file) = &location.credentials_file {
        let parsed = read_credentials_file(file)?;
        // FQDNs are case-insensitive, and a URL with or without its final `/`
        // or in other case names the same endpoint.
        if let Some((_, c)) = parsed
            .pools
            .iter()
            .find(|(fqdn, _)| fqdn.eq_ignore_ascii_case(&location.pool))
        {
            return Ok(c.clone());
        }
        let url = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
        let endpoint = url(&location.endpoint_label());
        if let Some((_, c)) = parsed.endpoints.iter().find(|(u, _)| url(u) == endpoint) {
            return Ok(c.clone());
        }
    }
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok(S3Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
        }),
        _ => Err(match &location.credentials_file {
            Some(file) => format!(
                "no credentials for pool {} at {}: add [pools.\"{}\"] or [endpoints.\"{}\"] to {}, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                location.pool,
                location.endpoint_label(),
                location.pool,
                location.endpoint_label(),
                file.display()
            ),
            None => format!(
                "no credentials for pool {} at {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a credentials file with s3_credentials in deployment.toml",
                location.pool,
                location.endpoint_label()
            ),
        }),
    }
}

/// Reads a credentials file, refusing one that others could read (like ssh does
/// with private keys). Parse errors give a position, never the file's text.
fn read_credentials_file(file: &Path) -> Result<CredentialsFile, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file)
        .map_err(|e| format!("cannot read the credentials file {}: {e}", file.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the credentials file {} can be read by others (mode {:o}): run chmod 600 {}",
            file.display(),
            meta.mode() & 0o777,
            file.display()
        ));
    }
    let text = crate::input::read_text(file)
        .map_err(|e| format!("cannot read the credentials file {}: {e}", file.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => format!(
                "{}:{line}: {} (sections are [pools.\"FQDN\"] and [endpoints.\"URL\"] with access_key_id and secret_access_key)",
                file.display(),
                e.message()
            ),
            None => format!("{}: {}", file.display(), e.message()),
        }
    })
}

/// How patient the client is with an endpoint: a transient failure (a 5xx
/// answer, `SlowDown`, a reset or refused connection, a timeout) is retried
/// for 30 seconds per request, the waits growing from 100 ms by about half
/// again each time (`object_store` draws each one at random between 100 ms and
/// three times the one before), at most 4 s. That rides out a server restart
/// of a few seconds, and ends well before a pair lock's lease could be lost
/// (40 s without a renewal). The count of tries is set high so that the time
/// decides: with 8 tries, the random waits often stayed short, and a stopped
/// server failed a sync within a second and a half. When a request has spent
/// the 30 s, the rest of the run fails at once (`object/breaker.rs`).
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(4),
            base: 3.0,
        },
        max_retries: 100,
        retry_timeout: RETRY_BUDGET,
    }
}

/// How long a request is retried, at most (docs/s3.md).
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Opens an S3 store.
pub(super) fn open(location: &S3Location) -> StoreResult<ObjectBackedStore> {
    let desc = format!("s3://{}/{}", location.bucket, location.prefix)
        .trim_end_matches('/')
        .to_string();
    let desc = format!("{desc} at {}", location.endpoint_label());
    let fail = |message: String| StoreError::Other {
        store: desc.clone(),
        message,
    };
    let credentials =
        resolve_credentials(location, &|name| std::env::var(name).ok()).map_err(fail)?;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&location.bucket)
        .with_region(location.region.as_deref().unwrap_or("us-east-1"))
        .with_access_key_id(&credentials.access_key_id)
        .with_secret_access_key(&credentials.secret_access_key)
        .with_virtual_hosted_style_request(false)
        .with_retry(retry_config())
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_mins(1))
                .with_pool_max_idle_per_host(64),
        );
    if let Some(token) = &credentials.session_token {
        builder = builder.with_token(token);
    }
    if let Some(endpoint) = &location.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.to_ascii_lowercase().starts_with("http://"));
    }
    let backend = builder
        .build()
        .map_err(|e| fail(format!("cannot set up the S3 client: {e}")))?;
    let prefix: object_store::path::Path = location
        .prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    Ok(ObjectBackedStore::new(Arc::new(backend), prefix, desc).remote(location.endpoint_label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: StoreOwner<'static> = StoreOwner {
        pool: "p.x.com",
        credentials_file: None,
    };

    #[test]
    fn parses_urls() {
        let l = S3Location::parse(
            "pools/atl?endpoint=http://127.0.0.1:3900&region=garage",
            NOBODY,
        )
        .unwrap();
        assert_eq!(l.bucket, "pools");
        assert_eq!(l.prefix, "atl");
        assert_eq!(l.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(l.region.as_deref(), Some("garage"));
        assert_eq!(
            l.to_string(),
            "s3://pools/atl?endpoint=http://127.0.0.1:3900&region=garage"
        );
        let bare = S3Location::parse("my-bucket", NOBODY).unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.endpoint_label(), "https://s3.us-east-1.amazonaws.com");
        for bad in [
            "UPPER/x",
            "ab",
            "b/../x",
            "b//x",
            "pools?endpoint=ftp://x",
            "pools?endpoint=http://k:s@host",
            "pools?secret=1",
            "pools?region=",
        ] {
            assert!(
                S3Location::parse(bad, NOBODY).is_err(),
                "{bad} was accepted"
            );
        }
    }

    fn location(file: Option<PathBuf>) -> S3Location {
        let owner = StoreOwner {
            pool: "a.x.com",
            credentials_file: file.as_deref(),
        };
        S3Location::parse("bk1?endpoint=http://h:1", owner).unwrap()
    }

    #[test]
    fn a_parsed_location_knows_its_pool_and_credentials_file() {
        let owner = StoreOwner {
            pool: "a.x.com",
            credentials_file: Some(Path::new("/d/creds.toml")),
        };
        let l = S3Location::parse("bk1/p?endpoint=http://h:1", owner).unwrap();
        assert_eq!(l.pool(), "a.x.com");
        assert_eq!(l.credentials_file(), Some(Path::new("/d/creds.toml")));
        // Neither is part of the URL, so neither shows in it.
        assert_eq!(l.to_string(), "s3://bk1/p?endpoint=http://h:1");
    }

    #[test]
    fn credentials_pool_then_endpoint_then_env() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds.toml");
        std::fs::write(
            &file,
            "[pools.\"a.x.com\"]\naccess_key_id = \"P\"\nsecret_access_key = \"ps\"\n[endpoints.\"http://h:1\"]\naccess_key_id = \"E\"\nsecret_access_key = \"es\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let no_env = |_: &str| None;
        let l = location(Some(file.clone()));
        assert_eq!(resolve_credentials(&l, &no_env).unwrap().access_key_id, "P");
        let other = S3Location {
            pool: "b.x.com".into(),
            ..l.clone()
        };
        assert_eq!(
            resolve_credentials(&other, &no_env).unwrap().access_key_id,
            "E"
        );
        // Sections as people write them: another case, a final `/`.
        std::fs::write(
            &file,
            "[pools.\"A.X.com\"]\naccess_key_id = \"P\"\nsecret_access_key = \"ps\"\n[endpoints.\"HTTP://H:1/\"]\naccess_key_id = \"E\"\nsecret_access_key = \"es\"\n",
        )
        .unwrap();
        assert_eq!(resolve_credentials(&l, &no_env).unwrap().access_key_id, "P");
        assert_eq!(
            resolve_credentials(&other, &no_env).unwrap().access_key_id,
            "E"
        );
        let env = |k: &str| Some(format!("env-{k}"));
        assert_eq!(
            resolve_credentials(&location(None), &env)
                .unwrap()
                .access_key_id,
            "env-AWS_ACCESS_KEY_ID"
        );
        let err = resolve_credentials(&location(None), &no_env).unwrap_err();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        // Readable by others: refused, and the secret is never in the message.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve_credentials(&l, &no_env).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        // A broken file: position, no content.
        std::fs::write(
            &file,
            "[pools.\"a.x.com\"]\naccess_key_id = \"P\"\nsecret_access_key = sekrit\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = resolve_credentials(&l, &no_env).unwrap_err();
        assert!(err.contains(":3:"), "{err}");
        assert!(!err.contains("sekrit"), "{err}");
        let shown = format!("{:?}", resolve_credentials(&location(None), &env).unwrap());
        assert!(!shown.contains("env-AWS_SECRET"), "{shown}");
    }
}
