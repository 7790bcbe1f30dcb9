//! Role-based access: standard and custom roles, the trust check, --as, and a
//! sweep proving that no pool function escapes the check.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::{ATL1, ATL2, DAL1, Env, Out, RED1, Run};

const ROLES: &str = r#"
[[role]]
identity = "AtlantaServerAdmins"
template = "CsServerAdministrator"
config_scopes = ["site:1"]

[[role]]
identity = "EverySiteAdmins"
template = "CsServerAdministrator"
config_scopes = ["site:1", "site:2", "site:3"]

[[role]]
identity = "AtlantaReaders"
template = "CsServerAdministrator"
config_scopes = ["site:1"]
cmdlets = ["Get-CsPool", "get_site"]
"#;

/// The demo deployment plus roles and operators; the test user is `me`.
fn deployment(env: &Env, me_roles: &[&str]) -> PathBuf {
    let me = poolsync::rbac::os_user();
    let mut text = poolsync::demo::DEPLOYMENT_TOML.to_string();
    text.push_str(ROLES);
    let list = |roles: &[&str]| {
        roles
            .iter()
            .map(|r| format!("\"{r}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    text.push_str(&format!(
        "\n[[operator]]\nname = \"{me}\"\nroles = [{}]\n",
        list(me_roles)
    ));
    text.push_str("\n[[operator]]\nname = \"bob\"\nroles = [\"AtlantaServerAdmins\"]\n");
    text.push_str("\n[[operator]]\nname = \"carol\"\nroles = [\"AtlantaReaders\"]\n");
    text.push_str("\n[[operator]]\nname = \"dan\"\nroles = [\"EverySiteAdmins\"]\n");
    for role in [
        "CsAdministrator",
        "CsServerAdministrator",
        "CsViewOnlyAdministrator",
        "CsHelpDesk",
    ] {
        text.push_str(&format!(
            "\n[[operator]]\nname = \"u-{role}\"\nroles = [\"{role}\"]\n"
        ));
    }
    let file = env.demo_dir().join("rbac.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn run_as(env: &Env, file: &PathBuf, who: &str, code: &str) -> Run {
    env.cmd()
        .arg("--deployment")
        .arg(file)
        .args(["--as", who, "-c", code])
}

/// Runs, which must be refused as a script error (status 1) for access.
fn denied(run: Run) -> Out {
    run.exit(1).stderr_has("access denied: ").run()
}

/// Runs, which must succeed when `allowed` and be refused when not.
fn allowed_if(run: Run, allowed: bool) -> Out {
    if allowed { run.run() } else { denied(run) }
}

#[test]
fn standard_roles_allow_and_refuse_what_the_table_says() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    let sync = format!("invoke_backup_service_sync(\"{ATL2}\", #{{what_if: true}}).what_if");
    let read = format!("get_pool(\"{DAL1}\").fqdn");
    let roles = "get_admin_role().len()";
    let pair = format!("get_pool_backup_relationship(\"{ATL1}\")");
    for (role, may_sync, may_roles) in [
        ("CsAdministrator", true, true),
        ("CsServerAdministrator", true, true),
        ("CsViewOnlyAdministrator", false, true),
        ("CsHelpDesk", false, false),
    ] {
        let who = format!("u-{role}");
        run_as(&env, &file, &who, &read).run();
        run_as(&env, &file, &who, &pair).run();
        allowed_if(run_as(&env, &file, &who, &sync), may_sync);
        allowed_if(run_as(&env, &file, &who, roles), may_roles);
    }
}

#[test]
fn a_site_scoped_role_reaches_its_site_only() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    let out = denied(run_as(
        &env,
        &file,
        "bob",
        &format!("invoke_backup_service_sync(\"{DAL1}\")"),
    ));
    assert!(
        out.stderr().contains(&format!(
            "access denied: bob (AtlantaServerAdmins) may not run Invoke-CsBackupServiceSync on {DAL1} (site Dallas)"
        )),
        "{}",
        out.stderr()
    );
    let out = run_as(
        &env,
        &file,
        "bob",
        &format!("invoke_backup_service_sync(\"{ATL1}\").items_copied"),
    )
    .run();
    assert_eq!(out.stdout().trim(), "1229", "{}", out.stderr());
    let out = run_as(&env, &file, "bob", "get_pool().map(|p| p.fqdn)").run();
    assert_eq!(out.stdout().trim(), format!("{ATL1}\n{ATL2}"));
    denied(run_as(&env, &file, "bob", &format!("get_pool(\"{RED1}\")")));
    let out = run_as(&env, &file, "bob", "get_site().map(|s| s.identity)").run();
    assert_eq!(out.stdout().trim(), "Atlanta");
    // A narrowed role: reads only.
    denied(run_as(
        &env,
        &file,
        "carol",
        &format!("invoke_backup_service_sync(\"{ATL1}\")"),
    ));
    assert_eq!(
        run_as(&env, &file, "carol", "get_pool().len()")
            .run()
            .stdout()
            .trim(),
        "2"
    );
}

