//! The typed objects scripts see: `Pool`, `Site`, `SyncReport`, `ModuleSyncReport`.
//!
//! Each is a plain snapshot with getters, a `to_string` record, a table row for
//! arrays, and a JSON form.

use std::fmt;

use rhai::{Array, Dynamic, Engine};
use serde::Serialize;

use super::property::{getter, method, typed_getter};
use crate::sync::{DirectionReport, SyncReport, human_bytes};
use crate::topology::{Deployment, Pool, Site};

/// What every typed script object offers the renderers.
pub trait ScriptObject: Clone + Serialize + fmt::Display + 'static {
    const TYPE_NAME: &'static str;
    /// Column names of the table an array of these renders as.
    fn columns() -> &'static [&'static str];
    fn row(&self) -> Vec<String>;
    /// Property names, for completion.
    fn properties() -> &'static [&'static str];
}

fn strings(items: &[String]) -> Array {
    items.iter().map(|s| Dynamic::from(s.clone())).collect()
}

/// An optional text: the text, or `()`.
pub(crate) fn opt(value: Option<&String>) -> Dynamic {
    value.map_or(Dynamic::UNIT, |v| Dynamic::from(v.clone()))
}

/// A pool, as `get_pool` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolObj {
    pub fqdn: String,
    pub identity: String,
    pub site: String,
    pub site_id: i64,
    pub backup_pool: Option<String>,
    pub computers: Vec<String>,
    pub services: Vec<String>,
    pub modules: Vec<String>,
    pub is_cms_master: bool,
    pub store: String,
    /// Where the pool's data was active when `get_pool(P)` read it (a list
    /// of pools does not read it: ask `.failover` of each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// Where a pool's data is active: its failover state, the pool whose store
/// holds the active copy, and the copy's folder or URL.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    pub state: String,
    pub active_at: String,
    pub active_copy: String,
    pub epoch: u64,
    pub since: Option<String>,
}

impl PoolObj {
    pub const PROPS: &'static [&'static str] = &[
        "fqdn",
        "identity",
        "site",
        "site_id",
        "backup_pool",
        "computers",
        "services",
        "modules",
        "is_cms_master",
        "store",
        "active_copy",
        "failover",
    ];

    #[must_use]
    pub fn new(d: &Deployment, p: &Pool) -> Self {
        PoolObj {
            fqdn: p.fqdn.to_string(),
            identity: p.fqdn.to_string(),
            site: p.site.clone(),
            site_id: i64::from(d.site_of(p).site_id),
            backup_pool: p.backup_pool.as_ref().map(std::string::ToString::to_string),
            computers: p.computers.clone(),
            services: p.services.clone(),
            modules: d
                .modules_of(p)
                .iter()
                .map(|m| m.identity().to_string())
                .collect(),
            is_cms_master: p.fqdn == d.cms_master,
            store: p.store.to_string(),
            placement: None,
        }
    }
}

impl fmt::Display for PoolObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Identity    : {}", self.fqdn)?;
        writeln!(f, "Site        : {} (site:{})", self.site, self.site_id)?;
        writeln!(
            f,
            "BackupPool  : {}",
            self.backup_pool.as_deref().unwrap_or("(none)")
        )?;
        writeln!(f, "Computers   : {}", self.computers.join(", "))?;
        writeln!(f, "Services    : {}", self.services.join(", "))?;
        writeln!(f, "Modules     : {}", self.modules.join(", "))?;
        writeln!(f, "IsCmsMaster : {}", self.is_cms_master)?;
        write!(f, "Store       : {}", self.store)?;
        if let Some(p) = &self.placement {
            let since = p
                .since
                .as_ref()
                .map(|t| format!(" since {t}"))
                .unwrap_or_default();
            write!(f, "\nFailover    : {}{since} (epoch {})", p.state, p.epoch)?;
            write!(f, "\nActiveAt    : {}", p.active_at)?;
            write!(f, "\nActiveCopy  : {}", p.active_copy)?;
        }
        Ok(())
    }
}

