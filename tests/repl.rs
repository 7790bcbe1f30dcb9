//! The interactive shell, driven through a real pseudo-terminal.

use std::time::Duration;

use rexpect::session::{PtySession, spawn_command};

use crate::common::{DAL1, Env};

/// Types text without Enter (so Tab and arrows act), and makes sure it is sent.
fn type_keys(p: &mut PtySession, keys: &str) {
    p.send(keys).unwrap();
    p.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
}

/// Enters a line and waits for the next prompt (rustyline turns bracketed paste
/// off when it accepts a line and on again when it next reads), so nothing typed
/// next can race the evaluation.
fn enter(p: &mut PtySession, line: &str) {
    p.send_line(line).unwrap();
    p.exp_string("\x1b[?2004l").unwrap();
    p.exp_string("\x1b[?2004h").unwrap();
}

/// Waits for `text` as a whole line of output. A bare `exp_string("2")` also
/// matches the bracketed-paste escape `\x1b[?2004l` or the echo of the input.
fn expect_line(p: &mut PtySession, text: &str) {
    let line = format!(r"\r\n{}\r\n", regex::escape(text));
    if let Err(e) = p.exp_regex(&line) {
        panic!("no output line {text:?}: {e}");
    }
}

fn shell(env: &Env) -> PtySession {
    let mut run = env.cmd().arg("--demo");
    run.cmd.env("TERM", "xterm").env("USER", "tester");
    let mut p = spawn_command(run.cmd, Some(20_000)).expect("spawn the shell");
    p.exp_string("litwareinc> ").expect("prompt");
    p
}

#[test]
fn banner_and_prompt() {
    let env = Env::with_demo();
    let mut run = env.cmd().arg("--demo");
    run.cmd.env("TERM", "xterm").env("USER", "tester");
    let mut p = spawn_command(run.cmd, Some(20_000)).unwrap();
    let me = poolsync::rbac::os_user();
    p.exp_string(&format!(
        "deployment 'litwareinc' (7 pools, 3 sites) - operator {me}"
    ))
    .unwrap();
    p.exp_string("litwareinc> ").unwrap();
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_multi_line_for_loop_runs_whole() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    p.send_line("for p in get_pool(#{site: \"Dallas\"}) {")
        .unwrap();
    p.send_line("    print(`pool=${p.fqdn}`);").unwrap();
    p.send_line("}").unwrap();
    p.exp_string(&format!("pool={DAL1}")).unwrap();
    p.exp_string("pool=dal-cs-002.litwareinc.com").unwrap();
    p.exp_string("litwareinc> ").unwrap();
}

#[test]
fn tab_completes_function_names() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    type_keys(&mut p, "get_po");
    type_keys(&mut p, "\t");
    type_keys(&mut p, "().len()\r");
    // Without the completion, `get_po().len()` would be an error.
    expect_line(&mut p, "7");
}

#[test]
fn tab_completes_pools_inside_strings_and_properties_after_a_dot() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    type_keys(&mut p, "get_pool(\"red-cs-00");
    type_keys(&mut p, "3\t");
    type_keys(&mut p, "\").backup_pool == ()\r");
    expect_line(&mut p, "true");
    enter(
        &mut p,
        "let pool = get_pool(\"red-cs-003.litwareinc.com\");",
    );
    type_keys(&mut p, "pool.is_cms");
    type_keys(&mut p, "\t");
    type_keys(&mut p, "\r");
    expect_line(&mut p, "false");
}

#[test]
fn ctrl_c_stops_a_loop_and_keeps_the_session() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    enter(&mut p, "let keep = 4242;");
    p.send_line("let n = 0; loop { n += 1; }").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    p.send_control('c').unwrap();
    p.exp_string("interrupted").unwrap();
    p.exp_string("litwareinc> ").unwrap();
    p.send_line("keep + 1").unwrap();
    expect_line(&mut p, "4243");
}

