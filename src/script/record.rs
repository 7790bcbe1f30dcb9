//! Typed read-only records for the status, configuration and replication
//! results: one Rust type per kind (so scripts see `BackupServiceStatus`, not a
//! map), fields read as properties, a record or table when printed, JSON as-is.

use std::fmt;
use std::marker::PhantomData;

use crate::printable::printable;
use rhai::{Dynamic, Engine, EvalAltResult, Map, Position};

use super::property::{method, typed_getter};

/// What distinguishes one kind of record.
pub trait RecordKind: Clone + Send + Sync + 'static {
    const TYPE_NAME: &'static str;
    /// Property names, in display order.
    const FIELDS: &'static [&'static str];
    /// Columns of the table an array of these renders as.
    const COLUMNS: &'static [&'static str];
    /// Fields whose empty value means "cannot be told now" and is printed
    /// as `unknown` (an empty last error means none; an empty pending count
    /// does not mean zero).
    const UNKNOWN_WHEN_EMPTY: &'static [&'static str] = &[];
    /// The type of each field, in [`Self::FIELDS`]' order, as the definition
    /// files name it (`string`, `int`, `[ModuleStatus]`; `?` for a value that
    /// may be `()`).
    fn field_types() -> Vec<&'static str>;
    /// Text printed after the record's fields and tables (what the table
    /// only counts, named).
    #[must_use]
    fn details(_fields: &Map) -> String {
        String::new()
    }
}

/// A record of kind `K`.
#[derive(Clone)]
pub struct Record<K: RecordKind> {
    pub fields: Map,
    pub json: serde_json::Value,
    kind: PhantomData<K>,
}

fn cell(v: &Dynamic) -> String {
    if v.is_unit() {
        String::new()
    } else if v.is_array() {
        let n = v.clone().into_array().map_or(0, |a| a.len());
        format!("[{n}]")
    } else if v.is_string() {
        v.clone().into_string().unwrap_or_default()
    } else if let Some(text) = debug_any(v) {
        text
    } else {
        v.to_string()
    }
}

/// A value shown as fields of its own below its name: a record, a map, or
/// an array of maps (one block each); `None` for anything shown on one line.
fn block(value: &Dynamic) -> Option<String> {
    if let Some(text) = render_any(value) {
        return Some(text);
    }
    if let Some(map) = value.read_lock::<Map>() {
        let fields: Vec<(&str, &Dynamic)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
        return Some(fields_text(&fields));
    }
    let items = value.read_lock::<rhai::Array>()?;
    if items.is_empty() || !items.iter().all(rhai::Dynamic::is::<Map>) {
        return None;
    }
    let blocks: Vec<String> = items.iter().filter_map(block).collect();
    Some(blocks.join("\n\n"))
}

/// `name : value` lines, the names padded to the longest; a value that is a
/// [`block`] follows its name, indented.
fn fields_text(fields: &[(&str, &Dynamic)]) -> String {
    let width = fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let lines: Vec<String> = fields
        .iter()
        .map(|(name, value)| match block(value) {
            Some(text) => format!("{name:<width$} :\n{}", indent(&text)),
            None => format!("{name:<width$} : {}", inline(value)),
        })
        .collect();
    lines.join("\n")
}

