//! Script errors as `FILE:LINE:COL: message`, then the source line and a caret.

use rhai::{EvalAltResult, ParseError, Position};

use super::sandbox::Limits;

/// Whether an error is a Ctrl-C stop (not a limit's).
#[must_use]
pub fn is_interrupt(err: &EvalAltResult) -> bool {
    match err.unwrap_inner() {
        EvalAltResult::ErrorTerminated(token, _) => token
            .read_lock::<rhai::ImmutableString>()
            .is_none_or(|t| t.as_str() == super::engine::INTERRUPTED),
        _ => false,
    }
}

/// Rhai's name of a type as the docs name it: `int` for `i64`, `string` for
/// `ImmutableString`, a typed object by its own name.
#[must_use]
pub fn friendly_type(rust: &str) -> &str {
    let short = rust
        .trim_start_matches('&')
        .rsplit("::")
        .next()
        .unwrap_or(rust);
    match short {
        "i64" | "i32" | "u64" | "INT" => "int",
        "f64" | "f32" | "FLOAT" => "float",
        "str" | "String" | "ImmutableString" | "string" => "string",
        "Array" => "array",
        "Map" => "map",
        "FnPtr" | "Fn" => "function pointer",
        "Dynamic" => "any",
        // bool, char, array, map, () as Rhai names them; typed objects
        // (`poolsync::script::types::Pool`) by their own name.
        other => other,
    }
}

/// "Function not found: `get_pol` ()" or "sleep (&str | `ImmutableString` |
/// String)" as a sentence an administrator can act on: the forms a known
/// function takes, or the nearest function name, and `help()`.
fn function_not_found(signature: &str) -> String {
    let (name, args) = match signature.split_once(" (") {
        Some((name, rest)) => (name.trim(), rest.trim_end_matches(')')),
        None => (signature.trim(), ""),
    };
    let args: Vec<&str> = args
        .split(", ")
        .filter(|a| !a.is_empty())
        .map(|a| {
            // One argument may be listed as the alternatives Rhai tried.
            let first = a.split(" | ").next().unwrap_or(a).trim();
            friendly_type(first)
        })
        .collect();
    let args = args.join(", ");
    if let Some(doc) = super::help::find(name) {
        return match doc.signatures {
            [one] => format!("{name} does not take ({args}): it takes {one}"),
            [one, two] => format!("{name} does not take ({args}): it takes {one} or {two}"),
            _ => format!("{name} does not take ({args}): see help(\"{name}\") for its forms"),
        };
    }
    let nearest = super::help::FUNCTIONS
        .iter()
        .map(|d| (strsim::levenshtein(name, d.name), d.name))
        .filter(|(distance, _)| (1..=2.max(name.len() / 4)).contains(distance))
        .min();
    match nearest {
        Some((_, near)) => {
            format!("no function {name}({args}): did you mean {near}? help() lists the functions")
        }
        None => format!("no function {name} that takes ({args}): help() lists the functions"),
    }
}

fn message(err: &EvalAltResult, limits: &Limits) -> String {
    if let Some(limit) = limits.explain(err) {
        return limit;
    }
    match err {
        EvalAltResult::ErrorFunctionNotFound(signature, _) => function_not_found(signature),
        EvalAltResult::ErrorRuntime(value, _) => match value.clone().into_string() {
            Ok(s) => s,
            Err(_) => format!("{value:?}"),
        },
        // Rhai's text spreads over lines ("in module 'b'" below the error).
        EvalAltResult::ErrorInModule(module, inner, _) => {
            format!("{} (in module '{module}')", message(inner, limits))
        }
        EvalAltResult::ErrorTerminated(token, _) => token
            .read_lock::<rhai::ImmutableString>()
            .map_or_else(|| "interrupted".into(), |t| t.to_string()),
        other => {
            let text = other.to_string();
            // Rhai appends " (line L, position P)"; the caller shows it its own way.
            match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    }
}

/// Formats an evaluation error against its source. An error inside a function
/// or closure of the same source points at where it happened, followed by the
/// calls that led there, innermost first (`in 'check', called at job.rhai:5:1`).
/// Rhai's own text would say "Runtime error: ... (line 2, position 5)" and point
/// at the outermost call.
#[must_use]
pub fn format_eval(name: &str, source: &str, err: &EvalAltResult, limits: &Limits) -> String {
    let mut err = err;
    let mut pos = err.position();
    let mut calls = Vec::new();
    while let EvalAltResult::ErrorInFunctionCall(function, module, inner, at) = err {
        // Rhai names closures `anon$<hash>` (its FN_ANONYMOUS, not exported).
        let what = if function.starts_with("anon$") {
            "a closure".to_string()
        } else if module.is_empty() {
            format!("'{function}'")
        } else {
            format!("'{function}' of module '{module}'")
        };
        calls.push(format!("  in {what}, called at {}", place(name, *at)));
        pos = *at;
        err = inner;
        if !module.is_empty() {
            // Positions below are in the module's own source.
            break;
        }
        if !err.position().is_none() {
            pos = err.position();
        }
    }
    let mut out = format_at(name, source, pos, &message(err, limits));
    for line in shown_calls(calls.into_iter().rev().collect()) {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// Calls listed below an error, innermost first; a deep recursion (a
/// thousand levels) shows its first and last few, not a screen per level.
const SHOWN_CALLS: usize = 8;

fn shown_calls(mut calls: Vec<String>) -> Vec<String> {
    if calls.len() <= 2 * SHOWN_CALLS + 1 {
        return calls;
    }
    let hidden = calls.len() - 2 * SHOWN_CALLS;
    let outer = calls.split_off(calls.len() - SHOWN_CALLS);
    calls.truncate(SHOWN_CALLS);
    calls.push(format!("  ... {hidden} more calls ..."));
    calls.extend(outer);
    calls
}

fn place(name: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(line), col) => format!("{name}:{line}:{}", col.unwrap_or(1)),
        (None, _) => name.to_string(),
    }
}

#[must_use]
pub fn format_parse(name: &str, source: &str, err: &ParseError, limits: &Limits) -> String {
    let eval: EvalAltResult = err.clone().into();
    format_eval(name, source, &eval, limits)
}

fn format_at(name: &str, source: &str, pos: Position, message: &str) -> String {
    match (pos.line(), pos.position()) {
        (Some(line), col) => {
            let col = col.unwrap_or(1);
            let mut out = format!("{name}:{line}:{col}: {message}");
            if let Some(text) = source.lines().nth(line - 1) {
                let width = line.to_string().len();
                out.push_str(&format!(
                    "\n{line} | {text}\n{} | {}^",
                    " ".repeat(width),
                    " ".repeat(col.saturating_sub(1))
                ));
            }
            out
        }
        (None, _) => format!("{name}: {message}"),
    }
}
