//! The interactive shell.

use crate::error::Error;
use crate::script::Runner;

/// Runs the interactive shell until the user quits.
pub fn run(_runner: &Runner) -> Result<(), Error> {
    Err(Error::Usage(
        "the interactive shell is not available yet: pass a SCRIPT or -c CODE".into(),
    ))
}
