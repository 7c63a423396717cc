use super::*;

fn m(p: &str, s: &str) -> bool {
    Glob::new(p).unwrap().is_match(s.as_bytes())
}

#[test]
fn basename_patterns_match_at_any_depth() {
    assert!(m("*.tmp", "a.tmp"));
    assert!(m("*.tmp", "x/y/a.tmp"));
    assert!(!m("*.tmp", "a.tmp/x"));
    assert!(m("cache", "var/cache"));
    assert!(m("file?", "d/file1"));
    assert!(m("[ab]*", "d/apple"));
    assert!(!m("[!ab]*", "d/apple"));
    assert!(m("[a-c]x", "bx"));
}

#[test]
fn slash_patterns_are_anchored() {
    assert!(m("var/cache", "var/cache"));
    assert!(!m("var/cache", "x/var/cache"));
    assert!(m("/tmp", "tmp"));
    assert!(m("var/**", "var/a/b"));
    assert!(m("**/x.log", "x.log"));
    assert!(m("**/x.log", "a/b/x.log"));
    assert!(!m("var/*", "var/a/b"));
}

#[test]
fn bad_patterns_are_errors() {
    assert!(Glob::new("").is_err());
    assert!(Glob::new("[abc").is_err());
}
