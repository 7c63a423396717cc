//! The `rehost` binary: parse arguments, hand them to a command, map the outcome to an exit code.

// `println!` and `print!` for the whole binary (these shadow std's, declared before every
// module): a write to a closed stdout — `rehost run | head`, a pager quit early — is dropped
// instead of panicking. A `run` must never die half-way because its output pipe closed; the
// journal, not the terminal, is its record. (Read-only commands end quietly on the broken
// pipe instead: `main` restores SIGPIPE for them.)
macro_rules! println {
    () => {
        $crate::term::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::term::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        $crate::term::out(format_args!($($arg)*))
    };
}

mod cli;
mod cmd;
mod confirm;
mod exit;
mod output;
mod plan_file;
mod sign;
mod signals;
mod term;
mod tree_view;
mod view;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if cli.command.reads_only() {
        // `rehost status --json | head`: end quietly when the reader goes, as Unix tools do,
        // rather than panic on the broken pipe. Not for commands that act (a `run` must never
        // die half-way because its terminal pipe closed).
        // SAFETY: restoring the default disposition of a signal touches no memory.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let code = cmd::dispatch(cli);
    std::process::exit(code);
}
