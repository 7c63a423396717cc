//! Integration tests of rehost-tree: one binary (see STYLE.md). Tests run as root in CI.

mod classes;
mod differential;
mod excludes;
mod hostile;
mod incremental;
mod manifest_file;
mod names;
mod paired;
mod transfer;
mod unreadable;

use rehost_test::tree::Tree;
use rehost_tree::{Class, Report, Verified, VerifyOptions, verify_trees};
use std::path::Path;
use std::sync::atomic::AtomicBool;

pub fn verify_with(a: &Path, b: &Path, opts: &VerifyOptions) -> Verified {
    let cancel = AtomicBool::new(false);
    verify_trees(a, b, opts, &mut |_| {}, &cancel).expect("verify")
}

pub fn verify(a: &Path, b: &Path) -> Report {
    verify_with(a, b, &VerifyOptions::default()).report
}

/// (class, escaped path) of every finding, sorted.
pub fn found(r: &Report) -> Vec<(Class, String)> {
    let mut v: Vec<_> = r
        .findings
        .iter()
        .map(|f| (f.class, rehost_tree::manifest::display_path(&f.path)))
        .collect();
    v.sort();
    v
}

pub fn expect(list: &[(Class, &str)]) -> Vec<(Class, String)> {
    let mut v: Vec<_> = list.iter().map(|(c, p)| (*c, p.to_string())).collect();
    v.sort();
    v
}

/// Runs `f` on the tree, then restores the mtime of the parent directory of `rel`, so that the
/// mutation is the only difference.
pub fn keeping_parent_mtime(t: &Tree, rel: &str, f: impl FnOnce(&Tree)) {
    let parent = match rel.rfind('/') {
        Some(i) => &rel[..i],
        None => "",
    };
    let (s, n) = t.get_mtime(parent);
    f(t);
    t.mtime(parent, s, n);
}

/// Writes "changed" over the first bytes of a file, in place, the size kept: what a running
/// service does to a file while it is read.
pub fn rewrite_start(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(b"changed").unwrap();
}

/// A tree with one of everything, for the per-class tests.
pub fn sample() -> Tree {
    let t = Tree::new();
    t.file("file", "hello world\n")
        .file("dir/nested", "nested")
        .file("dir/other", vec![7u8; 100_000])
        .dir("empty")
        .symlink("link", "dir/nested")
        .fifo("fifo")
        .socket("sock")
        .char_device("dev", 1, 3)
        .file("h1", "linked")
        .hardlink("h2", "h1")
        .xattr("file", "user.tag", "v1")
        .mode("dir/nested", 0o640)
        .owner("dir/other", 1000, 1001);
    setfacl(&t.join("file"), "u:1234:r");
    // rsync (3.5) leaves the mtime of a symlink, fifo, socket or device it creates unset when
    // it is in the same second as the source's, nanoseconds notwithstanding (rehost sees it):
    // give them an old one.
    for s in ["link", "fifo", "sock", "dev"] {
        t.mtime(s, 1_500_000_000, 5);
    }
    for d in ["dir", "empty", ""] {
        t.mtime(d, 1_600_000_000, 123_456_789);
    }
    t
}

pub fn setfacl(p: &Path, spec: &str) {
    rehost_test::tree::require_tool("setfacl");
    let st = std::process::Command::new("setfacl")
        .arg("-m")
        .arg(spec)
        .arg(p)
        .status()
        .expect("setfacl");
    assert!(st.success());
}