impl ScriptObject for PoolObj {
    const TYPE_NAME: &'static str = "Pool";
    fn columns() -> &'static [&'static str] {
        &["Identity", "Site", "BackupPool", "Computers", "CMS"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.fqdn.clone(),
            self.site.clone(),
            self.backup_pool.clone().unwrap_or_else(|| "(none)".into()),
            self.computers.len().to_string(),
            if self.is_cms_master {
                "yes".into()
            } else {
                String::new()
            },
        ]
    }
    fn properties() -> &'static [&'static str] {
        Self::PROPS
    }
}

/// A site, as `get_site` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct SiteObj {
    pub identity: String,
    pub site_id: i64,
    pub description: String,
    pub pools: Vec<String>,
}

impl SiteObj {
    pub const PROPS: &'static [&'static str] = &["identity", "site_id", "description", "pools"];

    #[must_use]
    pub fn new(d: &Deployment, s: &Site) -> Self {
        SiteObj {
            identity: s.identity.clone(),
            site_id: i64::from(s.site_id),
            description: s.description.clone(),
            pools: d.pools_in_site(s).map(|p| p.fqdn.to_string()).collect(),
        }
    }
}

impl fmt::Display for SiteObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Identity    : {}", self.identity)?;
        writeln!(f, "SiteId      : {}", self.site_id)?;
        writeln!(f, "Description : {}", self.description)?;
        write!(f, "Pools       : {}", self.pools.join(", "))
    }
}

impl ScriptObject for SiteObj {
    const TYPE_NAME: &'static str = "Site";
    fn columns() -> &'static [&'static str] {
        &["Identity", "SiteId", "Pools", "Description"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.identity.clone(),
            self.site_id.to_string(),
            self.pools.len().to_string(),
            self.description.clone(),
        ]
    }
    fn properties() -> &'static [&'static str] {
        Self::PROPS
    }
}

/// A sync report.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ReportObj(pub SyncReport);

impl ReportObj {
    pub const PROPS: &'static [&'static str] = &[
        "pool",
        "backup_pool",
        "what_if",
        "modules",
        "warnings",
        "items_copied",
        "bytes_copied",
        "items_deleted",
    ];
}

impl fmt::Display for ReportObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ScriptObject for ReportObj {
    const TYPE_NAME: &'static str = "SyncReport";
    fn columns() -> &'static [&'static str] {
        &[
            "Pool",
            "BackupPool",
            "Copied",
            "Bytes",
            "Deleted",
            "Warnings",
        ]
    }
    fn row(&self) -> Vec<String> {
        let r = &self.0;
        vec![
            r.pool.to_string(),
            r.backup_pool.to_string(),
            r.items_copied().to_string(),
            human_bytes(r.bytes_copied()),
            r.items_deleted().to_string(),
            r.warnings.len().to_string(),
        ]
    }
    fn properties() -> &'static [&'static str] {
        Self::PROPS
    }
}

/// One module and direction of a sync report.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ModuleReportObj(pub DirectionReport);

impl ModuleReportObj {
    pub const PROPS: &'static [&'static str] = &[
        "module",
        "from",
        "to",
        "items_copied",
        "bytes_copied",
        "items_deleted",
        "items_unchanged",
        "batches",
        "duration_ms",
        "export_status",
        "pending_items",
        "would_copy",
        "would_delete",
        "error",
    ];
}

impl fmt::Display for ModuleReportObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{} {} -> {}: {} copied ({}), {} deleted, {} unchanged, {} batches, {}",
            m.module.short_name(),
            m.from,
            m.to,
            m.items_copied,
            human_bytes(m.bytes_copied),
            m.items_deleted,
            m.items_unchanged,
            m.batches,
            m.export_status
        )
    }
}

impl ScriptObject for ModuleReportObj {
    const TYPE_NAME: &'static str = "ModuleSyncReport";
    fn columns() -> &'static [&'static str] {
        DirectionReport::COLUMNS
    }
    fn row(&self) -> Vec<String> {
        self.0.row()
    }
    fn properties() -> &'static [&'static str] {
        Self::PROPS
    }
}

/// A role, as `get_admin_role` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct AdminRoleObj {
    pub identity: String,
    pub cmdlets: Vec<String>,
    pub config_scopes: Vec<String>,
    pub is_standard_role: bool,
    pub template: String,
}

