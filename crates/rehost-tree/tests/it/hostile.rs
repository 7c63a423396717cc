//! The built-in transfer against a compromised old server (crafted manifests and operations)
//! and against other users of both servers racing it (security issue #8, items 1-4 and 7).
//! The races are made deterministic with the apply hook, which runs the other user's action
//! between two operations: what an attacker's timing achieves. The other user is uid 65534,
//! acting through `setpriv`, so the test shows she has the rights the attack needs.

use rehost_test::tree::Tree;
use rehost_tree::manifest::LINK_NONE;
use rehost_tree::transfer::{
    Content, InlineContent, Meta, Op, apply, apply_with_hook, plan, stage, temp_name,
};
use rehost_tree::{Entry, Kind, Manifest, Time, WalkOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::AtomicBool;

const NOBODY: u32 = 65534;

/// Runs `script` with `sh` as uid/gid 65534 with no supplementary groups; returns whether it
/// succeeded.
fn as_nobody(script: &str) -> bool {
    rehost_test::tree::require_tool("setpriv");
    std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("setpriv")
        .success()
}

/// Everything about a tree: types, content, modes, owners, mtimes and ctimes (so even a chmod
/// to the same mode shows).
fn snapshot(root: &Path) -> Vec<Entry> {
    rehost_tree::manifest(
        root,
        &WalkOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
    .entries
}

fn meta(kind: Kind, mode: u32) -> Meta {
    Meta {
        kind,
        uid: 0,
        gid: 0,
        mode,
        mtime: Time { sec: 1, nsec: 0 },
        xattrs: None,
    }
}

fn file_op(path: &str, content: &[u8], mode: u32) -> Op {
    Op::File {
        path: path.as_bytes().into(),
        size: content.len() as u64,
        digest: *blake3::hash(content).as_bytes(),
        meta: meta(Kind::File, mode),
        staged: None,
        ino: None,
    }
}

fn run(root: &Path, ops: &[Op], data: &[u8]) -> rehost_tree::transfer::TransferReport {
    apply(
        root,
        ops,
        &mut InlineContent { data },
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// Item 1: the old server's agent sends `a`, a symlink to a directory outside the tree, then
/// `a/x`, a setuid file; and variants that chown/chmod through the link. Before the fix the
/// transfer wrote a setuid-root file outside the destination and reported done.
#[test]
fn operations_through_a_planted_symlink_write_nothing_outside() {
    let outer = Tree::new();
    outer
        .dir("tree")
        .file("tree/f", "f")
        .file("outside/keep", "keep");
    outer.mode("outside", 0o755);
    let root = outer.join("tree");
    let outside = outer.join("outside");
    let before = snapshot(&outside);
    let link = Op::Symlink {
        path: b"a".as_slice().into(),
        target: outside.as_os_str().as_encoded_bytes().into(),
        meta: meta(Kind::Symlink, 0o777),
    };
    let ops = vec![
        link,
        file_op("a/x", b"#!/bin/sh\n", 0o4755),
        Op::Mkdir {
            path: b"a/d".as_slice().into(),
        },
        Op::DirMeta {
            path: b"a".as_slice().into(),
            want: meta(Kind::Dir, 0o777),
            have: None,
        },
        Op::Meta {
            path: b"a".as_slice().into(),
            want: meta(Kind::Dir, 0o777),
            have: meta(Kind::Dir, 0o755),
        },
        Op::Meta {
            path: b"a/keep".as_slice().into(),
            want: meta(Kind::File, 0o777),
            have: meta(Kind::File, 0o644),
        },
        Op::Link {
            path: b"a/y".as_slice().into(),
            to: b"f".as_slice().into(),
        },
        Op::Remove {
            path: b"a/keep".as_slice().into(),
            dir: false,
            replaced: false,
        },
    ];
    let r = run(&root, &ops, b"#!/bin/sh\n");
    assert_eq!(r.errors.len(), ops.len() - 1, "{r:?}");
    assert_eq!(
        snapshot(&outside),
        before,
        "something outside the tree changed"
    );
    assert!(
        std::fs::symlink_metadata(root.join("a"))
            .unwrap()
            .is_symlink()
    );
}

/// Item 1 at the manifest: an entry under a symlink, a hard-link index out of range (which
/// panicked `rehost run` mid-sync) or pointing at a directory are refused whole, and planning
/// from such a manifest does not panic.
#[test]
fn manifests_that_no_walk_produces_are_refused_whole() {
    let entry = |p: &str, kind| {
        let mut e = Entry::new(p.as_bytes().into(), kind);
        e.digest = Some([0; 32]);
        e
    };
    let under_link = Manifest {
        entries: vec![
            entry("", Kind::Dir),
            entry("a", Kind::Symlink),
            entry("a/x", Kind::File),
        ],
        ..Default::default()
    };
    let why = under_link.check().unwrap_err();
    assert!(
        matches!(&why, rehost_tree::BadManifest::UnderNonDirectory { path, parent } if path == "a/x" && parent == "a"),
        "{why}"
    );

    let unlisted = Manifest {
        entries: vec![entry("", Kind::Dir), entry("a/x", Kind::File)],
        ..Default::default()
    };
    assert!(matches!(
        unlisted.check().unwrap_err(),
        rehost_tree::BadManifest::UnderUnlisted { .. }
    ));

    for bad in [99u32, 1] {
        let mut m = Manifest {
            entries: vec![
                entry("", Kind::Dir),
                entry("d", Kind::Dir),
                entry("f", Kind::File),
            ],
            ..Default::default()
        };
        m.entries[2].link = bad;
        let why = m.check().unwrap_err();
        assert_eq!(
            why,
            rehost_tree::BadManifest::HardLink {
                path: "f".into(),
                link: bad
            }
        );
        // Total even so: an error for the entry, no panic.
        let p = plan(&m, &Manifest::default(), true);
        assert!(
            p.ops.iter().all(|op| op.path() != b"f") || bad == 1,
            "{p:?}"
        );
    }
    let unsorted = Manifest {
        entries: vec![
            entry("", Kind::Dir),
            entry("b", Kind::File),
            entry("a", Kind::File),
        ],
        ..Default::default()
    };
    assert_eq!(
        unsorted.check().unwrap_err(),
        rehost_tree::BadManifest::Unsorted("a".into())
    );
    let mut ok = Manifest {
        entries: vec![
            entry("", Kind::Dir),
            entry("d", Kind::Dir),
            entry("d/f", Kind::File),
        ],
        ..Default::default()
    };
    ok.entries[2].link = LINK_NONE;
    ok.check().unwrap();
}

/// A tree owned by root with one directory `u` (and `u/sub`) owned by the second user, as on
/// a new server other people already log into; and a root-owned directory outside it.
fn shared_tree() -> (Tree, std::path::PathBuf, std::path::PathBuf) {
    let outer = Tree::new();
    outer
        .file("tree/u/sub/f", "old")
        .file("outside/secret", "root's")
        .mode("outside/secret", 0o600)
        .mode("outside", 0o755)
        .mode("", 0o755)
        .mode("tree", 0o755)
        .owner("tree/u", NOBODY, NOBODY)
        .owner("tree/u/sub", NOBODY, NOBODY)
        .owner("tree/u/sub/f", NOBODY, NOBODY);
    let root = outer.join("tree");
    let outside = outer.join("outside");
    (outer, root, outside)
}

/// Item 2a: she swaps a directory she owns for a symlink to a root-owned directory while the
/// transfer runs; before the fix her file landed in the root-owned directory. Swapped before
/// rehost opened the directory, the symlink is refused; swapped after, rehost goes on writing
/// into the directory it opened (which she moved, inside the tree), never into the target.
#[test]
fn a_directory_swapped_for_a_symlink_during_the_transfer_is_not_followed() {
    for swap_before in [0usize, 1] {
        let (_outer, root, outside) = shared_tree();
        let before = snapshot(&outside);
        let ops = vec![
            file_op("u/sub/new", b"data", 0o644),
            file_op("u/sub/g", b"more", 0o4755),
        ];
        let (u, out) = (root.join("u"), outside.display().to_string());
        let mut n = 0;
        let r = apply_with_hook(
            &root,
            &ops,
            &mut InlineContent { data: b"datamore" },
            &mut |_| {},
            &AtomicBool::new(false),
            &mut |_| {
                if n == swap_before {
                    let script =
                        format!("mv {0}/sub {0}/moved && ln -s {out} {0}/sub", u.display());
                    assert!(
                        as_nobody(&script),
                        "the second user could not swap her directory"
                    );
                }
                n += 1;
            },
        )
        .unwrap();
        assert_eq!(
            snapshot(&outside),
            before,
            "the transfer wrote through her symlink"
        );
        if swap_before == 0 {
            assert_eq!(r.errors.len(), 2, "{r:?}");
            assert!(!u.join("moved/new").exists());
        } else {
            assert_eq!(r.errors, vec![]);
            assert_eq!(std::fs::read(u.join("moved/new")).unwrap(), b"data");
            assert_eq!(std::fs::read(u.join("moved/g")).unwrap(), b"more");
        }
    }
}

/// Item 2b: metadata was set with calls that follow symlinks, so a root 0600 file became
/// 0666 when she replaced her file with a link to it.
#[test]
fn metadata_is_never_set_through_a_symlink() {
    let (_outer, root, outside) = shared_tree();
    let before = snapshot(&outside);
    let ops = vec![Op::Meta {
        path: b"u/sub/f".as_slice().into(),
        want: Meta {
            uid: NOBODY,
            gid: NOBODY,
            ..meta(Kind::File, 0o666)
        },
        have: Meta {
            uid: NOBODY,
            gid: NOBODY,
            ..meta(Kind::File, 0o644)
        },
    }];
    let f = root.join("u/sub/f");
    let secret = outside.join("secret");
    let r = apply_with_hook(
        &root,
        &ops,
        &mut InlineContent { data: b"" },
        &mut |_| {},
        &AtomicBool::new(false),
        &mut |_| {
            let script = format!("rm {0} && ln -s {1} {0}", f.display(), secret.display());
            assert!(as_nobody(&script));
        },
    )
    .unwrap();
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].1.contains("changed type"), "{r:?}");
    assert_eq!(snapshot(&outside), before);
    let m = std::fs::metadata(&secret).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o600);
}

/// Item 2c: the staged temporary name was fixed, so a loop planting it as a symlink made a
/// large file's staging overwrite a root file with her content. Names are random now; a
/// staged file swapped for a symlink or for her own file is refused, never written through.
#[test]
fn staged_temporary_files_cannot_be_redirected() {
    let (_outer, root, outside) = shared_tree();
    let before = snapshot(&outside);
    let secret = outside.join("secret");
    // The old, predictable name planted in advance: not used any more.
    assert!(as_nobody(&format!(
        "ln -s {} {}/.rehost-tmp-big",
        secret.display(),
        root.join("u/sub").display()
    )));
    let tmp = temp_name();
    let tmp_path = root
        .join("u/sub")
        .join(String::from_utf8(tmp.to_vec()).unwrap());
    stage(&root, b"u/sub/big", &tmp, 0, b"first piece ").unwrap();
    // Owner-only while it is written (item 3).
    let m = std::fs::symlink_metadata(&tmp_path).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, 0));
    assert!(!as_nobody(&format!("cat {}", tmp_path.display())));
    // She swaps the staged file for a symlink to root's file, then for a file of her own.
    for plant in [
        format!(
            "rm -f {0} && ln -s {1} {0}",
            tmp_path.display(),
            secret.display()
        ),
        format!("rm -f {0} && echo mine > {0}", tmp_path.display()),
    ] {
        assert!(as_nobody(&plant));
        let err = stage(&root, b"u/sub/big", &tmp, 12, b"second piece").unwrap_err();
        assert!(
            err.to_string()
                .contains("Too many levels of symbolic links")
                || err.to_string().contains("replaced by another user"),
            "{err}"
        );
    }
    // The first piece of a name that exists (planted) fails rather than writing into it.
    assert!(stage(&root, b"u/sub/big", &tmp, 0, b"again").is_err());
    assert_eq!(snapshot(&outside), before);
}

