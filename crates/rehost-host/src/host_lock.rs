//! The run lock a host holds for a run: one `rehost run` at a time per server, whatever state
//! directory or copy of the plan each run uses.
//!
//! The lock is an exclusive `flock` on a file in a private lock directory of the host itself,
//! named by the BLAKE3 of the host's canonical root (`/` without one), and held by the process
//! that does the host's work for the run: rehost itself for a local host, the agent's session
//! for an ssh host (the [`crate::Request::Lock`] request). The kernel releases it when that
//! process ends, however it ends. The file holds the holder's description (pid, user, start
//! time, state directory), which a refused run reports.
//!
//! The lock directory is `$REHOST_LOCK_DIR` if set; else, for root, `/run/rehost` (`/run` is
//! root's alone; `/var/run/rehost` without `/run`); else `$XDG_RUNTIME_DIR/rehost-locks` or the
//! user's cache directory's `locks`. It is a private directory (0700, the user's own, no
//! symlink). It was `/run/lock/rehost` for root: `/run/lock` is writable by every user
//! (mode 1777), so anyone could create `rehost` there first and stop every run (issue 18). A
//! directory that is not rehost's (a symlink, another owner, writable by others) is refused
//! with its path and how to remove it.
//!
//! A lock file is named by the host's identity (`/etc/machine-id` and the host name) as well
//! as the root: two machines sharing a home directory (the fallback under the user's cache)
//! do not lock each other.

use rehost_tree::private::{PrivateDir, ensure_dir};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Overrides where host locks are kept (tests give each fake server its own).
pub const LOCK_DIR_ENV: &str = "REHOST_LOCK_DIR";

/// Where this host keeps run locks.
pub fn lock_dir() -> PathBuf {
    match std::env::var_os(LOCK_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => default_lock_dir(),
    }
}

/// [`lock_dir`] without `REHOST_LOCK_DIR`.
fn default_lock_dir() -> PathBuf {
    if rehost_tree::private::euid() == 0 {
        // Never under /run/lock or /tmp: every user may create names there.
        return if Path::new("/run").is_dir() {
            PathBuf::from("/run/rehost")
        } else {
            PathBuf::from("/var/run/rehost")
        };
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("rehost-locks"),
        None => rehost_tree::user_cache_dir().join("locks"),
    }
}

/// A held host lock; dropping it releases it.
pub struct HostLock {
    file: File,
    dir: PrivateDir,
    name: String,
}

impl std::fmt::Debug for HostLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HostLock({})",
            self.dir.path().join(&self.name).display()
        )
    }
}

