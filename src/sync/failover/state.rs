//! Where each pool's data of a pair is active, durable in both stores.
//!
//! One record per pair, `failover/pair-<a>-<b>`, in each pool's store. Every
//! change (a failover, a failback, a CMS move, and the fence steps between)
//! raises its epoch by one, and the record with the higher epoch wins: a pool
//! that comes back after a disaster failover with its old record is fenced by
//! its partner's newer one, the way a `PostgreSQL` timeline or a DRBD
//! generation decides which copy is current. Changes are made under the pair
//! lock, so two operators can never both promote.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreResult};
use crate::sync::meta_json;
use crate::topology::{Fqdn, Pair, Pool};

/// Where a pool's data is in its failover cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Phase {
    /// Active at the pool itself, in `data/` (normal operation).
    #[default]
    Home,
    /// A planned failover is under way: writes at home are stopped (fenced)
    /// while the last changes go to the partner.
    SwitchingOver,
    /// Active at the partner, in its replica folder `backup/<pool>/`.
    FailedOver,
    /// A failback is under way: still active (and writable) at the partner
    /// while its data goes back home.
    FailingBack,
    /// The last step of a failback: writes at the partner are stopped while
    /// the last changes go home.
    SwitchingBack,
}

impl Phase {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Phase::Home => "Home",
            Phase::SwitchingOver => "SwitchingOver",
            Phase::FailedOver => "FailedOver",
            Phase::FailingBack => "FailingBack",
            Phase::SwitchingBack => "SwitchingBack",
        }
    }

    /// Whether the data is served at the partner.
    #[must_use]
    pub fn at_partner(self) -> bool {
        matches!(
            self,
            Phase::FailedOver | Phase::FailingBack | Phase::SwitchingBack
        )
    }

    /// Whether the active copy may be written now.
    #[must_use]
    pub fn writable(self) -> bool {
        matches!(self, Phase::Home | Phase::FailedOver | Phase::FailingBack)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the last failover was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The pool was reachable: its last changes were shipped first.
    Planned,
    /// The pool was lost: its partner's replica was promoted as it was.
    Disaster,
}

/// What a failover may have lost of one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleLoss {
    pub module: String,
    /// When the last sync of the module into the partner ended without error
    /// (ns since the epoch; RFC 3339 as `last_sync` in JSON); `None`: never.
    #[serde(rename = "last_sync", with = "crate::sync::time::rfc3339")]
    pub last_sync_ns: Option<i64>,
    /// Items changed at the pool after that sync, if its store could be read
    /// (`None`: it could not, so the loss is unknown).
    pub changed_items: Option<u64>,
    /// The first of those items, by path.
    pub changed: Vec<String>,
}

/// Items a failback found changed at the pool after its last sync, which the
/// active copy never saw: moved aside, never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Quarantine {
    /// Where they are in the pool's store, e.g. `quarantine/epoch-3`.
    pub folder: String,
    pub items: u64,
    /// The first of them, `<module>/<path>`.
    pub paths: Vec<String>,
    /// Items the pool deleted after its last sync, which the active copy
    /// still held and the failback brought back: named in the folder's
    /// `deleted-at-home.txt` (nothing of theirs is in the folder).
    #[serde(default)]
    pub deleted_at_home: u64,
    /// The first of them, `<module>/<path>`.
    #[serde(default)]
    pub deleted_at_home_paths: Vec<String>,
}

/// Quarantine and loss lists keep at most this many paths (the counts are
/// whole).
pub(crate) const LISTED_PATHS: usize = 100;

/// The failover state of one pool's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    pub pool: String,
    pub phase: Phase,
    /// When the phase began (ns since the epoch).
    pub since_ns: i64,
    /// The last failover: how it was made, and what it may have lost.
    pub mode: Option<Mode>,
    pub loss: Vec<ModuleLoss>,
    /// The last failback's quarantine, if it moved anything aside.
    pub quarantine: Option<Quarantine>,
    /// During a failback: the divergent items were moved aside and the
    /// failback manifests written (a rerun must not do it again).
    #[serde(default)]
    pub reconciled: bool,
}

impl PoolState {
    fn home(pool: &Pool) -> PoolState {
        PoolState {
            pool: pool.fqdn.to_string(),
            phase: Phase::Home,
            since_ns: 0,
            mode: None,
            loss: Vec::new(),
            quarantine: None,
            reconciled: false,
        }
    }
}

/// Where the Central Management Store is active, once moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmsState {
    /// The pool that holds the active CMS.
    pub active: String,
    pub since_ns: i64,
    pub mode: Mode,
    /// After a disaster move: before the first sync into the old master, what
    /// it changed after its last sync must be moved aside.
    #[serde(default)]
    pub reconcile: bool,
    /// What that moved aside.
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
}

/// The failover record of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairState {
    pub epoch: u64,
    /// When it last changed (ns since the epoch).
    pub changed_ns: i64,
    /// What changed last, one line.
    pub last_event: String,
    /// The process that made that change (`poolsync pid N on HOST`).
    #[serde(default)]
    pub changed_by: String,
    /// Both pools of the pair.
    pub pools: Vec<PoolState>,
    /// `None`: the CMS (if this pair carries it) is where the deployment says.
    pub cms: Option<CmsState>,
}

impl PairState {
    /// The record of a pair that never failed over.
    #[must_use]
    pub fn initial(pair: &Pair) -> PairState {
        PairState {
            epoch: 0,
            changed_ns: 0,
            last_event: "none".into(),
            changed_by: String::new(),
            pools: vec![PoolState::home(&pair.pool), PoolState::home(&pair.partner)],
            cms: None,
        }
    }