#[test]
fn an_array_with_one_forbidden_pool_touches_nothing() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    denied(run_as(
        &env,
        &file,
        "bob",
        &format!("[\"{ATL2}\", \"{DAL1}\"].invoke_backup_service_sync()"),
    ));
    assert!(
        !env.store(RED1).join("backup").join(ATL2).exists(),
        "the allowed pool was not synced either"
    );
}

#[test]
fn test_admin_access_and_the_seed_filter() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    let out = run_as(
        &env,
        &file,
        "bob",
        &format!(
            "[test_admin_access(\"Invoke-CsBackupServiceSync\", \"{ATL1}\"), test_admin_access(\"invoke_backup_service_sync\", get_pool(\"{ATL2}\")), test_admin_access(\"Invoke-CsBackupServiceSync\", \"{DAL1}\")]"
        ),
    ).run();
    assert_eq!(
        out.stdout().trim(),
        "[true, true, false]",
        "{}",
        out.stderr()
    );
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_admin_role().filter(|r| r.cmdlets.some(|c| c.matches(\"Invoke-CsBackupServiceSync\"))).map(|r| r.identity)"])
        .ok();
    assert_eq!(
        out.stdout().trim(),
        "CsAdministrator\nCsServerAdministrator\nAtlantaServerAdmins\nEverySiteAdmins"
    );
    // A bad pattern is one line that says what is wrong with it.
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "\"Invoke-CsPool\".matches(\"Invoke-(\")"])
        .status(1);
    let err = out.stderr();
    assert_eq!(
        err.lines().next().unwrap_or_default(),
        "<code>:1:17: matches: invalid regular expression 'Invoke-(': unclosed group",
        "{err}"
    );
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_admin_role(\"AtlantaServerAdmins\")"])
        .ok();
    assert!(
        out.stdout().contains("ConfigScopes   : site:1"),
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout()
            .contains("Template       : CsServerAdministrator")
    );
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "test_admin_access(\"Remove-Everything\", \"x\")"])
        .status(1);
    assert!(out.stderr().contains("unknown cmdlet 'Remove-Everything'"));
}

#[test]
fn no_pool_function_escapes_the_check() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    let mut checked = 0;
    for doc in poolsync::script::help::FUNCTIONS {
        let takes_pool = doc.signatures.iter().any(|s| {
            s.split_once('(').is_some_and(|(_, rest)| {
                rest.starts_with("pool") || rest.starts_with("target") || rest.starts_with("fqdn")
            })
        });
        if !takes_pool || poolsync::rbac::catalog::cmdlet(doc.name).is_none() {
            continue;
        }
        denied(run_as(
            &env,
            &file,
            "bob",
            &format!("{}(\"{DAL1}\")", doc.name),
        ));
        denied(run_as(
            &env,
            &file,
            "bob",
            &format!("{}(get_pool(\"{ATL1}\").backup_pool)", doc.name),
        ));
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} pool functions found");
}

#[test]
fn as_is_for_administrators_only() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsHelpDesk"]);
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["--as", "bob", "-c", "1"])
        .status(2);
    assert!(
        out.stderr().contains("--as bob refused"),
        "{}",
        out.stderr()
    );
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "get_operator().roles"])
        .ok();
    assert_eq!(out.stdout().trim(), "CsHelpDesk");
    let file = deployment(&env, &["CsAdministrator"]);
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["--as", "bob", "-c", "get_operator().name"])
        .ok();
    assert_eq!(out.stdout().trim(), "bob");
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["--as", "mallory", "-c", "1"])
        .status(2);
    assert!(
        out.stderr().contains("no operator 'mallory'"),
        "{}",
        out.stderr()
    );
}

#[test]
fn single_user_deployments_make_the_user_administrator() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args(["--demo", "-c", "get_operator().roles"])
        .ok();
    assert_eq!(out.stdout().trim(), "CsAdministrator");
}

#[test]
fn a_deployment_others_can_write_is_refused() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "1"])
        .status(2);
    assert!(
        out.stderr()
            .contains(&format!("chmod go-w {}", file.display())),
        "{}",
        out.stderr()
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "1"])
        .ok();
    let dir = file.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "1"])
        .status(2);
    assert!(
        out.stderr().contains("the deployment folder"),
        "{}",
        out.stderr()
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    env.cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "1"])
        .ok();
}

