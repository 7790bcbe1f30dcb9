//! The command line: -c, --json, standard input, --check, exit statuses, Ctrl-C,
//! and the help table.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use crate::common::{Env, RED3};

#[test]
fn unpaired_pool_one_liner() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args([
            "--demo",
            "-c",
            "get_pool().filter(|p| p.backup_pool == ()).map(|p| p.fqdn)",
        ])
        .ok();
    assert_eq!(out.stdout().trim(), RED3);
}

#[test]
fn json_output_of_typed_objects() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args(["--demo", "--json", "-c", "get_pool(#{site: \"Dallas\"})"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let pools = v.as_array().unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0]["fqdn"], "dal-cs-001.litwareinc.com");
    assert_eq!(pools[0]["backup_pool"], "atl-cs-001.litwareinc.com");
    assert_eq!(pools[0]["site_id"], 2);
    let out = env
        .cmd()
        .args(["--demo", "-c", "to_json(get_site(\"Redmond\"))"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["pools"].as_array().unwrap().len(), 3);
    // Typed objects inside a map (Rhai's own to_json of a map wrote their
    // Rust type names), in both call styles.
    for code in [
        "to_json(#{p: get_pool(\"red-cs-003.litwareinc.com\"), n: 1})",
        "#{p: get_pool(\"red-cs-003.litwareinc.com\"), n: 1}.to_json()",
    ] {
        let out = env.cmd().args(["--demo", "-c", code]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        assert_eq!(v["p"]["fqdn"], "red-cs-003.litwareinc.com", "{code}");
        assert_eq!(v["n"], 1);
    }
}

#[test]
fn typed_objects_inside_containers_print_as_print_shows_them() {
    let env = Env::with_demo();
    let code = "#{p: get_pool(\"red-cs-003.litwareinc.com\"), n: [1, \"a\"]}";
    let shown = env.cmd().args(["--demo", "-c", code]).ok().stdout();
    let printed = env
        .cmd()
        .args(["--demo", "-c", &format!("print({code})")])
        .ok()
        .stdout();
    assert_eq!(shown, printed);
    assert!(
        shown.starts_with("#{\"n\": [1, \"a\"], \"p\": Pool(red-cs-003.litwareinc.com, Redmond"),
        "{shown}"
    );
}

#[test]
fn piped_standard_input_runs_as_a_script() {
    let env = Env::with_demo();
    let out = env.cmd().arg("--demo").stdin("let x = 1;\nx + 1\n").ok();
    assert_eq!(out.stdout().trim(), "2");
    let out = env
        .cmd()
        .args(["--demo", "-"])
        .stdin("get_site().len()")
        .ok();
    assert_eq!(out.stdout().trim(), "3");
}

#[test]
fn incomplete_piped_input_is_an_error() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .arg("--demo")
        .stdin("let x = 1;\nfor p in get_pool() {\n")
        .status(1);
    assert!(out.stderr().starts_with("<stdin>:"), "{}", out.stderr());
    assert!(out.stdout().is_empty());
}

#[test]
fn an_error_inside_a_function_points_there_and_lists_the_calls() {
    let env = Env::with_demo();
    let script = env.write(
        "fn.rhai",
        "fn check(p) {\n    get_pool(p)\n}\nlet f = |x| check(x);\nf.call(\"nope\");\n",
    );
    let out = env.cmd().arg("--demo").arg(&script).status(1);
    let name = script.display().to_string();
    let err = out.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{name}:2:5: no pool 'nope' in deployment 'litwareinc'").as_str(),
            "2 |     get_pool(p)",
            "  |     ^",
            &format!("  in 'check', called at {name}:4:13"),
            &format!("  in a closure, called at {name}:5:3"),
        ],
        "{err}"
    );
}

