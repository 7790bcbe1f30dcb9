//! The text being read, and its errors and warnings as <FILE:LINE:COL>.

use std::cell::OnceCell;
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
    file: &'a Path,
    text: &'a str,
    /// Where each line starts, found on the first message: a file with many
    /// warnings is not scanned from its start for each.
    line_starts: OnceCell<Vec<usize>>,
}

impl<'a> Source<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Self {
        Source {
            file,
            text,
            line_starts: OnceCell::new(),
        }
    }

    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> DeploymentError {
        DeploymentError {
            file: self.file.to_path_buf(),
            position: Some(self.line_col(span.start)),
            message: message.into(),
        }
    }

    pub(super) fn warning(&self, span: Range<usize>, message: impl fmt::Display) -> String {
        let (line, col) = self.line_col(span.start);
        format!("{}:{line}:{col}: warning: {message}", self.file.display())
    }

    /// A TOML syntax or type error, in the administrator's words: serde says
    /// what type it found, not for which key, so name the key the value
    /// belongs to, and what to write ("expected i64" is Rust's word).
    pub(super) fn syntax_error(&self, e: &toml::de::Error) -> DeploymentError {
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

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text;
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let offset = offset.min(text.len());
        // The last line starting at or before the offset (the first starts at 0).
        let line = starts.partition_point(|&start| start <= offset);
        let line_start = starts[line.saturating_sub(1)];
        let column = text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count());
        (line, column + 1)
    }
}

/// The key of a `key = value` line whose value starts at `offset`.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text.get(line_start..offset)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_lines_and_characters() {
        let text = "ab\nc\u{e9} d\n\nx";
        let src = Source::new(Path::new("f.toml"), text);
        let at = |needle: &str| src.line_col(text.find(needle).unwrap());
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(at("c"), (2, 1));
        assert_eq!(at("d"), (2, 4), "a column counts characters, not bytes");
        assert_eq!(src.line_col(text.len() - 2), (3, 1));
        assert_eq!(at("x"), (4, 1));
        assert_eq!(src.line_col(text.len() + 5), (4, 2));
        let w = src.warning(text.find('d').unwrap()..0, "w");
        assert_eq!(w, "f.toml:2:4: warning: w");
    }
}
