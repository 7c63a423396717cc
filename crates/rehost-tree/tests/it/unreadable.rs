//! Unreadable, vanishing and changing files are reported as unverified or unstable, never equal.
//!
//! Tests run as root in CI and root ignores permission bits, so the unreadable case drops
//! privileges: the test re-runs this test binary as uid/gid 65534 (`nobody`), filtered to the
//! `child_walk` test, which walks the tree and prints the manifest on stdout. As a non-root user
//! the same test simply walks in-process. The binary is run from a copy in a world-readable temp
//! directory, since the checkout may not be reachable by `nobody`. Vanishing and changing files use the walker's hook to
//! act at an exact moment.

use crate::*;
use rehost_tree::{
    Class, EXIT_UNVERIFIED, HookPoint, Manifest, State, WalkOptions, compare, manifest,
};
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

const CHILD_ENV: &str = "REHOST_TREE_TEST_CHILD_WALK";

fn walk(p: &Path, opts: &WalkOptions) -> Manifest {
    manifest(p, opts, &mut |_| {}, &AtomicBool::new(false)).expect("walk")
}

/// Not a test of its own: the unprivileged half of `unreadable_as_non_root`.
#[test]
fn child_walk() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let m = walk(Path::new(&root), &WalkOptions::default());
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    out.write_all(b"<<<MANIFEST\n").unwrap();
    m.write_to(&mut out).unwrap();
    out.write_all(b">>>MANIFEST\n").unwrap();
}

fn walk_unprivileged(p: &Path) -> Manifest {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return walk(p, &WalkOptions::default());
    }
    // The checkout may live where uid 65534 cannot reach (/root in CI): run a copy of this
    // test binary from a world-readable temporary directory, made once per process.
    static EXE: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    let (_, exe) = EXE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let exe = dir.path().join("it");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        (dir, exe)
    });
    // Another test thread forking while the copy was open for writing keeps it open in the
    // child until that child execs: exec then fails with ETXTBSY for a moment.
    let mut tries = 0;
    let out = loop {
        match std::process::Command::new(exe)
            .args([
                "--exact",
                "unreadable::child_walk",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, p)
            .uid(65534)
            .gid(65534)
            .output()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => break r.expect("run the test binary as nobody"),
        }
    };
    let stdout = out.stdout;
    let start = stdout
        .windows(12)
        .position(|w| w == b"<<<MANIFEST\n")
        .expect("child printed a manifest")
        + 12;
    let end = stdout
        .windows(12)
        .rposition(|w| w == b">>>MANIFEST\n")
        .unwrap();
    Manifest::read_from(&mut &stdout[start..end], Path::new("child")).unwrap()
}

#[test]
fn unreadable_file_and_dir_are_unverified() {
    let a = Tree::new();
    a.file("ok", "fine")
        .file("secret", "s")
        .file("closed/inner", "i")
        .mode("secret", 0o000)
        .mode("closed", 0o700);
    a.owner("closed", 0, 0);
    let b = Tree::copy_of(a.path());
    let ma = walk_unprivileged(a.path());
    let mb = walk_unprivileged(b.path());
    let secret = &ma.entries[ma.find(b"secret").unwrap()];
    assert_eq!(secret.state, State::Unreadable(libc::EACCES));
    let r = compare(&ma, &mb, &Default::default());
    // The children of the unlistable directory are not claimed missing or equal.
    assert_eq!(
        found(&r),
        expect(&[(Class::Unverified, "closed"), (Class::Unverified, "secret")])
    );
    assert_eq!(r.exit_code(), EXIT_UNVERIFIED);
    assert_eq!(r.totals.equal, 2);
}

#[test]
fn unreadable_on_one_side_hides_nothing_on_the_other() {
    let a = Tree::new();
    a.file("closed/inner", "i").mode("closed", 0o700);
    let b = Tree::copy_of(a.path());
    keeping_parent_mtime(&b, "closed/extra", |b| {
        b.file("closed/extra", "x");
    });
    let ma = walk(a.path(), &WalkOptions::default());
    let mb = walk_unprivileged(b.path());
    let r = compare(&ma, &mb, &Default::default());
    assert_eq!(found(&r), expect(&[(Class::Unverified, "closed")]));
    assert_eq!(r.exit_code(), EXIT_UNVERIFIED);
}

// A is walked without the hook and B with it, separately: walked together, A's hook call could
// remove B's file before B's directory is listed, and it would be plainly missing.
#[test]
fn vanished_file_is_unverified() {
    let a = Tree::new();
    a.file("stay", "1").file("go", "2");
    let b = Tree::copy_of(a.path());
    let target = b.join("go");
    let ma = walk(a.path(), &WalkOptions::default());
    let hooked = WalkOptions {
        hook: Some(Arc::new(move |point, rel| {
            if point == HookPoint::BeforeOpen && rel == b"go" {
                let _ = std::fs::remove_file(&target);
            }
        })),
        ..WalkOptions::default()
    };
    let mb = walk(b.path(), &hooked);
    assert_eq!(mb.entries[mb.find(b"go").unwrap()].state, State::Vanished);
    let r = compare(&ma, &mb, &Default::default());
    assert_eq!(found(&r), expect(&[(Class::Unverified, "go")]));
    assert!(r.findings[0].b.contains("vanished"), "{:?}", r.findings[0]);
    assert_eq!(r.exit_code(), EXIT_UNVERIFIED);
}

#[test]
fn file_modified_while_hashed_is_unstable() {
    let a = Tree::new();
    a.file("big", vec![1u8; 3 << 20]);
    let b = Tree::copy_of(a.path());
    let target = b.join("big");
    let ma = walk(a.path(), &WalkOptions::default());
    let hooked = WalkOptions {
        hook: Some(Arc::new(move |point, _rel| {
            if point == HookPoint::AfterFirstRead {
                rewrite_start(&target);
            }
        })),
        ..WalkOptions::default()
    };
    let mb = walk(b.path(), &hooked);
    let e = &mb.entries[mb.find(b"big").unwrap()];
    assert_eq!((e.state, e.digest), (State::Unstable, None));
    let r = compare(&ma, &mb, &Default::default());
    assert_eq!(found(&r), expect(&[(Class::Unstable, "big")]));
    assert_eq!(r.exit_code(), EXIT_UNVERIFIED);
}

#[test]
fn fifo_is_never_opened() {
    // Opening a fifo for reading would block forever; the walk must stat it only.
    let a = Tree::new();
    a.fifo("pipe");
    let m = walk(a.path(), &WalkOptions::default());
    assert_eq!(m.entries[1].kind, rehost_tree::Kind::Fifo);
    assert_eq!(m.entries[1].state, State::Ok);
}
