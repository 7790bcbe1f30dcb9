//! What messages echo of hostile input, and how the limits of a script are
//! worded: control characters shown escaped, never raw; each limit named
//! with its value and the flag that raises it.

use crate::common::{ATL1, Env};

/// Bytes a terminal would act on: control characters other than the
/// newline that ends a line.
fn raw_controls(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .map(|c| c as u8)
        .collect()
}

#[test]
fn names_with_control_characters_are_shown_escaped_in_every_message() {
    let env = Env::with_demo();
    // (code, what its one error line must say)
    let cases = [
        (
            r#"get_pool("atl\x00-cs\x1b[31mX")"#.to_string(),
            r"no pool 'atl\0-cs\u{1b}[31mX' in deployment 'litwareinc'".to_string(),
        ),
        (
            r#"get_site("s\x01")"#.into(),
            r"no site 's\u{1}' in deployment 'litwareinc'".into(),
        ),
        (
            r#"get_pool(#{site: "s\nforged line"})"#.into(),
            r"no site 's\nforged line'".into(),
        ),
        (
            format!(r#"invoke_backup_service_sync("{ATL1}", #{{module: "x\x1b]0;t\x07"}})"#),
            r"unknown module 'x\u{1b}]0;t\u{7}'".into(),
        ),
        (
            format!(r#"invoke_backup_service_sync("{ATL1}", #{{"o\x1b": true}})"#),
            r"unknown option 'o\u{1b}'".into(),
        ),
        (
            r#"set_backup_service_configuration(#{"s\x1b": 1})"#.into(),
            r"unknown setting 's\u{1b}'".into(),
        ),
        (
            r#"get_admin_role("r\x1b")"#.into(),
            r"no role 'r\u{1b}'".into(),
        ),
        (
            format!(r#"test_admin_access("C\x1b", "{ATL1}")"#),
            r"unknown cmdlet 'C\u{1b}'".into(),
        ),
        (r#"help("h\x1b")"#.into(), r"no help for 'h\u{1b}'".into()),
        (
            r#"get_backup_service_configuration()["p\x1b"]"#.into(),
            r"has no property 'p\u{1b}'".into(),
        ),
        (
            r#"throw "thrown \x1b[2J""#.into(),
            r"thrown \u{1b}[2J".into(),
        ),
    ];
    for (code, expected) in &cases {
        let out = env.cmd().args(["--demo", "-c", code]).status(1);
        let err = &out.0.stderr;
        assert_eq!(raw_controls(err), b"", "{code}: raw control characters");
        let first = out.stderr().lines().next().unwrap_or_default().to_string();
        assert!(first.contains(expected.as_str()), "{code}: {first}");
    }
    // The command line's own echo of --as.
    let out = env
        .cmd()
        .args(["--demo", "--as", "ab\x1b[31mc", "-c", "1"])
        .exit(2)
        .stderr_has(r"ab\u{1b}[31mc")
        .run();
    assert_eq!(raw_controls(&out.0.stderr), b"");
}

#[test]
fn an_endless_loop_names_the_operations_limit_and_its_flag() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args(["--demo", "--max-operations", "100000", "-c", "loop {}"])
        .status(1);
    let expected = "the script ran 100,000 operations, the limit (an endless loop?); raise it with --max-operations N (0: no limit)";
    assert!(out.stderr().contains(expected), "{}", out.stderr());
}

#[test]
fn a_deep_recursion_names_the_call_depth_and_its_flag() {
    let env = Env::with_demo();
    let endless = "fn f(n) { f(n + 1) } f(0)";
    let out = env.cmd().args(["--demo", "-c", endless]).status(1);
    let expected = "functions called each other more than 64 levels deep, the limit (an endless recursion?); raise it with --max-call-depth N (at most 2000)";
    assert!(out.stderr().contains(expected), "{}", out.stderr());
    // A recursion 500 deep runs once the limit is raised, and the message
    // of a deeper one shows the new limit.
    let deep = "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } } f(500)";
    let out = env
        .cmd()
        .args(["--demo", "--max-call-depth", "600", "-c", deep])
        .ok();
    assert_eq!(out.stdout().trim(), "500");
    let out = env
        .cmd()
        .args(["--demo", "--max-call-depth", "100", "-c", deep])
        .status(1);
    assert!(
        out.stderr().contains("more than 100 levels deep"),
        "{}",
        out.stderr()
    );
    // Past what the stack holds, the flag is refused before anything runs.
    let out = env
        .cmd()
        .args(["--demo", "--max-call-depth", "1000000", "-c", "1"])
        .status(2);
    assert!(
        out.stderr()
            .contains("--max-call-depth 1000000: give a depth from 1 to 2000"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_deep_recursion_lists_a_few_calls_not_every_level() {
    let env = Env::with_demo();
    // Each level goes through a closure, so that every level is a call in
    // the error's trace.
    let code = "fn f(n) { if n == 0 { throw \"bottom\" } let g = |x| f(x - 1); g.call(n) } f(25)";
    let out = env.cmd().args(["--demo", "-c", code]).status(1);
    let err = out.stderr();
    assert!(err.contains("bottom"), "{err}");
    assert!(err.contains(" more calls ..."), "{err}");
    assert!(err.lines().count() < 30, "{err}");
}

#[test]
fn an_expression_nested_too_deep_names_the_fixed_limit() {
    let env = Env::with_demo();
    let code = format!("{}1{}", "(".repeat(70), ")".repeat(70));
    let out = env.cmd().args(["--demo", "-c", &code]).status(1);
    assert!(
        out.stderr().contains(
            "an expression is nested more than 64 levels deep (32 inside a function), a fixed limit"
        ),
        "{}",
        out.stderr()
    );
}

#[test]
fn the_documented_script_limits_are_the_code_s() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scripting.md")).unwrap();
    let limits = poolsync::script::Limits::default();
    for (what, value) in [
        (
            "operations",
            poolsync::script::group_digits(limits.max_operations),
        ),
        (
            "memory",
            poolsync::script::group_digits((limits.max_memory >> 20) as u64) + " MiB",
        ),
        ("call depth", format!("{} levels", limits.max_call_levels)),
        (
            "expression depth",
            format!(
                "{} ({} inside functions)",
                limits.max_expr_depth, limits.max_function_expr_depth
            ),
        ),
    ] {
        let row = format!("| {what} | {value}");
        assert!(docs.contains(&row), "docs/scripting.md lacks `{row}`");
    }
    let ceiling = poolsync::script::group_digits(poolsync::script::MAX_CALL_DEPTH as u64);
    assert!(docs.contains(&format!("`--max-call-depth N` (1 to {ceiling})")));
}

#[test]
fn exit_with_a_value_that_is_not_a_status_prints_the_value() {
    let env = Env::with_demo();
    for (code, expected) in [
        (
            "exit(\"x\")",
            "exit(\"x\"): not an exit status (0 to 255); exiting with status 1",
        ),
        (
            "exit(2.5)",
            "exit(2.5): not an exit status (0 to 255); exiting with status 1",
        ),
    ] {
        let out = env.cmd().args(["--demo", "-c", code]).status(1);
        assert_eq!(out.stderr().trim_end(), expected, "{code}");
    }
}