/// A value on one line: an array of strings joined, anything else its cell.
fn inline(value: &Dynamic) -> String {
    let Some(items) = value.read_lock::<rhai::Array>() else {
        return cell(value);
    };
    if items.iter().all(rhai::Dynamic::is_string) {
        items.iter().map(cell).collect::<Vec<_>>().join(", ")
    } else {
        format!("[{} entries]", items.len())
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl<K: RecordKind> Record<K> {
    /// A record with the given fields (as script values) and JSON form.
    #[must_use]
    pub fn new(fields: Map, json: serde_json::Value) -> Self {
        Record {
            fields,
            json,
            kind: PhantomData,
        }
    }

    /// Builds one from a serialisable value; nested values become maps/arrays.
    pub fn from_serde<T: serde::Serialize>(value: &T) -> Self {
        let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        let fields = rhai::serde::to_dynamic(&json)
            .ok()
            .and_then(rhai::Dynamic::try_cast::<Map>)
            .unwrap_or_default();
        Record::new(fields, json)
    }

    /// The same record with field `name` (an array in the JSON form) as
    /// records of kind `N`: a table when printed, fields in their order.
    #[must_use]
    pub fn nest<N: RecordKind>(mut self, name: &str) -> Self {
        if let Some(items) = self.json.get(name).and_then(|v| v.as_array()) {
            let records: rhai::Array = items
                .iter()
                .map(|item| Dynamic::from(Record::<N>::from_serde(item)))
                .collect();
            self.fields
                .insert(name.into(), Dynamic::from_array(records));
        }
        self
    }

    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Dynamic> {
        self.fields.get(name)
    }

    #[must_use]
    pub fn row(&self) -> Vec<String> {
        K::COLUMNS
            .iter()
            .map(|c| self.get(c).map(|v| Self::text(c, v)).unwrap_or_default())
            .collect()
    }

    /// A field's value as text.
    fn text(name: &str, value: &Dynamic) -> String {
        if value.is_unit() && K::UNKNOWN_WHEN_EMPTY.contains(&name) {
            "unknown".to_string()
        } else {
            cell(value)
        }
    }

    /// A field's value on one line of the printed record.
    fn inline_text(&self, name: &str, value: &Dynamic) -> String {
        if value.is_array() {
            inline(value)
        } else {
            Self::text(name, value)
        }
    }

    /// The one-line form inside an array or a map: `Status(...)`.
    #[must_use]
    pub fn debug_form(&self) -> String {
        format!("{}({})", K::TYPE_NAME, self.row().join(", "))
    }
}

impl<K: RecordKind> fmt::Display for Record<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = K::FIELDS.iter().map(|n| n.len()).max().unwrap_or(0);
        let mut first = true;
        // Nested records (a status's modules) follow as a table after the fields.
        let mut nested: Vec<String> = Vec::new();
        for name in K::FIELDS {
            let Some(value) = self.get(name) else {
                continue;
            };
            if !first {
                writeln!(f)?;
            }
            first = false;
            if let Some(items) = value.read_lock::<rhai::Array>()
                && !items.is_empty()
                && let Some(table) = table_any(&items)
            {
                nested.push(table);
                write!(f, "{name:<width$} : {} (below)", items.len())?;
            } else if let Some(text) = block(value) {
                write!(f, "{name:<width$} :\n{}", indent(&text))?;
            } else {
                write!(f, "{name:<width$} : {}", self.inline_text(name, value))?;
            }
        }
        for table in nested {
            write!(f, "\n\n{table}")?;
        }
        let details = K::details(&self.fields);
        if !details.is_empty() {
            write!(f, "\n\n{details}")?;
        }
        Ok(())
    }
}

/// Registers kind `K`: its type name, a getter for each field, `to_string`.
/// The indexer (`status["pool_fqdn"]`) also serves a property without a
/// getter (`status.no_such`), with an error that lists the fields.
pub fn register<K: RecordKind>(engine: &mut Engine) {
    engine.register_type_with_name::<Record<K>>(K::TYPE_NAME);
    for (name, ty) in K::FIELDS.iter().zip(K::field_types()) {
        typed_getter(engine, name, ty, move |r: &mut Record<K>| {
            r.get(name).cloned().unwrap_or(Dynamic::UNIT)
        });
    }
    engine.register_indexer_get(
        |r: &mut Record<K>, name: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            r.get(name).cloned().ok_or_else(|| {
                Box::new(EvalAltResult::ErrorRuntime(
                    format!(
                        "{} has no property '{}': it has {}",
                        K::TYPE_NAME,
                        printable(name),
                        K::FIELDS.join(", ")
                    )
                    .into(),
                    Position::NONE,
                ))
            })
        },
    );
    method(engine, "to_string", |r: &mut Record<K>| r.to_string());
    method(engine, "to_debug", |r: &mut Record<K>| r.debug_form());
}

