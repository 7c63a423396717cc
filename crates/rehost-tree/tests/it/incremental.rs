//! The incremental path: a second verification trusts digests of unchanged files only.

use crate::*;
use rehost_tree::{Class, EXIT_EQUAL};

fn opts(cache: &Path) -> VerifyOptions {
    VerifyOptions {
        cache: Some(cache.to_path_buf()),
        ..VerifyOptions::default()
    }
}

/// Files changed within a second of a cached walk's start are not trusted on the next run (see
/// `verify.rs`); let the freshly made trees age past that. A fixed sleep on purpose: the clock
/// moving on is the condition, and nothing else signals it.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn second_run_trusts_unchanged_and_catches_ctime_only_changes() {
    let a = Tree::new();
    for i in 0..50 {
        a.file(format!("d/f{i}"), format!("content {i}"));
    }
    a.mtime("d", 1, 0);
    let b = Tree::copy_of(a.path());
    settle();
    let cache = tempfile::tempdir().unwrap();
    let first = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!(first.exit_code(), EXIT_EQUAL);
    assert_eq!((first.totals.rehashed, first.totals.trusted), (100, 0));

    let second = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!(second.exit_code(), EXIT_EQUAL);
    assert_eq!((second.totals.rehashed, second.totals.trusted), (0, 100));

    // Same size, mtime restored: only ctime moved. Must be read again and caught.
    let (s, n) = b.get_mtime("d/f7");
    b.file("d/f7", "CONTENT 7").mtime("d/f7", s, n);
    let third = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!(found(&third), expect(&[(Class::Content, "d/f7")]));
    assert_eq!((third.totals.rehashed, third.totals.trusted), (1, 99));

    // --full reads everything.
    let mut full = opts(cache.path());
    full.full = true;
    let fourth = verify_with(a.path(), b.path(), &full).report;
    assert_eq!((fourth.totals.rehashed, fourth.totals.trusted), (100, 0));
    assert_eq!(found(&fourth), expect(&[(Class::Content, "d/f7")]));
}

#[test]
fn corrupt_cache_means_reading_everything() {
    let a = Tree::new();
    a.file("x", "1");
    let b = Tree::copy_of(a.path());
    settle();
    let cache = tempfile::tempdir().unwrap();
    verify_with(a.path(), b.path(), &opts(cache.path()));
    let p = cache.path().join("b.rmc");
    let good = std::fs::read(&p).unwrap();
    let trusted = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!((trusted.totals.rehashed, trusted.totals.trusted), (0, 2));
    assert!(trusted.warnings.is_empty(), "{:?}", trusted.warnings);

    // A flipped bit anywhere, a torn (cut short) file, an empty one: a warning and a full read
    // of that side, never a failure; the run then writes a good cache again.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for i in [0, 20, good.len() / 2, good.len() - 40, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 1;
        cases.push(bad);
    }
    cases.push(good[..good.len() / 2].to_vec());
    cases.push(Vec::new());
    for bad in cases {
        std::fs::write(&p, &bad).unwrap();
        let r = verify_with(a.path(), b.path(), &opts(cache.path())).report;
        assert_eq!(r.exit_code(), EXIT_EQUAL);
        assert_eq!((r.totals.rehashed, r.totals.trusted), (1, 1));
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("b.rmc"), "{:?}", r.warnings);
        // The run wrote a good cache again.
        let again = verify_with(a.path(), b.path(), &opts(cache.path())).report;
        assert_eq!((again.totals.rehashed, again.totals.trusted), (0, 2));
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    }
}

#[test]
fn text_cache_of_earlier_versions_is_ignored_and_removed() {
    let a = Tree::new();
    a.file("x", "1");
    let b = Tree::copy_of(a.path());
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(cache.path().join("a.rmf"), "#rehost-manifest 1\n").unwrap();
    std::fs::write(cache.path().join("b.rmf"), "junk").unwrap();
    let r = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!((r.totals.rehashed, r.totals.trusted), (2, 0));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let mut names: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.rmc", "b.rmc"]);
}

