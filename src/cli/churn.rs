//! `demo churn`: where it writes a pool's data, and what keeps it writing
//! only there. Before each module it takes the writers' fence of the pool
//! (`sync::WriteHold`) where the data is active, so a failover or failback
//! waits for the module to be written before it switches, and a churn after
//! the switch writes where the data is then, or stops while writes are
//! stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::demo::{self, ChurnSummary};
use crate::error::Error;
use crate::sync::{SyncEngine, SyncOptions};
use crate::topology::{Deployment, Pool};

/// The folder a local store is in.
fn local(p: &Pool) -> Result<PathBuf, Error> {
    p.store.local_path().map(Path::to_path_buf).ok_or_else(|| {
        Error::Other(format!(
            "pool '{}': demo churn works on local stores only",
            p.fqdn
        ))
    })
}

/// Churns `pool`'s data where it is active, module by module, each under the
/// writers' fence.
pub(super) fn churn_pool(
    deployment: &Deployment,
    pool: &Pool,
    percent: f64,
) -> Result<ChurnSummary, Error> {
    let engine = SyncEngine::new(Arc::new(deployment.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the I/O runtime: {e}")))?;
    let home = local(pool)?;
    let partner = match deployment.pair_of(pool) {
        Some(pair) => Some(local(&pair.partner)?),
        None => None,
    };
    let opts = SyncOptions {
        cancel: crate::sync::CancelFlag::from_shared(crate::interrupt::flag()),
        ..SyncOptions::default()
    };
    let mut target = || -> Result<demo::ChurnTarget, Error> {
        let hold = runtime
            .block_on(engine.hold_writes(pool, &opts))
            .map_err(|e| Error::Other(e.to_string()))?;
        let (folder, round_file) = match (&partner, hold.phase.at_partner()) {
            (Some(partner), true) => (
                partner.join("backup").join(pool.fqdn.as_str()),
                partner.join(format!(".poolsync/demo-churn-round-{}", pool.fqdn)),
            ),
            _ => (home.join("data"), home.join(".poolsync/demo-churn-round")),
        };
        Ok(demo::ChurnTarget {
            folder,
            round_file,
            hold: Some(Box::new(hold)),
        })
    };
    demo::churn(deployment, pool, percent, &mut target)
}
