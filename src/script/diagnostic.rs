//! Script errors as `FILE:LINE:COL: message`, then the source line and a caret.

use rhai::{EvalAltResult, ParseError, Position};

/// Whether an error is a Ctrl-C stop.
pub fn is_interrupt(err: &EvalAltResult) -> bool {
    matches!(err.unwrap_inner(), EvalAltResult::ErrorTerminated(..))
}

fn message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => match value.clone().into_string() {
            Ok(s) => s,
            Err(_) => format!("{value:?}"),
        },
        EvalAltResult::ErrorTerminated(..) => "interrupted".into(),
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

/// Formats an evaluation error against its source.
pub fn format_eval(name: &str, source: &str, err: &EvalAltResult) -> String {
    // Point at the innermost position inside the same source when there is one.
    let pos = err.position();
    format_at(name, source, pos, &message(err))
}

pub fn format_parse(name: &str, source: &str, err: &ParseError) -> String {
    let eval: EvalAltResult = err.clone().into();
    format_eval(name, source, &eval)
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
