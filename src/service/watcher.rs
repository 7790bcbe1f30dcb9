//! The service's one file-system watcher (inotify, through `notify`): it
//! watches the source folder of every direction it serves on a local disk and
//! turns what changes there into changed paths of the right pair
//! ([`PendingChanges`]). One watcher (one inotify instance, one thread) serves
//! every pair.
//!
//! What it cannot vouch for becomes a full scan, with the reason: the
//! kernel's queue overflowed, a watch could not be added (the kernel's limit
//! of watches), a watched folder was removed or replaced, a name that is not
//! an item path. So does a rewrite of a pair's failover record (a failover,
//! failback or CMS move, by any process): what to watch has changed.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};

use super::pending::PendingChanges;
use crate::store::{ItemPath, printable};
use crate::sync::{WatchTarget, WatchedRecord};

/// What one route watches.
enum Watched {
    /// A source folder: its changed items are recorded.
    Items(WatchTarget),
    /// A copy of the pair's failover record: its rewrite asks for a full scan.
    Record(WatchedRecord),
}

impl Watched {
    /// The folder the kernel watches for it.
    fn folder(&self) -> &Path {
        match self {
            Watched::Items(t) => &t.folder,
            Watched::Record(r) => &r.folder,
        }
    }
}

/// One watched folder and the pair it belongs to.
struct Route {
    watched: Watched,
    pending: Arc<PendingChanges>,
}

type Routes = Arc<Mutex<Vec<Route>>>;

/// The watcher of every served pair.
pub(super) struct Watcher {
    inner: Mutex<notify::RecommendedWatcher>,
    routes: Routes,
}

impl Watcher {
    /// Starts the watcher (its thread and inotify instance).
    pub(super) fn new() -> Result<Watcher, String> {
        let routes: Routes = Arc::new(Mutex::new(Vec::new()));
        let handler_routes = routes.clone();
        // Stores refuse links: a link in a watched tree is not followed.
        let config = notify::Config::default().with_follow_symlinks(false);
        let inner = notify::RecommendedWatcher::new(
            move |event: notify::Result<notify::Event>| handle(&handler_routes, event),
            config,
        )
        .map_err(|e| format!("cannot start the file-system watcher: {e}"))?;
        Ok(Watcher {
            inner: Mutex::new(inner),
            routes,
        })
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Vec<Route>> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Watches `targets` and `records` for the pair whose changes go to
    /// `pending`, in place of what it watched before. On an error nothing of
    /// the pair stays watched, and the error says which folder failed and why.
    pub(super) fn watch(
        &self,
        targets: &[WatchTarget],
        records: &[WatchedRecord],
        pending: &Arc<PendingChanges>,
    ) -> Result<(), String> {
        self.unwatch(pending);
        let watched: Vec<Watched> = targets
            .iter()
            .cloned()
            .map(Watched::Items)
            .chain(records.iter().cloned().map(Watched::Record))
            .collect();
        let folders: Vec<PathBuf> = watched.iter().map(|w| w.folder().to_path_buf()).collect();
        // Routes first: an event during the setup already finds its pair.
        self.routes()
            .extend(watched.into_iter().map(|watched| Route {
                watched,
                pending: pending.clone(),
            }));
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for folder in &folders {
            if let Err(e) = inner.watch(folder, RecursiveMode::Recursive) {
                drop(inner);
                self.unwatch(pending);
                return Err(watch_error(folder, &e));
            }
        }
        Ok(())
    }

    /// Stops watching the folders of the pair whose changes go to `pending`.
    pub(super) fn unwatch(&self, pending: &Arc<PendingChanges>) {
        let mut routes = self.routes();
        let mine: Vec<PathBuf> = routes
            .iter()
            .filter(|r| Arc::ptr_eq(&r.pending, pending))
            .map(|r| r.watched.folder().to_path_buf())
            .collect();
        routes.retain(|r| !Arc::ptr_eq(&r.pending, pending));
        drop(routes);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for folder in mine {
            // A folder that is gone is no longer watched anyway.
            let _ = inner.unwatch(&folder);
        }
    }
}

/// A failed watch, in the administrator's words.
fn watch_error(folder: &Path, e: &notify::Error) -> String {
    let shown = printable(folder.as_os_str().as_bytes());
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => format!(
            "cannot watch {shown}: the kernel's limit of inotify watches is reached (raise fs.inotify.max_user_watches)"
        ),
        notify::ErrorKind::PathNotFound => format!("cannot watch {shown}: it does not exist"),
        _ => format!("cannot watch {shown}: {e}"),
    }
}

/// Whether an event can mean that an item changed. Opening and reading (a
/// sync reads its source) cannot; closing after a write can.
fn may_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Routes one event (on the watcher's thread) to the pair it belongs to.
fn handle(routes: &Routes, event: notify::Result<notify::Event>) {
    let now = Instant::now();
    let routes = routes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            let why = match e.paths.first() {
                Some(p) => watch_error(p, &e),
                None => format!("the file-system watcher failed: {e}"),
            };
            let affected = |r: &&Route| {
                e.paths.is_empty() || e.paths.iter().any(|p| p.starts_with(r.watched.folder()))
            };
            for r in routes.iter().filter(affected) {
                r.pending.rescan(why.clone());
            }
            return;
        }
    };
    if event.need_rescan() {
        for r in routes.iter() {
            r.pending.rescan(
                "the kernel's inotify event queue overflowed (fs.inotify.max_queued_events)".into(),
            );
        }
        return;
    }
    if !may_change(event.kind) {
        return;
    }
    for path in &event.paths {
        for route in routes.iter() {
            // The record itself, or a folder on the way to it made with it
            // (the first record of a store): a new folder's own contents are
            // not reported.
            if let Watched::Record(record) = &route.watched
                && record.file.starts_with(path)
                && *path != record.folder
            {
                route.pending.rescan(
                    "the pair's failover record changed (a failover, failback or CMS move)".into(),
                );
            }
        }
        let items = routes.iter().find_map(|r| match &r.watched {
            Watched::Items(t) if path.starts_with(&t.folder) => Some((t, &r.pending)),
            _ => None,
        });
        if let Some((target, pending)) = items {
            route_path(target, pending, path, event.kind, now);
        }
    }
}

/// Records a changed path below a watched folder, or asks for a full scan
/// when the folder itself went away or the name is not an item path.
fn route_path(
    target: &WatchTarget,
    pending: &PendingChanges,
    path: &Path,
    kind: EventKind,
    now: Instant,
) {
    let folder = &target.folder;
    let Ok(rel) = path.strip_prefix(folder) else {
        return;
    };
    if rel.as_os_str().is_empty() {
        if matches!(
            kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        ) {
            pending.rescan(format!(
                "the watched folder {} was removed or replaced",
                printable(folder.as_os_str().as_bytes())
            ));
        }
        return;
    }
    match ItemPath::parse(rel.as_os_str().as_bytes()) {
        Ok(item) => pending.record(&target.pool, target.module, item, now),
        Err(why) => pending.rescan(format!(
            "a changed name is not an item path ({why}): {}",
            printable(path.as_os_str().as_bytes())
        )),
    }
}