impl AdminRoleObj {
    pub const PROPS: &'static [&'static str] = &[
        "identity",
        "cmdlets",
        "config_scopes",
        "is_standard_role",
        "template",
    ];

    #[must_use]
    pub fn new(r: &crate::rbac::Role) -> Self {
        AdminRoleObj {
            identity: r.identity.clone(),
            cmdlets: r.cmdlets.clone(),
            config_scopes: r
                .scopes
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            is_standard_role: r.is_standard,
            template: r.template.clone(),
        }
    }
}

impl fmt::Display for AdminRoleObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Identity       : {}", self.identity)?;
        writeln!(f, "Cmdlets        : {}", self.cmdlets.join(", "))?;
        writeln!(f, "ConfigScopes   : {}", self.config_scopes.join(", "))?;
        writeln!(f, "IsStandardRole : {}", self.is_standard_role)?;
        write!(f, "Template       : {}", self.template)
    }
}

impl ScriptObject for AdminRoleObj {
    const TYPE_NAME: &'static str = "AdminRole";
    fn columns() -> &'static [&'static str] {
        &["Identity", "Standard", "ConfigScopes", "Cmdlets"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.identity.clone(),
            if self.is_standard_role {
                "yes".into()
            } else {
                String::new()
            },
            self.config_scopes.join(","),
            self.cmdlets.len().to_string(),
        ]
    }
    fn properties() -> &'static [&'static str] {
        Self::PROPS
    }
}

/// The operator running poolsync, as `get_operator` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorObj {
    pub name: String,
    pub roles: Vec<String>,
}

impl OperatorObj {
    pub const PROPS: &'static [&'static str] = &["name", "roles"];

    #[must_use]
    pub fn new(a: &crate::rbac::Access) -> Self {
        OperatorObj {
            name: a.operator.clone(),
            roles: a.roles.iter().map(|r| r.identity.clone()).collect(),
        }
    }
}

impl fmt::Display for OperatorObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Name  : {}", self.name)?;
        write!(f, "Roles : {}", self.roles.join(", "))
    }
}

impl ScriptObject for OperatorObj {
    const TYPE_NAME: &'static str = "Operator";
    fn columns() -> &'static [&'static str] {
        &["Name", "Roles"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.name.clone(), self.roles.join(", ")]
    }
    fn properties() -> &'static [&'static str] {
        Self::PROPS
    }
}

/// The one-line form of a typed object inside an array or a map, as Rhai's
/// `debug` and `print` of a container show it: `Pool(fqdn, site, ...)`.
pub fn debug_form<T: ScriptObject>(x: &T) -> String {
    format!("{}({})", T::TYPE_NAME, x.row().join(", "))
}

