//! Moving items of a pool's own data aside, into `quarantine/<folder>/` of
//! its store, instead of overwriting them: what a pool changed after its last
//! sync before a disaster failover (which the active copy never saw), and a
//! pool's own version of an item a restore replaces. Kept until an operator
//! removes it, as `pg_rewind` keeps an old primary's divergent history.

use crate::store::{Entry, ItemPath, Store, StoreResult};
use crate::sync::SyncOptions;
use crate::sync::direction::Direction;
use crate::sync::report::DirectionReport;
use crate::topology::{BackupServiceSettings, Module, Pool};

use super::state::{LISTED_PATHS, Quarantine};
use super::transfer::copy_items;

/// What to move aside: items of `pool`'s store below `source` (relative to
/// it), into `folder` (a path below `quarantine/`).
pub(super) struct Aside<'a> {
    pub pool: &'a Pool,
    pub store: &'a dyn Store,
    pub module: Module,
    pub source: ItemPath,
    pub folder: &'a ItemPath,
}

impl<'a> Aside<'a> {
    /// Items of the pool's own `data/<module>`.
    pub(super) fn data(
        pool: &'a Pool,
        store: &'a dyn Store,
        module: Module,
        folder: &'a ItemPath,
    ) -> Self {
        Aside {
            pool,
            store,
            module,
            source: crate::sync::direction::data_prefix(module),
            folder,
        }
    }
}

/// Why a move aside did not complete, if it did not: its error, or the
/// items it could not copy.
pub(super) fn failure(report: &DirectionReport) -> Option<String> {
    report.error.clone().or_else(|| {
        (report.pending_items > 0)
            .then(|| format!("{} items could not be copied", report.pending_items))
    })
}

/// Copies `items` into the quarantine folder, then, once every copy is
/// committed and `remove` is set, deletes them where they were. A crash in
/// between leaves them in both places; running it again finishes the job.
pub(super) async fn move_aside(
    aside: Aside<'_>,
    items: Vec<Entry>,
    remove: bool,
    opts: &SyncOptions,
    settings: &BackupServiceSettings,
    warnings: &mut Vec<String>,
) -> StoreResult<DirectionReport> {
    let Aside {
        pool,
        store,
        module,
        source,
        folder,
    } = aside;
    let paths: Vec<ItemPath> = items.iter().map(|e| e.path.clone()).collect();
    let d = Direction::quarantine(module, pool, store, source.clone(), folder);
    let report = copy_items(&d, opts, settings, items, warnings).await;
    if report.error.is_none() && report.pending_items == 0 && remove && !paths.is_empty() {
        let deletes: Vec<ItemPath> = paths.iter().map(|p| source.join(p)).collect();
        let refused = store.commit(&[], &deletes).await?;
        store.make_durable().await?;
        warnings.extend(
            refused
                .into_iter()
                .map(|(path, why)| format!("{}: cannot remove '{path}': {why}", pool.fqdn)),
        );
    }
    Ok(report)
}

/// The quarantine folder of a failback made at `epoch`.
pub(super) fn failback_folder(epoch: u64) -> String {
    format!("quarantine/epoch-{epoch}")
}

/// The note in a quarantine folder naming the items the pool had deleted
/// that came back: a header line (`# ...`), then one `<module>/<path>` a line.
pub(super) const DELETED_NOTE: &str = "deleted-at-home.txt";

/// Writes `folder/deleted-at-home.txt`: `header`, then `paths`, a line each.
pub(super) async fn write_note(
    store: &dyn Store,
    folder: &ItemPath,
    header: &str,
    paths: &[String],
) -> StoreResult<()> {
    let mut text = format!("# {header}\n");
    for p in paths {
        text.push_str(p);
        text.push('\n');
    }
    let dest = folder.join(&ItemPath::parse(DELETED_NOTE).unwrap_or_else(|_| unreachable!()));
    // A staged name the next holder of the pair lock clears if we die here.
    let name = "meta-quarantine-note";
    let mut writer = store.stage_writer(name, &dest).await?;
    writer.write(bytes::Bytes::from(text)).await?;
    writer.finish().await?;
    store.make_durable().await?;
    store.commit(&[(name.to_string(), dest)], &[]).await?;
    store.make_durable().await
}

/// What one quarantine folder holds: its items (the note left out) and the
/// deletions its note names; `None` when the folder is gone or empty.
pub(super) async fn summary(
    store: &dyn Store,
    folder: &ItemPath,
) -> StoreResult<Option<Quarantine>> {
    let listing = store.list(folder).await?;
    let mut q = Quarantine {
        folder: folder.to_string(),
        ..Quarantine::default()
    };
    let mut entries = listing.entries;
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let mut has_note = false;
    for e in &entries {
        if e.path.as_bytes() == DELETED_NOTE.as_bytes() {
            has_note = true;
            continue;
        }
        q.items += 1;
        if q.paths.len() < LISTED_PATHS {
            q.paths.push(e.path.to_string());
        }
    }
    if has_note {
        let note = folder.join(&ItemPath::parse(DELETED_NOTE).unwrap_or_else(|_| unreachable!()));
        let named = read_note(store, &note).await?;
        q.deleted_at_home = named.len() as u64;
        q.deleted_at_home_paths = named.into_iter().take(LISTED_PATHS).collect();
    }
    Ok((q.items > 0 || has_note).then_some(q))
}

/// Every quarantine folder still in a pool's store, oldest name first: what
/// failbacks, restores and CMS moves put aside and no one has removed yet.
pub(crate) async fn listed(store: &dyn Store) -> StoreResult<Vec<Quarantine>> {
    let root = ItemPath::parse("quarantine").unwrap_or_else(|_| unreachable!());
    let listing = store.list(&root).await?;
    let mut folders: Vec<ItemPath> = listing
        .entries
        .iter()
        .filter_map(|e| ItemPath::parse(e.path.first_segment()).ok())
        .collect();
    folders.sort();
    folders.dedup();
    let mut out = Vec::new();
    for folder in folders {
        if let Some(q) = summary(store, &root.join(&folder)).await? {
            out.push(q);
        }
    }
    Ok(out)
}

/// The paths a note names.
async fn read_note(store: &dyn Store, path: &ItemPath) -> StoreResult<Vec<String>> {
    use futures::StreamExt;
    let mut stream = store.read(path).await?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
    }
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}
