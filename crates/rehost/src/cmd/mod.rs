//! One module per command. Each returns the process exit code (see `exit`).

mod agent;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Agent => agent::run(),
        _ => {
            eprintln!("rehost: not yet available");
            crate::exit::TROUBLE
        }
    }
}
