//! The error of a direction stopped by its storage: no space, no inodes, a
//! read-only file system, a failing device, a mount it cannot stage on, or an
//! object store that cannot be reached. It says what failed, with the
//! system's own words when there are some, what the sync kept (the batches
//! committed before, which are whole) and what it threw away (the batch it was
//! staging, or the one it did not begin), and what to do.

use super::direction::{Direction, DirectionFailure};
use super::report::DirectionReport;
use crate::store::{Fault, FreeSpace, StoreError};

/// What became of the batch that met the fault.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stopped {
    /// Not begun: the file system said beforehand that it would not fit.
    NotBegun { items: u64 },
    /// Staged in part, then discarded.
    Discarded { items: u64 },
}

/// The storage fault a batch met, as the engine reports it.
pub(super) struct StorageFault {
    /// `None`: found before writing, from the free space alone.
    pub(super) fault: Option<(Fault, StoreError)>,
    /// Bytes the batch needed.
    pub(super) need: u64,
    /// The room left where the batch was going, if the store can tell.
    pub(super) room: Option<FreeSpace>,
    pub(super) stopped: Stopped,
}

impl StorageFault {
    /// The direction's failure: on the sending side for a source that could
    /// not be read, on the receiving side otherwise.
    pub(super) fn failure(self, d: &Direction<'_>, report: &DirectionReport) -> DirectionFailure {
        let at_source = matches!(&self.fault, Some((_, e)) if e.store() == d.src.describe());
        let message = self.message(d, report);
        if at_source {
            DirectionFailure::Export(message)
        } else {
            DirectionFailure::Import(message)
        }
    }

    fn message(&self, d: &Direction<'_>, report: &DirectionReport) -> String {
        let what = match &self.fault {
            Some((Fault::NoSpace, _)) | None if self.out_of_inodes() => {
                let total = self.room.and_then(|r| r.files_total).unwrap_or(0);
                format!(
                    "no inodes left on {} (for {}): its file system can make no more files ({} free of {total}){}; delete files there (or give it more inodes) and sync again",
                    d.dst.describe(),
                    d.dest_prefix(),
                    self.room.and_then(|r| r.files).unwrap_or(0),
                    os_error(self.fault.as_ref().map(|f| &f.1)),
                )
            }
            Some((Fault::NoSpace, _)) | None => {
                let free = self
                    .room
                    .map_or_else(|| "an unknown number".to_string(), |r| r.bytes.to_string());
                let (what, fix) = if self.over_quota() {
                    (
                        "over its disk quota",
                        "raise the quota (or free some space)",
                    )
                } else {
                    ("no space left", "free some space (or give the store more)")
                };
                format!(
                    "{what} on {} (for {}): needed {} bytes, {free} free{}; {fix} and sync again",
                    d.dst.describe(),
                    d.dest_prefix(),
                    self.need,
                    os_error(self.fault.as_ref().map(|f| &f.1)),
                )
            }
            Some((Fault::ReadOnly, e)) => {
                format!("{e}; make the store writable (remount it read-write) and sync again")
            }
            Some((Fault::CrossDevice, e)) => e.to_string(),
            Some((Fault::Unavailable, e)) => {
                format!("{e}; the sync stopped: run it again once the server answers")
            }
            Some((Fault::Io, e)) => format!(
                "{e}: the device failed; check the disk (the system log says more) and sync again"
            ),
        };
        format!("{what}. {}", kept(report, self.stopped))
    }

    /// Whether the write was refused for the user's quota (EDQUOT), not for
    /// the file system's room.
    fn over_quota(&self) -> bool {
        matches!(&self.fault, Some((_, StoreError::Io { source, .. })) if source.raw_os_error() == Some(libc::EDQUOT))
    }

    /// Whether the file system ran out of inodes rather than bytes: none
    /// left when the write failed (measured before the batch was discarded),
    /// or fewer than the batch's items before it began.
    fn out_of_inodes(&self) -> bool {
        let Some(files) = self.room.and_then(|r| r.files) else {
            return false;
        };
        match (self.stopped, &self.fault) {
            (_, Some(_)) => files == 0,
            (Stopped::NotBegun { items } | Stopped::Discarded { items }, None) => files < items,
        }
    }
}

/// `: <the system's error>`, or nothing.
fn os_error(error: Option<&StoreError>) -> String {
    match error {
        Some(StoreError::Io { source, .. }) => format!(": {source}"),
        _ => String::new(),
    }
}

/// What the sync kept and what it threw away.
fn kept(report: &DirectionReport, stopped: Stopped) -> String {
    let before = match report.batches {
        0 => "Nothing was committed before".to_string(),
        batches => format!(
            "The {} items copied before, in {batches} whole {}, are kept",
            report.items_copied,
            if batches == 1 { "batch" } else { "batches" }
        ),
    };
    let batch = match stopped {
        Stopped::NotBegun { items } => format!("the next batch ({items} items) was not begun"),
        Stopped::Discarded { items } => {
            format!("the batch being staged ({items} items) was discarded")
        }
    };
    format!("{before}; {batch}, and nothing of it is left staged")
}