/// A record kind: its type name, its fields with their types (`name:
/// "type"`, or `fields = LIST, types = FN` for a list defined elsewhere) and
/// its table's columns.
macro_rules! kind {
    ($name:ident, $type_name:literal, [$($field:ident: $ty:literal),* $(,)?], [$($col:literal),* $(,)?] $(, details = $details:path)? $(, unknown = $unknown:expr)?) => {
        kind!($name, $type_name, fields = &[$(stringify!($field)),*], types = || vec![$($ty),*], [$($col),*] $(, details = $details)? $(, unknown = $unknown)?);
    };
    ($name:ident, $type_name:literal, fields = $fields:expr, types = $types:expr, [$($col:literal),* $(,)?] $(, details = $details:path)? $(, unknown = $unknown:expr)?) => {
        #[derive(Clone)]
        pub struct $name;
        impl RecordKind for $name {
            const TYPE_NAME: &'static str = $type_name;
            const FIELDS: &'static [&'static str] = $fields;
            const COLUMNS: &'static [&'static str] = &[$($col),*];
            $(const UNKNOWN_WHEN_EMPTY: &'static [&'static str] = $unknown;)?
            fn field_types() -> Vec<&'static str> {
                let types: fn() -> Vec<&'static str> = $types;
                types()
            }
            $(
                fn details(fields: &Map) -> String {
                    $details(fields)
                }
            )?
        }
    };
}

/// Items a printed replication report names per list, before `and N more`.
pub const NAMED_ITEMS: usize = 20;

/// The items a replication report's table only counts: for each module and
/// direction out of sync, the first [`NAMED_ITEMS`] missing, extra and
/// different items, then how many more (`--json` has every one).
fn replication_items(fields: &Map) -> String {
    let Some(modules) = fields
        .get("modules")
        .and_then(|m| m.clone().into_array().ok())
    else {
        return String::new();
    };
    let mut out = Vec::new();
    for module in &modules {
        let Some(check) = module.read_lock::<Record<ReplicaCheckKind>>() else {
            continue;
        };
        let text = |name: &str| check.get(name).map(cell).unwrap_or_default();
        for list in ["missing", "extra", "different"] {
            let items = check
                .get(list)
                .and_then(|v| v.clone().into_array().ok())
                .unwrap_or_default();
            if items.is_empty() {
                continue;
            }
            out.push(format!(
                "{} {} -> {}: {} {list}:",
                text("module"),
                text("from"),
                text("to"),
                items.len()
            ));
            out.extend(
                items
                    .iter()
                    .take(NAMED_ITEMS)
                    .map(|i| format!("  {}", cell(i))),
            );
            if items.len() > NAMED_ITEMS {
                out.push(format!("  and {} more", items.len() - NAMED_ITEMS));
            }
        }
    }
    out.join("\n")
}

kind!(
    StatusKind,
    "BackupServiceStatus",
    [
        pool_fqdn: "string",
        backup_pool_fqdn: "string",
        overall_export_status: "string",
        overall_import_status: "string",
        backup_modules: "[ModuleStatus]",
        failover: "FailoverStatus",
    ],
    [
        "pool_fqdn",
        "overall_export_status",
        "overall_import_status"
    ]
);
kind!(
    ModuleStatusKind,
    "ModuleStatus",
    [
        identity: "string",
        export_status: "string",
        import_status: "string",
        last_export_time: "?",
        last_import_time: "?",
        pending_items: "?",
        pending_bytes: "?",
        export_lag_ms: "?",
        import_lag_ms: "?",
        last_error: "?",
    ],
    [
        "identity",
        "export_status",
        "import_status",
        "pending_items",
        "export_lag_ms",
        "last_export_time",
        "last_error"
    ],
    unknown = &[
        "pending_items",
        "pending_bytes",
        "export_lag_ms",
        "import_lag_ms"
    ]
);

