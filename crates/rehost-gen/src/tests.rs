//! The generator writes what `scripts/release` ships.

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
        let page =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
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
