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
