use super::*;
use std::os::unix::fs::PermissionsExt;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn creates_directories_0700_and_files_0600() {
    let t = tempfile::tempdir().unwrap();
    let d = PrivateDir::open(&t.path().join("state"), true)
        .unwrap()
        .unwrap();
    let sub = d.subdir("output", true).unwrap().unwrap();
    assert_eq!(mode(d.path()), 0o700);
    assert_eq!(mode(sub.path()), 0o700);
    sub.create_file("a.log").unwrap().write_all(b"x").unwrap();
    assert_eq!(mode(&sub.path().join("a.log")), 0o600);
    // Created afresh: the old content is gone.
    sub.create_file("a.log").unwrap();
    assert_eq!(std::fs::read(sub.path().join("a.log")).unwrap(), b"");
    d.write_atomic("m", true, &mut |w| w.write_all(b"manifest"))
        .unwrap();
    assert_eq!(mode(&d.path().join("m")), 0o600);
    let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

#[test]
fn refuses_symlinks_foreign_owners_and_writable_directories() {
    let t = tempfile::tempdir().unwrap();
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, t.path().join("link")).unwrap();
    let e = PrivateDir::open(&t.path().join("link"), true).unwrap_err();
    assert!(matches!(e, PrivateError::Symlink { .. }), "{e}");

    let writable = t.path().join("writable");
    std::fs::create_dir(&writable).unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o775)).unwrap();
    let e = PrivateDir::open(&writable, true).unwrap_err();
    assert!(
        matches!(e, PrivateError::Writable { mode: 0o775, .. }),
        "{e}"
    );

    // Tests run as root in CI; chown needs it.
    let foreign = t.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let e = PrivateDir::open(&foreign, true).unwrap_err();
    assert!(matches!(e, PrivateError::Owner { owner: 65534, .. }), "{e}");

    // A 0755 directory of ours (an older rehost's) is tightened, not refused.
    let old = t.path().join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    PrivateDir::open(&old, false).unwrap().unwrap();
    assert_eq!(mode(&old), 0o700);
}

#[test]
fn files_are_not_opened_through_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let d = PrivateDir::open(&t.path().join("s"), true)
        .unwrap()
        .unwrap();
    let target = t.path().join("victim");
    std::fs::write(&target, b"root's file").unwrap();
    std::os::unix::fs::symlink(&target, d.path().join("journal")).unwrap();
    let e = d.open_file("journal", true, true).unwrap_err();
    assert!(matches!(e, PrivateError::Symlink { .. }), "{e}");
    // Created afresh, a link in its place is replaced, never followed.
    std::os::unix::fs::symlink(&target, d.path().join("out.log")).unwrap();
    d.create_file("out.log")
        .unwrap()
        .write_all(b"output")
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"root's file");
}

#[test]
fn write_file_atomic_uses_no_fixed_temporary_name() {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("victim");
    std::fs::write(&target, b"root's file").unwrap();
    // The old fixed name, planted as a link: now ignored.
    std::os::unix::fs::symlink(&target, t.path().join("m.rehost-tmp")).unwrap();
    write_file_atomic(&t.path().join("m.txt"), true, &mut |w| {
        w.write_all(b"manifest")
    })
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"root's file");
    assert_eq!(std::fs::read(t.path().join("m.txt")).unwrap(), b"manifest");
    assert_eq!(mode(&t.path().join("m.txt")), 0o600);
}

/// `report -o`, `concept -o` (issue 18): a link planted at the name is replaced, never
/// followed, even in a sticky directory others can write; the mode is what was asked.
#[test]
fn output_dirs_replace_planted_links_and_refuse_what_others_can_write() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"root's file").unwrap();
    let sticky = t.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::symlink(&victim, sticky.join("r.html")).unwrap();
    // Planted by another user (tests run as root in CI; lchown needs it).
    std::os::unix::fs::lchown(sticky.join("r.html"), Some(65534), Some(65534)).unwrap();
    let d = OutputDir::open(&sticky, false).unwrap();
    d.write(OsStr::new("r.html"), 0o640, b"report").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"root's file");
    assert_eq!(std::fs::read(sticky.join("r.html")).unwrap(), b"report");
    assert_eq!(mode(&sticky.join("r.html")), 0o640);
    assert!(d.write(OsStr::new("../x"), 0o600, b"x").is_err());

    std::os::unix::fs::symlink(&sticky, t.path().join("link")).unwrap();
    let e = OutputDir::open(&t.path().join("link"), true).unwrap_err();
    assert!(matches!(e, PrivateError::Symlink { .. }), "{e}");
    let loose = t.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = OutputDir::open(&loose, false).unwrap_err();
    assert!(
        matches!(e, PrivateError::Writable { mode: 0o777, .. }),
        "{e}"
    );
    std::os::unix::fs::chown(&sticky, Some(65534), Some(65534)).unwrap();
    let e = OutputDir::open(&sticky, false).unwrap_err();
    assert!(matches!(e, PrivateError::Owner { owner: 65534, .. }), "{e}");
    // Readable by others is the operator's choice: not tightened.
    let open = t.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    OutputDir::open(&open, false).unwrap();
    assert_eq!(mode(&open), 0o755);
}
