//! The definition files are complete (every registered function, with its
//! docs) and every declaration of poolsync's own is one the Rhai language
//! server parses: its grammar (rhai-rowan's `def.rs` and `ty.rs`) checked
//! here declaration by declaration, with every type one that exists.

use std::collections::BTreeSet;

use super::{engine, files, scope, without_indexers};

/// Rhai's own type names, as the definitions write them.
const RHAI_TYPES: &[&str] = &[
    "int",
    "float",
    "bool",
    "string",
    "char",
    "array",
    "map",
    "blob",
    "timestamp",
    "range",
    "Fn",
];

/// The declarations of poolsync's own functions, types and constants (Rhai's
/// standard library left out), as `files` writes them.
fn ours() -> String {
    let engine = engine().unwrap();
    let scope = scope();
    let defs = engine
        .definitions_with_scope(&scope)
        .include_standard_packages(false);
    format!(
        "{}\n\n{}",
        without_indexers(&defs.static_module()),
        defs.scope_items()
    )
}

/// Splits a declaration into tokens: names, `->`, `#{`, `...`, and single
/// characters (so `>>` is two `>`).
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            let rest: String = chars[i..].iter().collect();
            let token = ["->", "#{", "..."]
                .into_iter()
                .find(|t| rest.starts_with(t))
                .map_or_else(|| c.to_string(), str::to_string);
            i += token.chars().count();
            out.push(token);
        }
    }
    out
}

fn is_name(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A recursive-descent check of one declaration against the server's
/// grammar.
struct Declaration<'a> {
    tokens: Vec<String>,
    at: usize,
    known: &'a BTreeSet<String>,
}

impl Declaration<'_> {
    fn next(&mut self) -> Result<String, String> {
        let t = self.tokens.get(self.at).cloned().ok_or("ends early")?;
        self.at += 1;
        Ok(t)
    }
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }
    fn expect(&mut self, want: &str) -> Result<(), String> {
        match self.next()? {
            t if t == want => Ok(()),
            t => Err(format!("`{want}` expected, found `{t}`")),
        }
    }
    fn name(&mut self) -> Result<String, String> {
        let t = self.next()?;
        if is_name(&t) {
            Ok(t)
        } else {
            Err(format!("a name expected, found `{t}`"))
        }
    }
    /// `A, B, ...` up to `close`.
    fn list(
        &mut self,
        close: &str,
        item: fn(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.peek() == Some(close) {
            return self.expect(close);
        }
        loop {
            item(self)?;
            match self.next()? {
                t if t == close => return Ok(()),
                t if t == "," => {}
                t => return Err(format!("`,` or `{close}` expected, found `{t}`")),
            }
        }
    }
    /// TYPE: `?`, `[T, ...]`, `(T, ...)`, `NAME` or `NAME<T, ...>`,
    /// `#{field: T, ...}`, and unions `T | T`.
    fn ty(&mut self) -> Result<(), String> {
        loop {
            match self.next()?.as_str() {
                "?" => {}
                "[" => self.list("]", Self::ty)?,
                "(" => self.list(")", Self::ty)?,
                "#{" => self.list("}", |d| {
                    d.name()?;
                    d.expect(":")?;
                    d.ty()
                })?,
                t if is_name(t) => {
                    if !self.known.contains(t) {
                        return Err(format!("unknown type `{t}`"));
                    }
                    if self.peek() == Some("<") {
                        self.next()?;
                        self.list(">", Self::ty)?;
                    }
                }
                t => return Err(format!("a type expected, found `{t}`")),
            }
            if self.peek() != Some("|") {
                return Ok(());
            }
            self.next()?;
        }
    }
    fn param(&mut self) -> Result<(), String> {
        if self.peek() == Some("...") {
            self.next()?;
        }
        self.name()?;
        self.expect(":")?;
        self.ty()
    }
    /// `fn [get|set] NAME(PARAM: TYPE, ...) -> TYPE;`, `op SYMBOL(TYPE, ...)
    /// -> TYPE;` or `const NAME: TYPE;`.
    fn check(&mut self) -> Result<(), String> {
        match self.next()?.as_str() {
            "fn" => {
                let first = self.name()?;
                if (first == "get" || first == "set") && self.peek() != Some("(") {
                    self.name()?;
                }
                self.expect("(")?;
                self.list(")", Self::param)?;
                self.returns()?;
            }
            "op" => {
                let symbol = self.next()?;
                if is_name(&symbol) || symbol == "(" {
                    return Err(format!("an operator expected, found `{symbol}`"));
                }
                // Two-character operators (`==`, `!=`, `+=`) are two tokens.
                if self.peek() != Some("(") {
                    self.next()?;
                }
                self.expect("(")?;
                self.list(")", Self::ty)?;
                self.returns()?;
            }
            "const" | "let" => {
                self.name()?;
                self.expect(":")?;
                self.ty()?;
            }
            "module" => {
                self.name()?;
            }
            t => return Err(format!("`fn`, `op` or `const` expected, found `{t}`")),
        }
        self.expect(";")?;
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("`{t}` after the `;`")),
        }
    }
    fn returns(&mut self) -> Result<(), String> {
        if self.peek() == Some("->") {
            self.next()?;
            self.ty()?;
        }
        Ok(())
    }
}

