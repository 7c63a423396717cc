use super::*;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn set(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A tree: a directory, files of several modes, a FIFO, a symlink to a file outside the
/// tree, and one hard-linked file.
fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("data");
    let outside = t.path().join("outside.conf");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("a.db"), b"a").unwrap();
    set(&root.join("a.db"), 0o664);
    std::fs::write(root.join("sub/b"), b"b").unwrap();
    set(&root.join("sub/b"), 0o4755);
    std::fs::write(root.join("sub/deeper/ro"), b"c").unwrap();
    set(&root.join("sub/deeper/ro"), 0o444);
    std::fs::write(&outside, b"x").unwrap();
    set(&outside, 0o666);
    symlink(&outside, root.join("sub/link")).unwrap();
    std::fs::hard_link(root.join("a.db"), t.path().join("a.db.other-name")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o620),
        0,
    )
    .unwrap();
    set(&root.join("fifo"), 0o620);
    (t, root, outside)
}

fn apply(root: &Path) -> (ReadOnlySummary, Vec<ModeChange>) {
    let mut changes = Vec::new();
    let s = read_only(
        root,
        ReadOnlyAction::Apply,
        &AtomicBool::new(false),
        &mut |c| changes.push(c),
    )
    .unwrap();
    (s, changes)
}

#[test]
fn every_write_bit_beneath_the_root_is_removed_and_each_change_returned() {
    let (_t, root, outside) = tree();
    let (s, changes) = apply(&root);
    assert_eq!(mode(&root.join("a.db")), 0o444);
    assert_eq!(
        mode(&root.join("sub/b")),
        0o4555,
        "setuid kept, write bits gone"
    );
    assert_eq!(mode(&root.join("fifo")), 0o400);
    assert_eq!(mode(&root.join("sub")) & 0o222, 0);
    assert_eq!(mode(&root) & 0o222, 0, "the root directory itself");
    assert_eq!(mode(&outside), 0o666, "a symlink is never followed");
    // root, sub, sub/deeper, a.db, sub/b, fifo changed; sub/deeper/ro already read-only.
    assert_eq!((s.entries, s.changed, s.already), (7, 6, 1));
    assert_eq!((s.symlinks, s.linked, s.error_count), (1, 1, 0));
    assert_eq!(changes.len(), 6);
    let a = changes
        .iter()
        .find(|c| c.path.as_bytes() == b"a.db")
        .unwrap();
    assert_eq!((a.before, a.after), (0o664, 0o444));
    assert!(changes.iter().any(|c| c.path.as_bytes().is_empty()));

    let check = read_only(
        &root,
        ReadOnlyAction::Check,
        &AtomicBool::new(false),
        &mut |_| panic!("a check changes nothing"),
    )
    .unwrap();
    assert_eq!((check.writable_count, check.already), (0, 7));
}

#[test]
fn a_check_names_what_is_still_writable_and_changes_nothing() {
    let (_t, root, _) = tree();
    let s = read_only(
        &root,
        ReadOnlyAction::Check,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.writable_count, 6);
    assert!(s.writable.iter().any(|p| p.as_bytes() == b"sub/b"));
    assert_eq!(mode(&root.join("a.db")), 0o664);
}

#[test]
fn restore_sets_back_only_what_is_still_as_rehost_left_it() {
    let (_t, root, _) = tree();
    let (_, changes) = apply(&root);
    // After the step: somebody gives a.db its write bit back, and sub/b is replaced.
    set(&root.join("a.db"), 0o600);
    // (written beside it and renamed over it, so that it cannot reuse the inode)
    std::fs::write(root.join("sub/b.new"), b"new").unwrap();
    set(&root.join("sub/b.new"), 0o4555);
    std::fs::rename(root.join("sub/b.new"), root.join("sub/b")).unwrap();
    let s = restore(&root, &changes, &AtomicBool::new(false)).unwrap();
    assert_eq!((s.restored, s.left_count), (4, 2), "{s:?}");
    assert_eq!(
        mode(&root.join("a.db")),
        0o600,
        "their change is not undone"
    );
    assert_eq!(
        mode(&root.join("sub/b")),
        0o4555,
        "another inode is not touched"
    );
    assert_eq!(mode(&root.join("fifo")), 0o620);
    assert_eq!(mode(&root.join("sub")) & 0o200, 0o200);
    assert!(
        s.left.iter().any(|l| l.starts_with("a.db: mode 0600")),
        "{s:?}"
    );
    assert!(s.left.iter().any(|l| l.contains("another inode")), "{s:?}");
}

#[test]
fn restore_never_follows_a_symlink_planted_where_an_entry_was() {
    let (t, root, _) = tree();
    let (_, changes) = apply(&root);
    let target = t.path().join("victim");
    std::fs::write(&target, b"v").unwrap();
    set(&target, 0o444);
    // The directory sub is swapped for a symlink to a directory holding a file named b.
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("b"), b"b").unwrap();
    set(&elsewhere.join("b"), 0o4555);
    set(&root, 0o755);
    std::fs::rename(root.join("sub"), t.path().join("sub-moved")).unwrap();
    symlink(&elsewhere, root.join("sub")).unwrap();
    std::fs::remove_file(root.join("a.db")).unwrap();
    symlink(&target, root.join("a.db")).unwrap();
    let s = restore(&root, &changes, &AtomicBool::new(false)).unwrap();
    assert_eq!(
        mode(&target),
        0o444,
        "the file a planted symlink points to is untouched"
    );
    assert_eq!(
        mode(&elsewhere.join("b")),
        0o4555,
        "nothing through a symlinked directory"
    );
    assert!(s.left_count >= 3, "{s:?}");
}

/// Unmounts what the test mounted, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_mount_point_below_the_root_is_not_entered() {
    let (_t, root, _) = tree();
    let mnt = root.join("sub/mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "rehost-test"])
        .arg(&mnt)
        .status()
        .expect("mount (util-linux) runs");
    assert!(
        ok.success(),
        "mounting a tmpfs needs root: run the tests as root, as CI does"
    );
    let _m = Mounted(mnt.clone());
    std::fs::write(mnt.join("inside"), b"i").unwrap();
    set(&mnt.join("inside"), 0o666);
    let (s, changes) = apply(&root);
    assert_eq!(s.other_fs, vec![Bytes::from("sub/mnt")]);
    assert_eq!(
        mode(&mnt.join("inside")),
        0o666,
        "another file system is not changed"
    );
    assert!(
        !changes
            .iter()
            .any(|c| c.path.as_bytes().starts_with(b"sub/mnt"))
    );
}

#[test]
fn restore_refuses_what_is_not_a_permission_mode() {
    let (_t, root, _) = tree();
    let bad = [ModeChange {
        path: Bytes::from("a.db"),
        ino: 0,
        before: 0o100_644,
        after: 0o444,
    }];
    let s = restore(&root, &bad, &AtomicBool::new(false)).unwrap();
    assert_eq!((s.restored, s.left_count), (0, 1));
    assert_eq!(mode(&root.join("a.db")), 0o664);
}
