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

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use poolsync::store::{LockMode, ObjectBackedStore, Store, memory_backend};
use poolsync::sync::{ExportState, SyncEngine, SyncOptions};
use poolsync::topology::{self, Module, ModuleSelection};
use proptest::prelude::*;

use crate::common::{poolsync_in, tree};

pub(crate) const A: &str = "a.test.com";
pub(crate) const B: &str = "b.test.com";
pub(crate) const PF: &str = "UserServices.PresenceFocus";

/// The servers `tests/garage.sh` started, from the file it wrote.
pub struct Garage {
    vars: HashMap<String, String>,
}

impl Garage {
    /// The running Garage, or `None` after a loud message (a failure in CI).
    pub fn get(test: &str) -> Option<Garage> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = std::env::var_os("POOLSYNC_GARAGE_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/garage/env"));
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
        if std::env::var_os("CI").is_some() {
            panic!("{message}*** In CI the S3 tests must run.");
        }
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
    pub(crate) fn client(&self, cluster: bool) -> AmazonS3 {
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
pub(crate) fn succeeds(cmd: &mut Command) -> std::process::Output {
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
pub(crate) struct S3Pair {
    dir: tempfile::TempDir,
    prefix: String,
}

impl S3Pair {
    pub(crate) fn new(g: &Garage, test: &str, cluster: bool, settings: &str) -> S3Pair {
        let dir = tempfile::tempdir().unwrap();
        let prefix = unique(test);
        let (id, secret) = g.keys(cluster);
        let creds = dir.path().join("s3.credentials");
        std::fs::write(
            &creds,
            format!(
                "[endpoints.\"{}\"]\naccess_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\n",
                g.endpoint(cluster)
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            r#"[deployment]
name = "t"
cms_master = "{A}"
s3_credentials = "s3.credentials"
[[site]]
identity = "S1"
site_id = 1
[[site]]
identity = "S2"
site_id = 2
[[pool]]
fqdn = "{A}"
site = "S1"
backup_pool = "{B}"
[[pool]]
fqdn = "{B}"
site = "S2"
backup_pool = "{A}"
store = "s3://{bucket}/{prefix}?endpoint={endpoint}&region=garage"
[backup_service]
{settings}
"#,
            bucket = g.bucket(cluster),
            endpoint = g.endpoint(cluster),
        );
        std::fs::write(dir.path().join("deployment.toml"), text).unwrap();
        std::fs::create_dir_all(dir.path().join("stores").join(A).join("data").join(PF)).unwrap();
        S3Pair { dir, prefix }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
    pub(crate) fn a_data(&self) -> PathBuf {
        self.path().join("stores").join(A).join("data").join(PF)
    }
    pub(crate) fn a_replica(&self) -> PathBuf {
        self.path()
            .join("stores")
            .join(A)
            .join("backup")
            .join(B)
            .join(PF)
    }
    pub(crate) fn key(&self, rel: &str) -> Key {
        Key::from_iter(self.prefix.split('/').chain(rel.split('/')))
    }
    /// B's own PresenceFocus data, in the bucket.
    pub(crate) fn b_data(&self) -> Key {
        self.key(&format!("data/{PF}"))
    }
    /// B's replica of A's PresenceFocus data, in the bucket.
    pub(crate) fn b_replica(&self) -> Key {
        self.key(&format!("backup/{A}/{PF}"))
    }
    pub(crate) fn b_data_key(&self, item: &str) -> Key {
        self.key(&format!("data/{PF}/{item}"))
    }
    fn engine(&self) -> SyncEngine {
        let d = topology::load(&self.path().join("deployment.toml")).unwrap();
        SyncEngine::new(Arc::new(d))
    }
    pub(crate) fn cmd(&self, script: &str) -> Command {
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

/// Every object below `prefix`: path relative to it (decoded) → content.
pub(crate) async fn s3_tree(client: &AmazonS3, prefix: &Key) -> BTreeMap<String, Vec<u8>> {
    let metas: Vec<_> = client.list(Some(prefix)).try_collect().await.unwrap();
    let mut out = BTreeMap::new();
    for m in metas {
        let rel: Vec<String> = m
            .location
            .prefix_match(prefix)
            .unwrap()
            .map(|p| {
                percent_encoding::percent_decode_str(p.as_ref())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let body = client
            .get(&m.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.insert(rel.join("/"), body.to_vec());
    }
    out
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
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

pub(crate) fn write_items(dir: &Path, round: u32, count: u32) {
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

// ---------------------------------------------------------------------------
// Functional

/// Writes an empty object under a raw key (one ending in `/` included, which
/// object_store cannot write), with curl's own request signing.
fn put_raw(g: &Garage, key: &str) {
    let (id, secret) = g.keys(false);
    let url = format!("{}/{}/{key}", g.endpoint(false), g.bucket(false));
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail-with-body",
            "--aws-sigv4",
            "aws:amz:garage:s3",
        ])
        .args(["--user", &format!("{id}:{secret}")])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .args(["-X", "PUT", "--data-binary", "", &url])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl PUT {url}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn s3_folder_markers_in_a_source_bucket_are_not_items() {
    let Some(g) = Garage::get("s3_folder_markers_in_a_source_bucket_are_not_items") else {
        return;
    };
    let pair = S3Pair::new(&g, "markers", false, "");
    let client = g.client(false);
    let rt = runtime();
    rt.block_on(async {
        for name in ["docs/a", "docs/b", "top"] {
            client
                .put(
                    &pair.b_data_key(name),
                    PutPayload::from(name.as_bytes().to_vec()),
                )
                .await
                .unwrap();
        }
        // A real empty item stays an item.
        client
            .put(&pair.b_data_key("zero"), PutPayload::default())
            .await
            .unwrap();
    });
    // What an S3 console's "create folder" writes: an empty object whose key
    // ends in '/', for a folder with items and for an empty one.
    for folder in ["docs/", "emptyfolder/"] {
        put_raw(&g, &format!("{}/{folder}", pair.b_data()));
    }
    let out = succeeds(&mut pair.sync_cmd());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("disappeared"), "{stderr}");
    let expected = |names: &[&str]| -> BTreeMap<String, Vec<u8>> {
        names
            .iter()
            .map(|n| {
                let content = if *n == "zero" {
                    Vec::new()
                } else {
                    n.as_bytes().to_vec()
                };
                (n.to_string(), content)
            })
            .collect()
    };
    assert_eq!(
        tree(&pair.a_replica()),
        expected(&["docs/a", "docs/b", "top", "zero"])
    );
    // The markers hold nothing back: a deletion goes through.
    rt.block_on(client.delete(&pair.b_data_key("docs/b")))
        .unwrap();
    succeeds(&mut pair.sync_cmd());
    assert_eq!(
        tree(&pair.a_replica()),
        expected(&["docs/a", "top", "zero"])
    );
}

#[test]
fn s3_mixed_pair_syncs_both_ways_and_only_what_changed() {
    let Some(g) = Garage::get("s3_mixed_pair_syncs_both_ways_and_only_what_changed") else {
        return;
    };
    let pair = S3Pair::new(&g, "mixed", false, "batch_max_items = 50");
    let client = g.client(false);
    let rt = runtime();
    write_items(&pair.a_data(), 0, 300);
    // A large item: uploaded in parts, streamed, not held in memory.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(pair.a_data().join("big.bin"), &big).unwrap();
    rt.block_on(async {
        for i in 0..40 {
            client
                .put(
                    &pair.b_data_key(&format!("u/doc {i}#x")),
                    PutPayload::from(format!("b doc {i}").into_bytes()),
                )
                .await
                .unwrap();
        }
    });

    let out = pair.sync_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "341");
    // Garage accepts If-None-Match and overwrites anyway: found out and said.
    assert!(
        stderr.contains("does not honour conditional writes"),
        "{stderr}"
    );
    let replica_b = pair.b_replica();
    assert_eq!(
        rt.block_on(s3_tree(&client, &replica_b)),
        tree(&pair.a_data())
    );
    let b_data = rt.block_on(s3_tree(&client, &pair.b_data()));
    assert_eq!(tree(&pair.a_replica()), b_data);
    assert!(b_data.contains_key("u/doc 7#x"));

    // Nothing changed: nothing copied. Then one change each side: one copied each.
    let out = pair.sync_cmd().output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    std::fs::write(pair.a_data().join("d03/item-3"), "changed").unwrap();
    std::fs::remove_file(pair.a_data().join("d04/item-4")).unwrap();
    rt.block_on(client.put(
        &pair.b_data_key("u/doc 1#x"),
        PutPayload::from_static(b"changed in b"),
    ))
    .unwrap();
    let out = succeeds(&mut pair.sync_cmd());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    assert_eq!(
        rt.block_on(s3_tree(&client, &replica_b)),
        tree(&pair.a_data())
    );
    assert_eq!(
        tree(&pair.a_replica()),
        rt.block_on(s3_tree(&client, &pair.b_data()))
    );
    // Byte-level verification reads both sides, the bucket included: in sync,
    // then an object changed behind poolsync's back is named.
    let verify = |pair: &S3Pair| {
        let out = succeeds(
            pair.cmd(&format!(
                "debug_inter_pool_replication(\"{A}\", #{{module: \"PresenceFocus\"}})"
            ))
            .arg("--json"),
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(verify(&pair)["in_sync"], true);
    rt.block_on(client.put(
        &pair.key(&format!("backup/{A}/{PF}/d05/item-5")),
        PutPayload::from_static(b"tampered"),
    ))
    .unwrap();
    let v = verify(&pair);
    assert_eq!(v["in_sync"], false);
    let check = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == A)
        .unwrap();
    assert_eq!(check["different"], serde_json::json!(["d05/item-5"]));

    // No temporaries, no journal, no lock keys left behind.
    let meta = rt.block_on(s3_tree(&client, &pair.key(".poolsync")));
    for key in meta.keys() {
        assert!(
            !key.starts_with("staging/") && !key.contains("journal/") && !key.contains("locks/"),
            "left behind: {key}"
        );
    }
}

#[test]
fn s3_credentials_never_show_and_errors_name_the_endpoint() {
    let Some(g) = Garage::get("s3_credentials_never_show_and_errors_name_the_endpoint") else {
        return;
    };
    let pair = S3Pair::new(&g, "errors", false, "");
    let (_, secret) = g.keys(false);
    write_items(&pair.a_data(), 0, 5);
    let out = pair
        .cmd(&format!(
            "print(get_pool(\"{B}\").store); print(get_pool(\"{B}\"));"
        ))
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains(&format!("s3://{}/", g.bucket(false))), "{all}");
    assert!(!all.contains(secret), "the secret was printed: {all}");

    // Wrong secret: a one-line error naming the endpoint, the secret nowhere,
    // and ErrorState with the reason at the pool that could be reached.
    let creds = pair.path().join("s3.credentials");
    let text = std::fs::read_to_string(&creds).unwrap();
    std::fs::write(&creds, text.replace(secret, &"0".repeat(secret.len()))).unwrap();
    let out = pair.sync_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(g.endpoint(false)), "{stderr}");
    assert!(stderr.contains("access denied"), "{stderr}");
    assert!(!stderr.contains(secret));
    let engine = pair.engine();
    let rt = runtime();
    let status = rt
        .block_on(engine.pool_status(&crate::common::pair(&engine, A), &[Module::PresenceFocus]))
        .unwrap();
    let m = &status.backup_modules[0];
    assert_eq!(m.export_status, ExportState::ErrorState);
    assert!(
        m.last_error
            .as_deref()
            .is_some_and(|e| e.contains("access denied")),
        "{:?}",
        m.last_error
    );

    // Readable by others: refused before any request.
    std::fs::write(&creds, &text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pair.sync_cmd().output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A bucket that does not exist.
    let deployment = pair.path().join("deployment.toml");
    let d = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(
        &deployment,
        d.replace(
            &format!("s3://{}/", g.bucket(false)),
            "s3://no-such-bucket-here/",
        ),
    )
    .unwrap();
    let out = pair.sync_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no-such-bucket-here") && stderr.contains("bucket does not exist"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// The sync issue's guarantees, against Garage

/// One change to a pool's data: `b` says which pool (B is in the bucket).
#[derive(Debug, Clone)]
enum Op {
    Write {
        b: bool,
        path: String,
        content: Vec<u8>,
    },
    Delete {
        b: bool,
        pick: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let path = (
        prop::sample::select(vec!["a", "c d", "e#1"]),
        prop::sample::select(vec!["x", "y.json", "w 1"]),
    )
        .prop_map(|(d, f)| format!("{d}/{f}"));
    prop_oneof![
        3 => (any::<bool>(), path, prop::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(b, path, content)| Op::Write { b, path, content }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(b, pick)| Op::Delete { b, pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn s3_replicas_equal_sources_after_every_round(
        rounds in prop::collection::vec(prop::collection::vec(op_strategy(), 0..10), 1..4),
        batch in 1u64..4,
    ) {
        let Some(g) = Garage::get("s3_replicas_equal_sources_after_every_round") else {
            return Ok(());
        };
        let pair = S3Pair::new(&g, "props", false, &format!("batch_max_items = {batch}"));
        let client = g.client(false);
        let rt = runtime();
        let engine = pair.engine();
        let b_data = pair.b_data();
        let b_replica = pair.b_replica();
        for ops in &rounds {
            for op in ops {
                match op {
                    Op::Write { b: false, path, content } => {
                        let f = pair.a_data().join(path);
                        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                        std::fs::write(f, content).unwrap();
                    }
                    Op::Write { b: true, path, content } => {
                        rt.block_on(client.put(&pair.b_data_key(path), PutPayload::from(content.clone()))).unwrap();
                    }
                    Op::Delete { b: false, pick } => {
                        let files: Vec<String> = tree(&pair.a_data()).into_keys().collect();
                        if !files.is_empty() {
                            std::fs::remove_file(pair.a_data().join(&files[pick % files.len()])).unwrap();
                        }
                    }
                    Op::Delete { b: true, pick } => {
                        let files: Vec<String> = rt.block_on(s3_tree(&client, &b_data)).into_keys().collect();
                        if !files.is_empty() {
                            rt.block_on(client.delete(&pair.b_data_key(&files[pick % files.len()]))).unwrap();
                        }
                    }
                }
            }
            let before_a = (tree(&pair.a_data()), rt.block_on(s3_tree(&client, &b_replica)));
            let before_b = (rt.block_on(s3_tree(&client, &b_data)), tree(&pair.a_replica()));
            let report = rt.block_on(engine.sync_pair(&crate::common::pair(&engine, A), &pf_only())).unwrap();
            let after_a = (tree(&pair.a_data()), rt.block_on(s3_tree(&client, &b_replica)));
            let after_b = (rt.block_on(s3_tree(&client, &b_data)), tree(&pair.a_replica()));
            prop_assert_eq!(&after_a.0, &after_a.1, "A -> B (bucket)");
            prop_assert_eq!(&after_b.0, &after_b.1, "B (bucket) -> A");
            for (from, before) in [(A, &before_a), (B, &before_b)] {
                let m = report.modules.iter().find(|m| m.from.as_str() == from).unwrap();
                let copied = before.0.iter().filter(|(k, v)| before.1.get(*k) != Some(v)).count() as u64;
                let deleted = before.1.keys().filter(|k| !before.0.contains_key(*k)).count() as u64;
                prop_assert_eq!(m.items_copied, copied, "copied from {}", from);
                prop_assert_eq!(m.items_deleted, deleted, "deleted from {}", from);
            }
        }
    }
}

#[test]
fn s3_kill_9_at_any_moment_leaves_old_or_new_content() {
    let Some(g) = Garage::get("s3_kill_9_at_any_moment_leaves_old_or_new_content") else {
        return;
    };
    let pair = S3Pair::new(&g, "crash", false, "batch_max_items = 25");
    let client = g.client(false);
    let rt = runtime();
    let replica = pair.b_replica();
    write_items(&pair.a_data(), 0, 1500);
    let mut interrupted = 0;
    for (round, delay_ms) in [150u64, 400, 700, 1000, 1500, 2200].into_iter().enumerate() {
        let old = rt.block_on(s3_tree(&client, &replica));
        if round > 0 {
            write_items(&pair.a_data(), round as u32, 1500);
        }
        let new = tree(&pair.a_data());
        let mut child = pair
            .sync_cmd()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        for (path, content) in rt.block_on(s3_tree(&client, &replica)) {
            assert!(
                old.get(&path) == Some(&content) || new.get(&path) == Some(&content),
                "round {round}: {path} is torn or foreign"
            );
        }
        // The next run takes over the dead process's lock at once and completes.
        let started = std::time::Instant::now();
        let out = pair.sync_cmd().output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "round {round}: the rerun waited for the dead holder's lease"
        );
        assert!(
            rt.block_on(s3_tree(&client, &replica)) == new,
            "round {round}: no convergence"
        );
        let meta = rt.block_on(s3_tree(&client, &pair.key(".poolsync")));
        assert!(
            meta.keys()
                .all(|k| !k.starts_with("staging/") && !k.contains("journal/")),
            "round {round}: temporaries left"
        );
    }
    assert!(
        interrupted >= 3,
        "the kills landed mid-sync only {interrupted} times"
    );
}

#[test]
fn s3_two_processes_syncing_one_pair_serialise() {
    let Some(g) = Garage::get("s3_two_processes_syncing_one_pair_serialise") else {
        return;
    };
    let pair = S3Pair::new(&g, "two", false, "batch_max_items = 100");
    let client = g.client(false);
    let rt = runtime();
    write_items(&pair.a_data(), 0, 800);
    let spawn = || {
        pair.sync_cmd()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let copied: Vec<u64> = [&a, &b]
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().parse().unwrap())
        .collect();
    // One did the work; the other, after waiting, found nothing left.
    assert!(copied.contains(&0) && copied.contains(&800), "{copied:?}");
    let waited = [&a, &b]
        .iter()
        .any(|o| String::from_utf8_lossy(&o.stderr).contains("waiting for the pair lock"));
    assert!(waited, "neither process reported waiting for the lock");
    assert_eq!(
        rt.block_on(s3_tree(&client, &pair.b_replica())),
        tree(&pair.a_data())
    );
}

/// Restarts a stopped cluster node even when the test fails.
struct NodeBack<'a>(&'a Garage, &'static str);
impl Drop for NodeBack<'_> {
    fn drop(&mut self) {
        self.0.script(&["node-start", self.1]);
    }
}

#[test]
fn s3_cluster_node_stopped_mid_sync() {
    let Some(g) = Garage::get("s3_cluster_node_stopped_mid_sync") else {
        return;
    };
    let pair = S3Pair::new(&g, "resilience", true, "batch_max_items = 100");
    let client = g.client(true);
    let rt = runtime();
    write_items(&pair.a_data(), 0, 3000);
    for i in 0..4u32 {
        let big: Vec<u8> = (0..(11 * 1024 * 1024 + i))
            .map(|b| (b % 239) as u8)
            .collect();
        std::fs::write(pair.a_data().join(format!("big-{i}.bin")), big).unwrap();
    }
    let mut child = pair
        .sync_cmd()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sync ended before the node was stopped: make the data set larger"
    );
    g.script(&["node-stop", "2"]);
    let _back = NodeBack(&g, "2");
    let first = child.wait_with_output().unwrap();
    if !first.status.success() {
        // A clean failure is allowed; the next run must complete.
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert_eq!(first.status.code(), Some(1), "{stderr}");
        succeeds(&mut pair.sync_cmd());
    }
    assert_eq!(
        rt.block_on(s3_tree(&client, &pair.b_replica())),
        tree(&pair.a_data())
    );
}

// ---------------------------------------------------------------------------
// Locks that need no server

#[test]
fn contender_locks_exclude_and_release() {
    let rt = runtime();
    rt.block_on(async {
        let backend = memory_backend(&unique("contender"));
        let store = |mode| {
            ObjectBackedStore::new(backend.clone(), Key::from("p"), "mem".into())
                .with_lock_mode(mode)
        };
        let (one, two) = (store(LockMode::Contender), store(LockMode::Contender));
        let held = one.try_lock("pair-x", "first").await.unwrap().ok().unwrap();
        let refused = two.try_lock("pair-x", "second").await.unwrap();
        assert_eq!(refused.err().unwrap().0, "first");
        held.release().await;
        let taken = two.try_lock("pair-x", "second").await.unwrap();
        assert!(taken.is_ok(), "free after release");
        // A holder of this machine that is no longer running is not waited for.
        let three = store(LockMode::Contender);
        let dead = poolsync::store::lock_owner().replacen(
            &format!("pid {} ", std::process::id()),
            "pid 999999999 ",
            1,
        );
        let stale = three.try_lock("pair-y", &dead).await.unwrap().ok().unwrap();
        std::mem::forget(stale);
        assert!(one.try_lock("pair-y", "live").await.unwrap().is_ok());
        // One that does not say which machine (boot, PID namespace) it ran on
        // may be another machine's with the same name: it is waited out.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let unsure = format!("poolsync pid 999999999 on {} since now", host.trim());
        let stale = three
            .try_lock("pair-w", &unsure)
            .await
            .unwrap()
            .ok()
            .unwrap();
        std::mem::forget(stale);
        assert!(one.try_lock("pair-w", "live").await.unwrap().is_err());
        // Conditional mode excludes the same way.
        let (c1, c2) = (store(LockMode::Conditional), store(LockMode::Conditional));
        let held = c1.try_lock("pair-z", "c1").await.unwrap().ok().unwrap();
        assert!(c2.try_lock("pair-z", "c2").await.unwrap().is_err());
        held.release().await;
        assert!(c2.try_lock("pair-z", "c2").await.unwrap().is_ok());
    });
}

#[test]
fn s3_store_urls_are_checked_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployment.toml");
    std::fs::write(
        &file,
        format!(
            "[deployment]\nname = \"t\"\ncms_master = \"{A}\"\n[[site]]\nidentity = \"S\"\nsite_id = 1\n[[pool]]\nfqdn = \"{A}\"\nsite = \"S\"\nstore = \"s3://Bad_Bucket/x\"\n"
        ),
    )
    .unwrap();
    let err = topology::load(&file).unwrap_err().to_string();
    assert!(
        err.contains(":10:") && err.contains("not a valid bucket name"),
        "{err}"
    );
    std::fs::write(
        &file,
        format!(
            "[deployment]\nname = \"t\"\ncms_master = \"{A}\"\n[[site]]\nidentity = \"S\"\nsite_id = 1\n[[pool]]\nfqdn = \"{A}\"\nsite = \"S\"\ns3_credentials = \"c\"\n"
        ),
    )
    .unwrap();
    let err = topology::load(&file).unwrap_err().to_string();
    assert!(err.contains("not an s3:// URL"), "{err}");
}

#[test]
fn s3_init_lays_out_a_deployment_in_a_bucket_that_syncs() {
    let Some(g) = Garage::get("s3_init_lays_out_a_deployment_in_a_bucket_that_syncs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = succeeds(poolsync_in(dir.path()).arg("init").arg(dir.path()).args([
        "--s3",
        g.endpoint(false),
        "--bucket",
        g.bucket(false),
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("garage bucket create"));
    // Fill in the key; give this run its own prefix in the shared bucket.
    let (id, secret) = g.keys(false);
    let creds = dir.path().join("s3.credentials");
    let text = std::fs::read_to_string(&creds)
        .unwrap()
        .replace("REPLACE-WITH-THE-KEY-ID", id)
        .replace("REPLACE-WITH-THE-SECRET", secret);
    std::fs::write(&creds, text).unwrap();
    let prefix = unique("init");
    let deployment = dir.path().join("deployment.toml");
    let text = std::fs::read_to_string(&deployment).unwrap().replace(
        &format!("s3://{}/pool", g.bucket(false)),
        &format!("s3://{}/{prefix}/pool", g.bucket(false)),
    );
    std::fs::write(&deployment, text).unwrap();
    // Both pools in the bucket: a pair with no local disk at all.
    let client = g.client(false);
    let rt = runtime();
    let data = Key::from(format!("{prefix}/pool1.contoso.com/data/{PF}"));
    rt.block_on(async {
        for i in 0..30 {
            client
                .put(
                    &data.clone().join(format!("user{i}.json")),
                    PutPayload::from(format!("{{\"user\": {i}}}").into_bytes()),
                )
                .await
                .unwrap();
        }
    });
    let out = succeeds(
        poolsync_in(dir.path())
            .arg("--deployment")
            .arg(&deployment)
            .args([
                "-c",
                "invoke_backup_service_sync(\"pool1.contoso.com\").items_copied",
            ]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "30");
    let replica = Key::from(format!(
        "{prefix}/pool2.contoso.com/backup/pool1.contoso.com/{PF}"
    ));
    assert_eq!(
        rt.block_on(s3_tree(&client, &replica)),
        rt.block_on(s3_tree(&client, &data))
    );
}
