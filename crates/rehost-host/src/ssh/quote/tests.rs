//! Quoting checked against a real `sh`, by example and by property.

use super::*;
use std::process::Command;

/// The differential check: a real `sh` must split the quoted line back into the same bytes.
fn roundtrip(args: &[&[u8]]) {
    let argv: Vec<OsString> = args
        .iter()
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let line = command_line(&argv);
    let mut script = b"for a in ".to_vec();
    script.extend_from_slice(line.as_bytes());
    script.extend_from_slice(b"; do printf '%s\\0' \"$a\"; done");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(OsStr::from_bytes(&script))
        .output()
        .unwrap();
    assert!(out.status.success());
    let got: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    let want: Vec<&[u8]> = args.iter().copied().filter(|a| !a.is_empty()).collect();
    assert_eq!(got, want);
}

#[test]
fn hostile_arguments_survive_the_shell() {
    roundtrip(&[
        b"plain",
        b"with space",
        b"it's",
        b"''",
        b"$(touch /tmp/rehost-quote-pwned)",
        b"`id`",
        b"a; rm -rf /",
        b"new\nline",
        b"\\back\\slash",
        b"*",
        b"$HOME",
        b"\xff\xfe not utf-8",
        b"-n",
    ]);
    assert!(!std::path::Path::new("/tmp/rehost-quote-pwned").exists());
}

#[test]
fn quote_wraps_and_escapes_single_quotes() {
    assert_eq!(quote(b"a'b"), b"'a'\\''b'".to_vec());
    assert_eq!(quote(b""), b"''".to_vec());
}

/// Words a person reads stay bare where sh gives them no meaning; anything else is quoted, and
/// a real `sh` reads each back as it was.
#[test]
fn sh_word_is_bare_only_where_sh_reads_the_word_as_written() {
    assert_eq!(sh_word("plan.toml"), "plan.toml");
    assert_eq!(sh_word("/srv/a-b_c+1:x@y"), "/srv/a-b_c+1:x@y");
    assert_eq!(sh_word("my plan.toml"), "'my plan.toml'");
    assert_eq!(sh_word("it's"), "'it'\\''s'");
    assert_eq!(sh_word(""), "''");
    assert_eq!(sh_quoted("plain"), "'plain'");
    for w in ["plan.toml", "a b", "it's", "$HOME", "*", "", "a=b"] {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf '%s' {}", sh_word(w)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), w);
    }
}

/// The differential check for rsync's `-e`: a real rsync splits the line into the same words
/// and runs the "ssh" it names with them. Regression: the sync code quoted `it's` as for sh,
/// `'it'\''s'`, which rsync refuses ("Missing trailing-' in remote-shell command").
#[test]
fn rsync_splits_its_e_words_back_into_the_same_words() {
    let rsync = rehost_test::require_tool("rsync");
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for ssh: it writes its arguments, one per line, and fails the transfer.
    let fake = dir.path().join("fake ssh's");
    let got = dir.path().join("got");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\nexit 1\n",
            got.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let words = [
        fake.to_str().unwrap(),
        "-o",
        "BatchMode=yes",
        "-F",
        "/home/o'neil/ssh config",
        "it's",
        "\"double\"",
        "back\\slash",
        "$HOME",
    ];
    assert_eq!(rsync_e_word("BatchMode=yes"), "BatchMode=yes");
    assert_eq!(rsync_e_word("it's"), "'it''s'");
    let line: Vec<String> = words.iter().map(|w| rsync_e_word(w)).collect();
    let out = Command::new(rsync)
        .arg("-e")
        .arg(line.join(" "))
        .arg("somehost:/x")
        .arg(dir.path().join("to"))
        .output()
        .unwrap();
    let got = std::fs::read_to_string(&got)
        .unwrap_or_else(|_| panic!("rsync did not run the fake ssh: {out:?}"));
    let got: Vec<&str> = got.lines().collect();
    // rsync appends the host and its own server command.
    assert_eq!(&got[..words.len() - 1], &words[1..], "{line:?}");
    assert_eq!(got[words.len() - 1], "somehost");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any arguments (argv cannot hold NUL) come back from a real `sh` byte for byte.
        #[test]
        fn any_arguments_survive_sh(
            args in proptest::collection::vec(
                proptest::collection::vec(1u8..=255, 1..12), 1..6)
        ) {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            roundtrip(&refs);
        }
    }
}
