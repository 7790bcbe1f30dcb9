//! The deployment file: every validation rule, each way of finding it, `init`.

use std::sync::LazyLock;

use crate::common::{Env, Out, PairToml, Run};

/// A valid pair; each test breaks it in one place.
static BASE: LazyLock<String> = LazyLock::new(|| {
    PairToml::new("pool1.contoso.com", "pool2.contoso.com")
        .named("contoso")
        .sites("Site1", "Site2")
        .text()
});

/// A run of `get_pool().len()` on a deployment text, in a home of its own,
/// for the caller to state what it must do.
fn check(text: &str) -> Run {
    let env = Env::new();
    let file = env.write("deployment.toml", text);
    env.into_cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_pool().len()"])
}

/// A deployment text that loads: both pools are there.
fn accepted(text: &str) -> Out {
    check(text).stdout_is("2\n").run()
}

/// A deployment text refused (status 2) with one line that says `needle`.
fn refused_with(text: &str, needle: &str) -> Out {
    let out = check(text).exit(2).stderr_has(needle).run();
    assert_eq!(
        out.stderr().trim().lines().count(),
        1,
        "one line: {}",
        out.stderr()
    );
    out
}

/// Asserts the text is refused with `deployment.toml:LINE:COL:` and a message.
fn refused(text: &str, line: usize, col: usize, needle: &str) {
    let out = refused_with(text, needle);
    let prefix = format!("deployment.toml:{line}:{col}: ");
    assert!(
        out.stderr().contains(&prefix),
        "expected {prefix} in: {}",
        out.stderr()
    );
}

#[test]
fn the_base_file_is_valid() {
    accepted(&BASE);
}

#[test]
fn bad_fqdn_syntax() {
    refused(
        &BASE.replace(
            "fqdn = \"pool1.contoso.com\"",
            "fqdn = \"pool_1.contoso.com\"",
        ),
        14,
        8,
        "contains '_'",
    );
    refused(
        &BASE.replace("fqdn = \"pool1.contoso.com\"", "fqdn = \"pool1\""),
        14,
        8,
        "at least two labels",
    );
    let long = format!("fqdn = \"{}.contoso.com\"", "a".repeat(64));
    refused(
        &BASE.replace("fqdn = \"pool1.contoso.com\"", &long),
        14,
        8,
        "at most 63",
    );
}

#[test]
fn fqdns_are_case_insensitive() {
    let text = BASE.replace(
        "fqdn = \"pool1.contoso.com\"",
        "fqdn = \"POOL1.Contoso.COM\"",
    );
    let env = Env::new();
    let file = env.write("deployment.toml", &text);
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_pool(\"Pool1.CONTOSO.com\").fqdn"])
        .ok();
    assert_eq!(out.stdout().trim(), "pool1.contoso.com");
}

#[test]
fn duplicate_pool() {
    let text = format!(
        "{}\n[[pool]]\nfqdn = \"Pool1.contoso.com\"\nsite = \"Site1\"\n",
        *BASE
    );
    refused(&text, 24, 8, "duplicate pool 'pool1.contoso.com'");
}

#[test]
fn duplicate_site() {
    let text = BASE.replace("identity = \"Site2\"", "identity = \"site1\"");
    refused(&text, 10, 12, "duplicate site 'site1'");
}

#[test]
fn a_site_identity_that_looks_like_a_site_number() {
    // `site:<SiteId>` names a site by number in scopes and look-ups: a site
    // called "site:1" was scope-checked as site 1, and "site:99" panicked.
    let text = BASE.replace("identity = \"Site2\"", "identity = \"Site:1\"");
    refused(&text, 10, 12, "starts with 'site:'");
}

#[test]
fn unknown_site() {
    refused(
        &BASE.replace("site = \"Site2\"", "site = \"Nowhere\""),
        20,
        8,
        "site 'Nowhere', which does not exist",
    );
}

