//! A small builder that runs the real binary in an isolated home.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_poolsync");

/// A test's own home: config, data and state directories, and a work folder.
pub(crate) struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A home whose demo is a private copy of a prepared one (cheap to make).
    pub(crate) fn with_demo() -> Env {
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

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
    pub(crate) fn data_home(&self) -> PathBuf {
        self.path().join(DATA_HOME)
    }
    pub(crate) fn demo_dir(&self) -> PathBuf {
        self.data_home().join("poolsync/demo")
    }
    /// The store of a demo pool.
    pub(crate) fn store(&self, fqdn: &str) -> PathBuf {
        self.demo_dir().join("stores").join(fqdn)
    }

    /// Writes a file below the work folder; returns its path.
    pub(crate) fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs `code` on the demo, which must succeed.
    pub(crate) fn demo(&self, code: &str) -> Out {
        self.cmd().args(["--demo", "-c", code]).ok()
    }

    /// Runs `code` on the demo, which must fail as a script does (status 1);
    /// returns its standard error.
    pub(crate) fn demo_error(&self, code: &str) -> String {
        self.cmd().args(["--demo", "-c", code]).status(1).stderr()
    }

    /// Runs `code` on the demo with `--json`, which must succeed; returns
    /// its value.
    pub(crate) fn demo_json(&self, code: &str) -> serde_json::Value {
        let out = self.cmd().args(["--demo", "--json", "-c", code]).ok();
        serde_json::from_str(&out.stdout())
            .unwrap_or_else(|e| panic!("{code}: not JSON ({e}): {}", out.stdout()))
    }

    pub(crate) fn cmd(&self) -> Run {
        Run {
            cmd: poolsync_in(self.path()),
            stdin: None,
            expect: Expect::default(),
            home: None,
        }
    }

    /// A run that owns this home, which goes when the run is done.
    pub(crate) fn into_cmd(self) -> Run {
        let mut run = self.cmd();
        run.home = Some(self);
        run
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
pub(crate) fn poolsync_in(home: &Path) -> Command {
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

/// One run of the binary, and what it must do: its exit status (0 unless
/// stated) and what its standard output and error hold, stated before it
/// runs (`.exit(2).stderr_has("..")`), so that [`Run::run`] checks every one.
pub(crate) struct Run {
    pub cmd: Command,
    stdin: Option<Stdin>,
    expect: Expect,
    /// The home it runs in, when the run owns it.
    home: Option<Env>,
}

enum Stdin {
    Bytes(Vec<u8>),
    File(PathBuf),
}

#[derive(Default)]
struct Expect {
    exit: Option<i32>,
    stdout_has: Vec<String>,
    stdout_is: Option<String>,
    stderr_has: Vec<String>,
    stderr_is: Option<String>,
}

impl Run {
    /// A run of a command made elsewhere (with its own deployment and
    /// environment), to state what it must do.
    pub(crate) fn of(cmd: Command) -> Run {
        Run {
            cmd,
            stdin: None,
            expect: Expect::default(),
            home: None,
        }
    }
    pub(crate) fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub(crate) fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub(crate) fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(Stdin::Bytes(input.as_bytes().to_vec()));
        self
    }
    /// Standard input read from a file.
    pub(crate) fn stdin_file(mut self, path: &Path) -> Self {
        self.stdin = Some(Stdin::File(path.to_path_buf()));
        self
    }

    /// The exit status the run must end with (0 when not stated).
    pub(crate) fn exit(mut self, code: i32) -> Self {
        self.expect.exit = Some(code);
        self
    }
    /// Text standard output must contain.
    pub(crate) fn stdout_has(mut self, text: impl Into<String>) -> Self {
        self.expect.stdout_has.push(text.into());
        self
    }
    /// Standard output, all of it.
    pub(crate) fn stdout_is(mut self, text: impl Into<String>) -> Self {
        self.expect.stdout_is = Some(text.into());
        self
    }
    /// Text standard error must contain.
    pub(crate) fn stderr_has(mut self, text: impl Into<String>) -> Self {
        self.expect.stderr_has.push(text.into());
        self
    }
    /// Standard error, all of it.
    pub(crate) fn stderr_is(mut self, text: impl Into<String>) -> Self {
        self.expect.stderr_is = Some(text.into());
        self
    }

    fn output(&mut self) -> Out {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut bytes = None;
        match self.stdin.take() {
            None => {
                self.cmd.stdin(Stdio::null());
            }
            Some(Stdin::File(path)) => {
                self.cmd
                    .stdin(std::fs::File::open(path).expect("stdin file"));
            }
            Some(Stdin::Bytes(b)) => {
                self.cmd.stdin(Stdio::piped());
                bytes = Some(b);
            }
        }
        let mut child = self.cmd.spawn().expect("spawn poolsync");
        if let Some(input) = bytes {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(&input).unwrap();
        }
        Out(child.wait_with_output().unwrap())
    }

    /// Runs and asserts everything stated: the exit status (0 unless
    /// stated), then standard output and error.
    pub(crate) fn run(mut self) -> Out {
        let out = self.output();
        drop(self.home.take());
        let (stdout, stderr) = (out.stdout(), out.stderr());
        let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
        let e = &self.expect;
        assert_eq!(
            out.0.status.code(),
            Some(e.exit.unwrap_or(0)),
            "exit status\n{context}"
        );
        for text in &e.stdout_has {
            assert!(stdout.contains(text), "stdout lacks {text:?}\n{context}");
        }
        for text in &e.stderr_has {
            assert!(stderr.contains(text), "stderr lacks {text:?}\n{context}");
        }
        if let Some(text) = &e.stdout_is {
            assert_eq!(&stdout, text, "stdout\n{context}");
        }
        if let Some(text) = &e.stderr_is {
            assert_eq!(&stderr, text, "stderr\n{context}");
        }
        out
    }

    /// Runs and asserts the exit status (and whatever else was stated).
    pub(crate) fn status(self, code: i32) -> Out {
        self.exit(code).run()
    }

    pub(crate) fn ok(self) -> Out {
        self.run()
    }

    /// Starts the run in the background with its standard streams piped; end
    /// it with [`finished_ok`] or `Out(child.wait_with_output().unwrap())`.
    pub(crate) fn start(mut self) -> std::process::Child {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn poolsync")
    }

    /// Starts the run, sends it Ctrl-C (SIGINT) after `after`, and returns its
    /// output and how long it took to stop after the signal.
    pub(crate) fn interrupt_after(
        mut self,
        after: std::time::Duration,
    ) -> (Out, std::time::Duration) {
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

pub(crate) struct Out(pub Output);

impl Out {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub(crate) fn stderr(&self) -> String {
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
pub(crate) fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
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

pub(crate) const ATL1: &str = "atl-cs-001.litwareinc.com";
pub(crate) const DAL1: &str = "dal-cs-001.litwareinc.com";
pub(crate) const ATL2: &str = "atl-cs-002.litwareinc.com";
pub(crate) const RED1: &str = "red-cs-001.litwareinc.com";
pub(crate) const RED3: &str = "red-cs-003.litwareinc.com";

/// Waits for a run begun with [`Run::start`] and asserts it succeeded.
pub(crate) fn finished_ok(child: std::process::Child) -> Out {
    let out = Out(child.wait_with_output().unwrap());
    assert!(out.0.status.success(), "{}", out.stderr());
    out
}

/// The pair of the pool `fqdn` of an engine's deployment, for tests that call
/// the library directly.
pub(crate) fn pair(engine: &poolsync::sync::SyncEngine, fqdn: &str) -> poolsync::topology::Pair {
    let pool = engine
        .deployment()
        .pool(fqdn)
        .expect("a pool of the deployment");
    engine.pair(pool).expect("a paired pool")
}

/// The deployment text of one pair of pools, A (which hosts the CMS) in one
/// site and B in another, each backing up the other: the deployment most
/// tests need, written once. Its tables are apart by a blank line, so a test
/// can name the line of a key (`deployment.toml:14:8:`).
pub(crate) struct PairToml {
    name: String,
    pools: [String; 2],
    sites: [String; 2],
    stores: [Option<String>; 2],
    /// Lines added to `[deployment]`.
    deployment: String,
    /// The `[backup_service]` table's body, if it has one.
    backup_service: Option<String>,
}

impl PairToml {
    /// The pair `a` and `b`, in sites S1 and S2 of the deployment "t", each
    /// with its default store (`stores/FQDN`).
    pub(crate) fn new(a: &str, b: &str) -> PairToml {
        PairToml {
            name: "t".into(),
            pools: [a.into(), b.into()],
            sites: ["S1".into(), "S2".into()],
            stores: [None, None],
            deployment: String::new(),
            backup_service: None,
        }
    }
    pub(crate) fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
    pub(crate) fn sites(mut self, a: &str, b: &str) -> Self {
        self.sites = [a.into(), b.into()];
        self
    }
    /// Both pools in one site (a warning, but a valid deployment).
    pub(crate) fn one_site(mut self, site: &str) -> Self {
        self.sites = [site.into(), site.into()];
        self
    }
    pub(crate) fn stores(mut self, a: Option<&str>, b: Option<&str>) -> Self {
        self.stores = [a.map(Into::into), b.map(Into::into)];
        self
    }
    /// A line added to `[deployment]` (`s3_credentials = "..."`).
    pub(crate) fn deployment_line(mut self, line: &str) -> Self {
        self.deployment.push_str(line);
        self.deployment.push('\n');
        self
    }
    /// The body of `[backup_service]`.
    pub(crate) fn backup_service(mut self, body: &str) -> Self {
        self.backup_service = Some(body.into());
        self
    }

    pub(crate) fn text(&self) -> String {
        let [a, b] = &self.pools;
        let mut t = format!(
            "[deployment]\nname = \"{}\"\ncms_master = \"{a}\"\n{}",
            self.name, self.deployment
        );
        let mut sites: Vec<&String> = self.sites.iter().collect();
        sites.dedup();
        for (i, site) in sites.iter().enumerate() {
            t.push_str(&format!(
                "\n[[site]]\nidentity = \"{site}\"\nsite_id = {}\n",
                i + 1
            ));
        }
        for (i, (pool, partner)) in [(a, b), (b, a)].into_iter().enumerate() {
            t.push_str(&format!(
                "\n[[pool]]\nfqdn = \"{pool}\"\nsite = \"{}\"\nbackup_pool = \"{partner}\"\n",
                self.sites[i]
            ));
            if let Some(store) = &self.stores[i] {
                t.push_str(&format!("store = \"{store}\"\n"));
            }
        }
        if let Some(body) = &self.backup_service {
            t.push_str(&format!("\n[backup_service]\n{body}\n"));
        }
        t
    }

    /// Writes the text to `dir/deployment.toml` and makes the `PresenceFocus`
    /// data folder of each pool whose store is the default one; returns the
    /// file.
    pub(crate) fn write(&self, dir: &Path) -> PathBuf {
        for (pool, store) in self.pools.iter().zip(&self.stores) {
            if store.is_none() {
                std::fs::create_dir_all(
                    dir.join("stores")
                        .join(pool)
                        .join("data/UserServices.PresenceFocus"),
                )
                .unwrap();
            }
        }
        let file = dir.join("deployment.toml");
        std::fs::write(&file, self.text()).unwrap();
        file
    }
}

#[test]
fn a_run_asserts_what_it_was_told_before_it_ran() {
    Env::new()
        .cmd()
        .arg("--version")
        .stdout_has("poolsync")
        .stderr_is("")
        .run();
}

#[test]
#[should_panic(expected = "exit status")]
fn a_run_that_fails_unannounced_fails_the_test() {
    Env::new().cmd().arg("--no-such-flag").run();
}

#[test]
#[should_panic(expected = "stdout lacks")]
fn a_run_whose_output_lacks_what_was_stated_fails_the_test() {
    Env::new()
        .cmd()
        .arg("--version")
        .stdout_has("no such words")
        .run();
}

/// Holds the writers' fence of `pool` in the store at `store`, as a writer
/// would: a failover's or failback's switch there waits until it is dropped.
pub(crate) fn hold_writers_fence(store: &Path, pool: &str) -> std::fs::File {
    let path = store.join(format!(".poolsync/locks/writers-{pool}.lock"));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    file.lock().unwrap();
    file
}

/// Every object below `prefix` of an object store (S3 or in memory): path
/// relative to it (segments decoded) → content.
pub(crate) async fn object_tree(
    store: &dyn object_store::ObjectStore,
    prefix: &object_store::path::Path,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let metas: Vec<_> = store.list(Some(prefix)).try_collect().await.unwrap();
    let mut out = std::collections::BTreeMap::new();
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
        let body = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.insert(rel.join("/"), body.to_vec());
    }
    out
}