fn register_common<T: ScriptObject>(engine: &mut Engine) {
    engine.register_type_with_name::<T>(T::TYPE_NAME);
    method(engine, "to_string", |x: &mut T| x.to_string());
    method(engine, "to_debug", |x: &mut T| debug_form(x));
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Registers the types and their getters.
pub fn register(engine: &mut Engine) {
    super::record::register_all(engine);
    register_pool(engine);
    register_site(engine);
    register_report(engine);
    register_module_report(engine);
    register_rbac(engine);
}

fn register_pool(engine: &mut Engine) {
    register_common::<PoolObj>(engine);
    getter(engine, "fqdn", |p: &mut PoolObj| p.fqdn.clone());
    getter(engine, "identity", |p: &mut PoolObj| p.fqdn.clone());
    getter(engine, "site", |p: &mut PoolObj| p.site.clone());
    getter(engine, "site_id", |p: &mut PoolObj| p.site_id);
    // An FQDN, or () for a pool without a backup pool.
    getter(engine, "backup_pool", |p: &mut PoolObj| {
        opt(p.backup_pool.as_ref())
    });
    getter(engine, "computers", |p: &mut PoolObj| strings(&p.computers));
    getter(engine, "services", |p: &mut PoolObj| strings(&p.services));
    getter(engine, "modules", |p: &mut PoolObj| strings(&p.modules));
    getter(engine, "is_cms_master", |p: &mut PoolObj| p.is_cms_master);
    getter(engine, "store", |p: &mut PoolObj| p.store.clone());
    engine.register_fn("==", |a: PoolObj, b: PoolObj| a.fqdn == b.fqdn);
    engine.register_fn("!=", |a: PoolObj, b: PoolObj| a.fqdn != b.fqdn);
}

fn register_site(engine: &mut Engine) {
    register_common::<SiteObj>(engine);
    getter(engine, "identity", |s: &mut SiteObj| s.identity.clone());
    getter(engine, "site_id", |s: &mut SiteObj| s.site_id);
    getter(engine, "description", |s: &mut SiteObj| {
        s.description.clone()
    });
    getter(engine, "pools", |s: &mut SiteObj| strings(&s.pools));
}

fn register_report(engine: &mut Engine) {
    register_common::<ReportObj>(engine);
    getter(engine, "pool", |r: &mut ReportObj| r.0.pool.to_string());
    getter(engine, "backup_pool", |r: &mut ReportObj| {
        r.0.backup_pool.to_string()
    });
    getter(engine, "what_if", |r: &mut ReportObj| r.0.what_if);
    typed_getter(
        engine,
        "modules",
        &format!("[{}]", ModuleReportObj::TYPE_NAME),
        |r: &mut ReportObj| -> Array {
            r.0.modules
                .iter()
                .map(|m| Dynamic::from(ModuleReportObj(m.clone())))
                .collect()
        },
    );
    getter(engine, "warnings", |r: &mut ReportObj| {
        strings(&r.0.warnings)
    });
    getter(engine, "items_copied", |r: &mut ReportObj| {
        int(r.0.items_copied())
    });
    getter(engine, "bytes_copied", |r: &mut ReportObj| {
        int(r.0.bytes_copied())
    });
    getter(engine, "items_deleted", |r: &mut ReportObj| {
        int(r.0.items_deleted())
    });
}

fn register_module_report(engine: &mut Engine) {
    register_common::<ModuleReportObj>(engine);
    let paths = |items: &[crate::store::ItemPath]| -> Array {
        items.iter().map(|p| Dynamic::from(p.to_string())).collect()
    };
    getter(engine, "module", |m: &mut ModuleReportObj| {
        m.0.module.identity().to_string()
    });
    getter(engine, "from", |m: &mut ModuleReportObj| {
        m.0.from.to_string()
    });
    getter(engine, "to", |m: &mut ModuleReportObj| m.0.to.to_string());
    getter(engine, "items_copied", |m: &mut ModuleReportObj| {
        int(m.0.items_copied)
    });
    getter(engine, "bytes_copied", |m: &mut ModuleReportObj| {
        int(m.0.bytes_copied)
    });
    getter(engine, "items_deleted", |m: &mut ModuleReportObj| {
        int(m.0.items_deleted)
    });
    getter(engine, "items_unchanged", |m: &mut ModuleReportObj| {
        int(m.0.items_unchanged)
    });
    getter(engine, "batches", |m: &mut ModuleReportObj| {
        int(m.0.batches)
    });
    getter(engine, "duration_ms", |m: &mut ModuleReportObj| {
        int(m.0.duration_ms)
    });
    getter(engine, "export_status", |m: &mut ModuleReportObj| {
        m.0.export_status.to_string()
    });
    getter(engine, "pending_items", |m: &mut ModuleReportObj| {
        int(m.0.pending_items)
    });
    getter(engine, "would_copy", move |m: &mut ModuleReportObj| {
        paths(&m.0.would_copy)
    });
    getter(engine, "would_delete", move |m: &mut ModuleReportObj| {
        paths(&m.0.would_delete)
    });
    // A message, or () when the direction did not fail.
    getter(engine, "error", |m: &mut ModuleReportObj| {
        opt(m.0.error.as_ref())
    });
}

/// Registers the role and operator types.
fn register_rbac(engine: &mut Engine) {
    register_common::<AdminRoleObj>(engine);
    getter(engine, "identity", |r: &mut AdminRoleObj| {
        r.identity.clone()
    });
    getter(engine, "cmdlets", |r: &mut AdminRoleObj| {
        strings(&r.cmdlets)
    });
    getter(engine, "config_scopes", |r: &mut AdminRoleObj| {
        strings(&r.config_scopes)
    });
    getter(engine, "is_standard_role", |r: &mut AdminRoleObj| {
        r.is_standard_role
    });
    getter(engine, "template", |r: &mut AdminRoleObj| {
        r.template.clone()
    });
    register_common::<OperatorObj>(engine);
    getter(engine, "name", |o: &mut OperatorObj| o.name.clone());
    getter(engine, "roles", |o: &mut OperatorObj| strings(&o.roles));
}

/// Every property the engine has a getter for, by the type it belongs to
/// (`Pool` → `fqdn`, `identity`, ...): what completion offers after a `.`,
/// read from the engine, so it is what scripts can really use.
pub fn properties(engine: &Engine) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_type = std::collections::BTreeMap::<String, Vec<String>>::default();
    for signature in engine.gen_fn_signatures(false) {
        let Some(rest) = signature.strip_prefix("get$") else {
            continue;
        };
        let Some((name, params)) = rest.split_once('(') else {
            continue;
        };
        let first = params.split([',', ')']).next().unwrap_or_default();
        let ty = first.rsplit(':').next().unwrap_or_default().trim();
        by_type
            .entry(ty.to_string())
            .or_default()
            .push(name.to_string());
    }
    by_type
}

