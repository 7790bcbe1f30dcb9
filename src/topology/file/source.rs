//! The text being read, and its errors and warnings as FILE:LINE:COL.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// An invalid or unreadable deployment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentError {
    pub file: PathBuf,
    /// 1-based line and column, when the error has a position.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for DeploymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for DeploymentError {}

/// A deployment file's name and text: turns the byte span of a value into a
/// message that names its line and column.
pub(super) struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> DeploymentError {
        DeploymentError {
            file: self.file.to_path_buf(),
            position: Some(line_col(self.text, span.start)),
            message: message.into(),
        }
    }

    pub fn warning(&self, span: Range<usize>, message: impl fmt::Display) -> String {
        let (line, col) = line_col(self.text, span.start);
        format!("{}:{line}:{col}: warning: {message}", self.file.display())
    }

    /// A TOML syntax or type error, in the administrator's words: serde says
    /// what type it found, not for which key, so name the key the value
    /// belongs to, and what to write ("expected i64" is Rust's word).
    pub fn syntax_error(&self, e: &toml::de::Error) -> DeploymentError {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', " ");
        let message = match key_before(self.text, span.start) {
            Some(key) if message.starts_with("invalid type") => {
                let wanted =
                    if message.ends_with("expected i64") || message.ends_with("expected u64") {
                        ": write a whole number without quotes"
                    } else if message.ends_with("expected a string") {
                        ": write it in double quotes"
                    } else {
                        ""
                    };
                format!(
                    "{key}: {}{wanted}",
                    message
                        .replace("expected i64", "expected a whole number")
                        .replace("expected u64", "expected a whole number")
                )
            }
            _ => message,
        };
        self.error(span, message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The key of a `key = value` line whose value starts at `offset`.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text.get(line_start..offset)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then_some(key)
}
