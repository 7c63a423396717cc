//! The `rehost` binary: parse arguments, hand them to a command, map the outcome to an exit code.

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
