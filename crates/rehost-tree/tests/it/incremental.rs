//! The incremental path: a second verification trusts digests of unchanged files only.

use crate::*;
use rehost_tree::{Class, EXIT_EQUAL};

fn opts(cache: &Path) -> VerifyOptions {
    VerifyOptions {
        cache: Some(cache.to_path_buf()),
        ..VerifyOptions::default()
    }
}

#[test]
fn second_run_trusts_unchanged_and_catches_ctime_only_changes() {
    let a = Tree::new();
    for i in 0..50 {
        a.file(format!("d/f{i}"), format!("content {i}"));
    }
    a.mtime("d", 1, 0);
    let b = Tree::copy_of(a.path());
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
    let cache = tempfile::tempdir().unwrap();
    verify_with(a.path(), b.path(), &opts(cache.path()));
    let p = cache.path().join("b.rmf");
    let mut text = std::fs::read(&p).unwrap();
    let i = text.iter().position(|&c| c == b'#').unwrap();
    text[i + 1] ^= 1;
    std::fs::write(&p, text).unwrap();
    let r = verify_with(a.path(), b.path(), &opts(cache.path())).report;
    assert_eq!((r.totals.rehashed, r.totals.trusted), (1, 1));
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
}
