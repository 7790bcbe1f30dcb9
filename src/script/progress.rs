//! A progress bar on stderr for long syncs (only on a terminal, only after a second).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sync::Progress;

pub(super) struct SyncProgress {
    bar: ProgressBar,
    started: Instant,
    shown: Mutex<bool>,
    enabled: bool,
    bytes: AtomicU64,
}

impl SyncProgress {
    pub(super) fn new(enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} items ({per_sec}) {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("syncing");
        SyncProgress {
            bar,
            started: Instant::now(),
            shown: Mutex::new(false),
            enabled,
            bytes: AtomicU64::new(0),
        }
    }

    fn maybe_show(&self) {
        if !self.enabled || self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let mut shown = self
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*shown {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            *shown = true;
        }
    }

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for SyncProgress {
    fn add_work(&self, items: u64, _bytes: u64) {
        self.bar.inc_length(items);
        self.maybe_show();
    }

    fn advance(&self, items: u64, bytes: u64) {
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar
            .set_message(format!("syncing {}", crate::sync::human_bytes(total)));
        self.bar.inc(items);
        self.maybe_show();
    }

    fn note(&self, message: &str) {
        self.bar.suspend(|| crate::errln!("poolsync: {message}"));
    }
}