/// Property names of a typed value, for completion after a `.`.
#[must_use]
pub fn properties_of(value: &Dynamic) -> Option<&'static [&'static str]> {
    if value.is::<PoolObj>() {
        Some(PoolObj::properties())
    } else if value.is::<SiteObj>() {
        Some(SiteObj::properties())
    } else if value.is::<ReportObj>() {
        Some(ReportObj::properties())
    } else if value.is::<ModuleReportObj>() {
        Some(ModuleReportObj::properties())
    } else if value.is::<AdminRoleObj>() {
        Some(AdminRoleObj::properties())
    } else if value.is::<OperatorObj>() {
        Some(OperatorObj::properties())
    } else if let Some(fields) = super::record::fields_any(value) {
        Some(fields)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::record::{self, RecordKind};

    /// The property list of a type (what completion of a value offers),
    /// compared with the getters the engine has for it.
    fn same<'a>(
        registered: &std::collections::BTreeMap<String, Vec<String>>,
        type_name: &str,
        listed: impl IntoIterator<Item = &'a &'static str>,
    ) {
        let mut listed: Vec<&str> = listed.into_iter().copied().collect();
        listed.sort_unstable();
        let mut got: Vec<&str> = registered
            .get(type_name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        got.sort_unstable();
        assert_eq!(
            listed, got,
            "{type_name}: listed properties against getters"
        );
    }

    #[test]
    fn every_listed_property_is_a_getter_and_every_getter_is_listed() {
        let engine = crate::script::definitions::engine().unwrap();
        let registered = properties(&engine);
        let mut checked = std::collections::BTreeSet::new();
        let mut check = |name: &'static str, listed: &[&'static str]| {
            same(&registered, name, listed);
            checked.insert(name.to_string());
        };
        check(PoolObj::TYPE_NAME, PoolObj::properties());
        check(SiteObj::TYPE_NAME, SiteObj::properties());
        check(ReportObj::TYPE_NAME, ReportObj::properties());
        check(ModuleReportObj::TYPE_NAME, ModuleReportObj::properties());
        check(AdminRoleObj::TYPE_NAME, AdminRoleObj::properties());
        check(OperatorObj::TYPE_NAME, OperatorObj::properties());
        check(record::StatusKind::TYPE_NAME, record::StatusKind::FIELDS);
        check(
            record::ModuleStatusKind::TYPE_NAME,
            record::ModuleStatusKind::FIELDS,
        );
        check(record::ConfigKind::TYPE_NAME, record::ConfigKind::FIELDS);
        check(
            record::ReplicationKind::TYPE_NAME,
            record::ReplicationKind::FIELDS,
        );
        check(
            record::ReplicaCheckKind::TYPE_NAME,
            record::ReplicaCheckKind::FIELDS,
        );
        check(
            record::FailoverKind::TYPE_NAME,
            record::FailoverKind::FIELDS,
        );
        check(
            record::FailoverStatusKind::TYPE_NAME,
            record::FailoverStatusKind::FIELDS,
        );
        check(
            record::ModuleLossKind::TYPE_NAME,
            record::ModuleLossKind::FIELDS,
        );
        check(
            record::QuarantineKind::TYPE_NAME,
            record::QuarantineKind::FIELDS,
        );
        // Every type with getters is one of those above.
        let registered: std::collections::BTreeSet<String> = registered.keys().cloned().collect();
        assert_eq!(registered, checked);
    }
}
