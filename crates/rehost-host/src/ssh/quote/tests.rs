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
