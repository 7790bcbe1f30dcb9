//! Text that is safe to show on a terminal or in a log.
//!
//! A name typed by an operator (a pool, a site, a module, an option), read
//! from a deployment file or listed in a pool's data may hold control
//! characters: a NUL, an escape sequence that recolours the terminal or sets
//! its title, a newline that forges a line of output. Every message that
//! echoes such a name shows it through [`printable`], escaped the way Rust's
//! `{:?}` does (`\u{1b}`, `\n`, `\0`), as `ls` does with its own quoting.
//! Standard error passes whole messages through [`printable_lines`] as well,
//! so that a name a message forgot to escape still cannot reach the terminal
//! raw.

/// `bytes` as text that is safe to print: bytes that are not UTF-8 become
/// U+FFFD, and control characters (newlines included) and the Unicode marks
/// that reorder text on screen are escaped, as `\u{1b}`, `\n` or `\u{202e}`.
pub fn printable(bytes: impl AsRef<[u8]>) -> String {
    escape(bytes.as_ref(), |_| false)
}

/// A whole message of one or more lines as text that is safe to print: as
/// [`printable`], but newlines and tabs, which lay the message out, stay.
#[must_use]
pub fn printable_lines(text: &str) -> String {
    escape(text.as_bytes(), |c| c == '\n' || c == '\t')
}

fn escape(bytes: &[u8], keep: impl Fn(char) -> bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let escaped = |c: char| needs_escape(c) && !keep(c);
    if !text.chars().any(escaped) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::{printable, printable_lines};

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("atl\0-cs\u{1b}[31mX\n\u{202e}"),
            "atl\\0-cs\\u{1b}[31mX\\n\\u{202e}"
        );
        assert_eq!(printable(b"\xff ok"), "\u{fffd} ok");
        assert_eq!(printable("plain ünï c#1"), "plain ünï c#1");
    }

    #[test]
    fn a_message_keeps_its_lines_and_is_escaped_once() {
        let message = "no pool 'a\u{7}'\n1 | \tget_pool()";
        assert_eq!(
            printable_lines(message),
            "no pool 'a\\u{7}'\n1 | \tget_pool()"
        );
        // Escaping what is escaped already changes nothing.
        let once = printable("a\u{1b}b");
        assert_eq!(printable(&once), once);
        assert_eq!(printable_lines(&once), once);
    }
}
