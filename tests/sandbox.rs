//! The script sandbox: imports, eval, size limits.

use crate::common::Env;

#[test]
fn import_from_the_scripts_own_folder_works() {
    let env = Env::with_demo();
    env.write("s/lib.rhai", "fn double(x) { x * 2 }\n");
    let main = env.write(
        "s/main.rhai",
        "import \"lib\" as lib;\nprint(lib::double(21));\n",
    );
    let out = env.cmd().arg("--demo").arg(&main).ok();
    assert_eq!(out.stdout().trim(), "42");
}

#[test]
fn import_outside_the_folder_is_refused() {
    let env = Env::with_demo();
    env.write("x.rhai", "fn secret() { 1 }\n");
    let main = env.write(
        "s/main.rhai",
        "import \"../x\" as x;\nprint(x::secret());\n",
    );
    let out = env.cmd().arg("--demo").arg(&main).status(1);
    assert!(
        out.stderr().contains("leaves the script's folder"),
        "{}",
        out.stderr()
    );
    let abs = env.write(
        "s/abs.rhai",
        &format!("import \"{}/x\" as x;\n", env.path().display()),
    );
    let out = env.cmd().arg("--demo").arg(&abs).status(1);
    assert!(
        out.stderr().contains("leaves the script's folder"),
        "{}",
        out.stderr()
    );
}

#[test]
fn import_through_a_link_is_refused() {
    let env = Env::with_demo();
    env.write("outside/evil.rhai", "fn f() { 1 }\n");
    std::fs::create_dir_all(env.path().join("s")).unwrap();
    std::os::unix::fs::symlink(env.path().join("outside"), env.path().join("s/inside")).unwrap();
    let main = env.write("s/main.rhai", "import \"inside/evil\" as e;\n");
    let out = env.cmd().arg("--demo").arg(&main).status(1);
    assert!(
        out.stderr().contains("outside the script's folder"),
        "{}",
        out.stderr()
    );
}

#[test]
fn snippets_cannot_import() {
    let env = Env::with_demo();
    env.write("lib.rhai", "fn f() { 1 }\n");
    let out = env
        .cmd()
        .args(["--demo", "-c", "import \"lib\" as l; l::f()"])
        .status(1);
    assert!(
        out.stderr().contains("only available to script files"),
        "{}",
        out.stderr()
    );
}

#[test]
fn eval_is_disabled() {
    let env = Env::with_demo();
    env.cmd()
        .args(["--demo", "-c", "eval(\"1 + 1\")"])
        .status(1);
}

#[test]
fn runaway_growth_stops_at_the_memory_limit_and_cannot_be_caught() {
    let env = Env::with_demo();
    let limit =
        "the script holds more than 256 MiB of memory, the limit; raise it with --max-memory";
    for code in [
        "let s = \"x\"; loop { s += s; }",
        "let a = []; loop { a.push([1, 2, 3, 4]); }",
        "try { let a = []; a.pad(10_000_000_000, 1); } catch (e) { print(\"caught\") }",
        "let b = blob(100_000_000_000);",
        "let s = \"\"; s.pad(1_000_000_000, \"ab\");",
    ] {
        let out = env
            .cmd()
            .args(["--demo", "--max-memory", "256", "-c", code])
            .status(1);
        assert!(out.stderr().contains(limit), "{code}: {}", out.stderr());
        assert!(
            !out.stdout().contains("caught"),
            "{code}: the limit was caught"
        );
    }
}

