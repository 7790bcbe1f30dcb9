//! One module in one direction: where its items are read, where they are
//! written, and the names of its metadata at the receiving store.

use super::manifest::Manifest;
use crate::store::{ItemPath, Store, StoreError};
use crate::topology::{Fqdn, Module, Pool};

/// One module in one direction, while it runs.
pub(super) struct Direction<'a> {
    pub(super) module: Module,
    /// The pool the items come from and the pool they go to (for messages and
    /// status records).
    pub(super) from: &'a Pool,
    pub(super) to: &'a Pool,
    pub(super) src: &'a dyn Store,
    pub(super) dst: &'a dyn Store,
    /// Whose data this is: it names the manifest, the journal and the staged
    /// items at `dst`.
    owner: &'a Fqdn,
    kind: Kind,
    /// Whether its outcome is recorded as the export and import status of the
    /// module (a replication, a moved CMS), or only reported (a failback, a
    /// restore, a quarantine).
    records_status: bool,
    /// Where the items are at `src`, and where they go at `dst`.
    source: ItemPath,
    dest: ItemPath,
}

/// `a/b/c` from segments that are each a valid item name.
pub(super) fn prefix(segments: &[&str]) -> ItemPath {
    ItemPath::parse(segments.join("/")).unwrap_or_else(|_| unreachable!())
}

impl<'a> Direction<'a> {
    /// The replication of `from`'s own data (`data/<module>`) into its replica
    /// at `to` (`backup/<from>/<module>`).
    pub(super) fn replication(
        module: Module,
        from: &'a Pool,
        to: &'a Pool,
        src: &'a dyn Store,
        dst: &'a dyn Store,
    ) -> Self {
        Direction {
            module,
            from,
            to,
            src,
            dst,
            owner: &from.fqdn,
            kind: Kind::Replication,
            records_status: true,
            source: data_prefix(module),
            dest: replica_prefix(&from.fqdn, module),
        }
    }

    /// The active copy of `home`'s data, in `active`'s replica folder, back
    /// into `home`'s `data/` (a failback, or a moved CMS flowing to its old
    /// master).
    pub(super) fn reverse(
        module: Module,
        active: &'a Pool,
        home: &'a Pool,
        src: &'a dyn Store,
        dst: &'a dyn Store,
    ) -> Self {
        Direction {
            module,
            from: active,
            to: home,
            src,
            dst,
            owner: &home.fqdn,
            kind: Kind::Reverse,
            records_status: false,
            source: replica_prefix(&home.fqdn, module),
            dest: data_prefix(module),
        }
    }

    /// The Central Management Store moved to `active`: its active copy, in
    /// `active`'s replica folder, flows to the deployment's CMS master `home`,
    /// recorded as `active`'s export of the module.
    pub(super) fn cms_reverse(
        active: &'a Pool,
        home: &'a Pool,
        src: &'a dyn Store,
        dst: &'a dyn Store,
    ) -> Self {
        Direction {
            records_status: true,
            ..Direction::reverse(Module::CmsMaster, active, home, src, dst)
        }
    }

    /// Items of the replica of `home`'s data at `partner` copied back into
    /// `home`'s `data/` (`restore_pool_data`).
    pub(super) fn restore(
        module: Module,
        partner: &'a Pool,
        home: &'a Pool,
        src: &'a dyn Store,
        dst: &'a dyn Store,
    ) -> Self {
        Direction {
            kind: Kind::Restore,
            ..Direction::reverse(module, partner, home, src, dst)
        }
    }

    /// Items of `pool`'s store below `source` (its `data/<module>`, or a CMS
    /// copy) moved aside into `folder` (below `quarantine/`) of the same store.
    pub(super) fn quarantine(
        module: Module,
        pool: &'a Pool,
        store: &'a dyn Store,
        source: ItemPath,
        folder: &ItemPath,
    ) -> Self {
        Direction {
            module,
            from: pool,
            to: pool,
            src: store,
            dst: store,
            owner: &pool.fqdn,
            kind: Kind::Quarantine,
            records_status: false,
            source,
            dest: folder.join(&prefix(&[module.identity()])),
        }
    }