#[test]
fn backup_pool_that_does_not_exist() {
    let text = BASE.replace(
        "backup_pool = \"pool1.contoso.com\"",
        "backup_pool = \"pool9.contoso.com\"",
    );
    // pool1 names pool2, which names pool9: the first broken link is reported.
    refused(
        &text,
        21,
        15,
        "backup pool 'pool9.contoso.com' of pool 'pool2.contoso.com' does not exist",
    );
    refused(
        &format!(
            "{}\n[[pool]]\nfqdn = \"pool3.contoso.com\"\nsite = \"Site1\"\nbackup_pool = \"ghost.contoso.com\"\n",
            *BASE
        ),
        26,
        15,
        "backup pool 'ghost.contoso.com' of pool 'pool3.contoso.com' does not exist",
    );
}

#[test]
fn two_pools_never_share_a_store_or_nest_one_in_the_other() {
    let with_stores = |a: &str, b: &str| {
        BASE.replace(
            "backup_pool = \"pool2.contoso.com\"\n",
            &format!("backup_pool = \"pool2.contoso.com\"\nstore = \"{a}\"\n"),
        )
        .replace(
            "backup_pool = \"pool1.contoso.com\"\n",
            &format!("backup_pool = \"pool1.contoso.com\"\nstore = \"{b}\"\n"),
        )
    };
    refused(
        &with_stores("stores/shared", "stores/./shared"),
        23,
        9,
        "the store of pool 'pool2.contoso.com' (",
    );
    refused_with(
        &with_stores("stores/shared", "stores/shared"),
        "is also the store of pool 'pool1.contoso.com'",
    );
    refused_with(
        &with_stores("stores/a", "stores/a/data/UserServices.PresenceFocus/b"),
        "lies inside the store of pool 'pool1.contoso.com'",
    );
    refused_with(
        &with_stores("stores/a/b", "stores/a"),
        "contains the store of pool 'pool1.contoso.com'",
    );
    // Side by side is fine, including names that share a prefix.
    accepted(&with_stores("stores/a", "stores/ab"));
    // A default store (stores/FQDN) counts too.
    let text = BASE.replace(
        "backup_pool = \"pool2.contoso.com\"\n",
        "backup_pool = \"pool2.contoso.com\"\nstore = \"stores\"\n",
    );
    refused(
        &text,
        20,
        8,
        "lies inside the store of pool 'pool1.contoso.com'",
    );
}

