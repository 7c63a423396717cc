//! Two trees walked as a pair (`walk_pair`, what `verify tree A B` and the transfer use): B's big
//! files are read side by side with A's and hashed only from a piece that differs. B's digests
//! must be exactly what a walk of B alone gives, whatever B holds at A's paths; a B file that
//! changed during the pair read must never keep the digest of the bytes compared; nothing
//! beneath B is reached through a symlink.

use crate::*;
use rehost_tree::transfer::{TransferOptions, transfer};
use rehost_tree::{
    Class, Entry, HookPoint, Kind, Manifest, State, WalkOptions, compare, walk_many, walk_pair,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

const MIB: usize = 1 << 20;

/// Deterministic bytes that differ from piece to piece (so a shifted comparison would fail).
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn pair(a: &Path, b: &Path, opts: &WalkOptions) -> (Manifest, Manifest) {
    walk_pair(
        (a, None),
        (b, None),
        opts,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect("walk")
}

fn alone(p: &Path) -> Manifest {
    let mut v = walk_many(
        &[(p, None)],
        &WalkOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect("walk");
    v.pop().unwrap()
}

fn entry<'m>(m: &'m Manifest, rel: &str) -> &'m Entry {
    &m.entries[m
        .find(rel.as_bytes())
        .unwrap_or_else(|| panic!("{rel} not in the manifest"))]
}

/// What a comparison looks at, per entry: path, kind, state, size, digest.
type Facts = (String, Kind, State, u64, Option<[u8; 32]>);

fn facts(m: &Manifest) -> Vec<Facts> {
    m.entries
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.path).into_owned(),
                e.kind,
                e.state,
                e.size,
                e.digest,
            )
        })
        .collect()
}

#[test]
fn b_digests_from_a_pair_walk_are_those_of_b_alone_whatever_b_holds() {
    let a = Tree::new();
    let content = bytes(3 * MIB + 12_345, 1);
    for rel in [
        "equal",
        "mid",
        "first",
        "last",
        "shorter",
        "d/e/deep",
        "through/x",
        "fifo",
        "absent",
        "dir",
    ] {
        a.file(rel, &content);
    }
    a.file("small", bytes(50_000, 2));
    let outside = Tree::new();
    outside.file("x", &content);
    let b = Tree::copy_of(a.path());
    let mut c = content.clone();
    c[3 * MIB / 2] ^= 1;
    b.file("mid", &c);
    let mut c = content.clone();
    c[0] ^= 1;
    b.file("first", &c);
    let mut c = content.clone();
    *c.last_mut().unwrap() ^= 1;
    b.file("last", &c);
    b.file("shorter", &content[..2 * MIB]);
    let mut c = bytes(50_000, 2);
    c[25_000] ^= 1;
    b.file("small", &c);
    // A symlink to a directory holding A's very file: never crossed.
    std::fs::remove_dir_all(b.join("through")).unwrap();
    b.symlink("through", outside.path().as_os_str().as_encoded_bytes());
    std::fs::remove_file(b.join("fifo")).unwrap();
    b.fifo("fifo");
    std::fs::remove_file(b.join("absent")).unwrap();
    std::fs::remove_file(b.join("dir")).unwrap();
    b.dir("dir");

    let (ma, mb) = pair(a.path(), b.path(), &WalkOptions::default());
    assert_eq!(facts(&ma), facts(&alone(a.path())), "A as walked alone");
    assert_eq!(facts(&mb), facts(&alone(b.path())), "B as walked alone");
    for rel in [
        "equal", "mid", "first", "last", "shorter", "d/e/deep", "small",
    ] {
        let want = blake3::hash(&std::fs::read(b.join(rel)).unwrap());
        assert_eq!(
            entry(&mb, rel).digest,
            Some(*want.as_bytes()),
            "{rel}: B's digest is the BLAKE3 of B's bytes"
        );
    }
    assert_ne!(entry(&mb, "mid").digest, entry(&ma, "mid").digest);
    assert_eq!(entry(&mb, "through").kind, Kind::Symlink);
    assert!(mb.find(b"through/x").is_none());
    assert_eq!(entry(&mb, "fifo").kind, Kind::Fifo);
    // Read side by side: the equal, the three that differ in one byte, the nested one; not the
    // shorter one (another size), the small one, or any that is not a regular file in B.
    assert_eq!(mb.compared, 5);
    assert_eq!(ma.compared, 0);

    let r = compare(&ma, &mb, &Default::default());
    assert_eq!(
        found(&r)
            .into_iter()
            .filter(|(c, _)| *c == Class::Content)
            .collect::<Vec<_>>(),
        expect(&[
            (Class::Content, "first"),
            (Class::Content, "last"),
            (Class::Content, "mid"),
            (Class::Content, "shorter"),
            (Class::Content, "small"),
        ])
    );
    assert_eq!(r.totals.compared, 5);
    let mut text = Vec::new();
    r.render_human(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("of them B's files compared byte for byte with A's, read side by side 5"),
        "{text}"
    );
}

