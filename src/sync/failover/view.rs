//! Reading a pair's failover record from its stores, and what it forbids.

use crate::store::{Store, StoreError, StoreResult};
use crate::sync::format_time;
use crate::sync::{SyncEngine, SyncError};
use crate::topology::Pair;

use super::state::{self, PairState, PairView, Phase};

impl SyncEngine {
    /// The failover record of a pair as its stores hold it now; a store that
    /// cannot be reached is noted in the view, not an error.
    pub async fn pair_view(&self, pair: &Pair) -> PairView {
        let read = |pool| async move {
            match self.reachable(pool).await {
                Ok(store) => state::read(&*store, pair).await,
                Err(e) => Err(StoreError::Other {
                    store: pool.fqdn.to_string(),
                    message: e.to_string(),
                }),
            }
        };
        let (a, b) = tokio::join!(read(&pair.pool), read(&pair.partner));
        state::combine(pair, [a, b])
    }
}

/// A pair's record as a holder of the pair lock found it.
pub(crate) struct Held {
    pub state: PairState,
    /// The stores it brought up to date: they had an older record (or a
    /// damaged one, or none).
    pub healed: bool,
    /// The older records those stores held (a store with none is left out).
    pub older: Vec<PairState>,
}

/// The record held in the stores given (`None`: not reached), for a caller
/// that holds the pair lock in every store given. When `heal`, a store with
/// an older record (or a damaged one) is brought up to date, and metadata
/// writes a killed run left half done are dropped (every write to these
/// stores happens under the lock we hold). Fails when no readable record can
/// be trusted.
pub(crate) async fn held(
    pair: &Pair,
    stores: [Option<&dyn Store>; 2],
    heal: bool,
) -> Result<Held, SyncError> {
    let mut reads: [StoreResult<Option<PairState>>; 2] = [Ok(None), Ok(None)];
    for (i, store) in stores.iter().enumerate() {
        reads[i] = match store {
            Some(store) => state::read(*store, pair).await,
            None => Err(StoreError::Other {
                store: String::new(),
                message: "not reached".into(),
            }),
        };
    }
    let damaged: Vec<String> = reads
        .iter()
        .zip(stores)
        .filter_map(|(r, s)| Some((r.as_ref().err()?, s?)))
        .map(|(e, _)| e.to_string())
        .collect();
    let found: Vec<PairState> = reads
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned().flatten())
        .collect();
    let view = state::combine(pair, reads);
    let older = found
        .into_iter()
        .filter(|r| r.epoch < view.state.epoch)
        .collect();
    if !damaged.is_empty() && view.state.epoch == 0 {
        return Err(SyncError::Refused(damaged.join("; ")));
    }
    let mut healed = false;
    if heal {
        for store in stores.iter().flatten() {
            store
                .clear_staging("meta-")
                .await
                .map_err(|e| SyncError::Refused(e.to_string()))?;
        }
        for (i, store) in stores.iter().enumerate() {
            let pool = if i == 0 { &pair.pool } else { &pair.partner };
            let unread = view.unreachable.iter().any(|(p, _)| *p == pool.fqdn);
            if let Some(store) = store
                && (view.lagging.contains(&pool.fqdn) || unread)
                && view.state.epoch > 0
            {
                state::write(*store, pair, &view.state)
                    .await
                    .map_err(|source| SyncError::Store {
                        pool: pool.fqdn.clone(),
                        source,
                    })?;
                healed = true;
            }
        }
    }
    Ok(Held {
        state: view.state,
        healed,
        older,
    })
}

/// Why a sync of the pair may not run now, if it may not: one of its pools
/// is failed over, or on its way there or back.
pub(crate) fn sync_refusal(state: &PairState) -> Option<String> {
    let away = state.away()?;
    let pool = &away.pool;
    let since = format_time(away.since_ns);
    let epoch = state.epoch;
    Some(match away.phase {
        Phase::Home => return None,
        Phase::SwitchingOver => format!(
            "a failover of pool '{pool}' is under way (writes stopped since {since}, epoch {epoch}): finish it with invoke_pool_failover(\"{pool}\") or cancel it with invoke_pool_failback(\"{pool}\"); syncs of the pair wait until then"
        ),
        Phase::FailedOver => format!(
            "pool '{pool}' is failed over to its backup pool (since {since}, epoch {epoch}): its data is served there, so syncs of the pair are refused until it fails back with invoke_pool_failback(\"{pool}\")"
        ),
        Phase::FailingBack | Phase::SwitchingBack => format!(
            "a failback of pool '{pool}' is under way (since {since}, epoch {epoch}): finish it with invoke_pool_failback(\"{pool}\"); syncs of the pair wait until then"
        ),
    })
}
