//! rehost's man pages and shell completions, generated from its command line so that they
//! cannot drift from it. A crate of its own (run by `scripts/release`), so that `clap_mangen`
//! and `clap_complete` stay out of the rehost binary and its build.
//!
//! The command line is the binary's own `cli.rs`, compiled here a second time: the binary has
//! no library to import it from, and this keeps one definition. It names one item outside
//! itself, the `--mode` value parser, for which [`output`] stands in (the generator parses no
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
mod tests {
    use super::*;

    /// Every visible subcommand's path, as its man page is named: `["verify", "tree"]`.
    fn subcommands(cmd: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut p = path.to_vec();
            p.push(sub.get_name().to_string());
            subcommands(sub, &p, out);
            out.push(p);
        }
    }

    #[test]
    fn writes_a_man_page_per_subcommand_and_completions_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(dir.path()).unwrap();
        let mut subs = Vec::new();
        subcommands(&command(), &[], &mut subs);
        let names: Vec<String> = subs.iter().map(|p| p.join("-")).collect();
        // Not vacuous: the commands the README tours are among them, the hidden agent is not.
        for known in [
            "check",
            "concept",
            "run",
            "status",
            "report",
            "verify-tree",
            "verify-db",
        ] {
            assert!(names.iter().any(|n| n == known), "{known} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "agent"), "{names:?}");

        let man = dir.path().join("man/man1");
        let page = std::fs::read_to_string(man.join("rehost.1")).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "roff: {page:.200}");
        for (path, name) in subs.iter().zip(&names) {
            let file = man.join(format!("rehost-{name}.1"));
            let page = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            // The page describes that subcommand: its about text is in it.
            let mut cmd = command();
            let mut sub = &mut cmd;
            for p in path {
                sub = sub.find_subcommand_mut(p).unwrap();
            }
            let about = sub.get_about().unwrap().to_string();
            // Its first words, up to any character roff escapes (`'`, `-`).
            let first_words: Vec<&str> = about
                .split_whitespace()
                .take_while(|w| w.chars().all(char::is_alphabetic))
                .take(3)
                .collect();
            let first_words = first_words.join(" ");
            assert!(!first_words.is_empty(), "{about}");
            assert!(
                page.contains(&first_words),
                "{} lacks `{first_words}`",
                file.display()
            );
        }
        assert!(!man.join("rehost-agent.1").exists());
        assert_eq!(written.len(), names.len() + 1 + 3, "{written:?}");

        for file in ["rehost.bash", "_rehost", "rehost.fish"] {
            let path = dir.path().join("completions").join(file);
            assert!(written.contains(&path), "{written:?}");
            let text = std::fs::read_to_string(&path).unwrap();
            for path in &subs {
                let name = path.last().unwrap();
                assert!(
                    text.contains(name.as_str()),
                    "{file} does not name `{name}`"
                );
            }
            // Options complete too, not only subcommand names.
            assert!(text.contains("allowed-signers"), "{file}");
        }
    }
}
