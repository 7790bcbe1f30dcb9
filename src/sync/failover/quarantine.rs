//! Moving items of a pool's own data aside, into `quarantine/<folder>/` of
//! its store, instead of overwriting them: what a pool changed after its last
//! sync before a disaster failover (which the active copy never saw), and a
//! pool's own version of an item a restore replaces. Kept until an operator
//! removes it, as pg_rewind keeps an old primary's divergent history.

use crate::store::{Entry, ItemPath, Store, StoreResult};
use crate::sync::SyncOptions;
use crate::sync::direction::Direction;
use crate::sync::report::DirectionReport;
use crate::topology::{BackupServiceSettings, Module, Pool};

use super::transfer::copy_items;

/// What to move aside: items of `pool`'s store below `source` (relative to
/// it), into `folder` (a path below `quarantine/`).
pub struct Aside<'a> {
    pub pool: &'a Pool,
    pub store: &'a dyn Store,
    pub module: Module,
    pub source: ItemPath,
    pub folder: &'a ItemPath,
}

/// Copies `items` into the quarantine folder, then, once every copy is
/// committed and `remove` is set, deletes them where they were. A crash in
/// between leaves them in both places; running it again finishes the job.
pub async fn move_aside(
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
pub fn failback_folder(epoch: u64) -> String {
    format!("quarantine/epoch-{epoch}")
}