/// The type of each setting, read from the defaults: a duration is a string.
fn setting_types() -> Vec<&'static str> {
    use serde_json::Value;
    let defaults =
        serde_json::to_value(crate::topology::BackupServiceSettings::default()).unwrap_or_default();
    crate::topology::settings::SETTING_NAMES
        .iter()
        .map(|name| match defaults.get(name) {
            Some(Value::String(_)) => "string",
            Some(Value::Bool(_)) => "bool",
            Some(Value::Number(_)) => "int",
            _ => "?",
        })
        .collect()
}

// The settings, as `[backup_service]` names them.
kind!(
    ConfigKind,
    "BackupServiceConfiguration",
    fields = &crate::topology::settings::SETTING_NAMES,
    types = setting_types,
    ["sync_interval", "max_concurrent_calls"]
);
kind!(
    ReplicationKind,
    "ReplicationReport",
    [
        pool: "string",
        backup_pool: "string",
        in_sync: "bool",
        modules: "[ReplicaCheck]",
    ],
    ["pool", "backup_pool", "in_sync"],
    details = replication_items
);
kind!(
    ReplicaCheckKind,
    "ReplicaCheck",
    [
        module: "string",
        from: "string",
        to: "string",
        in_sync: "bool",
        source_items: "int",
        replica_items: "int",
        missing: "[string]",
        extra: "[string]",
        different: "[string]",
        manifest_mismatches: "[string]",
    ],
    [
        "module",
        "from",
        "to",
        "in_sync",
        "missing",
        "extra",
        "different",
        "manifest_mismatches"
    ]
);

kind!(
    FailoverKind,
    "FailoverReport",
    [
        action: "string",
        pool: "string",
        backup_pool: "string",
        what_if: "bool",
        mode: "?",
        epoch: "int",
        phase: "string",
        active_at: "string",
        active_copy: "string",
        duration_ms: "int",
        items_lost: "?",
        loss: "[ModuleLoss]",
        modules: "[map]",
        quarantine: "?",
        would_quarantine: "[string]",
        would_restore: "[string]",
        warnings: "[string]",
    ],
    [
        "action",
        "pool",
        "phase",
        "active_at",
        "epoch",
        "items_lost"
    ]
);

kind!(
    FailoverStatusKind,
    "FailoverStatus",
    [
        state: "string",
        active_at: "string",
        active_copy: "string",
        epoch: "int",
        since: "?",
        last_failover_mode: "?",
        last_failover_items_lost: "?",
        last_failover_loss: "[ModuleLoss]",
        quarantines: "[Quarantine]",
        cms_active_at: "?",
        notes: "[string]",
    ],
    ["state", "active_at", "epoch", "since"]
);

kind!(
    ModuleLossKind,
    "ModuleLoss",
    [
        module: "string",
        last_sync: "?",
        changed_items: "?",
        changed: "[string]",
    ],
    ["module", "last_sync", "changed_items"]
);

kind!(
    QuarantineKind,
    "Quarantine",
    [
        folder: "string",
        items: "int",
        paths: "[string]",
        deleted_at_home: "int",
        deleted_at_home_paths: "[string]",
    ],
    ["folder", "items", "deleted_at_home"]
);

/// Registers every record kind.
pub fn register_all(engine: &mut Engine) {
    register::<StatusKind>(engine);
    register::<ModuleStatusKind>(engine);
    register::<ConfigKind>(engine);
    register::<ReplicationKind>(engine);
    register::<ReplicaCheckKind>(engine);
    register::<FailoverKind>(engine);
    register::<FailoverStatusKind>(engine);
    register::<ModuleLossKind>(engine);
    register::<QuarantineKind>(engine);
}

/// `$one::<K>($arg)` for each record kind `K` in turn: the first `Some`.
macro_rules! each_kind {
    ($one:ident, $arg:expr) => {
        $one::<StatusKind>($arg)
            .or_else(|| $one::<ModuleStatusKind>($arg))
            .or_else(|| $one::<ConfigKind>($arg))
            .or_else(|| $one::<ReplicationKind>($arg))
            .or_else(|| $one::<ReplicaCheckKind>($arg))
            .or_else(|| $one::<FailoverKind>($arg))
            .or_else(|| $one::<FailoverStatusKind>($arg))
            .or_else(|| $one::<ModuleLossKind>($arg))
            .or_else(|| $one::<QuarantineKind>($arg))
    };
}

