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
fn block_devices_setuid_and_capabilities_are_carried_and_listed_on_the_copy() {
    let a = sample();
    a.block_device("disk", 8, 16)
        .mode("disk", 0o660)
        .owner("disk", 0, 6)
        .file("bin/su", "su")
        .mode("bin/su", 0o4755)
        .file("bin/ping", "ping")
        .xattr(
            "bin/ping",
            "security.capability",
            crate::classes::CAP_NET_RAW,
        );
    let b = Tree::new();
    copy(a.path(), b.path());
    let r = verify(a.path(), b.path());
    assert_eq!(found(&r), vec![]);
    let listed: Vec<_> = r
        .privileged
        .iter()
        .map(|x| format!("{} {}", String::from_utf8_lossy(&x.path), x.what))
        .collect();
    assert_eq!(
        listed,
        [
            "bin/ping capabilities file, mode 644, uid 0, gid 0",
            "bin/su setuid file, mode 4755, uid 0, gid 0",
            "dev character device 1:3, mode 600, uid 0, gid 0",
            "disk block device 8:16, mode 660, uid 0, gid 6",
        ]
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

/// Holes stay holes (as with `rsync --sparse`): a 64 MiB file with 8 KiB of data takes a few
/// blocks on the destination, not 64 MiB, and verifies equal.
#[test]
fn sparse_files_stay_sparse() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let a = Tree::new();
    let f = std::fs::File::create(a.join("disk.img")).unwrap();
    f.write_all_at(&[7u8; 4096], 0).unwrap();
    f.write_all_at(&[9u8; 4096], 32 << 20).unwrap();
    f.set_len(64 << 20).unwrap(); // a trailing hole too
    drop(f);
    a.mtime("disk.img", 5, 0).mtime("", 6, 0);
    let b = Tree::new();
    let r = copy(a.path(), b.path());
    assert_eq!(r.bytes_copied, 64 << 20);
    assert_eq!(found(&verify(a.path(), b.path())), vec![]);
    let m = std::fs::metadata(b.join("disk.img")).unwrap();
    assert_eq!(m.len(), 64 << 20);
    assert!(
        m.blocks() * 512 <= 1 << 20,
        "{} bytes allocated for 8 KiB of data",
        m.blocks() * 512
    );
}

/// Content that does not hash to the digest the walk read (the source changed between the
/// walk and the copy, or was damaged on the way) is never put in place: an error names the
/// path and what to do, and no temporary file is left behind.
#[test]
fn content_that_does_not_match_the_walk_is_refused() {
    use rehost_tree::transfer::{InlineContent, apply, plan};
    let a = Tree::new();
    a.file("f", "the walk read this");
    let b = Tree::new();
    let m = |t: &Tree| {
        rehost_tree::manifest(
            t.path(),
            &Default::default(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap()
    };
    let p = plan(&m(&a), &m(&b), true);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let apply_with = |data: &[u8]| {
        let mut content = InlineContent { data };
        apply(
            b.path(),
            &p.ops,
            &mut content,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap()
    };
    let r = apply_with(b"but the source now says that");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert_eq!(&*r.errors[0].0, b"f");
    assert!(
        r.errors[0]
            .1
            .contains("the source changed while it was copied"),
        "{r:?}"
    );
    assert!(r.errors[0].1.contains("sync again"), "{r:?}");
    let left: Vec<_> = std::fs::read_dir(b.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The same operations with the right bytes make an equal tree.
    let r = apply_with(b"the walk read this");
    assert_eq!(r.errors, vec![]);
    assert_eq!(std::fs::read(b.join("f")).unwrap(), b"the walk read this");
}

/// Operations naming a path outside the destination's tree (as a compromised old server could
/// slip into its manifest) are refused one by one, and nothing is written outside.
#[test]
fn operations_outside_the_tree_are_refused() {
    use rehost_tree::transfer::{InlineContent, Meta, Op, apply, stage};
    let outer = Tree::new();
    outer.dir("tree");
    let root = outer.join("tree");
    let meta = Meta {
        kind: rehost_tree::Kind::File,
        uid: 0,
        gid: 0,
        mode: 0o644,
        mtime: Default::default(),
        xattrs: None,
    };
    let evil = |path: &[u8]| Op::File {
        path: path.into(),
        size: 4,
        digest: *blake3::hash(b"evil").as_bytes(),
        meta: meta.clone(),
        staged: None,
        ino: None,
    };
    let ops = vec![
        evil(b"../escaped"),
        evil(b"/tmp/escaped"),
        Op::Link {
            path: b"inside".as_slice().into(),
            to: b"../../etc/passwd".as_slice().into(),
        },
        Op::Remove {
            path: b"..".as_slice().into(),
            dir: true,
            replaced: false,
        },
    ];
    let content = b"evilevil";
    let mut source = InlineContent { data: content };
    let r = apply(
        &root,
        &ops,
        &mut source,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(r.errors.len(), 4, "{r:?}");
    assert!(
        r.errors
            .iter()
            .all(|(_, why)| why.contains("not a path inside the tree"))
    );
    assert!(!outer.join("escaped").exists() && !outer.join(".rehost-tmp-escaped").exists());
    assert!(!root.join("inside").exists() && outer.path().exists());
    let tmp = rehost_tree::transfer::temp_name();
    let err = stage(&root, b"../staged", &tmp, 0, b"x").unwrap_err();
    assert!(
        err.to_string().contains("not a path inside the tree"),
        "{err}"
    );
    assert!(
        !outer
            .join(String::from_utf8(tmp.to_vec()).unwrap())
            .exists()
    );
    // A temporary name that is not one of the transfer's (a path, a plain name) is refused.
    for bad in [b"../x".as_slice(), b"name", b".rehost-tmp-../../etc"] {
        let err = stage(&root, b"f", bad, 0, b"x").unwrap_err();
        assert!(err.to_string().contains("not a temporary name"), "{err}");
    }
}
