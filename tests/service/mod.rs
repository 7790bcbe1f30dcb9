//! `poolsync service`, run as a process: with its watcher (`watch`: each
//! change reaches the replica within seconds, a flood or a lost watch falls
//! back to a full scan, an idle service walks nothing between intervals, a
//! failover is followed) and under faults (`faults`: a kill -9 loses nothing,
//! a second service, an untrusted file, its threads, a full disk, a busy
//! pair). The harness is here.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PairToml, poolsync_in, tree};

mod faults;
mod watch;

const A: &str = "a.test.com";
const B: &str = "b.test.com";
const PF: &str = "UserServices.PresenceFocus";

/// A two-pool deployment in a temporary folder, and its service.
pub(crate) struct Served {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    child: Option<Child>,
}

/// The JSON log lines of a service.
pub(crate) fn log_events(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

/// The message of a log event.
fn message(v: &serde_json::Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or_default()
}

/// Waits up to `limit` for `ok`, failing with `what`.
pub(crate) fn wait_for(what: &str, limit: Duration, ok: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

impl Served {
    /// The pair a.test.com <-> b.test.com with `settings` in its
    /// `[backup_service]`, not started.
    pub(crate) fn new(settings: &str) -> Served {
        Served::with(PairToml::new(A, B).backup_service(settings))
    }

    /// The deployment `toml`, not started.
    pub(crate) fn with(toml: PairToml) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let file = toml.write(dir.path());
        Served {
            dir,
            file,
            child: None,
        }
    }

    /// The source folder of `PresenceFocus` at a.test.com.
    pub(crate) fn source(&self) -> PathBuf {
        self.dir.path().join("stores").join(A).join("data").join(PF)
    }

    /// Its replica at b.test.com.
    pub(crate) fn replica(&self) -> PathBuf {
        self.dir
            .path()
            .join("stores")
            .join(B)
            .join("backup")
            .join(A)
            .join(PF)
    }

    /// Writes `text` to `rel` below the source folder.
    pub(crate) fn put(&self, rel: &str, text: &str) {
        let p = self.source().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The command that runs the service, logging JSON.
    pub(crate) fn command(&self) -> std::process::Command {
        let mut c = poolsync_in(self.dir.path());
        c.arg("--deployment")
            .arg(&self.file)
            .args(["service", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Starts the service with `env` set.
    pub(crate) fn start_with(&mut self, env: &[(&str, &str)]) {
        let mut c = self.command();
        for (k, v) in env {
            c.env(k, v);
        }
        self.child = Some(c.spawn().unwrap());
    }

    pub(crate) fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts the service on a source of one item and waits until its first
    /// scan has shipped it.
    pub(crate) fn start_seeded(&mut self) {
        self.put("seed.xml", "seed");
        self.start();
        self.converges("the first scan", Duration::from_secs(20));
    }

    /// The service's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// Waits until the replica equals the source, up to `limit`.
    pub(crate) fn converges(&self, what: &str, limit: Duration) -> Duration {
        wait_for(what, limit, || {
            tree(&self.replica()) == tree(&self.source())
        })
    }

    /// Stops the service with SIGTERM; returns its log. It must exit 0.
    pub(crate) fn stop(&mut self) -> String {
        let child = self.child.take().expect("started");
        // SAFETY: a signal to the child we started.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{log}");
        log
    }

    /// Kills the service with SIGKILL.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("started");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `cycle` events of a log, split into full scans and syncs of changes.
fn cycles(log: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    log_events(log)
        .into_iter()
        .filter(|v| message(v) == "cycle")
        .partition(|v| v["fields"]["scan"] == "full")
}

/// Ten minutes between full scans: anything that reaches the replica sooner
/// was shipped by the watcher.
const LONG: &str = "sync_interval = \"00:10:00\"";

/// Runs `code` against the served deployment in a process of its own, as an
/// administrator would beside the service; it must succeed.
fn admin(s: &Served, code: &str) {
    crate::common::Run::of(poolsync_in(s.dir.path()))
        .arg("--deployment")
        .arg(&s.file)
        .args(["-c", code])
        .run();
}
