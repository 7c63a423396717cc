//! Terminal conventions: colours only on a terminal and never with `NO_COLOR`; untrusted text
//! (file names, remote output, plan text) escaped before it reaches the terminal.

use anstyle::{AnsiColor, Style};

/// Whether standard output gets colours: `anstream`'s choice, which follows `NO_COLOR`,
/// `CLICOLOR`, `CLICOLOR_FORCE`, `TERM=dumb` and whether it is a terminal.
pub fn color_enabled_stdout() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

/// The styles of the terminal view, one per meaning.
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const GOOD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
pub const BAD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
pub const NOTE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));

/// Escapes control characters so untrusted text cannot move the cursor or recolour the
/// terminal (the plan crate's diagnostics use the same function).
pub use rehost_plan::escape_control as escape;

/// Prints the final `rehost: …` error line on stderr, escaped: error messages carry plan
/// text, host output and file names.
pub fn error(message: &str) {
    eprintln!("rehost: {}", escape(message));
}

/// Standard output for the binary's `println!`/`print!` (main.rs): what cannot be written
/// (the reader has gone) is dropped, never a panic.
pub fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(args);
}
