//! Standard output and standard error that never panic.
//!
//! `println!` panics when the write fails: a closed terminal (SIGHUP after an
//! SSH session drops), a full disk behind `> file`, a closed pipe. A script
//! or sync must not die half-way for that. Here a failed write is remembered
//! instead; the run goes on, and [`stdout_failure`] lets the command line end
//! with a one-line error and status 1. Errors on standard error are dropped:
//! there is nowhere left to report them.

use std::io::{self, Write};
use std::sync::Mutex;

static STDOUT_FAILURE: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes `text` to standard output and flushes it.
pub fn out(text: &str) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        let mut failure = STDOUT_FAILURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert(e);
    }
}

/// Writes `text` to standard error, its control characters other than
/// newlines and tabs escaped (see [`crate::printable`]): what a message
/// echoes of a name, a path or a script's error cannot work the terminal. A
/// failure is ignored.
pub fn err(text: &str) {
    err_raw(&crate::printable::printable_lines(text));
}

/// Writes `text` to standard error as it is (the shell's colours); a failure
/// is ignored. Escape what it echoes first.
pub fn err_raw(text: &str) {
    let mut stderr = io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
}

/// The first write to standard output that failed, if any: its error kind
/// and text. A closed pipe (`poolsync ... | head`) is not a failure.
pub fn stdout_failure() -> Option<String> {
    let failure = STDOUT_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    failure
        .as_ref()
        .filter(|e| e.kind() != io::ErrorKind::BrokenPipe)
        .map(std::string::ToString::to_string)
}

/// `println!` to standard output, through [`out`].
#[macro_export]
macro_rules! outln {
    () => { $crate::output::out("\n") };
    ($($arg:tt)*) => { $crate::output::out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` to standard output, through [`out`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::out(&format!($($arg)*)) };
}

/// `eprintln!` to standard error, through [`err`].
#[macro_export]
macro_rules! errln {
    () => { $crate::output::err("\n") };
    ($($arg:tt)*) => { $crate::output::err(&format!("{}\n", format_args!($($arg)*))) };
}
