//! S3 stores against a real Garage, started by `tests/garage.sh run cargo test`
//! (CI does this). Without Garage these tests say loudly that they were skipped;
//! in CI (`CI` set) a missing Garage fails them.
//!
//! Ground truth is read with `object_store` directly, not through poolsync.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use poolsync::store::{LockMode, ObjectBackedStore, Store, memory_backend};
use poolsync::sync::{ExportState, SyncEngine, SyncOptions};
use poolsync::topology::{self, Module, ModuleSelection};
use proptest::prelude::*;

use crate::common::{PairToml, Run, object_tree, poolsync_in, tree};

mod failover;
mod faults;
mod functional;
mod guarantees;
mod proxy;
mod setup;

const A: &str = "a.test.com";
const B: &str = "b.test.com";
const PF: &str = "UserServices.PresenceFocus";

/// The servers `tests/garage.sh` started, from the file it wrote.
pub(crate) struct Garage {
    vars: HashMap<String, String>,
}

impl Garage {
    /// The running Garage, or `None` after a loud message (a failure in CI).
    pub(crate) fn get(test: &str) -> Option<Garage> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = std::env::var_os("POOLSYNC_GARAGE_ENV")
            .map_or_else(|| root.join("target/garage/env"), PathBuf::from);
        let vars: Option<HashMap<String, String>> = std::fs::read_to_string(&file).ok().map(|t| {
            t.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        let up = vars.as_ref().is_some_and(|v| {
            let addr = v["POOLSYNC_S3_ENDPOINT"].trim_start_matches("http://");
            std::net::TcpStream::connect(addr).is_ok()
        });
        if up {
            return vars.map(|vars| Garage { vars });
        }
        let message = format!(
            "\n*** SKIPPED {test}: no Garage server is running ({} not found or not answering).\n*** Run the whole suite with: tests/garage.sh run cargo test\n",
            file.display()
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}*** In CI the S3 tests must run."
        );
        // Straight to the process's stderr: the test harness does not capture it.
        let _ = std::io::stderr().write_all(message.as_bytes());
        None
    }

    fn var(&self, key: &str) -> &str {
        &self.vars[key]
    }

    fn endpoint(&self, cluster: bool) -> &str {
        self.var(if cluster {
            "POOLSYNC_S3_CLUSTER_ENDPOINT"
        } else {
            "POOLSYNC_S3_ENDPOINT"
        })
    }
    fn bucket(&self, cluster: bool) -> &str {
        self.var(if cluster {
            "POOLSYNC_S3_CLUSTER_BUCKET"
        } else {
            "POOLSYNC_S3_BUCKET"
        })
    }
    fn keys(&self, cluster: bool) -> (&str, &str) {
        if cluster {
            (
                self.var("POOLSYNC_S3_CLUSTER_ACCESS_KEY_ID"),
                self.var("POOLSYNC_S3_CLUSTER_SECRET_ACCESS_KEY"),
            )
        } else {
            (
                self.var("POOLSYNC_S3_ACCESS_KEY_ID"),
                self.var("POOLSYNC_S3_SECRET_ACCESS_KEY"),
            )
        }
    }

    /// A client of our own, for ground truth.
    fn client(&self, cluster: bool) -> AmazonS3 {
        let (id, secret) = self.keys(cluster);
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint(cluster))
            .with_allow_http(true)
            .with_region("garage")
            .with_bucket_name(self.bucket(cluster))
            .with_access_key_id(id)
            .with_secret_access_key(secret)
            .build()
            .unwrap()
    }

    /// Runs `tests/garage.sh ARGS`.
    fn script(&self, args: &[&str]) {
        let status = Command::new(self.var("POOLSYNC_GARAGE_SCRIPT"))
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "tests/garage.sh {args:?} failed");
    }
}

/// A key prefix no other test (or earlier run) uses.
fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos:x}", std::process::id())
}

/// Runs `cmd` and asserts it exits 0, showing its stderr if not.
fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A pair: A on the local disk, B in a bucket under `prefix`. Credentials in a
/// file named by the deployment.
struct S3Pair {
    dir: tempfile::TempDir,
    prefix: String,
}

