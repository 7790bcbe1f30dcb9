//! Plain text tables in the style of PowerShell's `Format-Table`: a header, a rule
//! of dashes under it, and columns padded with spaces.

use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle};

/// A table with a header and the rule under it; no other borders.
pub fn table<S: ToString>(header: impl IntoIterator<Item = S>) -> Table {
    let mut table = Table::new();
    table.load_style(TableStyle::new().header_separator(LineStyle::none().fill('-').junction(' ')));
    table.set_content_arrangement(ContentArrangement::Disabled);
    table.force_no_tty();
    table.set_header(
        header
            .into_iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    table
}

/// Renders without the padding comfy-table puts at each line's end.
pub fn render(table: &Table) -> String {
    table
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The width to lay text out at: `COLUMNS` if set, else the terminal's, else 80.
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w >= 20)
        .unwrap_or_else(textwrap::termwidth)
}

/// `(name, text)` rows as two columns, indented by two spaces: every name
/// padded to the longest, every text wrapped at `width` with a hanging indent
/// under its column, two spaces after the longest name (a name too long for
/// half the width gets a line of its
/// own, the text below it).
#[must_use]
pub fn two_columns(rows: &[(String, String)], width: usize) -> String {
    let longest = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let column = (longest + 4).min(width / 2);
    let indent = " ".repeat(column);
    let options = textwrap::Options::new(width.saturating_sub(column).max(20))
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = String::new();
    for (name, text) in rows {
        let lines = textwrap::wrap(text, &options);
        let (first, rest) = lines
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f.as_ref(), r));
        if name.chars().count() + 4 > column {
            out.push_str(&format!("  {name}\n{indent}{first}\n"));
        } else {
            out.push_str(&format!("  {name:<w$}{first}\n", w = column - 2));
        }
        for line in rest {
            out.push_str(&format!("{indent}{line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_columns_align_every_text_and_wrap_under_its_column() {
        let rows = vec![
            (
                "short".to_string(),
                "one two three four five six seven eight nine ten".to_string(),
            ),
            ("a_much_longer_name".to_string(), "text".to_string()),
        ];
        // The column: two spaces, the longest name, two spaces: 22.
        let out = super::two_columns(&rows, 60);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "  short               one two three four five six seven"
        );
        assert_eq!(lines[1], "                      eight nine ten");
        assert_eq!(lines[2], "  a_much_longer_name  text");
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{out}");
        // Narrow: no column wider than half the width; a longer name gets
        // a line of its own, its text under the column.
        let out = super::two_columns(&rows, 30);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[lines.len() - 2], "  a_much_longer_name");
        assert_eq!(lines[lines.len() - 1], "               text");
    }
}