/// Item 3: new files are written owner-only (0600) and new directories are 0700 until their
/// real modes are set last; before the fix a user read a whole 0600 file during its copy.
#[test]
fn content_is_not_readable_by_others_while_it_is_copied() {
    struct Spy {
        seen: Vec<u32>,
        readable_by_nobody: bool,
    }
    impl Content for Spy {
        fn copy(
            &mut self,
            _path: &[u8],
            _size: u64,
            _ino: Option<u64>,
            out: &std::fs::File,
        ) -> std::io::Result<(u64, [u8; 32])> {
            use std::os::fd::AsRawFd;
            self.seen.push(out.metadata()?.mode() & 0o7777);
            let at = std::fs::read_link(format!("/proc/self/fd/{}", out.as_raw_fd()))?;
            self.readable_by_nobody |= as_nobody(&format!("cat '{}'", at.display()));
            out.write_all_at_end(b"secret")?;
            Ok((6, *blake3::hash(b"secret").as_bytes()))
        }
    }
    trait WriteAll {
        fn write_all_at_end(&self, b: &[u8]) -> std::io::Result<()>;
    }
    impl WriteAll for std::fs::File {
        fn write_all_at_end(&self, b: &[u8]) -> std::io::Result<()> {
            std::os::unix::fs::FileExt::write_all_at(self, b, 0)
        }
    }
    let t = Tree::new();
    t.mode("", 0o755);
    let ops = vec![
        Op::Mkdir {
            path: b"d".as_slice().into(),
        },
        file_op("d/key", b"secret", 0o644),
        Op::DirMeta {
            path: b"d".as_slice().into(),
            want: meta(Kind::Dir, 0o755),
            have: None,
        },
    ];
    let mut spy = Spy {
        seen: Vec::new(),
        readable_by_nobody: false,
    };
    let mut dir_mode = 0;
    let r = apply_with_hook(
        t.path(),
        &ops,
        &mut spy,
        &mut |_| {},
        &AtomicBool::new(false),
        &mut |op| {
            if matches!(op, Op::File { .. }) {
                dir_mode = std::fs::metadata(t.join("d")).unwrap().mode() & 0o7777;
            }
        },
    )
    .unwrap();
    assert_eq!(r.errors, vec![]);
    assert_eq!(spy.seen, vec![0o600]);
    assert!(!spy.readable_by_nobody);
    assert_eq!(dir_mode, 0o700);
    // And the real modes at the end.
    assert_eq!(
        std::fs::metadata(t.join("d/key")).unwrap().mode() & 0o7777,
        0o644
    );
    assert_eq!(
        std::fs::metadata(t.join("d")).unwrap().mode() & 0o7777,
        0o755
    );
}

