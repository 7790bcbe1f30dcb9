//! The options map each function takes: one table per function. Its parser
//! checks a script's map against the table (every key an option, every value
//! of its type) before it reads the values, and the doc comments (so the
//! definition files and `help`) show the table as a typed map:
//! `#{module: string, force: bool, what_if: bool, allow_mass_delete: bool}`.

use rhai::{Dynamic, Map};

use super::api::{FnResult, fail, kind};
use crate::printable::printable;

/// The type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    String,
    Int,
}

impl Kind {
    /// As the definition files name it.
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::String => "string",
            Kind::Int => "int",
        }
    }
}

/// One option: its key, its type, the values it takes when a string, and a
/// value it accepts (the error for a value of the wrong type says the values,
/// or this example; the tests give each option this value).
pub(super) struct Opt {
    pub name: &'static str,
    pub kind: Kind,
    pub values: &'static str,
    pub example: &'static str,
}

const fn flag(name: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Bool,
        values: "",
        example: "true",
    }
}

const fn int(name: &'static str) -> Opt {
    Opt {
        name,
        kind: Kind::Int,
        values: "",
        example: "1",
    }
}

const MODULE: Opt = Opt {
    name: "module",
    kind: Kind::String,
    values: "",
    example: "PresenceFocus",
};

const CATEGORY: Opt = Opt {
    name: "category",
    kind: Kind::String,
    values: "CMS or UserData",
    example: "UserData",
};

/// The options of one function.
pub(super) struct Options {
    pub function: &'static str,
    pub opts: &'static [Opt],
}

pub(super) const SYNC: Options = Options {
    function: "invoke_backup_service_sync",
    opts: &[
        MODULE,
        flag("force"),
        flag("what_if"),
        flag("allow_mass_delete"),
    ],
};

pub(super) const STATUS: Options = Options {
    function: "get_backup_service_status",
    opts: &[MODULE, CATEGORY],
};

pub(super) const VERIFY: Options = Options {
    function: "debug_inter_pool_replication",
    opts: &[MODULE],
};

pub(super) const BACKUP_POOL: Options = Options {
    function: "backup_pool",
    opts: &[
        CATEGORY,
        flag("full_backup"),
        flag("steady_state"),
        int("retry_count"),
        int("wait_time"),
    ],
};

pub(super) const FAILOVER: Options = Options {
    function: "invoke_pool_failover",
    opts: &[flag("disaster_mode"), flag("what_if"), flag("force")],
};

pub(super) const FAILBACK: Options = Options {
    function: "invoke_pool_failback",
    opts: &[flag("what_if"), flag("force")],
};

pub(super) const RESTORE: Options = Options {
    function: "restore_pool_data",
    opts: &[MODULE, flag("what_if"), flag("overwrite")],
};

pub(super) const CMS_MOVE: Options = Options {
    function: "invoke_management_server_failover",
    opts: &[flag("disaster_mode"), flag("what_if"), flag("force")],
};

/// Every table.
pub(super) const ALL: &[&Options] = &[
    &SYNC,
    &STATUS,
    &VERIFY,
    &BACKUP_POOL,
    &FAILOVER,
    &FAILBACK,
    &RESTORE,
    &CMS_MOVE,
];

/// A checked option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Bool(bool),
    String(String),
    Int(i64),
}

impl Options {
    /// The keys, as an error lists them: `module, force, what_if`.
    pub(super) fn names(&self) -> String {
        self.opts
            .iter()
            .map(|o| o.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks `map` against the table: the options given, each with its
    /// value, in the map's order; an unknown key or a value of the wrong
    /// type is a catchable error that names the function and the option.
    pub(super) fn parse(&self, map: &Map) -> FnResult<Vec<(&'static str, Value)>> {
        let f = self.function;
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(opt) = self.opts.iter().find(|o| o.name == key.as_str()) else {
                return fail(format!(
                    "{f}: unknown option '{}': the options are {}",
                    printable(key),
                    self.names()
                ));
            };
            out.push((opt.name, self.value(opt, value)?));
        }
        Ok(out)
    }

    fn value(&self, opt: &Opt, value: &Dynamic) -> FnResult<Value> {
        let (f, name) = (self.function, opt.name);
        let parsed = match opt.kind {
            Kind::Bool => value.as_bool().ok().map(Value::Bool),
            Kind::Int => value.as_int().ok().map(Value::Int),
            Kind::String => value.clone().into_string().ok().map(Value::String),
        };
        parsed.map_or_else(
            || {
                let wanted = match opt.kind {
                    Kind::Bool => "true or false".to_string(),
                    Kind::Int => "a whole number".to_string(),
                    Kind::String if opt.values.is_empty() => {
                        format!("a string like \"{}\"", opt.example)
                    }
                    Kind::String => format!("a string, {}", opt.values),
                };
                fail(format!(
                    "{f}: option '{name}' must be {wanted}, not {}",
                    kind(value)
                ))
            },
            Ok,
        )
    }
}

/// The options map of `opts` as a definitions type: `#{module: string, force: bool}`.
pub(super) fn typed_map<'a>(opts: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let fields: Vec<String> = opts
        .into_iter()
        .map(|(name, ty)| format!("{name}: {ty}"))
        .collect();
    format!("#{{{}}}", fields.join(", "))
}

