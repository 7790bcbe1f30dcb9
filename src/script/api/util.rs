//! `to_json` and help.

use rhai::{Dynamic, Engine};

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use super::{FnResult, fail, func, pause};
use crate::printable::printable;
use crate::script::{help, render};

fn help_for(name: &str) -> FnResult<String> {
    match help::find(name) {
        Some(doc) => Ok(help::render(doc)),
        None => fail(format!(
            "no help for '{}': help() lists the functions",
            printable(name)
        )),
    }
}

/// Rhai's own `sleep` blocks the thread: it counts as one operation, ignores
/// Ctrl-C, and panics on a huge or non-finite number. This one is bounded, is
/// cut short by Ctrl-C, and says what is wrong with its argument.
fn sleep_seconds(seconds: f64) -> FnResult<()> {
    if !seconds.is_finite() || !(0.0..=MAX_SLEEP_SECONDS).contains(&seconds) {
        let shown = if seconds.abs() < 1e9 {
            format!("{seconds}")
        } else {
            format!("{seconds:e}")
        };
        return fail(format!(
            "sleep: {shown} is not a number of seconds from 0 to {MAX_SLEEP_SECONDS}"
        ));
    }
    let flag = crate::interrupt::flag();
    pause(Duration::from_secs_f64(seconds), || {
        flag.load(Ordering::Relaxed)
    })
}

/// A day.
const MAX_SLEEP_SECONDS: f64 = 86_400.0;

/// The status `exit` asked for (-1: none). Read once by whoever ran the code.
static EXIT_STATUS: AtomicI32 = AtomicI32::new(-1);

/// The exit status a script asked for with `exit`, if it did; clears it.
pub fn take_exit_status() -> Option<i32> {
    let status = EXIT_STATUS.swap(-1, Ordering::SeqCst);
    (status >= 0).then_some(status)
}

/// Rhai's own `exit(value)` ends the script with `value` as its result, so
/// `exit(3)` printed 3 and the process exited 0. This one ends the script
/// (still uncatchable by `try`) with a process exit status, as `exit 3` does
/// in PowerShell or a shell script.
fn exit_with(status: i64) -> FnResult<()> {
    let Some(status) = i32::try_from(status).ok().filter(|s| (0..=255).contains(s)) else {
        return fail(format!(
            "exit: {status} is not an exit status: use 0 to 255"
        ));
    };
    EXIT_STATUS.store(status, Ordering::SeqCst);
    Err(Box::new(rhai::EvalAltResult::Exit(
        Dynamic::UNIT,
        rhai::Position::NONE,
    )))
}

pub(super) fn register(engine: &mut Engine) {
    func("sleep", &["seconds: i64", "()"])
        .register_into_engine(engine, |seconds: i64| sleep_seconds(seconds as f64));
    func("sleep", &["seconds: f64", "()"]).register_into_engine(engine, sleep_seconds);
    func("to_json", &["value: Dynamic", "string"]).register_into_engine(engine, |v: Dynamic| {
        serde_json::to_string_pretty(&render::to_json(&v)).unwrap_or_default()
    });
    // Rhai's own `to_json` of a map is more specific than the one above, and
    // writes a typed object inside the map as its Rust type name.
    func("to_json", &["value: Map", "string"]).register_into_engine(engine, |m: rhai::Map| {
        serde_json::to_string_pretty(&render::to_json(&Dynamic::from_map(m))).unwrap_or_default()
    });
    func("exit", &["()"]).register_into_engine(engine, || exit_with(0));
    func("exit", &["status: i64", "()"]).register_into_engine(engine, exit_with);
    // Rhai's own exit(value) made any value the script's result, and the job
    // exited 0: a value that is not a status exits 1, and says so.
    func("exit", &["value: Dynamic", "()"]).register_into_engine(engine, |value: Dynamic| {
        crate::errln!("exit({value:?}): not an exit status (0 to 255); exiting with status 1");
        EXIT_STATUS.store(1, Ordering::SeqCst);
        Err::<(), _>(Box::new(rhai::EvalAltResult::Exit(
            Dynamic::UNIT,
            rhai::Position::NONE,
        )))
    });
    func("help", &["string"]).register_into_engine(engine, help::overview);
    func("help", &["name: &str", "string"]).register_into_engine(engine, help_for);
}