impl S3Pair {
    fn new(g: &Garage, test: &str, cluster: bool, settings: &str) -> S3Pair {
        S3Pair::through(g, test, cluster, g.endpoint(cluster), settings)
    }

    /// As [`S3Pair::new`], with the bucket reached at `endpoint` (a proxy in
    /// front of the server).
    fn through(g: &Garage, test: &str, cluster: bool, endpoint: &str, settings: &str) -> S3Pair {
        let dir = tempfile::tempdir().unwrap();
        let prefix = unique(test);
        let (id, secret) = g.keys(cluster);
        let creds = dir.path().join("s3.credentials");
        std::fs::write(
            &creds,
            format!(
                "[endpoints.\"{endpoint}\"]\naccess_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\n",
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
        let b_store = format!(
            "s3://{bucket}/{prefix}?endpoint={endpoint}&region=garage",
            bucket = g.bucket(cluster),
        );
        let text = PairToml::new(A, B)
            .deployment_line("s3_credentials = \"s3.credentials\"")
            .stores(None, Some(&b_store))
            .backup_service(settings)
            .text();
        std::fs::write(dir.path().join("deployment.toml"), text).unwrap();
        std::fs::create_dir_all(dir.path().join("stores").join(A).join("data").join(PF)).unwrap();
        S3Pair { dir, prefix }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn a_data(&self) -> PathBuf {
        self.path().join("stores").join(A).join("data").join(PF)
    }
    fn a_replica(&self) -> PathBuf {
        self.path()
            .join("stores")
            .join(A)
            .join("backup")
            .join(B)
            .join(PF)
    }
    fn key(&self, rel: &str) -> Key {
        self.prefix.split('/').chain(rel.split('/')).collect()
    }
    /// B's own `PresenceFocus` data, in the bucket.
    fn b_data(&self) -> Key {
        self.key(&format!("data/{PF}"))
    }
    /// B's replica of A's `PresenceFocus` data, in the bucket.
    fn b_replica(&self) -> Key {
        self.key(&format!("backup/{A}/{PF}"))
    }
    fn b_data_key(&self, item: &str) -> Key {
        self.key(&format!("data/{PF}/{item}"))
    }
    fn engine(&self) -> SyncEngine {
        let d = topology::load(&self.path().join("deployment.toml")).unwrap();
        SyncEngine::new(Arc::new(d))
    }
    fn cmd(&self, script: &str) -> Command {
        // No AWS_* either: the keys come from the credentials file.
        let mut c = poolsync_in(self.path());
        c.arg("--deployment")
            .arg(self.path().join("deployment.toml"))
            .args(["-c", script]);
        c
    }
    fn sync_cmd(&self) -> Command {
        self.cmd(&format!(
            "invoke_backup_service_sync(\"{A}\", #{{module: \"PresenceFocus\"}}).items_copied"
        ))
    }
}

/// Asserts that the bucket holds no staged object and no journal of `pair`:
/// what a finished (or recovered) sync leaves.
fn no_temporaries(rt: &tokio::runtime::Runtime, client: &AmazonS3, pair: &S3Pair, label: &str) {
    let meta = rt.block_on(object_tree(client, &pair.key(".poolsync")));
    assert!(
        meta.keys()
            .all(|k| !k.starts_with("staging/") && !k.contains("journal/")),
        "{label}: temporaries left"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn pf_only() -> SyncOptions {
    SyncOptions {
        modules: ModuleSelection::One(Module::PresenceFocus),
        allow_mass_delete: true,
        ..SyncOptions::default()
    }
}

fn write_items(dir: &Path, round: u32, count: u32) {
    for i in 0..count {
        if round == 0 || i % 3 != 0 {
            let f = dir.join(format!("d{:02}/item-{i}", i % 40));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(
                f,
                format!("round {round} item {i} ").repeat(20 + i as usize % 50),
            )
            .unwrap();
        }
    }
}
