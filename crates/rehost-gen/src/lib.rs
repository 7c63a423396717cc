//! rehost's man pages and shell completions, generated from its command line so that they
//! cannot drift from it. A crate of its own (run by `scripts/release`), so that `clap_mangen`
//! and `clap_complete` stay out of the rehost binary and its build.
//!
//! The command line is the binary's own `cli.rs`, compiled here a second time: the binary has
//! no library to import it from, and this keeps one definition. It names one item outside
//! itself, the `--mode` value parser, for which `output` stands in (the generator parses no
//! arguments, so the parser is never called here).

use clap::CommandFactory;
use clap_complete::Shell;
use std::io;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../../rehost/src/cli.rs"]
mod cli;

/// Stands in for the binary's `output` module, whose `parse_mode` `cli.rs` names as a value
/// parser (see the crate's documentation).
mod output {
    pub fn parse_mode(_: &str) -> Result<u32, String> {
        unreachable!("the generator describes the command line; it parses no arguments")
    }
}

/// rehost's command line, as the binary parses it.
pub fn command() -> clap::Command {
    cli::Cli::command()
}

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes `DIR/man/man1/rehost.1` and one page per subcommand (`rehost-verify-tree.1`, …;
/// hidden ones left out), and `DIR/completions/` for bash (`rehost.bash`), zsh (`_rehost`) and
/// fish (`rehost.fish`). Returns the files written.
pub fn generate(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man/man1");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(command(), &man)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    written.sort();
    for shell in SHELLS {
        written.push(clap_complete::generate_to(
            shell,
            &mut command(),
            "rehost",
            &completions,
        )?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
