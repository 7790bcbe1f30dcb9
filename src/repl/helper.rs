//! Line editing for the shell: completion, signature hints, highlighting, and a
//! Rhai-aware validator that keeps reading while the input is incomplete.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use rhai::Engine;
use rhai::{LexError, ParseErrorType};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::commands::COMMANDS;
use crate::script::help;
use crate::topology::Module;

/// What completion knows; refreshed after every input.
#[derive(Default)]
pub(super) struct Knowledge {
    pub functions: Vec<String>,
    pub variables: Vec<(String, Option<&'static [&'static str]>)>,
    pub pools: Vec<String>,
    pub sites: Vec<String>,
    pub all_properties: Vec<String>,
}

pub(super) struct ShellHelper {
    pub knowledge: Rc<RefCell<Knowledge>>,
    pub color: bool,
    /// A bare engine, for checking whether input is complete.
    pub checker: Engine,
}

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "do", "until", "break",
    "continue", "return", "throw", "try", "catch", "true", "false", "switch", "private", "this",
    "import", "export", "as",
];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `pos` is inside a double-quoted string; returns where it starts.
fn string_start(line: &str, pos: usize) -> Option<usize> {
    let mut start = None;
    let mut escaped = false;
    for (i, c) in line[..pos].char_indices() {
        match (start, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(_), '"') if !escaped => start = None,
            (None, '"') => start = Some(i + 1),
            _ => {}
        }
        escaped = false;
    }
    start
}

/// Nesting depth of brackets outside strings and comments.
fn open_brackets(input: &str) -> i64 {
    let mut depth = 0i64;
    let mut chars = input.chars().peekable();
    let mut in_str: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = in_str {
            if c == '\\' {
                chars.next();
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '`' => in_str = Some(c),
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth
}

impl ShellHelper {
    /// Completions of the word before the cursor: where it starts, and the
    /// candidates. Only the text before the cursor counts.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let line = line.get(..pos).unwrap_or(line);
        let pos = line.len();
        let k = self.knowledge.borrow();
        // :commands, and function names after :help
        if line.starts_with(':') {
            if let Some(rest) = line.strip_prefix(":help ") {
                let start = line.len() - rest.len();
                let word = &line[start..pos];
                return (
                    start,
                    filter(help::FUNCTIONS.iter().map(|f| f.name.to_string()), word),
                );
            }
            return (
                0,
                filter(COMMANDS.iter().map(|c| c.name.to_string()), &line[..pos]),
            );
        }
        // Inside a string: module names after `module: "`, else pools and sites.
        if let Some(start) = string_start(line, pos) {
            let word = &line[start..pos];
            let before = line[..start.saturating_sub(1)].trim_end();
            let options: Vec<String> = if before.ends_with("module:") {
                let mut m: Vec<String> = Module::ALL
                    .iter()
                    .map(|m| m.identity().to_string())
                    .collect();
                m.extend(Module::ALL.iter().map(|m| m.short_name().to_string()));
                m.push("All".into());
                m
            } else {
                k.pools.iter().chain(k.sites.iter()).cloned().collect()
            };
            return (start, filter(options.into_iter(), word));
        }
        let start = line[..pos]
            .char_indices()
            .rev()
            .find(|(_, c)| !is_ident(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &line[start..pos];
        // After a dot: the properties of a known variable, else every property and
        // function (method style).
        if start > 0 && line[..start].ends_with('.') {
            let before = &line[..start - 1];
            let var_start = before
                .char_indices()
                .rev()
                .find(|(_, c)| !is_ident(*c))
                .map_or(0, |(i, c)| i + c.len_utf8());
            let var = &before[var_start..];
            if let Some((_, Some(props))) = k.variables.iter().find(|(n, _)| n == var) {
                return (
                    start,
                    filter(props.iter().map(std::string::ToString::to_string), word),
                );
            }
            let mut all: Vec<String> = k.all_properties.clone();
            all.extend(k.functions.iter().cloned());
            return (start, filter(all.into_iter(), word));
        }
        if word.is_empty() {
            return (start, Vec::new());
        }
        let mut all: Vec<String> = k.functions.clone();
        all.extend(k.variables.iter().map(|(n, _)| n.clone()));
        all.extend(KEYWORDS.iter().map(std::string::ToString::to_string));
        (start, filter(all.into_iter(), word))
    }
}

fn filter(options: impl Iterator<Item = String>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = options.filter(|o| o.starts_with(prefix)).collect();
    out.sort();
    out.dedup();
    out
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = self.candidates(line, pos);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;

    /// The signature of the function whose call the cursor is in.
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() || line.starts_with(':') {
            return None;
        }
        let mut depth = 0;
        for (i, c) in line[..pos].char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' if depth > 0 => depth -= 1,
                '(' => {
                    let name_start = line[..i]
                        .char_indices()
                        .rev()
                        .find(|(_, c)| !is_ident(*c))
                        .map_or(0, |(j, c)| j + c.len_utf8());
                    let doc = help::find(&line[name_start..i])?;
                    let mut hint = format!("    {}", doc.signatures.join("  |  "));
                    if hint.chars().count() > 100 {
                        hint = format!("    {}  | ...", doc.signatures[0]);
                    }
                    return Some(hint);
                }
                _ => {}
            }
        }
        None
    }
}