    /// What the direction does, for messages.
    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether its outcome goes into the module's status records.
    pub(super) fn records_status(&self) -> bool {
        self.records_status
    }

    /// Where the items are read at the source store.
    pub(super) fn source_prefix(&self) -> &ItemPath {
        &self.source
    }

    /// Where they are written at the receiving store.
    pub(super) fn dest_prefix(&self) -> &ItemPath {
        &self.dest
    }

    pub(super) fn manifest_prefix(&self) -> String {
        let prefix = Manifest::prefix_for(self.owner.as_str(), self.module.identity());
        format!("{}{prefix}", self.kind.meta_root())
    }

    pub(super) fn journal_key(&self) -> String {
        format!(
            "{}journal/{}/{}",
            self.kind.meta_root(),
            self.owner,
            self.module.identity()
        )
    }

    /// Where the paths a batch may write in place are recorded (stores that
    /// write in place only); one document per batch, named by its number.
    pub(super) fn intent_prefix(&self) -> String {
        format!(
            "{}intent/{}/{}",
            self.kind.meta_root(),
            self.owner,
            self.module.identity()
        )
    }

    pub(super) fn stage_prefix(&self) -> String {
        format!(
            "{}{}-{}",
            self.kind.stage_tag(),
            self.owner,
            self.module.short_name()
        )
    }

    /// `FROM -> TO: message`, the form of a warning about one item.
    pub(super) fn about(&self, message: impl std::fmt::Display) -> String {
        format!("{} -> {}: {message}", self.from.fqdn, self.to.fqdn)
    }
}

/// What a direction does. Each kind keeps its manifest, journal and staged
/// items under names of its own, so a failback or a restore into a pool's
/// `data/` never meets the replication's records at the same store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A pool's data into its replica at the partner.
    Replication,
    /// An active copy back home (failback, a moved CMS).
    Reverse,
    /// Missing items of a pool's data from its replica.
    Restore,
    /// Divergent items of a pool's data moved aside.
    Quarantine,
}

impl Kind {
    /// The folder of the kind's metadata (the replication's is the store's
    /// own, as it always was).
    fn meta_root(self) -> &'static str {
        match self {
            Kind::Replication => "",
            Kind::Reverse => "reverse/",
            Kind::Restore => "restore/",
            Kind::Quarantine => "quarantine/",
        }
    }

    /// Staged names start with this; `@` is in no FQDN, so no pool's
    /// replication prefix can start like another kind's.
    fn stage_tag(self) -> &'static str {
        match self {
            Kind::Replication => "",
            Kind::Reverse => "reverse@",
            Kind::Restore => "restore@",
            Kind::Quarantine => "quarantine@",
        }
    }
}

/// `data/<module>`: a pool's own data of one module.
pub(super) fn data_prefix(module: Module) -> ItemPath {
    prefix(&["data", module.identity()])
}

/// `backup/<pool>/<module>`: the replica of `pool`'s data at its partner.
pub(super) fn replica_prefix(pool: &Fqdn, module: Module) -> ItemPath {
    prefix(&["backup", pool.as_str(), module.identity()])
}

/// Why a direction failed: on the exporting side (reading the source, the guard)
/// or the importing side (writing the replica).
pub(super) enum DirectionFailure {
    Export(String),
    Import(String),
}

impl DirectionFailure {
    pub(super) fn export(e: StoreError) -> Self {
        DirectionFailure::Export(e.to_string())
    }
    pub(super) fn import(e: StoreError) -> Self {
        DirectionFailure::Import(e.to_string())
    }
    pub(super) fn message(&self) -> &str {
        match self {
            DirectionFailure::Export(m) | DirectionFailure::Import(m) => m,
        }
    }
}
