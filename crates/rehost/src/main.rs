//! The `rehost` binary: parse arguments, hand them to a command, map the outcome to an exit code.

mod cli;
mod cmd;
mod exit;
mod plan_file;
mod signals;
mod term;
mod tree_view;
mod view;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = cmd::dispatch(cli);
    std::process::exit(code);
}
