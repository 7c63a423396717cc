//! Private directories and files: rehost's state (journal, outputs, evidence), its caches and
//! its run locks.
//!
//! A private directory is owned by the user running rehost, not writable by group or others,
//! and not a symlink; rehost creates it 0700 and refuses one that is not (someone else could
//! plant files or links in it). Everything in it is reached relative to the directory's
//! descriptor with `O_NOFOLLOW`, so swapping a path component for a symlink later redirects
//! nothing, and files are created 0600 (`O_CREAT | O_EXCL` where new). Files are replaced
//! atomically through a random temporary name (see [`PrivateDir::write_atomic`]).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a private directory or file was refused or could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error("{} is a symlink", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    NotDir { path: PathBuf },
    #[error("{} is not a regular file", path.display())]
    NotFile { path: PathBuf },
    #[error("{} is owned by uid {owner}, not by uid {me} who runs rehost", path.display())]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error("{} has mode {mode:04o}: group or others may write to it", path.display())]
    Writable { path: PathBuf, mode: u32 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PrivateError {
    /// Whether rehost refused the directory (as opposed to failing to use it).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, PrivateError::Io { .. })
    }

    /// The path concerned.
    pub fn path(&self) -> &Path {
        match self {
            PrivateError::Symlink { path }
            | PrivateError::NotDir { path }
            | PrivateError::NotFile { path }
            | PrivateError::Owner { path, .. }
            | PrivateError::Writable { path, .. }
            | PrivateError::Io { path, .. } => path,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PrivateError + '_ {
    move |source| PrivateError::Io {
        path: path.to_owned(),
        source,
    }
}

fn cstr(name: &OsStr, path: &Path) -> Result<CString, PrivateError> {
    CString::new(name.as_bytes()).map_err(|_| PrivateError::Io {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the name"),
    })
}

fn fstat(fd: &impl AsRawFd, path: &Path) -> Result<libc::stat, PrivateError> {
    // SAFETY: `st` is a valid out-pointer; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io_err(path)(io::Error::last_os_error()));
    }
    Ok(st)
}

/// The effective uid, whose directories rehost trusts.
pub fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// A directory rehost keeps private: checked when opened, used only through its descriptor.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl PrivateDir {
    /// Opens (with `create`, creating 0700 whatever is missing of) the private directory at
    /// `path`. Its parent is taken as it is (following symlinks: the user chose it); `path`
    /// itself must pass [`PrivateDir::check`]. `Ok(None)` when it does not exist and `create`
    /// is false.
    pub fn open(path: &Path, create: bool) -> Result<Option<PrivateDir>, PrivateError> {
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) => (
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                },
                n,
            ),
            _ => {
                // `/` or `..`: open as it is, then check it like any other.
                let f = File::open(path).map_err(io_err(path))?;
                let dir = PrivateDir {
                    fd: f.into(),
                    path: path.to_owned(),
                };
                dir.check()?;
                return Ok(Some(dir));
            }
        };
        if create {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let parent_fd = match File::open(parent) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(io_err(parent)(e)),
        };
        let parent = PrivateDir {
            fd: parent_fd.into(),
            path: parent.to_owned(),
        };
        parent.subdir_named(name, create, path.to_owned())
    }

    /// The directory `name` in this one, checked like this one.
    pub fn subdir(&self, name: &str, create: bool) -> Result<Option<PrivateDir>, PrivateError> {
        self.subdir_named(OsStr::new(name), create, self.path.join(name))
    }

    fn subdir_named(
        &self,
        name: &OsStr,
        create: bool,
        path: PathBuf,
    ) -> Result<Option<PrivateDir>, PrivateError> {
        let Some(fd) = open_dir_nofollow(&self.fd, name, create, &path)? else {
            return Ok(None);
        };
        let dir = PrivateDir { fd, path };
        dir.check()?;
        Ok(Some(dir))
    }

    /// Refuses a directory not owned by the effective uid or writable by group or others;
    /// tightens one of ours that others may read (made by an older rehost) to 0700.
    pub fn check(&self) -> Result<(), PrivateError> {
        let st = fstat(&self.fd, &self.path)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(PrivateError::NotDir {
                path: self.path.clone(),
            });
        }
        let me = euid();
        if st.st_uid != me {
            return Err(PrivateError::Owner {
                path: self.path.clone(),
                owner: st.st_uid,
                me,
            });
        }
        let mode = st.st_mode & 0o7777;
        if mode & 0o022 != 0 {
            return Err(PrivateError::Writable {
                path: self.path.clone(),
                mode,
            });
        }
        if mode & 0o077 != 0 {
            // SAFETY: valid descriptor.
            unsafe { libc::fchmod(self.fd.as_raw_fd(), 0o700) };
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file `name` in this directory without following a symlink, creating it 0600
    /// if `create`; refuses anything but a regular file and makes an existing one 0600.
    /// `Ok(None)` when it does not exist and `create` is false.
    /// `append` opens it for appending (the journal).
    pub fn open_file(
        &self,
        name: &str,
        append: bool,
        create: bool,
    ) -> Result<Option<File>, PrivateError> {
        let path = self.path.join(name);
        let c = cstr(OsStr::new(name), &path)?;
        let mut flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
        flags |= if append {
            libc::O_RDWR | libc::O_APPEND
        } else {
            libc::O_RDWR
        };
        if create {
            flags |= libc::O_CREAT;
        }
        // SAFETY: valid descriptor and NUL-terminated name; the mode is an int vararg.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) if !create => Ok(None),
                Some(libc::ELOOP) => Err(PrivateError::Symlink { path }),
                _ => Err(io_err(&path)(e)),
            };
        }
        // SAFETY: a fresh descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        let st = fstat(&file, &path)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(PrivateError::NotFile { path });
        }
        if st.st_mode & 0o077 != 0 {
            // SAFETY: valid descriptor.
            unsafe { libc::fchmod(file.as_raw_fd(), 0o600) };
        }
        Ok(Some(file))
    }

    /// Creates the file `name` afresh (0600, `O_CREAT | O_EXCL | O_NOFOLLOW`), replacing one
    /// of that name.
    pub fn create_file(&self, name: &str) -> Result<File, PrivateError> {
        let path = self.path.join(name);
        let c = cstr(OsStr::new(name), &path)?;
        for _ in 0..2 {
            match create_excl(&self.fd, &c) {
                Ok(f) => return Ok(f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // SAFETY: valid descriptor and name; removes the entry, never follows it.
                    unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Err(io_err(&path)(io::Error::from(io::ErrorKind::AlreadyExists)))
    }

    /// Reads the whole file `name` (not following a symlink); `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, PrivateError> {
        use std::io::Read;
        let Some(mut f) = self.open_file(name, false, false)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(io_err(&self.path.join(name)))?;
        Ok(Some(bytes))
    }

    /// Replaces the file `name` atomically with what `write` writes: a random temporary name
    /// created `O_EXCL | O_NOFOLLOW` 0600, fsynced if `sync`, renamed into place.
    pub fn write_atomic(
        &self,
        name: &str,
        sync: bool,
        write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), PrivateError> {
        write_atomic_at(&self.fd, &self.path, OsStr::new(name), sync, 0o600, write)
    }

    /// The directory's descriptor.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// Opens the directory `name` in `parent` without following a symlink (creating it 0700 with
/// `create`); `Ok(None)` when it does not exist and `create` is false.
fn open_dir_nofollow(
    parent: &OwnedFd,
    name: &OsStr,
    create: bool,
    path: &Path,
) -> Result<Option<OwnedFd>, PrivateError> {
    let c = cstr(name, path)?;
    if create {
        // SAFETY: valid descriptor and NUL-terminated name.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(io_err(path)(e));
            }
        }
    }
    // SAFETY: as above; the returned descriptor is owned below.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let path = path.to_owned();
        return match e.raw_os_error() {
            Some(libc::ENOENT) if !create => Ok(None),
            Some(libc::ELOOP) => Err(PrivateError::Symlink { path }),
            Some(libc::ENOTDIR) => {
                // O_NOFOLLOW on a symlink to a directory can also say ENOTDIR.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: valid descriptor, name and out-pointer.
                let r = unsafe {
                    libc::fstatat(
                        parent.as_raw_fd(),
                        c.as_ptr(),
                        &mut st,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                if r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    Err(PrivateError::Symlink { path })
                } else {
                    Err(PrivateError::NotDir { path })
                }
            }
            _ => Err(io_err(&path)(e)),
        };
    }
    // SAFETY: a fresh descriptor we own.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn create_excl(dir: &OwnedFd, name: &CString) -> io::Result<File> {
    // SAFETY: valid descriptor and NUL-terminated name; the mode is an int vararg.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `bytes` random bytes as hex: names no one can predict (temporary files here and in the
/// transfer).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // The system call, not glibc's getrandom(3): that symbol exists only from glibc 2.25 on,
    // and the agent runs on glibc 2.17 (scripts/build-agent fails to link it otherwise).
    // SAFETY: `b` is valid for `b.len()` bytes.
    let n = unsafe { libc::syscall(libc::SYS_getrandom, b.as_mut_ptr(), b.len(), 0) };
    if n != b.len() as libc::c_long {
        // No getrandom (before Linux 3.17): the time, pid and a counter still differ per call;
        // names are created O_EXCL | O_NOFOLLOW in any case.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let c = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut h = blake3::Hasher::new();
        h.update(format!("{t:?} {} {c}", std::process::id()).as_bytes());
        h.finalize_xof().fill(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `name` in `dir` through a random temporary name (`O_CREAT | O_EXCL | O_NOFOLLOW`,
/// 0600), given `mode` on its descriptor once written, then renamed into place: whatever was at
/// `name` (a planted symlink included) is replaced, never followed.
fn write_atomic_at(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &OsStr,
    sync: bool,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<(), PrivateError> {
    let path = dir_path.join(name);
    let final_c = cstr(name, &path)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    let (tmp_c, file) = loop {
        let mut t = tmp_name.clone();
        t.push(format!(".rehost-tmp-{}", random_hex(8)));
        let c = cstr(&t, &path)?;
        match create_excl(dir, &c) {
            Ok(f) => break (c, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&path)(e)),
        }
    };
    let remove_tmp = || {
        // SAFETY: valid descriptor and name.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp_c.as_ptr(), 0) };
    };
    // Manifests and caches leave from a page-aligned buffer (issue 27).
    let mut w = crate::aligned::BufWriter::with_capacity(1 << 20, file);
    let written = write(&mut w).and_then(|()| w.into_inner()).and_then(|f| {
        if mode != 0o600 {
            // On the descriptor, so not subject to the umask and not through any path.
            // SAFETY: valid descriptor.
            if unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if sync { f.sync_all() } else { Ok(()) }
    });
    if let Err(e) = written {
        remove_tmp();
        return Err(io_err(&path)(e));
    }
    // SAFETY: valid descriptors and names; rename replaces the entry, never follows it.
    if unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            tmp_c.as_ptr(),
            dir.as_raw_fd(),
            final_c.as_ptr(),
        )
    } != 0
    {
        let e = io::Error::last_os_error();
        remove_tmp();
        return Err(io_err(&path)(e));
    }
    Ok(())
}

/// Writes `path` atomically in whatever directory holds it (`rehost manifest -o`): a random
/// temporary name beside it (`O_CREAT | O_EXCL | O_NOFOLLOW`, 0600), renamed into place, so no
/// one can plant the temporary name as a link. The file keeps mode 0600.
pub fn write_file_atomic(
    path: &Path,
    sync: bool,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<(), PrivateError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| PrivateError::Io {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let dir: OwnedFd = File::open(parent).map_err(io_err(parent))?.into();
    write_atomic_at(&dir, parent, name, sync, 0o600, write)
}

/// A directory the operator chose for rehost's documents (`rehost report -o DIR`, the directory
/// of `rehost concept -o FILE`): opened without following a symlink and checked once, then
/// written only through its descriptor, each file through a random temporary name renamed into
/// place (a planted link at the name is replaced, never followed). Unlike a [`PrivateDir`] it
/// may be readable by others and is never tightened; it is refused when another user could
/// replace what rehost writes there: owned by someone else than rehost's user or root, or
/// writable by group or others without being a sticky directory of rehost's user or root.
#[derive(Debug)]
pub struct OutputDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl OutputDir {
    /// Opens (with `create`, creating 0700 if missing — its parents as `mkdir -p` would) the
    /// directory `path`. Its parent is taken as it is (the operator chose it); `path` itself
    /// must not be a symlink and must pass the check above.
    pub fn open(path: &Path, create: bool) -> Result<OutputDir, PrivateError> {
        let fd = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                if create {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let parent_fd: OwnedFd = File::open(parent).map_err(io_err(parent))?.into();
                open_dir_nofollow(&parent_fd, name, create, path)?.ok_or_else(|| {
                    PrivateError::Io {
                        path: path.to_owned(),
                        source: io::Error::from(io::ErrorKind::NotFound),
                    }
                })?
            }
            // `/`, `.` or `..`: no name to open without following; open it as it is.
            _ => File::open(path).map_err(io_err(path))?.into(),
        };
        let dir = OutputDir {
            fd,
            path: path.to_owned(),
        };
        dir.check()?;
        Ok(dir)
    }

    fn check(&self) -> Result<(), PrivateError> {
        let st = fstat(&self.fd, &self.path)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(PrivateError::NotDir {
                path: self.path.clone(),
            });
        }
        let me = euid();
        // Root may write anywhere in any case: a directory of root's is no one else's.
        if st.st_uid != me && st.st_uid != 0 {
            return Err(PrivateError::Owner {
                path: self.path.clone(),
                owner: st.st_uid,
                me,
            });
        }
        let mode = st.st_mode & 0o7777;
        // In a sticky directory others may add names but not rename or remove ours; a name
        // they planted is replaced by the rename (never followed), or the rename fails.
        if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
            return Err(PrivateError::Writable {
                path: self.path.clone(),
                mode,
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file `name` in this directory with `bytes`, atomically, fsynced, with
    /// `mode` (0600 unless the operator said otherwise).
    pub fn write(&self, name: &OsStr, mode: u32, bytes: &[u8]) -> Result<(), PrivateError> {
        self.write_with(name, mode, &mut |w| w.write_all(bytes))
    }

    /// [`OutputDir::write`] with the content streamed by `write` (a large manifest is not
    /// held twice in memory).
    pub fn write_with(
        &self,
        name: &OsStr,
        mode: u32,
        write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), PrivateError> {
        if Path::new(name).components().count() != 1 || name == ".." || name == "." {
            return Err(PrivateError::Io {
                path: self.path.join(name),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
            });
        }
        write_atomic_at(&self.fd, &self.path, name, true, mode, write)
    }
}

/// Creates the directories of `path` that are missing, 0700, and checks the last one like a
/// private directory (for caches).
pub fn ensure_dir(path: &Path) -> Result<PrivateDir, PrivateError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))?;
    PrivateDir::open(path, false)?.ok_or_else(|| PrivateError::Io {
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

#[cfg(test)]
mod tests;