    /// The state of one pool of the pair.
    #[must_use]
    pub fn pool(&self, fqdn: &Fqdn) -> Option<&PoolState> {
        self.pools.iter().find(|p| p.pool == fqdn.as_str())
    }

    pub fn pool_mut(&mut self, fqdn: &Fqdn) -> Option<&mut PoolState> {
        self.pools.iter_mut().find(|p| p.pool == fqdn.as_str())
    }

    /// The phase of a pool's data (`Home` for a pool the record lacks).
    #[must_use]
    pub fn phase(&self, fqdn: &Fqdn) -> Phase {
        self.pool(fqdn).map_or(Phase::Home, |p| p.phase)
    }

    /// The pool where the CMS is active: where it was moved, or `master` (the
    /// deployment's `cms_master`).
    #[must_use]
    pub fn cms_master<'a>(&'a self, master: &'a Fqdn) -> &'a str {
        self.cms
            .as_ref()
            .map_or(master.as_str(), |c| c.active.as_str())
    }

    /// Where the CMS is and since when: another value means it moved.
    #[must_use]
    pub fn cms_mark(&self) -> Option<(&str, i64)> {
        self.cms.as_ref().map(|c| (c.active.as_str(), c.since_ns))
    }

    /// Who made the last change and when, for messages: `a disaster
    /// failover of P to Q (poolsync pid N on HOST, TIME)`.
    #[must_use]
    pub fn last_change(&self) -> String {
        let when = crate::sync::format_time(self.changed_ns);
        if self.changed_by.is_empty() {
            format!("{} ({when})", self.last_event)
        } else {
            format!("{} ({}, {when})", self.last_event, self.changed_by)
        }
    }

    /// Starts a change: a new epoch, now, made by this process.
    pub(super) fn next(&mut self, event: String) -> i64 {
        let now = crate::store::system_time_ns(std::time::SystemTime::now());
        self.epoch += 1;
        self.changed_ns = now;
        self.last_event = event;
        self.changed_by = crate::store::this_process();
        now
    }

    /// The pool of the pair whose data is not at home, if one is.
    #[must_use]
    pub fn away(&self) -> Option<&PoolState> {
        self.pools.iter().find(|p| p.phase != Phase::Home)
    }
}

/// The record as found in both stores.
#[derive(Debug, Clone)]
pub struct PairView {
    /// The newest record (the initial one when neither store has one).
    pub state: PairState,
    /// The pools whose store could not be read, with why.
    pub unreachable: Vec<(Fqdn, String)>,
    /// The pools whose store holds an older record (or none): they have not
    /// heard of the newest change yet.
    pub lagging: Vec<Fqdn>,
}

/// The metadata key of a pair's record: the same in both stores.
pub(crate) fn key(pair: &Pair) -> String {
    let (a, b) = pair.key();
    format!("failover/pair-{a}-{b}")
}

/// The record in one store: `None` when it has none.
pub(crate) async fn read(store: &dyn Store, pair: &Pair) -> StoreResult<Option<PairState>> {
    let next = "the partner's copy of it is used if it has one; if neither can be read, restore the file from the partner's store";
    meta_json::read(store, &key(pair), "failover record", next).await
}

/// Writes the record to one store and makes it durable.
pub(crate) async fn write(store: &dyn Store, pair: &Pair, state: &PairState) -> StoreResult<()> {
    meta_json::write(store, &key(pair), "failover record", state).await?;
    store.make_durable().await
}

/// Combines what the two stores hold: `found[i]` is the pool's (`0`) or the
/// partner's (`1`) read. The newest record wins; an unreadable store is noted.
pub(crate) fn combine(pair: &Pair, found: [StoreResult<Option<PairState>>; 2]) -> PairView {
    let pools = [&pair.pool.fqdn, &pair.partner.fqdn];
    let mut unreachable = Vec::new();
    let mut records: Vec<(usize, Option<PairState>)> = Vec::new();
    for (i, read) in found.into_iter().enumerate() {
        match read {
            Ok(record) => records.push((i, record)),
            Err(e) => unreachable.push((pools[i].clone(), e.to_string())),
        }
    }
    let newest = records
        .iter()
        .filter_map(|(_, r)| r.as_ref())
        .max_by_key(|r| r.epoch)
        .cloned()
        .unwrap_or_else(|| PairState::initial(pair));
    let lagging = records
        .iter()
        .filter(|(_, r)| r.as_ref().map_or(0, |r| r.epoch) < newest.epoch)
        .map(|(i, _)| pools[*i].clone())
        .collect();
    PairView {
        state: newest,
        unreachable,
        lagging,
    }
}

impl PairState {
    /// Moves the active CMS to `active`: a new epoch, now.
    pub fn move_cms(&mut self, active: &Fqdn, mode: Mode, event: String) {
        let now = self.next(event);
        self.cms = Some(CmsState {
            active: active.to_string(),
            since_ns: now,
            mode,
            reconcile: mode == Mode::Disaster,
            quarantine: None,
        });
    }

    /// Moves `pool`'s data to `phase`: a new epoch, now.
    pub fn advance(&mut self, pool: &Fqdn, phase: Phase, event: String) {
        let now = self.next(event);
        if let Some(p) = self.pool_mut(pool) {
            if phase == Phase::FailingBack && p.phase == Phase::FailedOver {
                p.reconciled = false;
            }
            p.phase = phase;
            p.since_ns = now;
        }
    }
}
