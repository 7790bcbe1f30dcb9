//! The service's one file-system watcher (inotify, through `notify`): it
//! watches the source folder of every direction it serves on a local disk and
//! turns what changes there into changed paths of the right pair
//! ([`PendingChanges`]). One watcher (one inotify instance, one thread) serves
//! every pair.
//!
//! What it cannot vouch for becomes a full scan, with the reason: the
//! kernel's queue overflowed, a watch could not be added (the kernel's limit
//! of watches), a watched folder was removed or replaced, a name that is not
//! an item path.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};

use super::pending::PendingChanges;
use crate::store::{ItemPath, printable};
use crate::sync::WatchTarget;

/// One watched folder and the pair it belongs to.
struct Route {
    target: WatchTarget,
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

    /// Watches `targets` for the pair whose changes go to `pending`, in place
    /// of what it watched before. On an error nothing of the pair stays
    /// watched, and the error says which folder failed and why.
    pub(super) fn watch(
        &self,
        targets: &[WatchTarget],
        pending: &Arc<PendingChanges>,
    ) -> Result<(), String> {
        self.unwatch(pending);
        // Routes first: an event during the setup already finds its pair.
        self.routes().extend(targets.iter().map(|t| Route {
            target: t.clone(),
            pending: pending.clone(),
        }));
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for t in targets {
            if let Err(e) = inner.watch(&t.folder, RecursiveMode::Recursive) {
                drop(inner);
                self.unwatch(pending);
                return Err(watch_error(&t.folder, &e));
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
            .map(|r| r.target.folder.clone())
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
                e.paths.is_empty() || e.paths.iter().any(|p| p.starts_with(&r.target.folder))
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
        if let Some(route) = routes.iter().find(|r| path.starts_with(&r.target.folder)) {
            route_path(route, path, event.kind, now);
        }
    }
}

/// Records a changed path below a watched folder, or asks for a full scan
/// when the folder itself went away or the name is not an item path.
fn route_path(route: &Route, path: &Path, kind: EventKind, now: Instant) {
    let folder = &route.target.folder;
    let Ok(rel) = path.strip_prefix(folder) else {
        return;
    };
    if rel.as_os_str().is_empty() {
        if matches!(
            kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        ) {
            route.pending.rescan(format!(
                "the watched folder {} was removed or replaced",
                printable(folder.as_os_str().as_bytes())
            ));
        }
        return;
    }
    match ItemPath::parse(rel.as_os_str().as_bytes()) {
        Ok(item) => route
            .pending
            .record(&route.target.pool, route.target.module, item, now),
        Err(why) => route.pending.rescan(format!(
            "a changed name is not an item path ({why}): {}",
            printable(path.as_os_str().as_bytes())
        )),
    }
}