const RESET: &str = "\x1b[0m";

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color || line.starts_with(':') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(colorize(line))
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}{RESET}"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

/// ANSI colours: keywords magenta, strings green, numbers cyan, comments dim.
#[must_use]
pub fn colorize(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '`' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.push_str("\x1b[32m");
            out.extend(&chars[i..end]);
            out.push_str(RESET);
            i = end;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            out.push_str("\x1b[2m");
            out.extend(&chars[i..]);
            out.push_str(RESET);
            break;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || chars[j] == '_' || chars[j] == '.')
            {
                j += 1;
            }
            out.push_str("\x1b[36m");
            out.extend(&chars[i..j]);
            out.push_str(RESET);
            i = j;
        } else if is_ident(c) {
            let mut j = i;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            if KEYWORDS.contains(&word.as_str()) {
                out.push_str("\x1b[35m");
                out.push_str(&word);
                out.push_str(RESET);
            } else {
                out.push_str(&word);
            }
            i = j;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.checker, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// Whether the input is an unfinished statement (an open block, bracket, call or
/// backtick string) rather than a complete one or a plain error.
pub fn is_incomplete(engine: &Engine, input: &str) -> bool {
    if input.trim_start().starts_with(':') || input.trim().is_empty() {
        return false;
    }
    match engine.compile(input) {
        Ok(_) => false,
        Err(e) => match &*e.0 {
            ParseErrorType::UnexpectedEOF => true,
            ParseErrorType::MissingToken(..) => open_brackets(input) > 0,
            ParseErrorType::BadInput(LexError::UnterminatedString) => {
                input.matches('`').count() % 2 == 1
            }
            _ => open_brackets(input) > 0 && e.1.line() >= Some(input.lines().count()),
        },
    }
}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_input_is_detected() {
        let engine = crate::script::sandboxed_engine(&crate::script::Limits::default(), None);
        for input in [
            "for p in get_pool() {",
            "let x = [1, 2,",
            "f(1,",
            "let s = `abc",
            "if x {\n print(1);",
        ] {
            assert!(is_incomplete(&engine, input), "{input:?}");
        }
        for input in ["let x = 1;", "x +", "let = ;", ":help", "print(\"a\")", "}"] {
            let incomplete = is_incomplete(&engine, input);
            assert!(!incomplete || input == "x +", "{input:?}");
        }
    }

    #[test]
    fn completion_looks_only_before_the_cursor() {
        let helper = ShellHelper {
            knowledge: Rc::default(),
            color: false,
            checker: Engine::new_raw(),
        };
        let line = ":help get_pool";
        for pos in 0..=line.len() {
            let (start, words) = helper.candidates(line, pos);
            assert!(start <= pos, "{pos}: {start}");
            if pos >= ":help g".len() {
                assert!(words.contains(&"get_pool".to_string()), "{pos}: {words:?}");
            }
        }
        assert_eq!(helper.candidates(line, 3).1, [":help"]);
    }

    #[test]
    fn string_detection() {
        assert_eq!(string_start("get_pool(\"atl", 13), Some(10));
        assert_eq!(string_start("get_pool(\"a\")", 13), None);
        assert_eq!(string_start("x(\"a\\\"b", 7), Some(3));
    }
}