#[test]
fn a_deployment_linked_into_a_folder_others_can_write_is_refused() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    // The file itself is fine, and so is the folder of the link; but the
    // folder really holding the file lets anyone replace it.
    let shared = env.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::copy(&file, shared.join("deployment.toml")).unwrap();
    std::fs::set_permissions(
        shared.join("deployment.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let link = file.with_file_name("linked.toml");
    std::os::unix::fs::symlink(shared.join("deployment.toml"), &link).unwrap();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&link)
        .args(["-c", "1"])
        .status(2);
    assert!(
        out.stderr()
            .contains("the folder the deployment file links into"),
        "{}",
        out.stderr()
    );
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.cmd()
        .arg("--deployment")
        .arg(&link)
        .args(["-c", "1"])
        .ok();
}

#[test]
fn role_rules_are_validated_with_positions() {
    let env = Env::with_demo();
    let mut text = poolsync::demo::DEPLOYMENT_TOML.to_string();
    text.push_str("\n[[role]]\nidentity = \"Greedy\"\ntemplate = \"CsHelpDesk\"\nconfig_scopes = [\"global\"]\ncmdlets = [\"Invoke-CsBackupServiceSync\"]\n");
    let file = env.demo_dir().join("bad.toml");
    std::fs::write(&file, &text).unwrap();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "1"])
        .status(2);
    let line = text.lines().count();
    assert!(
        out.stderr().contains(&format!("bad.toml:{line}:")),
        "{}",
        out.stderr()
    );
    assert!(
        out.stderr()
            .contains("cannot grant Invoke-CsBackupServiceSync"),
        "{}",
        out.stderr()
    );
    let text = format!(
        "{}\n[[operator]]\nname = \"x\"\nroles = [\"Nope\"]\n",
        poolsync::demo::DEPLOYMENT_TOML
    );
    std::fs::write(&file, &text).unwrap();
    let out = env
        .cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", "1"])
        .status(2);
    assert!(
        out.stderr()
            .contains("has role 'Nope', which does not exist"),
        "{}",
        out.stderr()
    );
}

#[test]
fn failover_needs_both_pools_and_view_only_roles_may_only_look() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    env.cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", &format!("invoke_backup_service_sync(\"{ATL2}\")")])
        .ok();
    // bob may act on Atlanta only: ATL2 is his, its partner RED1 is not.
    for code in [
        format!("invoke_pool_failover(\"{ATL2}\")"),
        format!("invoke_pool_failback(\"{ATL2}\")"),
        format!("restore_pool_data(\"{ATL2}\")"),
    ] {
        let out = denied(run_as(&env, &file, "bob", &code));
        assert!(
            out.stderr().contains("acts on both pools of the pair"),
            "{code}: {}",
            out.stderr()
        );
    }
    let view = "u-CsViewOnlyAdministrator";
    denied(run_as(
        &env,
        &file,
        view,
        &format!("invoke_pool_failover(\"{ATL2}\")"),
    ));
    let out = run_as(
        &env,
        &file,
        view,
        &format!("get_pool(\"{ATL2}\").failover.state"),
    )
    .run();
    assert_eq!(out.stdout().trim(), "Home", "{}", out.stderr());
    let out = run_as(
        &env,
        &file,
        "u-CsServerAdministrator",
        &format!("invoke_pool_failover(\"{ATL2}\").phase"),
    )
    .run();
    assert_eq!(out.stdout().trim(), "FailedOver", "{}", out.stderr());
}

#[test]
fn moving_the_cms_needs_global_scope_even_with_every_site_in_scope() {
    let env = Env::with_demo();
    let file = deployment(&env, &["CsAdministrator"]);
    env.cmd()
        .arg("--deployment")
        .arg(&file)
        .args(["-c", &format!("invoke_backup_service_sync(\"{ATL1}\")")])
        .ok();
    // dan's role covers every site, so both pools of every pair: he may fail
    // a pool over, but the CMS is the deployment's, as in Lync (where only
    // RTCUniversalServerAdmins may move it).
    run_as(&env, &file, "dan", "invoke_management_server_failover()")
        .exit(1)
        .stderr_has("access denied: ")
        .stderr_has("needs a role with global scope")
        .run();
    // test_admin_access says the same.
    run_as(
        &env,
        &file,
        "dan",
        &format!("test_admin_access(\"Invoke-CsManagementServerFailover\", \"{ATL1}\")"),
    )
    .stdout_is("false\n")
    .run();
    run_as(
        &env,
        &file,
        "dan",
        &format!("invoke_pool_failover(\"{ATL2}\", #{{what_if: true}}).phase"),
    )
    .stdout_is("FailedOver\n")
    .run();
    run_as(
        &env,
        &file,
        "u-CsServerAdministrator",
        "invoke_management_server_failover().active_at",
    )
    .stdout_is(format!("{DAL1}\n"))
    .run();
}
