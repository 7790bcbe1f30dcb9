//! Ctrl-C: the first press asks the running script or sync to stop at a clean
//! point; a second press while it is still stopping exits at once (status 130;
//! the journal makes even that safe for every replica).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The shared flag, set by Ctrl-C.
pub fn flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone()
}

/// Installs the SIGINT handler (once).
pub fn install() {
    let flag = flag();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            crate::errln!("\npoolsync: interrupted again; exiting now");
            std::process::exit(crate::error::EXIT_INTERRUPTED);
        }
    });
}

#[must_use]
pub fn is_set() -> bool {
    flag().load(Ordering::SeqCst)
}

pub fn reset() {
    flag().store(false, Ordering::SeqCst);
}