#[test]
fn trusted_files_take_xattrs_from_the_cache_and_metadata_changes_are_caught() {
    let a = Tree::new();
    for i in 0..10 {
        a.file(format!("f{i}"), format!("content {i}"));
    }
    a.xattr("f3", "user.tag", "v1")
        .xattr("f4", "user.tag", "v1");
    let b = Tree::copy_of(a.path());
    settle();
    let cache = tempfile::tempdir().unwrap();
    let first = verify_with(a.path(), b.path(), &opts(cache.path()));
    assert_eq!(first.report.exit_code(), EXIT_EQUAL);
    let second = verify_with(a.path(), b.path(), &opts(cache.path()));
    assert_eq!(second.report.exit_code(), EXIT_EQUAL);
    assert_eq!(
        (second.report.totals.rehashed, second.report.totals.trusted),
        (0, 20)
    );
    // Trusted entries carry the xattrs read last time (the files were not even opened).
    assert_eq!(second.b.entries, first.b.entries);
    let f3 = &second.b.entries[second.b.find(b"f3").unwrap()];
    assert_eq!(
        f3.xattrs.as_deref(),
        Some(&[(b"user.tag".to_vec().into(), b"v1".to_vec().into())][..])
    );

    // Changing an xattr, an ACL, the mode or the owner moves ctime: those files are read
    // (and their xattrs listed) again, and every change is reported.
    b.xattr("f3", "user.tag", "v2").xattr("f5", "user.new", "1");
    setfacl(&b.join("f6"), "u:1234:r");
    b.mode("f7", 0o600).owner("f8", 1000, 1001);
    let third = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!(
        found(&third),
        expect(&[
            (Class::Xattr, "f3"),
            (Class::Xattr, "f5"),
            (Class::Acl, "f6"),
            (Class::Mode, "f7"),
            (Class::Owner, "f8"),
            (Class::Group, "f8"),
        ])
    );
    assert_eq!((third.totals.rehashed, third.totals.trusted), (5, 15));
}

/// Each file is looked up in the earlier manifest among the entries below its directory.
/// Sibling names that sort between a directory and its own entries ("d" < "d.x" < "d/f" <
/// "d0"), the root's files, deep paths and names with bytes below '/' must all still be found,
/// and a file moved to another directory with its inode unchanged must not be.
#[test]
fn every_unchanged_file_is_found_in_the_cache_whatever_its_neighbours() {
    let a = Tree::new();
    let names = [
        "f",
        "d/f",
        "d.y",
        "d.x/f",
        "d-/f",
        "d0/f",
        "d/e/f",
        "d/e/g",
        "d/e.f",
        "d!",
        "d/e/h/i/j",
        "d/ ",
        "d/\u{1}",
        "e",
    ];
    for n in names {
        a.file(n, n);
    }
    let b = Tree::copy_of(a.path());
    settle();
    let cache = tempfile::tempdir().unwrap();
    let files = 2 * names.len() as u64;
    let first = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!((first.totals.rehashed, first.totals.trusted), (files, 0));
    let second = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!(second.exit_code(), EXIT_EQUAL, "{:?}", second.findings);
    assert_eq!((second.totals.rehashed, second.totals.trusted), (0, files));

    // A rename keeps the inode, size and mtime, but the path is new on B: read, not trusted.
    std::fs::rename(b.path().join("d/e/g"), b.path().join("d.x/g")).unwrap();
    let third = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!(
        found(&third),
        expect(&[
            (Class::Missing, "d/e/g"),
            (Class::Extra, "d.x/g"),
            (Class::Mtime, "d.x"),
            (Class::Mtime, "d/e"),
        ])
    );
    assert_eq!(
        (third.totals.rehashed, third.totals.trusted),
        (1, files - 1)
    );
}