/// The typed map a function takes, if it takes one: its options, or for
/// `set_backup_service_configuration` the settings with their types.
pub(super) fn typed_map_of(function: &str) -> Option<String> {
    if function == "set_backup_service_configuration" {
        use super::record::{ConfigKind, RecordKind};
        let types = ConfigKind::field_types();
        return Some(typed_map(ConfigKind::FIELDS.iter().copied().zip(types)));
    }
    ALL.iter()
        .find(|o| o.function == function)
        .map(|o| typed_map(o.opts.iter().map(|o| (o.name, o.kind.type_name()))))
}

/// The error of a parser that met an option of its table it does not read:
/// a poolsync bug, which the tests of each parser rule out.
pub(super) fn unhandled<T>(function: &str, name: &str) -> FnResult<T> {
    fail(format!(
        "{function}: option '{name}' is accepted but not read (a poolsync bug; please report it)"
    ))
}

/// Asserts that `apply` reads every option of `options` (given its example
/// value) into a `T`.
#[cfg(test)]
pub(super) fn assert_every_option_is_read<T: Default>(
    options: &Options,
    apply: impl Fn(&mut T, &str, Value) -> FnResult<()>,
) {
    for opt in options.opts {
        let value = match opt.kind {
            Kind::Bool => Value::Bool(opt.example == "true"),
            Kind::Int => Value::Int(opt.example.parse().unwrap()),
            Kind::String => Value::String(opt.example.to_string()),
        };
        if let Err(e) = apply(&mut T::default(), opt.name, value) {
            panic!("{}: {}: {e}", options.function, opt.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_is_checked_against_the_table() {
        let mut map = Map::new();
        map.insert("module".into(), Dynamic::from("DataConf".to_string()));
        map.insert("what_if".into(), Dynamic::from(true));
        assert_eq!(
            SYNC.parse(&map).unwrap(),
            vec![
                ("module", Value::String("DataConf".into())),
                ("what_if", Value::Bool(true)),
            ]
        );
        map.insert("modul".into(), Dynamic::from(1_i64));
        let err = SYNC.parse(&map).unwrap_err().to_string();
        assert!(
            err.contains("invoke_backup_service_sync: unknown option 'modul': the options are module, force, what_if, allow_mass_delete"),
            "{err}"
        );
        let mut map = Map::new();
        map.insert("category".into(), Dynamic::from(1_i64));
        let err = BACKUP_POOL.parse(&map).unwrap_err().to_string();
        assert!(
            err.contains(
                "backup_pool: option 'category' must be a string, CMS or UserData, not int"
            ),
            "{err}"
        );
    }

    #[test]
    fn every_table_names_a_documented_function_that_takes_a_map() {
        for options in ALL {
            let doc = crate::script::help::find(options.function)
                .unwrap_or_else(|| panic!("{} has no help", options.function));
            assert!(
                doc.signatures.iter().any(|s| s.contains("opts: map")),
                "{} takes no options map",
                options.function
            );
        }
        // And every function that takes an options map has a table.
        for doc in crate::script::help::FUNCTIONS {
            if doc.signatures.iter().any(|s| s.contains(": map")) {
                assert!(
                    typed_map_of(doc.name).is_some(),
                    "{} has no table",
                    doc.name
                );
            }
        }
        assert_eq!(
            typed_map_of("invoke_backup_service_sync").unwrap(),
            "#{module: string, force: bool, what_if: bool, allow_mass_delete: bool}"
        );
    }
}
