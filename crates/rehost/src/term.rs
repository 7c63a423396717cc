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
/// terminal (the plan crate's diagnostics use the same function).
pub use rehost_plan::escape_control as escape;

/// Prints the final `rehost: …` error line on stderr, escaped: error messages carry plan
/// text, host output and file names.
pub fn error(message: &str) {
    eprintln!("rehost: {}", escape(message));
}