/// Renders a record of any kind (for the value printer).
#[must_use]
pub fn render_any(value: &Dynamic) -> Option<String> {
    fn one<K: RecordKind>(v: &Dynamic) -> Option<String> {
        v.read_lock::<Record<K>>().map(|r| r.to_string())
    }
    each_kind!(one, value)
}

/// A table for an array of records of one kind.
#[must_use]
pub fn table_any(items: &[Dynamic]) -> Option<String> {
    fn one<K: RecordKind>(items: &[Dynamic]) -> Option<String> {
        if !items.iter().all(rhai::Dynamic::is::<Record<K>>) {
            return None;
        }
        let mut table = crate::table::table(K::COLUMNS.iter().copied());
        for v in items {
            if let Some(r) = v.read_lock::<Record<K>>() {
                table.add_row(r.row());
            }
        }
        Some(crate::table::render(&table))
    }
    each_kind!(one, items)
}

/// [`Record::debug_form`] of any record.
#[must_use]
pub fn debug_any(value: &Dynamic) -> Option<String> {
    fn one<K: RecordKind>(v: &Dynamic) -> Option<String> {
        v.read_lock::<Record<K>>().map(|r| r.debug_form())
    }
    each_kind!(one, value)
}

/// The JSON of a record of any kind.
#[must_use]
pub fn json_any(value: &Dynamic) -> Option<serde_json::Value> {
    fn one<K: RecordKind>(v: &Dynamic) -> Option<serde_json::Value> {
        v.read_lock::<Record<K>>().map(|r| r.json.clone())
    }
    each_kind!(one, value)
}

/// Properties of a record of any kind (for completion).
#[must_use]
pub fn fields_any(value: &Dynamic) -> Option<&'static [&'static str]> {
    fn one<K: RecordKind>(v: &Dynamic) -> Option<&'static [&'static str]> {
        v.is::<Record<K>>().then_some(K::FIELDS)
    }
    each_kind!(one, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns_are_fields<K: RecordKind>() {
        assert_eq!(K::field_types().len(), K::FIELDS.len(), "{}", K::TYPE_NAME);
        for column in K::COLUMNS {
            assert!(
                K::FIELDS.contains(column),
                "{}: column {column} is not one of its fields {:?}",
                K::TYPE_NAME,
                K::FIELDS
            );
        }
    }

    #[test]
    fn every_column_is_a_field_and_every_field_has_a_type() {
        columns_are_fields::<StatusKind>();
        columns_are_fields::<ModuleStatusKind>();
        columns_are_fields::<ConfigKind>();
        columns_are_fields::<ReplicationKind>();
        columns_are_fields::<ReplicaCheckKind>();
        columns_are_fields::<FailoverKind>();
        columns_are_fields::<FailoverStatusKind>();
        columns_are_fields::<ModuleLossKind>();
        columns_are_fields::<QuarantineKind>();
    }

    #[test]
    fn a_setting_is_typed_as_its_value() {
        let types = ConfigKind::field_types();
        let of = |name: &str| {
            let at = ConfigKind::FIELDS.iter().position(|f| *f == name).unwrap();
            types[at]
        };
        assert_eq!(of("sync_interval"), "string");
        assert_eq!(of("max_concurrent_calls"), "int");
        assert_eq!(of("watch_changes"), "bool");
        assert!(!types.contains(&"?"), "{types:?}");
    }

    #[test]
    fn the_configuration_shows_every_setting_in_order() {
        let record =
            Record::<ConfigKind>::from_serde(&crate::topology::BackupServiceSettings::default());
        let text = record.to_string();
        let shown: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(shown, crate::topology::settings::SETTING_NAMES);
    }
}