#[test]
fn a_computer_belongs_to_one_pool_once() {
    let with_computers = |a: &str, b: &str| {
        BASE.replace(
            "backup_pool = \"pool2.contoso.com\"\n",
            &format!("backup_pool = \"pool2.contoso.com\"\ncomputers = [{a}]\n"),
        )
        .replace(
            "backup_pool = \"pool1.contoso.com\"\n",
            &format!("backup_pool = \"pool1.contoso.com\"\ncomputers = [{b}]\n"),
        )
    };
    refused(
        &with_computers(r#""fe1.contoso.com", "fe1.contoso.com""#, ""),
        17,
        33,
        "computer 'fe1.contoso.com' is listed twice in pool 'pool1.contoso.com'",
    );
    refused(
        &with_computers(r#""fe1.contoso.com""#, r#""fe1.contoso.com""#),
        23,
        14,
        "computer 'fe1.contoso.com' of pool 'pool2.contoso.com' already belongs to pool 'pool1.contoso.com'",
    );
    refused(
        &with_computers("", r#""pool1.contoso.com""#),
        23,
        14,
        "already belongs to pool 'pool1.contoso.com'",
    );
    refused(
        &with_computers(r#""pool2.contoso.com""#, ""),
        20,
        8,
        "pool 'pool2.contoso.com' is listed as a computer of pool 'pool1.contoso.com'",
    );
    // A Standard Edition server is its own pool.
    accepted(&with_computers(
        r#""pool1.contoso.com""#,
        r#""fe2.contoso.com""#,
    ));
}

#[test]
fn a_folder_given_as_the_deployment_file_is_named_as_such() {
    let env = Env::new();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(env.path())
        .args(["-c", "1"])
        .status(2);
    let err = out.stderr();
    assert!(err.contains("is a folder: name the file itself"), "{err}");
    assert!(!err.contains("chmod"), "{err}");
}

#[test]
fn backup_pool_that_is_the_pool_itself() {
    let text = BASE.replace(
        "backup_pool = \"pool2.contoso.com\"",
        "backup_pool = \"pool1.contoso.com\"",
    );
    refused(&text, 16, 15, "names itself as its backup pool");
}

#[test]
fn pairing_must_be_mutual() {
    let text = format!(
        "{}\n[[pool]]\nfqdn = \"pool3.contoso.com\"\nsite = \"Site1\"\nbackup_pool = \"pool1.contoso.com\"\n",
        *BASE
    );
    refused(&text, 26, 15, "pairing must be mutual");
}

#[test]
fn cms_master_must_be_a_pool() {
    refused(
        &BASE.replace(
            "cms_master = \"pool1.contoso.com\"",
            "cms_master = \"cms.contoso.com\"",
        ),
        3,
        14,
        "is not a pool",
    );
}

#[test]
fn unparsable_store() {
    let text = BASE.replace(
        "backup_pool = \"pool2.contoso.com\"",
        "backup_pool = \"pool2.contoso.com\"\nstore = \"ftp://x/y\"",
    );
    refused(&text, 17, 9, "unknown scheme 'ftp'");
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = BASE.replace("site_id = 2", "site_id = 2\ncolor = \"blue\"");
    check(&text)
        .exit(2)
        .stderr_has("deployment.toml:12:")
        .stderr_has("color")
        .run();
}

#[test]
fn bad_setting_value() {
    let text = format!(
        "{}\n[backup_service]\nsync_interval = \"00:00:01\"\n",
        *BASE
    );
    refused(&text, 24, 17, "out of range");
    // A value of the wrong type names its key and what to write.
    let text = format!(
        "{}\n[backup_service]\nmax_concurrent_calls = \"10\"\n",
        *BASE
    );
    refused(
        &text,
        24,
        24,
        "max_concurrent_calls: invalid type: string \"10\", expected a whole number: write a whole number without quotes",
    );
    let text = BASE.replace("site_id = 2", "site_id = \"2\"");
    refused(&text, 11, 11, "site_id: invalid type: string \"2\"");
}

#[test]
fn pairing_inside_one_site_is_a_warning() {
    let text = BASE.replace("site = \"Site2\"", "site = \"Site1\"");
    check(&text)
        .stdout_is("2\n")
        .stderr_has("warning:")
        .stderr_has("paired inside one site")
        .run();
}

#[test]
fn deployment_from_flag_env_config_and_cwd_in_that_order() {
    let env = Env::new();
    let one = |name: &str| BASE.replace("name = \"contoso\"", &format!("name = \"{name}\""));
    let flag = env.write("a/flag.toml", &one("from-flag"));
    let envfile = env.write("b/env.toml", &one("from-env"));
    env.write(
        "config/poolsync/config.toml",
        "deployment = \"../../c/config.toml\"\n",
    );
    env.write("c/config.toml", &one("from-config"));
    env.write("deployment.toml", &one("from-cwd"));
    let name = "get_pool(\"pool1.contoso.com\").store";
    let run = |r: crate::common::Run| r.args(["-c", name]).ok().stdout();
    assert!(
        run(env
            .cmd()
            .arg("--deployment")
            .arg(&flag)
            .env("POOLSYNC_DEPLOYMENT", &envfile))
        .contains("/a/")
    );
    assert!(run(env.cmd().env("POOLSYNC_DEPLOYMENT", &envfile)).contains("/b/"));
    assert!(run(env.cmd()).contains("/c/"));
    std::fs::remove_file(env.path().join("config/poolsync/config.toml")).unwrap();
    assert!(run(env.cmd()).contains(&format!("{}/stores", env.path().display())));
}

#[test]
fn no_deployment_says_how_to_get_one() {
    let env = Env::new();
    let out = env.cmd().args(["-c", "1"]).status(2);
    let err = out.stderr();
    assert!(err.contains("no deployment found"), "{err}");
    assert!(
        err.contains("poolsync --demo") && err.contains("poolsync init"),
        "{err}"
    );
}

#[test]
fn init_writes_a_working_starter_and_never_overwrites() {
    let env = Env::new();
    env.cmd().args(["init", "site"]).ok();
    let file = env.path().join("site/deployment.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# "), "commented");
    assert!(
        env.path()
            .join("site/stores/pool1.contoso.com/data/UserServices.PresenceFocus")
            .is_dir()
    );
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_pool().len()"])
        .ok();
    assert_eq!(out.stdout().trim(), "2");
    std::fs::write(&file, "# mine\n").unwrap();
    let out = env.cmd().args(["init", "site"]).status(2);
    assert!(
        out.stderr().contains("never overwrites"),
        "{}",
        out.stderr()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
}

#[test]
fn a_fresh_init_pair_syncs() {
    let env = Env::new();
    env.cmd().args(["init", "d"]).ok();
    let file = env.path().join("d/deployment.toml");
    env.write(
        "d/stores/pool1.contoso.com/data/UserServices.PresenceFocus/u/alice.json",
        "{}",
    );
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args([
            "-c",
            "invoke_backup_service_sync(\"pool1.contoso.com\").items_copied",
        ])
        .ok();
    assert_eq!(out.stdout().trim(), "1");
    let copy = env.path().join("d/stores/pool2.contoso.com/backup/pool1.contoso.com/UserServices.PresenceFocus/u/alice.json");
    assert_eq!(std::fs::read_to_string(copy).unwrap(), "{}");
}

/// A deployment of `pairs` pairs of pools in 100 sites, each pool with a
/// computer and the default store (`stores/FQDN`, not created: the loader does
/// not need it).
fn big_deployment(pairs: usize) -> String {
    use std::fmt::Write;
    let mut text =
        String::from("[deployment]\nname = \"big\"\ncms_master = \"pool0.big.example.com\"\n\n");
    for site in 1..=100 {
        writeln!(
            text,
            "[[site]]\nidentity = \"Site{site}\"\nsite_id = {site}\n"
        )
        .unwrap();
    }
    for pool in 0..2 * pairs {
        let partner = pool ^ 1;
        let site = pool % 100 + 1;
        writeln!(
            text,
            "[[pool]]\nfqdn = \"pool{pool}.big.example.com\"\nsite = \"Site{site}\"\nbackup_pool = \"pool{partner}.big.example.com\"\ncomputers = [\"fe{pool}.big.example.com\"]\n"
        )
        .unwrap();
    }
    text
}

#[test]
fn twenty_thousand_pools_load_in_seconds() {
    // Every deployment-wide check is O(n log n): comparing every pair of
    // stores took 31 s for 2,000 pools (release build), so 20,000 took about
    // an hour. Now the debug build loads and lists them in well under 2 s.
    let env = Env::new();
    let file = env.write("deployment.toml", &big_deployment(10_000));
    let started = std::time::Instant::now();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_pool().len()"])
        .ok();
    let took = started.elapsed();
    assert_eq!(out.stdout().trim(), "20000");
    assert!(out.stderr().is_empty(), "{}", out.stderr());
    assert!(
        took < std::time::Duration::from_secs(5),
        "20,000 pools took {took:?} to load"
    );
}

#[test]
fn a_fifo_given_as_the_deployment_is_refused_at_once() {
    let env = crate::common::Env::new();
    let fifo = env.path().join("deployment.toml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = env
        .cmd()
        .arg("--deployment")
        .arg(&fifo)
        .args(["-c", "1"])
        .start();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("reading a FIFO deployment hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = crate::common::Out(child.wait_with_output().unwrap());
    assert_eq!(out.0.status.code(), Some(2));
    assert!(
        out.stderr().contains("is not a regular file"),
        "{}",
        out.stderr()
    );
}