#[test]
fn script_errors_show_file_line_column_and_caret() {
    let env = Env::with_demo();
    let script = env.write(
        "bad.rhai",
        "let a = 1;\nlet b = get_pool(\"nope.litwareinc.com\");\n",
    );
    let out = env.cmd().arg("--demo").arg(&script).status(1);
    let err = out.stderr();
    let first = err.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{}:2:9: ", script.display())),
        "{err}"
    );
    assert!(
        first.contains("no pool 'nope.litwareinc.com' in deployment 'litwareinc'"),
        "{err}"
    );
    assert!(
        err.contains("2 | let b = get_pool(\"nope.litwareinc.com\");"),
        "{err}"
    );
    assert!(err.lines().nth(2).unwrap().ends_with("        ^"), "{err}");

    let syntax = env.write("syntax.rhai", "let x = ;\n");
    let out = env.cmd().arg("--demo").arg(&syntax).status(1);
    assert!(
        out.stderr().contains("syntax.rhai:1:9: "),
        "{}",
        out.stderr()
    );
}

#[test]
fn errors_are_catchable() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args(["--demo", "-c", "let r = \"\"; try { get_pool_backup_relationship(\"red-cs-003.litwareinc.com\") } catch (e) { r = `caught: ${e}`; } r"])
        .ok();
    assert_eq!(
        out.stdout().trim(),
        "caught: pool 'red-cs-003.litwareinc.com' has no backup pool"
    );
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::with_demo();
    env.cmd().args(["--demo", "--no-such-flag"]).status(2);
    let out = env.cmd().args(["--demo", "--check"]).status(2);
    assert!(
        out.stderr().contains("--check needs a SCRIPT"),
        "{}",
        out.stderr()
    );
    env.cmd().args(["--demo", "missing.rhai"]).status(2);
    // A deployment file that is not there: named, with where its path came from.
    let out = env
        .cmd()
        .env("POOLSYNC_DEPLOYMENT", "/nonexistent/d.toml")
        .args(["-c", "1"])
        .status(2);
    assert_eq!(
        out.stderr().trim(),
        "poolsync: /nonexistent/d.toml: no deployment file there (named by POOLSYNC_DEPLOYMENT): fix the path, or run `poolsync init DIR` to write a starter DIR/deployment.toml"
    );
    let out = env
        .cmd()
        .args(["--deployment", "gone.toml", "-c", "1"])
        .status(2);
    assert!(
        out.stderr().contains("(named by --deployment)"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_subcommand_name_after_the_script_is_refused_not_run() {
    let env = Env::with_demo();
    let job = env.write("job.rhai", "print(`args=${ARGS}`);");
    let target = env.path().join("x");
    let out = env
        .cmd()
        .args(["--demo"])
        .arg(&job)
        .arg("init")
        .arg(&target)
        .status(2);
    assert!(
        out.stderr().contains("put `--` first") && out.stdout().is_empty(),
        "{}",
        out.stderr()
    );
    assert!(!target.exists(), "init ran");
    env.cmd()
        .args(["--demo", "-c", "ARGS", "demo", "path"])
        .status(2);
    // `help` printed poolsync's help and exited 0; `demo` alone failed with
    // the demo's usage. Neither ran the script, and neither said why.
    for words in [vec!["help"], vec!["demo"], vec!["service", "--pool", "x"]] {
        let out = env.cmd().args(["--demo"]).arg(&job).args(&words).status(2);
        assert!(
            out.stderr().contains(&format!(
                "'{}' after {} is read as the subcommand",
                words[0],
                job.display()
            )) && out.stdout().is_empty(),
            "{words:?}: {}",
            out.stderr()
        );
    }
    let out = env
        .cmd()
        .args(["--demo", "-c", "ARGS", "x", "help"])
        .status(2);
    assert!(
        out.stderr().contains("'help' after -c CODE x"),
        "{}",
        out.stderr()
    );
    // Further along, the words are the script's; a subcommand first is one.
    let out = env
        .cmd()
        .args(["--demo"])
        .arg(&job)
        .args(["x", "help"])
        .ok();
    assert_eq!(out.stdout().trim(), "args=[\"x\", \"help\"]");
    env.cmd().args(["help"]).ok();
    // With `--`, the words reach the script.
    let out = env
        .cmd()
        .args(["--demo"])
        .arg(&job)
        .args(["--", "init", "x"])
        .ok();
    assert_eq!(out.stdout().trim(), "args=[\"init\", \"x\"]");
    // Options a subcommand would ignore are refused too.
    let out = env
        .cmd()
        .args(["--deployment", "elsewhere.toml", "demo", "path"])
        .status(2);
    assert!(
        out.stderr().contains("--deployment has no effect"),
        "{}",
        out.stderr()
    );
}

#[test]
fn check_only_compiles() {
    let env = Env::with_demo();
    let good = env.write(
        "good.rhai",
        "invoke_backup_service_sync(\"atl-cs-001.litwareinc.com\")",
    );
    let out = env.cmd().args(["--demo", "--check"]).arg(&good).ok();
    assert!(out.stdout().contains("ok"));
    // Nothing ran: no replica was written.
    assert!(
        !env.store("dal-cs-001.litwareinc.com")
            .join("backup/atl-cs-001.litwareinc.com")
            .exists()
    );
    let bad = env.write("bad.rhai", "fn (");
    env.cmd().args(["--demo", "--check"]).arg(&bad).status(1);
    // `-` is standard input here too.
    let out = env.cmd().args(["--check", "-"]).stdin("let x = 1;").ok();
    assert_eq!(out.stdout().trim(), "<stdin>: ok");
    let out = env
        .cmd()
        .args(["--check", "-"])
        .stdin("let x = ;")
        .status(1);
    assert!(
        out.stderr().starts_with("<stdin>:1:9: "),
        "{}",
        out.stderr()
    );
    // What a script imports is compiled too, without running its top level
    // (which here would fail: no engine functions under --check).
    env.write("lib/good.rhai", "let p = get_pool(); fn ok() { 1 }");
    env.write("lib/broken.rhai", "fn x( {");
    env.write("lib/chain.rhai", "import \"lib/broken\" as b;");
    let uses = |name: &str, module: &str| {
        env.write(name, &format!("import \"{module}\" as m;\nprint(1);"))
    };
    let out = env
        .cmd()
        .args(["--check"])
        .arg(uses("a.rhai", "lib/good"))
        .ok();
    assert!(out.stdout().ends_with("a.rhai: ok\n"), "{}", out.stdout());
    for module in ["lib/broken", "lib/chain", "lib/missing", "../outside"] {
        let out = env
            .cmd()
            .args(["--check"])
            .arg(uses("b.rhai", module))
            .status(1);
        assert!(
            out.stderr().contains(&format!("in module '{module}'")) && out.stdout().is_empty(),
            "{module}: {}",
            out.stderr()
        );
    }
}

#[test]
fn ctrl_c_while_the_script_is_read_from_a_pipe_stops_it() {
    let env = Env::with_demo();
    let mut child = env.cmd().args(["--demo", "-"]).start();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(200));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"print(\"ran anyway\");").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn shebang_and_args() {
    let env = Env::with_demo();
    let script = env.write(
        "args.rhai",
        "#!/usr/bin/env poolsync\nprint(ARGS.len());\nprint(ARGS[1]);\n",
    );
    let out = env
        .cmd()
        .arg("--demo")
        .arg(&script)
        .args(["one", "--two"])
        .ok();
    assert_eq!(out.stdout(), "2\n--two\n");
}

#[test]
fn ctrl_c_stops_a_runaway_loop_with_130() {
    let env = Env::with_demo();
    let (out, took) = env
        .cmd()
        .args(["--demo", "-c", "let i = 0; loop { i += 1; }"])
        .interrupt_after(Duration::from_millis(700));
    assert_eq!(out.0.status.code(), Some(130));
    assert!(took < Duration::from_secs(5));
    assert!(out.stderr().contains("interrupted"));
}

#[test]
fn a_host_that_will_not_reserve_a_big_stack_still_runs_scripts() {
    use std::os::unix::process::CommandExt;
    // The interpreter asks for a 1 GiB stack; with address space capped below
    // that (as strict overcommit would refuse it), it falls back to 64 MiB.
    let env = Env::with_demo();
    let mut run = env.cmd().args(["--demo", "-c", "1 + 1"]);
    // SAFETY: setrlimit is async-signal-safe, and only the child calls it.
    unsafe {
        run.cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 900 << 20,
                rlim_max: 900 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &raw const limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run.ok();
    assert_eq!(out.stdout().trim(), "2");
}

#[test]
fn every_help_example_runs() {
    let env = Env::with_demo();
    for doc in poolsync::script::help::FUNCTIONS {
        assert!(
            !doc.summary.is_empty() && !doc.details.is_empty(),
            "{}",
            doc.name
        );
        assert!(
            doc.example.contains(doc.name),
            "the example of {} uses it",
            doc.name
        );
        // The example runs (status 0).
        env.cmd().args(["--demo", "-c", doc.example]).run();
        let help = env
            .cmd()
            .args(["--demo", "-c", &format!("help(\"{}\")", doc.name)])
            .ok();
        assert!(help.stdout().contains(doc.example), "{}", doc.name);
        if let Some(cmdlet) = doc.cmdlet() {
            assert!(help.stdout().contains(cmdlet));
        }
    }
}

#[test]
fn functions_reference_is_generated_from_the_table() {
    let env = Env::new();
    let out = env.cmd().arg("reference").ok();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/functions.md")).unwrap();
    assert_eq!(
        committed,
        out.stdout(),
        "docs/functions.md is stale: run `poolsync reference > docs/functions.md`"
    );
}

#[test]
fn the_role_tables_in_the_docs_are_generated_from_the_catalog() {
    let env = Env::new();
    let out = env.cmd().args(["reference", "--rbac"]).ok();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rbac.md")).unwrap();
    assert!(
        committed.contains(&out.stdout()),
        "docs/rbac.md is stale: paste `poolsync reference --rbac` into it"
    );
}

/// The functions poolsync registers in a real engine: the engine's own (not
/// Rhai's packages), less property getters and indexers, and less poolsync's
/// overloads of Rhai's standard functions for its own types (`to_string`,
/// `==` on a Pool), which make those types print and compare. An overload for
/// standard types (`sleep`, `exit`, `to_json`) replaces Rhai's and counts.
fn registered_functions() -> BTreeSet<String> {
    use poolsync::script::{Limits, ScriptContext, build_engine};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployment.toml");
    let deployment =
        poolsync::topology::parse(poolsync::demo::DEPLOYMENT_TOML, &file, dir.path()).unwrap();
    let deployment = std::sync::Arc::new(deployment);
    let access = poolsync::rbac::Access::for_user(&deployment, "tester");
    let cancel = poolsync::sync::CancelFlag::new();
    let ctx = ScriptContext::new(deployment, access, cancel, false).unwrap();
    let engine = build_engine(&std::rc::Rc::new(ctx), &Limits::default(), None);
    let metadata = |engine: &rhai::Engine, standard: bool| -> serde_json::Value {
        serde_json::from_str(&engine.gen_fn_metadata_to_json(standard).unwrap()).unwrap()
    };
    let names = |meta: &serde_json::Value, key: &str, field: &str| -> BTreeSet<String> {
        let list = meta[key].as_array().unwrap();
        list.iter()
            .map(|f| f[field].as_str().unwrap().to_string())
            .collect()
    };
    let standard = names(&metadata(&rhai::Engine::new(), true), "functions", "name");
    let ours = metadata(&engine, false);
    let our_types = names(&ours, "customTypes", "displayName");
    let registered = ours["functions"].as_array().unwrap().iter();
    registered
        .filter(|f| {
            let name = f["name"].as_str().unwrap();
            let first = f["params"][0]["type"].as_str().unwrap_or_default();
            let accessor = ["get$", "set$", "index$"]
                .iter()
                .any(|p| name.starts_with(p));
            let on_our_type = our_types.contains(first.trim_start_matches("&mut "));
            let rhais_own = poolsync::script::bounded::SAME_AS_RHAI.contains(&name);
            let rhais_standard = standard.contains(name) && on_our_type;
            !(accessor || rhais_own || rhais_standard)
        })
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_registered_function_is_documented() {
    use poolsync::rbac::catalog;
    use poolsync::script::help;
    let registered = registered_functions();
    let documented: BTreeSet<String> = help::FUNCTIONS.iter().map(|f| f.name.into()).collect();
    assert!(registered.contains("get_pool") && registered.contains("sleep"));
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    assert!(undocumented.is_empty(), "no help entry: {undocumented:?}");
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(
        unregistered.is_empty(),
        "help for no function: {unregistered:?}"
    );
    // The cmdlets: each has the help entry of its function, which names it.
    for c in catalog::CMDLETS {
        let doc = help::find(c.function);
        assert!(doc.is_some(), "{} runs {}: no help", c.name, c.function);
        let named = doc.and_then(poolsync::script::help::FnDoc::cmdlet);
        assert_eq!(named, c.lync.then_some(c.name), "{}", c.function);
    }
    for doc in help::FUNCTIONS {
        if let Some(name) = doc.cmdlet() {
            let function = catalog::cmdlet(name).map(|c| c.function);
            assert_eq!(
                function,
                Some(doc.name),
                "help says {} mirrors {name}",
                doc.name
            );
        }
    }
}

#[test]
fn first_uses_of_the_demo_at_once_make_it_once_and_whole() {
    let (fresh, alone) = (Env::new(), Env::new());
    alone.cmd().args(["demo", "reset"]).ok();
    let children: Vec<_> = (0..4)
        .map(|_| {
            fresh
                .cmd()
                .args(["--demo", "-c", "get_pool().len()"])
                .start()
        })
        .collect();
    for child in children {
        let out = crate::common::finished_ok(child);
        assert_eq!(out.stdout().trim(), "7");
    }
    let tree = |e: &Env| crate::common::tree(&e.demo_dir().join("stores"));
    assert!(tree(&fresh) == tree(&alone), "the demo is whole");
}

#[test]
fn the_demo_and_its_churn_are_deterministic() {
    let (a, b) = (Env::new(), Env::new());
    for env in [&a, &b] {
        env.cmd().args(["demo", "reset"]).ok();
        let out = env
            .cmd()
            .args(["demo", "churn", "--pool", RED3, "--percent", "5"])
            .ok();
        assert!(out.stdout().contains("round 1:"), "{}", out.stdout());
    }
    let tree = |e: &Env| crate::common::tree(&e.store(RED3).join("data"));
    assert!(tree(&a) == tree(&b), "same seed, same data");
    let before = tree(&a);
    a.cmd().args(["demo", "churn", "--pool", RED3]).ok();
    assert!(tree(&a) != before, "each round changes something");
    let out = a
        .cmd()
        .args(["demo", "churn", "--percent", "150"])
        .status(2);
    assert!(
        out.stderr().contains("--percent 150 is out of range"),
        "{}",
        out.stderr()
    );
    let users = crate::common::tree(&a.store(RED3).join("data/UserServices.PresenceFocus"));
    assert!(users.len() > 500, "a few hundred user documents per pool");
    let doc: serde_json::Value = serde_json::from_slice(users.values().next().unwrap()).unwrap();
    assert!(doc["sip_uri"].as_str().unwrap().starts_with("sip:"));
    assert!(doc["contacts"].is_array() && doc["presence"]["state"].is_string());
}

#[test]
fn output_that_cannot_be_written_is_an_error_not_a_panic() {
    let env = Env::with_demo();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    // Standard output on a full disk: the script still runs to its end, then
    // the run fails with one line saying why.
    let mut run = env.cmd().args([
        "--demo",
        "-c",
        "print(\"x\"); debug(1); get_pool(); \"the end\"",
    ]);
    run.cmd
        .stdin(std::process::Stdio::null())
        .stdout(full())
        .stderr(std::process::Stdio::piped());
    let out = run.cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "poolsync: cannot write to standard output: No space left on device (os error 28)"
    );
    // Standard error gone (a closed terminal): a failing script still exits 1,
    // where it used to panic with 101.
    let mut run = env.cmd().args(["--demo", "-c", "get_pool(\"nope\")"]);
    run.cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(full());
    assert_eq!(run.cmd.output().unwrap().status.code(), Some(1));
}

#[test]
fn exit_sets_the_exit_status_and_try_cannot_catch_it() {
    let env = Env::with_demo();
    let job = env.write(
        "job.rhai",
        "print(\"before\");\nfn give_up(n) { exit(n) }\ntry { give_up(3); } catch (e) { print(\"caught\"); }\nprint(\"after\");\n",
    );
    let out = env.cmd().args(["--demo"]).arg(&job).status(3);
    assert_eq!(out.stdout(), "before\n");
    assert_eq!(out.stderr(), "");
    // exit() and exit(0) end the script successfully, printing nothing more.
    let out = env.cmd().args(["--demo", "-c", "exit(); 1"]).ok();
    assert_eq!(out.stdout(), "");
    env.cmd().args(["--demo", "-c", "exit(0)"]).ok();
    let out = env.cmd().args(["--demo", "-c", "exit(256)"]).status(1);
    assert!(
        out.stderr()
            .contains("exit: 256 is not an exit status: use 0 to 255"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_wrong_function_or_argument_says_what_to_call() {
    let env = Env::with_demo();
    for (code, expected) in [
        (
            "get_pol()",
            "no function get_pol(): did you mean get_pool? help() lists the functions",
        ),
        (
            "sleep(\"1\")",
            "sleep does not take (string): it takes sleep(seconds: int or float)",
        ),
        (
            "frobnicate(1, 2.5)",
            "no function frobnicate that takes (int, float): help() lists the functions",
        ),
        (
            "invoke_backup_service_sync(1)",
            "invoke_backup_service_sync does not take (int): see help(\"invoke_backup_service_sync\") for its forms",
        ),
        (
            "get_pool(#{site: 1})",
            "get_pool: 'site' must be a string, not int",
        ),
    ] {
        let err = env.demo_error(code);
        assert_eq!(
            err.lines().next().unwrap(),
            format!("<code>:1:1: {expected}"),
            "{code}"
        );
    }
}

#[test]
fn definitions_are_written_where_asked_and_say_so() {
    let env = Env::new();
    let out = env.cmd().arg("definitions").ok();
    let dir = env.path().join(".rhai/definitions");
    assert!(
        out.stdout().contains("to .rhai/definitions: "),
        "{}",
        out.stdout()
    );
    let ours = std::fs::read_to_string(dir.join("__static__.d.rhai")).unwrap();
    assert!(ours.contains("fn invoke_pool_failover(pool: string, opts: map) -> FailoverReport;"));
    assert!(ours.contains("/// Mirrors `Invoke-CsBackupServiceSync`."));
    let out = env.cmd().args(["definitions", "elsewhere"]).ok();
    assert!(
        out.stdout()
            .starts_with("wrote 4 definition files to elsewhere: "),
        "{}",
        out.stdout()
    );
    assert!(env.path().join("elsewhere/__scope__.d.rhai").exists());
}

#[test]
fn help_columns_stay_aligned_and_wrap_at_the_terminal_width() {
    let env = Env::with_demo();
    let longest = poolsync::script::help::FUNCTIONS
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap();
    for width in [80usize, 200] {
        let out = env
            .cmd()
            .env("COLUMNS", width.to_string())
            .args(["--demo", "-c", "help()"])
            .ok()
            .stdout();
        let column = longest + 4; // two spaces before the longest name, two after
        let rows: Vec<&str> = out.lines().skip(2).filter(|l| !l.is_empty()).collect();
        assert!(
            rows.len() >= poolsync::script::help::FUNCTIONS.len(),
            "{out}"
        );
        for line in &rows {
            assert!(
                line.chars().count() <= width,
                "{width}: over the width: {line:?}"
            );
            let text_at = line
                .char_indices()
                .skip(2)
                .find(|(_, c)| *c != ' ')
                .map(|(i, _)| i);
            if line.starts_with("  ") && !line.starts_with("   ") {
                let after_name = line[2..].find(' ').map(|i| i + 2).unwrap();
                let text = line[after_name..]
                    .find(|c| c != ' ')
                    .map(|i| i + after_name);
                assert_eq!(text, Some(column), "{width}: {line:?}");
            } else {
                assert_eq!(
                    text_at,
                    Some(column),
                    "{width}: a continuation under its column: {line:?}"
                );
            }
        }
    }
}