/// Item 4: a user on the old server swaps her file for a FIFO (rehost blocked in open() for
/// ever, deaf to Ctrl-C) or for a symlink to /dev/zero (it would spin) between the walk and
/// the copy. The copy refuses both at once.
#[test]
fn a_source_file_swapped_for_a_fifo_or_a_device_link_is_refused_at_once() {
    let src = Tree::new();
    src.file("fifo", "was a file")
        .file("zero", "was a file")
        .file("plain", "ok");
    let dst = Tree::new();
    let walk = |p: &Path| snapshot(p);
    let ms = Manifest {
        entries: walk(src.path()),
        ..Default::default()
    };
    let md = Manifest {
        entries: walk(dst.path()),
        ..Default::default()
    };
    let p = plan(&ms, &md, true);
    src.remove("fifo")
        .fifo("fifo")
        .remove("zero")
        .symlink("zero", "/dev/zero");
    let (tx, rx) = std::sync::mpsc::channel();
    let (s, d) = (src.path().to_owned(), dst.path().to_owned());
    std::thread::spawn(move || {
        let mut source = rehost_tree::transfer::LocalSource::new(&s).unwrap();
        let r = apply(
            &d,
            &p.ops,
            &mut source,
            &mut |_| {},
            &AtomicBool::new(false),
        );
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the transfer blocked on a FIFO")
        .unwrap();
    let mut failed: Vec<_> = r.errors.iter().map(|(p, _)| p.to_vec()).collect();
    failed.sort();
    assert_eq!(failed, vec![b"fifo".to_vec(), b"zero".to_vec()], "{r:?}");
    assert_eq!(std::fs::read(dst.join("plain")).unwrap(), b"ok");
    assert!(!dst.join("fifo").exists() && !dst.join("zero").exists());
}

mod property {
    //! Random hostile operations, and operations planned from random hostile manifests,
    //! against a destination holding symlinks to a canary directory outside it: nothing
    //! outside the root changes, nothing panics.
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 5] = ["a", "b", "c", "l", "x"];

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(&NAMES[..]), 1..4).prop_map(|v| v.join("/"))
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop::sample::select(vec![
            Kind::File,
            Kind::Dir,
            Kind::Symlink,
            Kind::Fifo,
            Kind::Char,
        ])
    }

    fn any_meta() -> impl Strategy<Value = Meta> {
        (
            kind(),
            0u32..0o10000,
            prop::sample::select(vec![0u32, 65534, u32::MAX]),
        )
            .prop_map(|(kind, mode, id)| Meta {
                kind,
                uid: id,
                gid: id,
                mode,
                mtime: Time { sec: 7, nsec: 0 },
                xattrs: None,
            })
    }

    fn target(canary: &'static str) -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![
            canary.as_bytes().to_vec(),
            b"../canary".to_vec(),
            b"../../canary/sub".to_vec(),
            b"a".to_vec(),
            b"/".to_vec(),
        ])
    }

    fn op(canary: &'static str) -> impl Strategy<Value = Op> {
        prop_oneof![
            (path(), any::<bool>()).prop_map(|(p, dir)| Op::Remove {
                path: p.into_bytes().into(),
                dir,
                replaced: false
            }),
            path().prop_map(|p| Op::Mkdir {
                path: p.into_bytes().into()
            }),
            (path(), any_meta(), any::<bool>()).prop_map(|(p, m, staged)| Op::File {
                path: p.into_bytes().into(),
                size: 4,
                digest: *blake3::hash(b"evil").as_bytes(),
                meta: Meta {
                    kind: Kind::File,
                    ..m
                },
                staged: staged.then(temp_name),
                ino: None,
            }),
            (path(), target(canary), any_meta()).prop_map(|(p, t, m)| Op::Symlink {
                path: p.into_bytes().into(),
                target: t.into(),
                meta: m
            }),
            (path(), any_meta()).prop_map(|(p, m)| Op::Node {
                path: p.into_bytes().into(),
                rdev: 0x0103,
                meta: m
            }),
            (path(), path()).prop_map(|(p, t)| Op::Link {
                path: p.into_bytes().into(),
                to: t.into_bytes().into()
            }),
            (path(), any_meta(), any_meta()).prop_map(|(p, want, have)| Op::Meta {
                path: p.into_bytes().into(),
                want,
                have
            }),
            (prop_oneof![Just(String::new()), path()], any_meta()).prop_map(|(p, want)| {
                Op::DirMeta {
                    path: p.into_bytes().into(),
                    want,
                    have: None,
                }
            }),
        ]
    }

    /// A destination whose entries point at the canary every way a link can.
    fn setup() -> (Tree, std::path::PathBuf) {
        let outer = Tree::new();
        outer
            .file("canary/file", "canary")
            .file("canary/sub/deep", "deep")
            .mode("canary/file", 0o600)
            .dir("tree/a/b");
        let canary = outer.join("canary");
        let c = canary.display().to_string();
        outer
            .symlink("tree/l", &c)
            .symlink("tree/a/l", &c)
            .symlink("tree/x", format!("{c}/file"))
            .symlink("tree/a/x", "../../canary/sub");
        (outer, canary)
    }

    fn manifest_of(entries: Vec<(String, Kind, u32)>) -> Manifest {
        let mut m = Manifest::default();
        let mut root = Entry::new(Box::default(), Kind::Dir);
        root.mode = 0o755;
        m.entries.push(root);
        for (p, k, link) in entries {
            let mut e = Entry::new(p.into_bytes().into(), k);
            e.digest = Some(*blake3::hash(b"evil").as_bytes());
            e.size = 4;
            e.link = link;
            e.mode = 0o4777;
            e.target = Some(b"../canary".as_slice().into());
            m.entries.push(e);
        }
        m.entries.sort_by(|a, b| a.path.cmp(&b.path));
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn nothing_outside_the_root_changes(
            ops in prop::collection::vec(op("/nonexistent-canary"), 1..24),
            entries in prop::collection::vec(
                (path(), kind(), prop::sample::select(vec![LINK_NONE, 0, 1, 2, 7, 1000])),
                0..12,
            ),
        ) {
            let (outer, canary) = setup();
            let root = outer.join("tree");
            let before = snapshot(&canary);
            // Targets that name the canary by its absolute path.
            let c = canary.as_os_str().as_encoded_bytes();
            let ops: Vec<Op> = ops
                .into_iter()
                .map(|op| match op {
                    Op::Symlink { path, target, meta } if &*target == b"/nonexistent-canary" => {
                        Op::Symlink { path, target: c.into(), meta }
                    }
                    op => op,
                })
                .collect();
            let data = b"evil".repeat(ops.len());
            let _ = run(&root, &ops, &data);
            // Staging into whatever paths the ops named.
            for op in &ops {
                if let Op::File { path, staged: Some(t), .. } = op {
                    let _ = stage(&root, path, t, 0, b"evil");
                }
            }
            // And whatever a plan makes of a hostile manifest against what is there now.
            let src = manifest_of(entries);
            let dst = Manifest { entries: snapshot(&root), ..Default::default() };
            let p = plan(&src, &dst, true);
            let _ = run(&root, &p.ops, &data);
            prop_assert_eq!(snapshot(&canary), before);
        }
    }
}
