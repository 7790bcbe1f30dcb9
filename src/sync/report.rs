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
    /// When it started (ns since the epoch), before the source was listed.
    #[serde(skip)]
    pub started_ns: i64,
    /// It looked at changed paths only (the service's watcher), not the
    /// whole source.
    #[serde(skip)]
    pub scoped: bool,
}

impl DirectionReport {
    /// A direction that has done nothing yet.
    #[must_use]
    pub fn new(module: Module, from: &Fqdn, to: &Fqdn) -> Self {
        DirectionReport {
            module,
            from: from.clone(),
            to: to.clone(),
            items_copied: 0,
            bytes_copied: 0,
            items_deleted: 0,
            items_unchanged: 0,
            batches: 0,
            duration_ms: 0,
            export_status: ExportState::NotInitialized,
            pending_items: 0,
            would_copy: Vec::new(),
            would_delete: Vec::new(),
            error: None,
            started_ns: crate::store::system_time_ns(std::time::SystemTime::now()),
            scoped: false,
        }
    }

    /// The column names of [`DirectionReport::row`].
    pub const COLUMNS: &[&str] = &[
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
    ];

    /// The report as a table row: a sync report's table, and an array of
    /// module reports in a script.
    #[must_use]
    pub fn row(&self) -> Vec<String> {
        vec![
            self.module.short_name().to_string(),
            self.from.to_string(),
            self.to.to_string(),
            self.items_copied.to_string(),
            human_bytes(self.bytes_copied),
            self.items_deleted.to_string(),
            self.items_unchanged.to_string(),
            self.batches.to_string(),
            self.duration_ms.to_string(),
            self.export_status.to_string(),
        ]
    }
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
    /// A report with nothing in it yet.
    #[must_use]
    pub fn empty(pool: &Fqdn, backup_pool: &Fqdn, what_if: bool) -> Self {
        SyncReport {
            pool: pool.clone(),
            backup_pool: backup_pool.clone(),
            what_if,
            modules: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[must_use]
    pub fn items_copied(&self) -> u64 {
        self.modules.iter().map(|m| m.items_copied).sum()
    }

    #[must_use]
    pub fn bytes_copied(&self) -> u64 {
        self.modules.iter().map(|m| m.bytes_copied).sum()
    }

    #[must_use]
    pub fn items_deleted(&self) -> u64 {
        self.modules.iter().map(|m| m.items_deleted).sum()
    }

    /// The failures of the directions that failed.
    #[must_use]
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
#[must_use]
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
        let mut table = crate::table::table(DirectionReport::COLUMNS.iter().copied());
        for m in &self.modules {
            table.add_row(m.row());
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
