//! The shell's `:commands`.

/// One shell command.
pub(super) struct CommandDoc {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
}

pub(super) const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: ":help",
        usage: ":help [NAME]",
        summary: "this overview, or the help of one function",
    },
    CommandDoc {
        name: ":functions",
        usage: ":functions",
        summary: "poolsync's functions with their signatures, and yours",
    },
    CommandDoc {
        name: ":vars",
        usage: ":vars",
        summary: "the variables of this session",
    },
    CommandDoc {
        name: ":load",
        usage: ":load FILE",
        summary: "run a script into this session (its variables and functions stay)",
    },
    CommandDoc {
        name: ":history",
        usage: ":history [N]",
        summary: "the last N (default 20) entries of the history",
    },
    CommandDoc {
        name: ":clear",
        usage: ":clear",
        summary: "clear the screen",
    },
    CommandDoc {
        name: ":quit",
        usage: ":quit",
        summary: "leave the shell (Ctrl-D does too)",
    },
];

/// The `:help` overview.
pub(super) fn overview() -> String {
    let mut out = String::from(
        "Type Rhai statements; a value is printed, an open block or bracket continues on the next line.\n\
         Tab completes names, pools, sites and modules; Ctrl-R searches the history; Ctrl-C stops a running script.\n\n",
    );
    let width = crate::table::width();
    out.push_str(&crate::script::help::overview_at(width));
    out.push_str("\nShell commands:\n\n");
    let rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| (c.usage.to_string(), c.summary.to_string()))
        .collect();
    out.push_str(&crate::table::two_columns(&rows, width));
    out
}