/// Every declaration line of `text` that the grammar refuses, with why.
fn malformed(text: &str, known: &BTreeSet<String>) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .filter_map(|line| {
            let mut d = Declaration {
                tokens: tokens(line),
                at: 0,
                known,
            };
            d.check().err().map(|why| format!("{line}  ({why})"))
        })
        .collect()
}

/// Rhai's types and every type poolsync registers (each has properties).
fn known_types() -> BTreeSet<String> {
    let engine = engine().unwrap();
    let mut known: BTreeSet<String> = crate::script::types::properties(&engine)
        .into_keys()
        .collect();
    known.extend(RHAI_TYPES.iter().map(std::string::ToString::to_string));
    known
}

#[test]
fn every_declaration_of_poolsyncs_parses_and_names_known_types() {
    let known = known_types();
    let ours = ours();
    let bad = malformed(&ours, &known);
    assert!(
        bad.is_empty(),
        "malformed declarations:\n{}",
        bad.join("\n")
    );
    // The files written hold exactly these declarations, and no indexer.
    let written: String = files().unwrap().into_iter().map(|(_, t)| t).collect();
    assert!(!written.contains("fn index$"), "an indexer is declared");
    for line in ours
        .lines()
        .filter(|l| l.starts_with("fn ") || l.starts_with("op "))
    {
        assert!(written.contains(line), "{line} is not written");
    }
    // No parameter of ours goes unnamed.
    let unnamed: Vec<&str> = ours
        .lines()
        .filter(|l| l.starts_with("fn ") && (l.contains("(_:") || l.contains(" _:")))
        .collect();
    assert!(
        unnamed.is_empty(),
        "unnamed parameters:\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn the_check_refuses_what_the_language_server_cannot_parse() {
    let known = known_types();
    for bad in [
        "fn get active_copy(pool: Pool) -> EvalAltResult>>;",
        "fn get active_copy(pool: Pool) -> string>>;",
        "fn index$get$(status: BackupServiceStatus, name: string) -> ?;",
        "fn pad(array: array, len: int, item: ?) -> Nothing;",
        "fn end(range: range=) -> int;",
        "fn get_pool(pool: string -> Pool;",
        "fn get_pool(pool: string) -> Pool",
        "fn get_pool(: string) -> Pool;",
        "fn f(opts: #{module: string, force}) -> Pool;",
    ] {
        assert!(!malformed(bad, &known).is_empty(), "{bad} passed the check");
    }
    for good in [
        "fn get fqdn(pool: Pool) -> string;",
        "fn pad(array: array, len: int, item: ?) -> ();",
        "op ==(Pool, Pool) -> bool;",
        "op !(bool) -> bool;",
        "fn f(opts: #{module: string, force: bool}) -> [SyncReport] | ?;",
        "const ARGS: array;",
        "module static;",
    ] {
        assert_eq!(malformed(good, &known), Vec::<String>::new(), "{good}");
    }
}

#[test]
fn every_function_poolsync_registers_is_defined_with_its_docs() {
    let files = files().unwrap();
    let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
    let ours = &files
        .iter()
        .find(|(n, _)| n == "__static__.d.rhai")
        .expect("a file for the global namespace")
        .1;
    for doc in crate::script::help::FUNCTIONS {
        let at = ours
            .find(&format!("fn {}(", doc.name))
            .unwrap_or_else(|| panic!("{} is not defined", doc.name));
        let before = &ours[..at];
        assert!(
            before.trim_end().ends_with("```") && before.contains(doc.summary),
            "{} has no doc comment",
            doc.name
        );
    }
    // Whatever else the engine registers (getters, operators, overrides
    // of Rhai's own functions) is defined too; indexers cannot be.
    let engine = engine().unwrap();
    for signature in engine.gen_fn_signatures(false) {
        let name = signature.split('(').next().unwrap_or_default().trim();
        let name = name.rsplit(' ').next().unwrap_or(name);
        let defined = match name.split_once('$') {
            Some(("get", prop)) => format!("fn get {prop}("),
            Some(("set", prop)) => format!("fn set {prop}("),
            Some(("index", _)) => continue,
            Some(_) => format!("fn {name}("),
            _ if name.chars().all(|c| c.is_alphanumeric() || c == '_') => format!("fn {name}("),
            _ => format!("op {name}("),
        };
        assert!(
            all.contains(&defined),
            "{signature} has no definition ({defined})"
        );
    }
    // The typed objects and the ARGS constant are there too.
    for needle in [
        "Pool",
        "FailoverReport",
        "BackupServiceStatus",
        "const ARGS: array",
    ] {
        assert!(all.contains(needle), "{needle} is not defined");
    }
}

#[test]
fn every_record_field_is_a_typed_property() {
    let ours = ours();
    for line in [
        "fn get pool_fqdn(backup_service_status: BackupServiceStatus) -> string;",
        "fn get backup_modules(backup_service_status: BackupServiceStatus) -> [ModuleStatus];",
        "fn get failover(backup_service_status: BackupServiceStatus) -> FailoverStatus;",
        "fn get in_sync(replication_report: ReplicationReport) -> bool;",
        "fn get missing(replica_check: ReplicaCheck) -> [string];",
        "fn get watch_changes(backup_service_configuration: BackupServiceConfiguration) -> bool;",
        "fn get items_lost(failover_report: FailoverReport) -> ?;",
        "fn get active_copy(pool: Pool) -> string;",
        "fn get failover(pool: Pool) -> FailoverStatus;",
    ] {
        assert!(ours.contains(line), "{line} is not declared");
    }
}
