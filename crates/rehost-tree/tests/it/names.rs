//! Hostile names: newlines, terminal escapes, invalid UTF-8, paths longer than PATH_MAX.

use crate::*;
use rehost_tree::{CompareOptions, Manifest, WalkOptions, compare, manifest};

#[test]
fn hostile_names_are_compared_and_escaped() {
    let a = Tree::new();
    a.file(b"new\nline", "1")
        .file(b"esc\x1b[31mred", "2")
        .file(b"bad\xff\xfeutf8", "3")
        .file("back\\slash", "4")
        .file(" lead and trail ", "5")
        .file("-", "6")
        .file("a=b,c#d", "7")
        .dir(b"dir\twith\ttabs");
    let b = Tree::copy_of(a.path());
    let r = verify(a.path(), b.path());
    assert_eq!(found(&r), vec![]);
    for name in [&b"new\nline"[..], b"bad\xff\xfeutf8"] {
        let (s, n) = b.get_mtime(name);
        b.file(name, "X").mtime(name, s, n);
    }
    let r = verify(a.path(), b.path());
    let mut human = Vec::new();
    r.render_human(&mut human).unwrap();
    let human = String::from_utf8(human).unwrap();
    assert!(human.contains("content     new\\nline"), "{human}");
    assert!(human.contains("content     bad\\xff\\xfeutf8"), "{human}");
    assert!(!human.contains('\x1b'));
    let mut json = Vec::new();
    r.render_json(&mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let f = &v["findings"];
    assert_eq!(f[0]["path"], "bad\u{fffd}\u{fffd}utf8");
    assert_eq!(f[0]["path_hex"], "626164fffe75746638");
    assert_eq!(f[1]["path"], "new\nline");
    assert!(f[1].get("path_hex").is_none());
}

#[test]
fn paths_longer_than_path_max() {
    let a = Tree::new();
    let comp = "d".repeat(250);
    let mut rel = String::new();
    for _ in 0..20 {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(&comp);
    }
    // create_dir_all with a > 4096-byte path fails; build it step by step relative to a cwd-less fd.
    let mut p = a.path().to_path_buf();
    for _ in 0..20 {
        p.push(&comp);
        // Linux mkdir(2) takes paths up to PATH_MAX; go through /proc/self/fd of an open parent.
        let parent = std::fs::File::open(p.parent().unwrap()).ok();
        match parent {
            Some(f) => {
                use std::os::fd::AsRawFd;
                let c = std::ffi::CString::new(comp.as_str()).unwrap();
                // SAFETY: valid fd and C string.
                assert_eq!(
                    unsafe { libc::mkdirat(f.as_raw_fd(), c.as_ptr(), 0o755) },
                    0
                );
            }
            None => break,
        }
        if p.as_os_str().len() > 3500 {
            break;
        }
    }
    // Descend with fds for the part beyond PATH_MAX.
    let mut fd = std::fs::File::open(&p).unwrap();
    for _ in 0..5 {
        use std::os::fd::{AsRawFd, FromRawFd};
        let c = std::ffi::CString::new(comp.as_str()).unwrap();
        // SAFETY: valid fd and C string; fds owned by File.
        unsafe {
            assert_eq!(libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o755), 0);
            let n = libc::openat(
                fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            );
            assert!(n >= 0);
            fd = std::fs::File::from_raw_fd(n);
        }
    }
    let m = manifest(
        a.path(),
        &WalkOptions::default(),
        &mut |_| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    let longest = m.entries.iter().map(|e| e.path.len()).max().unwrap();
    assert!(longest > 4096, "longest path {longest}");
    assert!(m.entries.iter().all(|e| e.state == rehost_tree::State::Ok));
    // Round trip through the file format, and compare equal with itself.
    let mut buf = Vec::new();
    m.write_to(&mut buf).unwrap();
    let back = Manifest::read_from(&mut &buf[..], std::path::Path::new("mem")).unwrap();
    assert_eq!(back, m);
    assert_eq!(
        compare(&m, &back, &CompareOptions::default()).findings,
        vec![]
    );
}
