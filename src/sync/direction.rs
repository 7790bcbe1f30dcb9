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
    /// Where the items are at `src`, and where they go at `dst`.
    source: ItemPath,
    dest: ItemPath,
}

/// `a/b/c` from segments that are each a valid item name.
fn prefix(segments: &[&str]) -> ItemPath {
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
            source: data_prefix(module),
            dest: replica_prefix(&from.fqdn, module),
        }
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
        Manifest::prefix_for(self.owner.as_str(), self.module.identity())
    }

    pub(super) fn journal_key(&self) -> String {
        format!("journal/{}/{}", self.owner, self.module.identity())
    }

    /// Where the paths a batch may write in place are recorded (stores that
    /// write in place only); one document per batch, named by its number.
    pub(super) fn intent_prefix(&self) -> String {
        format!("intent/{}/{}", self.owner, self.module.identity())
    }

    pub(super) fn stage_prefix(&self) -> String {
        format!("{}-{}", self.owner, self.module.short_name())
    }

    /// `FROM -> TO: message`, the form of a warning about one item.
    pub(super) fn about(&self, message: impl std::fmt::Display) -> String {
        format!("{} -> {}: {message}", self.from.fqdn, self.to.fqdn)
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