#[test]
fn ctrl_c_at_the_prompt_clears_the_line() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    type_keys(&mut p, "this is not rhai");
    p.send_control('c').unwrap();
    p.exp_string("litwareinc> ").unwrap();
    p.send_line("40 + 2").unwrap();
    expect_line(&mut p, "42");
    // Ctrl-D only once the editor reads again: typed before that, the
    // terminal's own line discipline takes it, and it never reaches the shell.
    p.exp_string("litwareinc> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn history_survives_a_restart() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    enter(&mut p, "let marker = 31337;");
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
    let file = env.path().join("state/poolsync/history");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("let marker = 31337;")
    );

    let mut p = shell(&env);
    // Up twice: past ":quit" to the let.
    type_keys(&mut p, "\x1b[A\x1b[A");
    type_keys(&mut p, "\r");
    p.exp_string("\x1b[?2004h").unwrap();
    p.send_line("marker * 2").unwrap();
    expect_line(&mut p, "62674");
    p.send_line(":history").unwrap();
    p.exp_string("let marker = 31337;").unwrap();
}

#[test]
fn functions_persist_and_redefinition_replaces() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    enter(&mut p, "fn f() { 1 }");
    enter(&mut p, "fn f() { 2 }");
    p.send_line("f() * 100").unwrap();
    expect_line(&mut p, "200");
    // :functions lists f once, and not the closures defined on the way.
    enter(&mut p, "let g = [1, 2].map(|x| x * f());");
    p.send_line(":functions").unwrap();
    p.exp_string("\x1b[?2004l").unwrap();
    let listed = p.exp_string("\x1b[?2004h").unwrap();
    assert_eq!(listed.matches("f()  (yours)").count(), 1, "{listed}");
    assert!(!listed.contains("anon$"), "{listed}");
}

#[test]
fn errors_show_in_place_and_the_session_goes_on() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    p.send_line("get_pool(\"nope.litwareinc.com\")").unwrap();
    p.exp_string("<input>:1:1: no pool 'nope.litwareinc.com' in deployment 'litwareinc'")
        .unwrap();
    p.exp_string("^").unwrap();
    p.send_line("1 + 1").unwrap();
    expect_line(&mut p, "2");
}

#[test]
fn help_commands_and_typed_results() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    p.send_line(":help invoke_backup_service_sync").unwrap();
    p.exp_string("mirrors Invoke-CsBackupServiceSync").unwrap();
    p.send_line(":functions").unwrap();
    p.exp_string("get_pool_backup_relationship(pool: string | Pool) -> string")
        .unwrap();
    enter(&mut p, "let sites = get_site();");
    p.send_line(":vars").unwrap();
    p.exp_regex(r"sites\s+array\s+\[3 items\]").unwrap();
    p.send_line("get_pool(#{site: \"Atlanta\"})").unwrap();
    p.exp_regex(r"Identity\s+Site\s+BackupPool").unwrap();
    p.exp_string("atl-cs-002.litwareinc.com").unwrap();
}

#[test]
fn the_startup_script_is_loaded() {
    let env = Env::with_demo();
    env.write(
        "config/poolsync/init.rhai",
        "fn paired() { get_pool().filter(|p| p.backup_pool != ()).len() }\n",
    );
    let mut p = shell(&env);
    p.send_line("paired()").unwrap();
    expect_line(&mut p, "6");
}

#[test]
fn load_runs_a_script_into_the_session() {
    let env = Env::with_demo();
    let file = env.write(
        "helpers.rhai",
        "let loaded = \"yes\";\nfn twice(x) { x * 2 }\n",
    );
    let mut p = shell(&env);
    enter(&mut p, &format!(":load {}", file.display()));
    p.send_line("`${loaded} ${twice(21)}`").unwrap();
    expect_line(&mut p, "yes 42");
}

#[test]
fn exit_leaves_the_shell_with_its_status() {
    let env = Env::with_demo();
    let mut p = shell(&env);
    p.send_line("let x = 1;").unwrap();
    p.exp_string("litwareinc> ").unwrap();
    p.send_line("exit(3)").unwrap();
    p.exp_eof().unwrap();
    match p.process_mut().wait().unwrap() {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 3),
        other => panic!("the shell did not exit: {other:?}"),
    }
}
