//! The built-in transfer: a copy that verify calls equal, repairs of every class, and no work
//! when nothing changed.

use crate::*;
use rehost_tree::transfer::{TransferOptions, TransferReport, transfer};
use std::sync::atomic::AtomicBool;

fn copy(a: &Path, b: &Path) -> TransferReport {
    let r = transfer(
        a,
        b,
        &TransferOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(r.errors, vec![]);
    r
}

fn hostile(t: &Tree) {
    t.file(b"new\nline", "1")
        .file(b"bad\xff", "2")
        .file("sp ace/x", "3")
        .mtime("sp ace", 5, 0)
        .mtime("", 6, 0);
}

#[test]
fn fresh_copy_verifies_equal() {
    let a = sample();
    hostile(&a);
    let b = Tree::new();
    let r = copy(a.path(), b.path());
    assert!(r.created >= 14, "{r:?}");
    assert_eq!(found(&verify(a.path(), b.path())), vec![]);
    // Nothing to do the second time, and nothing touched.
    let r2 = copy(a.path(), b.path());
    assert_eq!(
        (r2.created, r2.updated, r2.deleted, r2.bytes_copied),
        (0, 0, 0, 0),
        "{r2:?}"
    );
}

#[test]
fn repairs_every_class_and_copies_only_what_differs() {
    let a = sample();
    hostile(&a);
    let b = Tree::copy_of(a.path());
    b.file("dir/nested", "NESTED")
        .mode("file", 0o600)
        .owner("dir/other", 3, 4)
        .mtime("empty", 1, 2);
    b.xattr("dir/other", "user.extra", "x")
        .remove("fifo")
        .file("fifo", "now a file");
    b.remove("link")
        .symlink("link", "elsewhere")
        .remove("h2")
        .file("h2", "linked");
    b.file("extra/deep/file", "x").remove("sock");
    setfacl(&b.join("empty"), "u:77:rwx");
    assert!(!verify(a.path(), b.path()).findings.is_empty());
    let r = copy(a.path(), b.path());
    assert_eq!(found(&verify(a.path(), b.path())), vec![]);
    // Only dir/nested's 6 bytes were copied; dir/other (100 kB) was not.
    assert_eq!(r.bytes_copied, 6, "{r:?}");
    assert_eq!(r.deleted, 3, "{r:?}");
}

#[test]
fn wrong_hard_link_on_destination_is_broken() {
    let a = Tree::new();
    a.file("x", "same")
        .file("y", "same")
        .mtime("x", 1, 0)
        .mtime("y", 1, 0)
        .mtime("", 2, 0);
    let b = Tree::copy_of(a.path());
    b.remove("y").hardlink("y", "x").mtime("", 2, 0);
    assert!(!verify(a.path(), b.path()).findings.is_empty());
    copy(a.path(), b.path());
    assert_eq!(found(&verify(a.path(), b.path())), vec![]);
}
