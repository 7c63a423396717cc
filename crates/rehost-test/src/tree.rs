//! Temporary trees for tests: a fluent builder over a temp directory that creates files,
//! directories, symlinks, fifos, sockets, devices and hard links, and sets xattrs, modes, owners
//! and mtimes. Paths are raw bytes relative to the root (`"a/b"`, `b"bad\xff"`); parents are
//! created as needed. Every method panics on failure: this is test support.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tree {
    dir: tempfile::TempDir,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in test paths")
}

fn check(rc: i32, what: &str, p: &Path) {
    if rc < 0 {
        panic!(
            "{what} {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
    }
}

impl Tree {
    /// An empty tree in a fresh temporary directory (mode 0755, so other users can read it).
    pub fn new() -> Tree {
        let dir = tempfile::Builder::new()
            .prefix("rehost-tree-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod tempdir");
        Tree { dir }
    }

    /// A copy of `src` made with `rsync -aHAX --numeric-ids` (everything verify compares).
    pub fn copy_of(src: &Path) -> Tree {
        let t = Tree::new();
        rsync_copy(src, t.path());
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Absolute path of a relative entry path.
    pub fn join(&self, rel: impl AsRef<[u8]>) -> PathBuf {
        self.dir.path().join(OsStr::from_bytes(rel.as_ref()))
    }

    fn parent(&self, rel: &[u8]) -> PathBuf {
        let p = self.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("create parents");
        }
        p
    }

    pub fn file(&self, rel: impl AsRef<[u8]>, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.parent(rel.as_ref());
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self
    }

    pub fn dir(&self, rel: impl AsRef<[u8]>) -> &Self {
        std::fs::create_dir_all(self.join(rel)).expect("mkdir");
        self
    }

    pub fn symlink(&self, rel: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &Self {
        let p = self.parent(rel.as_ref());
        std::os::unix::fs::symlink(OsStr::from_bytes(target.as_ref()), &p).expect("symlink");
        self
    }

    fn mknod(&self, rel: &[u8], mode: u32, dev: u64) -> &Self {
        let p = self.parent(rel);
        // SAFETY: valid C string.
        check(
            unsafe { libc::mknod(cpath(&p).as_ptr(), mode, dev) },
            "mknod",
            &p,
        );
        self
    }

    pub fn fifo(&self, rel: impl AsRef<[u8]>) -> &Self {
        self.mknod(rel.as_ref(), libc::S_IFIFO | 0o644, 0)
    }

    pub fn socket(&self, rel: impl AsRef<[u8]>) -> &Self {
        self.mknod(rel.as_ref(), libc::S_IFSOCK | 0o644, 0)
    }

    /// A character device (needs root).
    pub fn char_device(&self, rel: impl AsRef<[u8]>, major: u32, minor: u32) -> &Self {
        self.mknod(
            rel.as_ref(),
            libc::S_IFCHR | 0o600,
            libc::makedev(major, minor),
        )
    }

    /// A block device (needs root).
    pub fn block_device(&self, rel: impl AsRef<[u8]>, major: u32, minor: u32) -> &Self {
        self.mknod(
            rel.as_ref(),
            libc::S_IFBLK | 0o660,
            libc::makedev(major, minor),
        )
    }

    pub fn hardlink(&self, rel: impl AsRef<[u8]>, existing: impl AsRef<[u8]>) -> &Self {
        let p = self.parent(rel.as_ref());
        std::fs::hard_link(self.join(existing), &p).expect("hard link");
        self
    }

    pub fn xattr(&self, rel: impl AsRef<[u8]>, name: &str, value: impl AsRef<[u8]>) -> &Self {
        let p = self.join(rel);
        let n = CString::new(name).expect("xattr name");
        let v = value.as_ref();
        // SAFETY: valid pointers and lengths.
        let rc = unsafe {
            libc::lsetxattr(
                cpath(&p).as_ptr(),
                n.as_ptr(),
                v.as_ptr().cast(),
                v.len(),
                0,
            )
        };
        check(rc, "setxattr", &p);
        self
    }

    pub fn remove_xattr(&self, rel: impl AsRef<[u8]>, name: &str) -> &Self {
        let p = self.join(rel);
        let n = CString::new(name).expect("xattr name");
        // SAFETY: valid C strings.
        check(
            unsafe { libc::lremovexattr(cpath(&p).as_ptr(), n.as_ptr()) },
            "removexattr",
            &p,
        );
        self
    }

    pub fn mode(&self, rel: impl AsRef<[u8]>, mode: u32) -> &Self {
        let p = self.join(rel);
        // SAFETY: valid C string.
        check(
            unsafe { libc::chmod(cpath(&p).as_ptr(), mode) },
            "chmod",
            &p,
        );
        self
    }

    pub fn owner(&self, rel: impl AsRef<[u8]>, uid: u32, gid: u32) -> &Self {
        let p = self.join(rel);
        // SAFETY: valid C string.
        check(
            unsafe { libc::lchown(cpath(&p).as_ptr(), uid, gid) },
            "lchown",
            &p,
        );
        self
    }

    /// Sets the mtime (not following symlinks).
    pub fn mtime(&self, rel: impl AsRef<[u8]>, sec: i64, nsec: u32) -> &Self {
        let p = self.join(rel);
        let ts = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: sec,
                tv_nsec: nsec as i64,
            },
        ];
        // SAFETY: valid pointers.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                cpath(&p).as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        check(rc, "utimensat", &p);
        self
    }

    /// The mtime (seconds, nanoseconds), not following symlinks.
    pub fn get_mtime(&self, rel: impl AsRef<[u8]>) -> (i64, u32) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(self.join(rel)).expect("lstat");
        (m.mtime(), m.mtime_nsec() as u32)
    }

    /// Removes a file, symlink or whole directory.
    pub fn remove(&self, rel: impl AsRef<[u8]>) -> &Self {
        let p = self.join(rel);
        let m = std::fs::symlink_metadata(&p).expect("lstat");
        if m.is_dir() {
            std::fs::remove_dir_all(&p).expect("rm -r");
        } else {
            std::fs::remove_file(&p).expect("rm");
        }
        self
    }
}

/// Panics, naming the install step, when a tool the tests need is missing. Tests never skip.
pub fn require_tool(name: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{name} is not installed; install the test dependencies with `bash .ci/install-deps`"
    );
}

/// `rsync -aHAX --numeric-ids --modify-window=-1 SRC/ DST/`. Without `--modify-window=-1`
/// rsync 3.x compares mtimes to the second and leaves a directory, symlink or special file it
/// creates with the copy time when that falls in the same second as the source's mtime.
pub fn rsync_copy(src: &Path, dst: &Path) {
    require_tool("rsync");
    let out = Command::new("rsync")
        .arg("-aHAX")
        .arg("--numeric-ids")
        .arg("--modify-window=-1")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()))
        .output()
        .expect("run rsync");
    assert!(
        out.status.success(),
        "rsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
