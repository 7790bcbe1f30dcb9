//! A small builder that runs the real binary in an isolated home.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_poolsync");

/// A test's own home: config, data and state directories, and a work folder.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A home whose demo is a private copy of a prepared one (cheap to make).
    pub fn with_demo() -> Env {
        let env = Env::new();
        let template = demo_template();
        let data = env.data_home().join("poolsync");
        std::fs::create_dir_all(&data).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(template.demo_dir())
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success());
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn data_home(&self) -> PathBuf {
        self.path().join(DATA_HOME)
    }
    pub fn demo_dir(&self) -> PathBuf {
        self.data_home().join("poolsync/demo")
    }
    /// The store of a demo pool.
    pub fn store(&self, fqdn: &str) -> PathBuf {
        self.demo_dir().join("stores").join(fqdn)
    }

    /// Writes a file below the work folder; returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs `code` on the demo, which must succeed.
    pub fn demo(&self, code: &str) -> Out {
        self.cmd().args(["--demo", "-c", code]).ok()
    }

    /// Runs `code` on the demo, which must fail as a script does (status 1);
    /// returns its standard error.
    pub fn demo_error(&self, code: &str) -> String {
        self.cmd().args(["--demo", "-c", code]).status(1).stderr()
    }

    pub fn cmd(&self) -> Run {
        Run {
            cmd: poolsync_in(self.path()),
            stdin: None,
        }
    }
}

/// The XDG data and config homes, below a test's home.
const DATA_HOME: &str = "data";
const CONFIG_HOME: &str = "config";

/// The binary, run in `home` with nothing of the caller's environment but
/// `PATH`: `HOME` is `home`, the XDG data, config and state homes are its
/// `data`, `config` and `state` folders. Every test run starts here, so a
/// developer's own `POOLSYNC_DEPLOYMENT`, `POOLSYNC_LOG` or `XDG_*` never
/// reaches it.
pub fn poolsync_in(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join(DATA_HOME))
        .env("XDG_CONFIG_HOME", home.join(CONFIG_HOME))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("NO_COLOR", "1")
        .current_dir(home);
    c
}

/// One run of the binary.
pub struct Run {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Run {
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.as_bytes().to_vec());
        self
    }

    pub fn output(mut self) -> Out {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = self.cmd.spawn().expect("spawn poolsync");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(&input).unwrap();
        }
        Out(child.wait_with_output().unwrap())
    }

    /// Runs and asserts the exit status.
    pub fn status(self, code: i32) -> Out {
        let out = self.output();
        assert_eq!(
            out.0.status.code(),
            Some(code),
            "exit status\nstdout:\n{}\nstderr:\n{}",
            out.stdout(),
            out.stderr()
        );
        out
    }

    pub fn ok(self) -> Out {
        self.status(0)
    }

    /// Starts the run in the background with its standard streams piped; end
    /// it with [`finished_ok`] or `Out(child.wait_with_output().unwrap())`.
    pub fn start(mut self) -> std::process::Child {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn poolsync")
    }

    /// Starts the run, sends it Ctrl-C (SIGINT) after `after`, and returns its
    /// output and how long it took to stop after the signal.
    pub fn interrupt_after(mut self, after: std::time::Duration) -> (Out, std::time::Duration) {
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn poolsync");
        std::thread::sleep(after);
        let sent = std::time::Instant::now();
        // SAFETY: a signal to the child we started.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let out = child.wait_with_output().unwrap();
        (Out(out), sent.elapsed())
    }
}

pub struct Out(pub Output);

impl Out {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

/// A demo made once per test run, copied by [`Env::with_demo`]. It is made in
/// an [`Env`] of its own, so through the same cleared environment as every run.
fn demo_template() -> &'static Env {
    static TEMPLATE: OnceLock<Env> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let env = Env::new();
        env.cmd().args(["--demo", "-c", "1"]).ok();
        env
    })
}

/// Every regular file below `dir`: relative path → content.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            // A file renamed or deleted meanwhile (a churn, a running
            // service) is not there: skip it, as a later look will.
            let Ok(t) = e.file_type() else {
                continue;
            };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if let Ok(content) = std::fs::read(e.path()) {
                    out.insert(rel, content);
                }
            }
        }
    }
    out
}

pub const ATL1: &str = "atl-cs-001.litwareinc.com";
pub const DAL1: &str = "dal-cs-001.litwareinc.com";
pub const ATL2: &str = "atl-cs-002.litwareinc.com";
pub const RED1: &str = "red-cs-001.litwareinc.com";
pub const RED3: &str = "red-cs-003.litwareinc.com";

/// Waits for a run begun with [`Run::start`] and asserts it succeeded.
pub fn finished_ok(child: std::process::Child) -> Out {
    let out = Out(child.wait_with_output().unwrap());
    assert!(out.0.status.success(), "{}", out.stderr());
    out
}

/// The pair of the pool `fqdn` of an engine's deployment, for tests that call
/// the library directly.
pub fn pair(engine: &poolsync::sync::SyncEngine, fqdn: &str) -> poolsync::topology::Pair {
    let pool = engine
        .deployment()
        .pool(fqdn)
        .expect("a pool of the deployment");
    engine.pair(pool).expect("a paired pool")
}