/// Why a host lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another rehost run holds it ({holder})")]
    Busy { holder: String },
    #[error("{}", dir_message(.0))]
    Dir(#[from] rehost_tree::private::PrivateError),
    #[error("failed to lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a refused or unusable lock directory says: its path, what is wrong, what to do.
fn dir_message(e: &rehost_tree::private::PrivateError) -> String {
    if e.is_refusal() {
        format!(
            "failed to use the lock directory: {e}, so it is not rehost's; if no rehost run is using it, remove it (`rm -rf '{}'`), or set {LOCK_DIR_ENV} to a directory of your own",
            e.path().display()
        )
    } else {
        format!("failed to use the lock directory: {e}")
    }
}

/// The lock file's name for a root: the BLAKE3 of the host's identity and the root's
/// canonical path.
fn key(root: &Path) -> String {
    key_for(&crate::identity::host_identity(), root)
}

fn key_for(identity: &str, root: &Path) -> String {
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    use std::os::unix::ffi::OsStrExt;
    let mut h = blake3::Hasher::new();
    h.update(identity.as_bytes());
    h.update(b"\0");
    h.update(canonical.as_os_str().as_bytes());
    format!("{}.lock", &h.finalize().to_hex()[..32])
}

/// Takes the run lock of the host whose root is `root` (`/` for a whole machine) in `dir`,
/// recording `holder` in it; refuses at once when another run holds it.
pub fn acquire_in(dir: &Path, root: &Path, holder: &str) -> Result<HostLock, LockError> {
    let dir = ensure_dir(dir)?;
    let name = key(root);
    let path = dir.path().join(&name);
    let ioerr = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    loop {
        let mut file = dir.open_file(&name, false, true)?.expect("created");
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let holder = s.trim();
                return Err(LockError::Busy {
                    holder: if holder.is_empty() {
                        "starting".into()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(ioerr(e)),
        }
        // A run that ended removed the file after we opened it: lock the new one instead.
        if !same_file(&dir, &name, &file) {
            continue;
        }
        file.set_len(0).map_err(ioerr)?;
        file.rewind().map_err(ioerr)?;
        writeln!(file, "{holder}").map_err(ioerr)?;
        return Ok(HostLock { file, dir, name });
    }
}

/// [`acquire_in`] the host's [`lock_dir`].
pub fn acquire(root: &Path, holder: &str) -> Result<HostLock, LockError> {
    acquire_in(&lock_dir(), root, holder)
}

/// Whether `name` in `dir` is still the file open as `file`.
fn same_file(dir: &PrivateDir, name: &str, file: &File) -> bool {
    match (
        rustix::fs::fstat(file),
        rustix::fs::statat(dir.fd(), name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

impl Drop for HostLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock (a waiter that opened it re-checks),
        // then close it, which releases the lock.
        let _ = rustix::fs::unlinkat(
            self.dir.fd(),
            self.name.as_str(),
            rustix::fs::AtFlags::empty(),
        );
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_root_until_dropped() {
        let t = tempfile::tempdir().unwrap();
        let locks = t.path().join("locks");
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let held = acquire_in(&locks, &root, "pid 1, user a").unwrap();
        // The same root by another spelling is the same host.
        let err = acquire_in(&locks, &t.path().join("root/../root"), "pid 2").unwrap_err();
        assert!(
            matches!(&err, LockError::Busy { holder } if holder == "pid 1, user a"),
            "{err}"
        );
        // Another root is another host.
        let _other = acquire_in(&locks, t.path(), "pid 3").unwrap();
        drop(held);
        acquire_in(&locks, &root, "pid 4").unwrap();
    }

    /// Two machines sharing a home directory (the lock directory's fallback) are two hosts.
    #[test]
    fn the_lock_is_keyed_by_the_host_as_well_as_the_root() {
        let root = Path::new("/srv/www");
        assert_ne!(
            key_for("machine-a\nweb1", root),
            key_for("machine-b\nweb2", root)
        );
        assert_eq!(key_for("m\nh", root), key_for("m\nh", root));
    }

    /// root's lock directory was /run/lock/rehost, in a directory every user may write
    /// (mode 1777): anyone could create it first and stop every run (issue 18). Every existing
    /// directory above it must be root's and writable by root alone.
    #[test]
    fn roots_lock_directory_is_in_a_directory_only_root_can_write() {
        use std::os::unix::fs::MetadataExt;
        if rehost_tree::private::euid() != 0 {
            panic!("this test checks root's lock directory: run the tests as root (CI does)");
        }
        let dir = default_lock_dir();
        for up in dir.ancestors().skip(1) {
            let Ok(m) = std::fs::metadata(up) else {
                continue;
            };
            assert_eq!(m.uid(), 0, "{} is not root's", up.display());
            assert_eq!(
                m.mode() & 0o022,
                0,
                "{} (mode {:o}) is writable by others: anyone can plant {}",
                up.display(),
                m.mode() & 0o7777,
                dir.display()
            );
        }
    }

    fn planted(make: impl FnOnce(&Path)) -> String {
        let t = tempfile::tempdir().unwrap();
        let locks = t.path().join("rehost");
        make(&locks);
        let err = acquire_in(&locks, Path::new("/"), "pid 1").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("rm -rf '{}'", locks.display())) && msg.contains(LOCK_DIR_ENV),
            "{msg}"
        );
        msg
    }

    /// A lock directory another user made first (uid 65534), or a symlink planted for it:
    /// refused, naming it and how to remove it (issue 18). Nothing is created through the link.
    #[test]
    fn a_planted_lock_directory_is_refused_with_how_to_remove_it() {
        use std::os::unix::fs::PermissionsExt;
        let msg = planted(|p| {
            std::fs::create_dir(p).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        });
        assert!(msg.contains("is owned by uid 65534"), "{msg}");
        let msg = planted(|p| {
            std::fs::create_dir(p).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        });
        assert!(msg.contains("group or others may write to it"), "{msg}");
        let target = tempfile::tempdir().unwrap();
        let msg = planted(|p| std::os::unix::fs::symlink(target.path(), p).unwrap());
        assert!(msg.contains("is a symlink"), "{msg}");
        assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
    }
}
