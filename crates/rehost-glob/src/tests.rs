use super::*;

fn m(p: &str, s: &str) -> bool {
    Glob::new(p).unwrap().is_match(s.as_bytes(), false)
}

fn d(p: &str, s: &str) -> bool {
    Glob::new(p).unwrap().is_match(s.as_bytes(), true)
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
    assert!(!m("[^ab]*", "d/apple"));
    assert!(m("[a-c]x", "bx"));
    assert!(m("[[:digit:]]x", "7x"));
    assert!(m("[]a]", "]"));
    assert!(m("a\\*", "a*") && !m("a\\*", "ab"));
}

/// Issue 9 item 4: rsync floats an unanchored pattern with a `/` (`var/cache` also matches
/// `x/var/cache`, which rsync skipped and verification then called missing).
#[test]
fn slash_patterns_float_unless_anchored() {
    assert!(m("var/cache", "var/cache"));
    assert!(m("var/cache", "x/var/cache"));
    assert!(!m("var/cache", "xvar/cache"));
    assert!(m("/tmp", "tmp"));
    assert!(!m("/tmp", "a/tmp"));
    assert!(m("/var/cache", "var/cache") && !m("/var/cache", "x/var/cache"));
    assert!(m("var/**", "var/a/b"));
    assert!(m("var/**", "x/var/a"));
    assert!(!m("var/*", "var/a/b"));
    assert!(m("a/**/b", "a/x/y/b"));
    // As rsync's wildmatch: `**/` does not match zero directories.
    assert!(!m("a/**/b", "a/b"));
    assert!(m("**/x.log", "a/b/x.log"));
}

/// Issue 9 item 4: a trailing `/` means directories only (`cache/` kept a file named `cache`
/// out of verification that rsync copied).
#[test]
fn trailing_slash_means_directories_only() {
    assert!(!m("cache/", "cache"));
    assert!(d("cache/", "cache"));
    assert!(d("cache/", "a/cache"));
    assert!(Glob::new("cache/").unwrap().dir_only());
    assert!(!Glob::new("cache").unwrap().dir_only());
}

#[test]
fn triple_star_is_the_directory_and_everything_in_it() {
    assert!(d("dir/***", "dir"));
    assert!(!m("dir/***", "dir"));
    assert!(m("dir/***", "dir/a"));
    assert!(m("dir/***", "dir/a/b"));
    assert!(m("dir/***", "x/dir/a"));
    assert!(!m("/dir/***", "x/dir/a"));
}

#[test]
fn bad_patterns_are_errors() {
    assert!(Glob::new("").is_err());
    assert!(Glob::new("/").is_err());
    assert!(Glob::new("[abc").is_err());
}

/// Issue 18: a key under an excluded directory was called carried. `excluded_by` finds the
/// pattern that leaves a plan-named path out, through its parents as the walk would.
#[test]
fn excluded_by_names_the_pattern_that_leaves_a_path_or_its_parent_out() {
    let globs: Vec<Glob> = ["private/", "*.tmp", "/cache"]
        .iter()
        .map(|p| Glob::new(p).unwrap())
        .collect();
    let by = |p: &str, d| excluded_by(&globs, p.as_bytes(), d).map(|g| g.as_str().to_owned());
    // A parent directory matched by a dir-only pattern.
    assert_eq!(
        by("private/www.key", Some(false)).as_deref(),
        Some("private/")
    );
    assert_eq!(by("a/private/www.key", None).as_deref(), Some("private/"));
    // The path itself; as a file, `private/` does not match it; not knowing, it might.
    assert_eq!(by("x.tmp", None).as_deref(), Some("*.tmp"));
    assert_eq!(by("private", Some(false)), None);
    assert_eq!(by("private", None).as_deref(), Some("private/"));
    // Anchored at the root only.
    assert_eq!(by("cache/a", None).as_deref(), Some("/cache"));
    assert_eq!(by("x/cache/a", None), None);
    // Not excluded; and the root itself never is.
    assert_eq!(by("certs/www.pem", None), None);
    assert_eq!(by("", None), None);
    assert_eq!(by("/private/k/", Some(false)).as_deref(), Some("private/"));
}
