//! Terminal conventions: colours only on a terminal and never with `NO_COLOR`; untrusted text
//! escaped before it is shown.

use std::io::IsTerminal;

pub fn color_enabled_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
