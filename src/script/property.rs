//! Property getters (and methods of no other argument) registered with a named parameter and the type of their
//! value, so that the definition files (`poolsync definitions`) declare
//! `fn get fqdn(pool: Pool) -> string;` (which an editor completes after
//! `pool.`) instead of Rhai's `_: Pool` and, for a getter that can fail, the
//! unparsable return type Rhai makes of `Result<T, Box<EvalAltResult>>`.

use std::any::type_name;

use rhai::{Engine, FuncRegistration, Variant};

use super::api::FnResult;

/// The name a type's getters give their parameter: the type's name in snake
/// case (`SyncReport` → `sync_report`).
pub(super) fn param_name(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The parameter (`pool: Pool`) and return type of a getter of `T`.
fn info<T: Variant + Clone>(engine: &Engine, returns: &str) -> [String; 2] {
    let this = engine.map_type_name(type_name::<T>());
    [format!("{}: {this}", param_name(this)), returns.to_string()]
}

/// The registration of the getter `name` of `T`, typed `returns`.
fn getter_of<T: Variant + Clone>(engine: &Engine, name: &str, returns: &str) -> FuncRegistration {
    FuncRegistration::new_getter(name).with_params_info(info::<T>(engine, returns))
}

/// Registers the property `name` of `T`, typed as its Rust value's type
/// (`string`, `int`, `bool`, `array`; `?` for a value that may be `()`).
pub(super) fn getter<T, R>(engine: &mut Engine, name: &str, get: impl Fn(&mut T) -> R + 'static)
where
    T: Variant + Clone,
    R: Variant + Clone,
{
    let returns = engine.map_type_name(type_name::<R>()).to_string();
    typed_getter(engine, name, &returns, get);
}

/// Registers the property `name` of `T`, typed `returns` (a definitions
/// type: `[ModuleStatus]`, `FailoverStatus`, `?`).
pub(super) fn typed_getter<T, R>(
    engine: &mut Engine,
    name: &str,
    returns: &str,
    get: impl Fn(&mut T) -> R + 'static,
) where
    T: Variant + Clone,
    R: Variant + Clone,
{
    getter_of::<T>(engine, name, returns).register_into_engine(engine, move |x: &mut T| get(x));
}

/// Registers the method `name` of `T` that takes nothing else (`to_string`,
/// `to_debug`), its parameter named like a getter's.
pub(super) fn method<T, R>(engine: &mut Engine, name: &str, call: impl Fn(&mut T) -> R + 'static)
where
    T: Variant + Clone,
    R: Variant + Clone,
{
    let returns = engine.map_type_name(type_name::<R>()).to_string();
    let info = info::<T>(engine, &returns);
    FuncRegistration::new(name)
        .with_params_info(info)
        .register_into_engine(engine, move |x: &mut T| call(x));
}

/// Registers the property `name` of `T` whose reading can fail (a check of
/// the operator's rights, a store read), typed `returns`.
pub(super) fn fallible_getter<T, R>(
    engine: &mut Engine,
    name: &str,
    returns: &str,
    get: impl Fn(&mut T) -> FnResult<R> + 'static,
) where
    T: Variant + Clone,
    R: Variant + Clone,
{
    getter_of::<T>(engine, name, returns).register_into_engine(engine, move |x: &mut T| get(x));
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_are_named_after_their_type() {
        assert_eq!(super::param_name("Pool"), "pool");
        assert_eq!(
            super::param_name("BackupServiceStatus"),
            "backup_service_status"
        );
    }
}