#[test]
fn a_b_file_changed_during_the_pair_read_never_keeps_the_compared_digest() {
    let a = Tree::new();
    let content = bytes(4 * MIB, 3);
    a.file("big", &content);
    let b = Tree::copy_of(a.path());
    let target = b.join("big");
    let once = Arc::new(AtomicBool::new(false));
    let hooked = WalkOptions {
        hook: Some(Arc::new(move |point, rel| {
            // After the first piece of both was read and compared: change B's first bytes, in
            // place, the same size. Every later piece still compares equal.
            if point == HookPoint::AfterFirstRead && rel == b"big" && !once.swap(true, SeqCst) {
                rewrite_start(&target);
            }
        })),
        ..WalkOptions::default()
    };
    let (ma, mb) = pair(a.path(), b.path(), &hooked);
    let e = entry(&mb, "big");
    let now = blake3::hash(&std::fs::read(b.join("big")).unwrap());
    assert_ne!(
        e.digest,
        entry(&ma, "big").digest,
        "the bytes compared before the change are not B's"
    );
    assert!(
        e.state == State::Unstable || e.digest == Some(*now.as_bytes()),
        "unstable, or read again after the change: {:?}",
        (e.state, e.digest)
    );
    assert_eq!(mb.compared, 0);
}

#[test]
fn a_b_file_swapped_for_a_symlink_or_deleted_during_the_pair_read_never_gets_a_digest() {
    let a = Tree::new();
    let content = bytes(2 * MIB, 5);
    a.file("swap", &content);
    let outside = Tree::new();
    outside.file("same", &content);
    let b = Tree::copy_of(a.path());
    // Only in B: never read by A's walk, so B's walk reads it after both walks.
    b.file("gone", &content);
    let (swap, gone, same) = (b.join("swap"), b.join("gone"), outside.join("same"));
    let once = Arc::new(AtomicBool::new(false));
    let hooked = WalkOptions {
        hook: Some(Arc::new(move |point, rel| {
            // While A's walk reads `swap`: B's `swap` becomes a symlink to a file with the very
            // bytes, B's `gone` is deleted.
            if point == HookPoint::AfterFirstRead && rel == b"swap" && !once.swap(true, SeqCst) {
                std::fs::remove_file(&swap).unwrap();
                std::os::unix::fs::symlink(&same, &swap).unwrap();
                std::fs::remove_file(&gone).unwrap();
            }
        })),
        // One thread: B's walk lists and opens its files before A's walk reads (rayon runs the
        // last spawned root first), as the assertions below check.
        threads: 1,
        ..WalkOptions::default()
    };
    let (_, mb) = pair(a.path(), b.path(), &hooked);
    // B's walk saw a regular file; by the time it was to be read it was a symlink: unstable,
    // and the file the symlink names (the same bytes) was not read for it.
    let e = entry(&mb, "swap");
    assert_eq!(
        (e.kind, e.state, e.digest),
        (Kind::File, State::Unstable, None)
    );
    let e = entry(&mb, "gone");
    assert_eq!((e.state, e.digest), (State::Vanished, None));
    assert_eq!(mb.compared, 0);
}

#[test]
fn the_transfer_recopies_a_same_size_file_that_differs_and_leaves_an_equal_one() {
    let a = Tree::new();
    let content = bytes(2 * MIB, 4);
    a.file("same", &content).file("changed", &content);
    let b = Tree::copy_of(a.path());
    let mut c = content.clone();
    c[MIB + 7] ^= 0x40;
    keeping_parent_mtime(&b, "changed", |b| {
        b.file("changed", &c);
    });
    let (s, n) = a.get_mtime("changed");
    b.mtime("changed", s, n);
    let r = transfer(
        a.path(),
        b.path(),
        &TransferOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(r.errors, vec![]);
    assert_eq!(
        (r.updated, r.bytes_copied),
        (1, content.len() as u64),
        "{r:?}"
    );
    assert_eq!(std::fs::read(b.join("changed")).unwrap(), content);
    assert_eq!(found(&verify(a.path(), b.path())), vec![]);
}
