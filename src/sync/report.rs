//! What a sync did (or, with `what_if`, would do).

use std::fmt;

use serde::Serialize;

use super::ExportState;
use crate::store::ItemPath;
use crate::topology::{Fqdn, Module};

/// One module in one direction.
#[derive(Debug, Clone, Serialize)]
pub struct DirectionReport {
    pub module: Module,
    pub from: Fqdn,
    pub to: Fqdn,
    pub items_copied: u64,
    pub bytes_copied: u64,
    pub items_deleted: u64,
    pub items_unchanged: u64,
    pub batches: u64,
    pub duration_ms: u64,
    pub export_status: ExportState,
    /// Items still to ship (a per-cycle batch limit, an unreadable item).
    pub pending_items: u64,
    /// With `what_if`: the items that would be copied and deleted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_copy: Vec<ItemPath>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_delete: Vec<ItemPath>,
    /// The fatal error of this module and direction, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of one `invoke_backup_service_sync` of a pair.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub pool: Fqdn,
    pub backup_pool: Fqdn,
    pub what_if: bool,
    pub modules: Vec<DirectionReport>,
    pub warnings: Vec<String>,
}

impl Serialize for SyncReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SyncReport", 8)?;
        st.serialize_field("pool", &self.pool)?;
        st.serialize_field("backup_pool", &self.backup_pool)?;
        st.serialize_field("what_if", &self.what_if)?;
        st.serialize_field("items_copied", &self.items_copied())?;
        st.serialize_field("bytes_copied", &self.bytes_copied())?;
        st.serialize_field("items_deleted", &self.items_deleted())?;
        st.serialize_field("modules", &self.modules)?;
        st.serialize_field("warnings", &self.warnings)?;
        st.end()
    }
}

impl SyncReport {
    pub fn items_copied(&self) -> u64 {
        self.modules.iter().map(|m| m.items_copied).sum()
    }

    pub fn bytes_copied(&self) -> u64 {
        self.modules.iter().map(|m| m.bytes_copied).sum()
    }

    pub fn items_deleted(&self) -> u64 {
        self.modules.iter().map(|m| m.items_deleted).sum()
    }

    /// The failures of the directions that failed.
    pub fn errors(&self) -> Vec<String> {
        self.modules
            .iter()
            .filter_map(|m| {
                m.error
                    .as_ref()
                    .map(|e| format!("{} {} -> {}: {e}", m.module.short_name(), m.from, m.to))
            })
            .collect()
    }
}

/// `12.3 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.what_if { "would sync" } else { "synced" };
        writeln!(f, "{verb} {} <-> {}", self.pool, self.backup_pool)?;
        let mut table = crate::table::table([
            "Module",
            "From",
            "To",
            "Copied",
            "Bytes",
            "Deleted",
            "Unchanged",
            "Batches",
            "ms",
            "ExportStatus",
        ]);
        for m in &self.modules {
            table.add_row(vec![
                m.module.short_name().to_string(),
                m.from.to_string(),
                m.to.to_string(),
                m.items_copied.to_string(),
                human_bytes(m.bytes_copied),
                m.items_deleted.to_string(),
                m.items_unchanged.to_string(),
                m.batches.to_string(),
                m.duration_ms.to_string(),
                m.export_status.to_string(),
            ]);
        }
        write!(f, "{}", crate::table::render(&table))?;
        for e in self.errors() {
            write!(f, "\nerror: {e}")?;
        }
        match self.warnings.len() {
            0 => {}
            1 => write!(f, "\n1 warning (see .warnings)")?,
            n => write!(f, "\n{n} warnings (see .warnings)")?,
        }
        Ok(())
    }
}
