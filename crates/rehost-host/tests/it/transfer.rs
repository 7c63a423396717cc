//! The built-in transfer between hosts (for hosts without rsync), over a real sshd: every
//! direction, every kind of entry, large files sent in pieces, a second run that copies
//! nothing, and repairs.

use crate::*;
use rehost_host::transfer::{TransferOptions, transfer_between};
use rehost_host::{Host, LocalHost};
use rehost_tree::transfer::TransferReport;
use rehost_tree::{VerifyOptions, verify_trees};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::AtomicBool;

/// A tree with what a server's data holds: hostile names, a hard-link pair, a symlink, a
/// fifo, an empty directory, modes and owners, an xattr, a sparse image and a file larger than
/// one transfer batch (8 MiB), so it is sent ahead in pieces.
fn server_tree(root: &Path) {
    use std::os::unix::fs::{FileExt, PermissionsExt};
    let w = |p: &[u8], data: &[u8]| {
        let path = root.join(OsStr::from_bytes(p));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w(b"etc/app.conf", b"port = 8080\n");
    w(b"data/new\nline", b"n");
    w(b"data/\xff\xfe-latin1", b"l");
    w(b"data/$(touch pwned)", b"x");
    let big: Vec<u8> = (0..(20u32 << 20) / 4)
        .flat_map(|i| i.to_le_bytes())
        .collect();
    w(b"data/big.bin", &big);
    let img = std::fs::File::create(root.join("data/disk.img")).unwrap();
    img.write_all_at(b"boot", 0).unwrap();
    img.set_len(16 << 20).unwrap();
    std::fs::hard_link(root.join("etc/app.conf"), root.join("etc/app.conf.hard")).unwrap();
    std::os::unix::fs::symlink("../etc/app.conf", root.join("data/link")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let fifo = std::ffi::CString::new(root.join("data/fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::set_permissions(
        root.join("etc/app.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(root.join("data/new\nline"), Some(1234), Some(5678)).unwrap();
    let p = std::ffi::CString::new(root.join("etc/app.conf").as_os_str().as_bytes()).unwrap();
    // SAFETY: valid C strings and buffer.
    assert_eq!(
        unsafe {
            libc::setxattr(
                p.as_ptr(),
                c"user.origin".as_ptr(),
                b"old".as_ptr().cast(),
                3,
                0,
            )
        },
        0
    );
}

fn run(src: (&dyn Host, &Path), dst: (&dyn Host, &Path)) -> TransferReport {
    let r = transfer_between(
        (src.0, src.1.as_os_str().as_bytes()),
        (dst.0, dst.1.as_os_str().as_bytes()),
        &TransferOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.errors, vec![], "{r:?}");
    r
}

/// What verify finds between the two trees (both are on this machine: sshd is on loopback).
fn differences(a: &Path, b: &Path) -> Vec<String> {
    let v = verify_trees(
        a,
        b,
        &VerifyOptions::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    v.report
        .findings
        .iter()
        .map(|f| format!("{:?} {}", f.class, String::from_utf8_lossy(&f.path)))
        .collect()
}

#[test]
fn every_direction_copies_everything_verify_compares() {
    let sshd = Sshd::start();
    let remote = open("new", &spec(&sshd)).unwrap();
    let local = LocalHost::new("old", None);
    let src = tempfile::tempdir().unwrap();
    server_tree(src.path());
    let (to_remote, to_local, remote_to_remote) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let direct = |r: &TransferReport| {
        assert_eq!(r.created, 12, "{r:?}");
        // Both files' content crossed over whole; the image's holes too, as bytes.
        assert_eq!(
            r.bytes_copied,
            (20 << 20) + (16 << 20) + 12 + 1 + 1 + 1,
            "{r:?}"
        );
    };
    // Local to ssh, ssh to local, ssh to ssh (both ends on the one sshd).
    direct(&run((&local, src.path()), (&remote, to_remote.path())));
    assert_eq!(
        differences(src.path(), to_remote.path()),
        Vec::<String>::new()
    );
    direct(&run((&remote, to_remote.path()), (&local, to_local.path())));
    assert_eq!(
        differences(src.path(), to_local.path()),
        Vec::<String>::new()
    );
    direct(&run(
        (&remote, to_local.path()),
        (&remote, remote_to_remote.path()),
    ));
    assert_eq!(
        differences(src.path(), remote_to_remote.path()),
        Vec::<String>::new()
    );
    assert!(!src.path().join("data/pwned").exists() && !to_remote.path().join("pwned").exists());

    // Holes stayed holes on the far side.
    use std::os::unix::fs::MetadataExt;
    let img = std::fs::metadata(to_remote.path().join("data/disk.img")).unwrap();
    assert!(
        img.blocks() * 512 <= 1 << 20,
        "{} bytes allocated",
        img.blocks() * 512
    );

    // Nothing to do the second time.
    let again = run((&local, src.path()), (&remote, to_remote.path()));
    assert_eq!(
        (
            again.created,
            again.updated,
            again.deleted,
            again.bytes_copied
        ),
        (0, 0, 0, 0),
        "{again:?}"
    );
}

#[test]
fn a_second_transfer_repairs_only_what_differs() {
    let sshd = Sshd::start();
    let remote = open("new", &spec(&sshd)).unwrap();
    let local = LocalHost::new("old", None);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    server_tree(src.path());
    run((&local, src.path()), (&remote, dst.path()));
    // On the destination: content changed, an extra tree, a mode, a file replaced by a
    // directory; on the source: a new file.
    let d = dst.path();
    std::fs::write(d.join("etc/app.conf"), "port = 9090\n").unwrap();
    std::fs::create_dir_all(d.join("extra/deep")).unwrap();
    std::fs::write(d.join("extra/deep/x"), "x").unwrap();
    std::os::unix::fs::chown(d.join("data/link"), Some(1), Some(1)).unwrap_or(());
    std::fs::remove_file(d.join("data/$(touch pwned)")).unwrap();
    std::fs::create_dir(d.join("data/$(touch pwned)")).unwrap();
    std::fs::write(src.path().join("data/added"), "added").unwrap();
    assert!(!differences(src.path(), d).is_empty());
    let r = run((&local, src.path()), (&remote, d));
    assert_eq!(differences(src.path(), d), Vec::<String>::new());
    // Only the changed and new small files crossed, not the 36 MiB of large ones.
    assert_eq!(r.bytes_copied, 12 + 5 + 1, "{r:?}");
    assert_eq!(r.deleted, 3, "{r:?}");
}

/// The source's agent reads only inside the tree it was given: a piece whose path leaves it
/// is refused, not read.
#[test]
fn reading_outside_the_tree_is_refused() {
    use rehost_host::agent::{FilePiece, Request, Response};
    use rehost_host::{Bytes, execute};
    let outer = tempfile::tempdir().unwrap();
    std::fs::create_dir(outer.path().join("tree")).unwrap();
    std::fs::write(outer.path().join("secret"), "do not send").unwrap();
    std::fs::write(outer.path().join("tree/file"), "fine").unwrap();
    // A user on the old server swaps a directory for a symlink out of the tree, and a file
    // for a FIFO (which blocked rehost in open() for ever) or for another file.
    std::os::unix::fs::symlink(outer.path(), outer.path().join("tree/dir")).unwrap();
    let fifo = std::ffi::CString::new(
        outer
            .path()
            .join("tree/fifo")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::fs::write(outer.path().join("tree/swapped"), "planted").unwrap();
    let piece = |p: &str| FilePiece {
        path: Bytes::from(p),
        offset: 0,
        len: 100,
        ino: None,
    };
    let swapped = FilePiece {
        ino: Some(1),
        ..piece("swapped")
    };
    let req = Request::ReadFiles {
        root: Bytes::from(outer.path().join("tree").as_path()),
        pieces: vec![
            piece("../secret"),
            piece("file"),
            piece("/etc/hostname"),
            piece("dir/secret"),
            piece("fifo"),
            swapped,
        ],
    };
    let mut got = Vec::new();
    execute(
        &LocalHost::new("old", None),
        &req,
        &AtomicBool::new(false),
        &mut |r| got.push(r),
    )
    .unwrap();
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(
        matches!(&got[0], Response::FileError { message } if message.contains("not a path inside the tree")),
        "{got:?}"
    );
    assert!(
        matches!(&got[1], Response::FileData { data } if data.0[..] == b"fine"[..]),
        "{got:?}"
    );
    // Issue 27: the piece was read into a page-aligned buffer (a read off a page costs the
    // kernel several times more); this pins it.
    if let Response::FileData { data } = &got[1] {
        assert_eq!(data.0.as_ptr() as usize % 4096, 0);
    }
    assert!(matches!(&got[2], Response::FileError { .. }), "{got:?}");
    for (i, why) in [
        (3, ""),
        (4, "no longer a regular file"),
        (5, "inode differs"),
    ] {
        assert!(
            matches!(&got[i], Response::FileError { message } if message.contains(why)),
            "piece {i}: {got:?}"
        );
    }
}