#[test]
fn plain_rhai_that_grows_large_values_runs_in_linear_time() {
    let env = Env::with_demo();
    let started = std::time::Instant::now();
    for (code, expected) in [
        (
            "let a = []; for i in 0..1_000_000 { a.push(i) } a.len()",
            "1000000",
        ),
        (
            "let m = []; m.pad(1_000_001, true); m[0] = false; m[1] = false; let n = 0; for p in 2..=1000 { if m[p] { let i = p * p; while i <= 1_000_000 { m[i] = false; i += p; } } } for x in m { if x { n += 1 } } n",
            "78498",
        ),
        (
            "let m = #{}; for i in 0..200_000 { m[`k${i}`] = `v${i}` } m.len()",
            "200000",
        ),
    ] {
        let out = env.cmd().args(["--demo", "-c", code]).ok();
        assert_eq!(out.stdout().trim(), expected, "{code}");
    }
    // Quadratic, the pushes alone took minutes in a debug build.
    assert!(
        started.elapsed() < std::time::Duration::from_mins(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sleep_is_bounded_and_ctrl_c_cuts_it_short() {
    let env = Env::with_demo();
    // Rhai's own sleep panicked on this, and no `try` could catch it.
    let out = env.demo("try { sleep(1e300) } catch (e) { print(e) }");
    assert!(
        out.stdout()
            .contains("sleep: 1e300 is not a number of seconds"),
        "{}",
        out.stdout()
    );
    assert!(!out.stderr().contains("internal error"), "{}", out.stderr());
    // A long sleep stops at the first Ctrl-C (Rhai's ignored it).
    let (out, took) = env
        .cmd()
        .args(["--demo", "-c", "sleep(60)"])
        .interrupt_after(std::time::Duration::from_millis(700));
    assert_eq!(out.0.status.code(), Some(130));
    assert!(took < std::time::Duration::from_secs(3));
}

#[test]
fn a_long_chain_of_closures_is_not_a_crash() {
    // Each closure captures the one before; dropping the chain recurses once
    // per closure. This aborted the process with a stack overflow.
    let env = Env::with_demo();
    let out =
        env.demo("let f = || 1; for i in 0..1000000 { let g = f; f = || g.call(); } \"done\"");
    assert_eq!(out.stdout().trim(), "done");
}

#[test]
fn curry_is_disabled() {
    // Function pointers curried into function pointers escape the size limits.
    let env = Env::with_demo();
    env.cmd()
        .args(["--demo", "-c", "let f = Fn(\"x\"); f = Fn(\"x\").curry(f);"])
        .status(1);
}

#[test]
fn an_import_cycle_is_an_error_naming_the_files_not_a_crash() {
    let env = Env::with_demo();
    let a = env.write("cyc/a.rhai", "import \"b\" as b;\nprint(\"a\");\n");
    env.write("cyc/b.rhai", "import \"a\" as a;\nprint(\"b\");\n");
    let me = env.write("cyc/self.rhai", "import \"self\" as s;\n");
    for (script, cycle) in [
        (&a, "a.rhai -> b.rhai -> a.rhai"),
        (&me, "self.rhai -> self.rhai"),
    ] {
        let expected = format!("import cycle: {cycle}");
        let out = env.cmd().arg("--demo").arg(script).status(1);
        assert!(out.stderr().contains(&expected), "{}", out.stderr());
        assert!(out.stdout().is_empty(), "nothing ran: {}", out.stdout());
        let out = env.cmd().arg("--check").arg(script).status(1);
        assert!(
            out.stderr().contains(&expected),
            "--check: {}",
            out.stderr()
        );
    }
}

#[test]
fn only_regular_files_are_read_as_scripts_and_modules() {
    let env = Env::with_demo();
    let fifo = env.path().join("fifo.rhai");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let uses = env.write("uses.rhai", "import \"fifo\" as f;\n");
    let refused = "is not a regular file (a FIFO, a socket or a device)";
    for (args, status) in [
        (vec!["--demo".into(), fifo.display().to_string()], 2),
        (vec!["--demo".into(), "/dev/zero".into()], 2),
        (vec!["--check".into(), fifo.display().to_string()], 2),
        (vec!["--demo".into(), uses.display().to_string()], 1),
    ] {
        // Read, a FIFO blocks for ever and /dev/zero never ends: give up
        // after ten seconds rather than hang the suite.
        let mut child = env.cmd().args(&args).start();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                panic!("{args:?} hung");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = crate::common::Out(child.wait_with_output().unwrap());
        assert_eq!(
            out.0.status.code(),
            Some(status),
            "{args:?}: {}",
            out.stderr()
        );
        assert!(out.stderr().contains(refused), "{args:?}: {}", out.stderr());
    }
    let big = env.write("big.rhai", &"x".repeat(17 << 20));
    env.cmd()
        .args(["--demo", "-"])
        .stdin_file(&big)
        .exit(2)
        .stderr_has("is larger than 16 MiB")
        .run();
    let out = env.cmd().arg("--demo").arg(&big).status(2);
    assert!(
        out.stderr().contains("is larger than 16 MiB"),
        "{}",
        out.stderr()
    );
}

#[test]
fn exit_with_a_value_that_is_not_a_status_fails() {
    let env = Env::with_demo();
    for (code, status) in [
        ("exit(\"x\")", 1),
        ("exit(2.5)", 1),
        ("exit(300)", 1),
        ("exit(4)", 4),
    ] {
        let out = env.cmd().args(["--demo", "-c", code]).status(status);
        assert!(out.stdout().is_empty(), "{code}: {}", out.stdout());
    }
}
