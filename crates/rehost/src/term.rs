//! Terminal conventions: colours only on a terminal and never with `NO_COLOR`; untrusted text
//! (file names, remote output, plan text) escaped before it reaches the terminal.

use std::io::IsTerminal;

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub fn color_enabled_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Escapes control characters so untrusted text cannot move the cursor or recolour the
/// terminal.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
