//! Showing script values: readable text for people, JSON for programs.

use rhai::{Array, Dynamic, Map};

use super::types::{
    AdminRoleObj, ModuleReportObj, OperatorObj, PoolObj, ReportObj, ScriptObject, SiteObj,
    debug_form,
};

/// `$one::<T>($arg)` for each typed object `T` in turn: the first `Some`.
macro_rules! each_object {
    ($one:ident, $arg:expr) => {
        $one::<PoolObj>($arg)
            .or_else(|| $one::<SiteObj>($arg))
            .or_else(|| $one::<ReportObj>($arg))
            .or_else(|| $one::<ModuleReportObj>($arg))
            .or_else(|| $one::<AdminRoleObj>($arg))
            .or_else(|| $one::<OperatorObj>($arg))
    };
}

fn table_of<T: ScriptObject>(items: &Array) -> Option<String> {
    if !items.iter().all(rhai::Dynamic::is::<T>) {
        return None;
    }
    let mut table = crate::table::table(T::columns().iter().copied());
    for v in items {
        if let Some(obj) = v.read_lock::<T>() {
            table.add_row(obj.row());
        }
    }
    Some(crate::table::render(&table))
}

fn record_of<T: ScriptObject>(value: &Dynamic) -> Option<String> {
    value.read_lock::<T>().map(|v| v.to_string())
}

/// Text for a value: a typed object as a record, an array of typed objects as a
/// table, strings as they are, an array of strings one per line, anything else in
/// Rhai's debug form ([`debug_text`]). `None` for `()`.
#[must_use]
pub fn render(value: &Dynamic) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if value.is_string() {
        return Some(value.clone().into_string().unwrap_or_default());
    }
    if let Some(text) = each_object!(record_of, value).or_else(|| super::record::render_any(value))
    {
        return Some(text);
    }
    if value.is_array() {
        let items = value.read_lock::<Array>()?;
        if items.is_empty() {
            return Some("[]".into());
        }
        if let Some(t) = each_object!(table_of, &items).or_else(|| super::record::table_any(&items))
        {
            return Some(t);
        }
        if items.iter().all(rhai::Dynamic::is_string) {
            return Some(
                items
                    .iter()
                    .map(|v| v.clone().into_string().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }
    Some(debug_text(value))
}

fn debug_of<T: ScriptObject>(value: &Dynamic) -> Option<String> {
    value.read_lock::<T>().map(|v| debug_form(&*v))
}

/// Rhai's debug form (what `print` shows of an array or a map), typed objects
/// included: Rust's `Debug` of a `Dynamic` shows only their Rust type name.
pub fn debug_text(value: &Dynamic) -> String {
    if let Some(text) = each_object!(debug_of, value).or_else(|| super::record::debug_any(value)) {
        return text;
    }
    if let Some(items) = value.read_lock::<Array>() {
        let items: Vec<String> = items.iter().map(debug_text).collect();
        return format!("[{}]", items.join(", "));
    }
    if let Some(map) = value.read_lock::<Map>() {
        let entries: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{:?}: {}", k.as_str(), debug_text(v)))
            .collect();
        return format!("#{{{}}}", entries.join(", "));
    }
    format!("{value:?}")
}

fn json_of<T: ScriptObject>(value: &Dynamic) -> Option<serde_json::Value> {
    value
        .read_lock::<T>()
        .map(|v| serde_json::to_value(&*v).unwrap_or(serde_json::Value::Null))
}

/// JSON for any value, typed objects included.
pub fn to_json(value: &Dynamic) -> serde_json::Value {
    use serde_json::Value;
    if value.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = value.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = value.as_int() {
        return Value::from(i);
    }
    if let Ok(f) = value.as_float() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if value.is_string() || value.is_char() {
        return Value::String(value.to_string());
    }
    if let Some(v) = each_object!(json_of, value).or_else(|| super::record::json_any(value)) {
        return v;
    }
    if let Some(items) = value.read_lock::<Array>() {
        return Value::Array(items.iter().map(to_json).collect());
    }
    if let Some(map) = value.read_lock::<Map>() {
        return Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        );
    }
    Value::String(value.to_string())
}
