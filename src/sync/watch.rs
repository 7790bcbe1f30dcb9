//! What a watcher of a pair watches: the source folder of each direction a
//! sync of the pair would run now, where that folder is on a local disk. The
//! service's watcher (`service/watcher.rs`) turns what changes there into a
//! [`ChangeSet`](super::ChangeSet) for a sync of those paths alone.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{SyncEngine, SyncError, SyncOptions, failover};
use crate::topology::{Fqdn, Module, Pair};

/// One folder to watch: the source of `module`'s direction from `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTarget {
    pub pool: Fqdn,
    pub module: Module,
    /// The folder on disk (the pool's `data/<module>`, or the active copy of
    /// a moved CMS); a changed path is relative to it.
    pub folder: PathBuf,
}

/// A copy of the pair's failover record in a local store: `file`, in the
/// store's metadata folder `folder` (watched, as `file`'s own folder may not
/// exist before the first failover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedRecord {
    pub folder: PathBuf,
    pub file: PathBuf,
}

/// The folders to watch for a pair, and why any direction has none.
#[derive(Debug, Clone, Default)]
pub struct WatchPlan {
    pub targets: Vec<WatchTarget>,
    /// The pair's failover record in each local store: when a failover,
    /// failback or CMS move (run by any process) rewrites it, what to watch
    /// changes, so the service plans again at once instead of at its next
    /// full scan.
    pub records: Vec<WatchedRecord>,
    /// One line per direction that is not watched (an S3 store; the pair is
    /// failed over): those are found by the full scans alone.
    pub unwatched: Vec<String>,
    /// The failover record the plan was read from, as text: a caller that
    /// sets up its watches compares it with [`SyncEngine::watch_basis`]
    /// afterwards, since a record rewritten in between makes the plan stale.
    pub basis: String,
}

impl SyncEngine {
    /// The folders to watch for `pair`, as its failover record stands now:
    /// none while a pool is failed over (no sync of the pair may run), the
    /// active copy of a moved CMS, and no folder of a store that is not a
    /// local disk.
    pub async fn watch_plan(&self, pair: &Pair) -> Result<WatchPlan, SyncError> {
        let stores = (
            self.reachable(&pair.pool).await?,
            self.reachable(&pair.partner).await?,
        );
        let view = self.pair_view(pair).await;
        let mut plan = WatchPlan {
            basis: basis_of(&view.state),
            ..WatchPlan::default()
        };
        let key = failover::state::key(pair);
        for local in [&stores.0, &stores.1]
            .into_iter()
            .filter_map(|s| s.as_local())
        {
            if let Ok(file) = local.meta_file(&key) {
                plan.records.push(WatchedRecord {
                    folder: local.meta_dir().to_path_buf(),
                    file,
                });
            }
        }
        if let Some(why) = failover::view::sync_refusal(&view.state) {
            plan.unwatched.push(why);
            return Ok(plan);
        }
        let cms = view
            .state
            .cms_master(&self.deployment().cms_master)
            .to_string();
        let all = SyncOptions::default();
        for d in self.directions(pair, &stores, &all, &cms) {
            let Some(local) = d.src.as_local() else {
                plan.unwatched.push(format!(
                    "{} from {}: {} is not a local folder, so it is scanned every sync_interval",
                    d.module,
                    d.from.fqdn,
                    d.src.describe()
                ));
                continue;
            };
            let rel = OsStr::from_bytes(d.source_prefix().as_bytes());
            plan.targets.push(WatchTarget {
                pool: d.from.fqdn.clone(),
                module: d.module,
                folder: local.root().join(rel),
            });
        }
        Ok(plan)
    }

    /// The pair's failover record as it stands now, in the form of
    /// [`WatchPlan::basis`].
    pub async fn watch_basis(&self, pair: &Pair) -> String {
        basis_of(&self.pair_view(pair).await.state)
    }
}

/// A failover record as text, to compare.
fn basis_of(state: &failover::state::PairState) -> String {
    serde_json::to_string(state).unwrap_or_default()
}
