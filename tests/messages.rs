//! What messages echo of hostile input: control characters shown escaped,
//! never raw.

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
        .output();
    assert_ne!(out.0.status.code(), Some(0));
    assert_eq!(raw_controls(&out.0.stderr), b"");
    assert!(
        out.stderr().contains(r"'ab\u{1b}[31mc'"),
        "{}",
        out.stderr()
    );
}
