//! The host's files as the survey reads them: under the host's root (a local or test host may
//! have one), through `openat2(RESOLVE_IN_ROOT)` so that a symlink is followed as it would be
//! on the host itself (`/etc/os-release` → `../usr/lib/os-release`, `/lib` → `usr/lib`) and no
//! symlink, `..` or absolute target leads out of the root. Files are opened without blocking
//! (a FIFO named like a configuration file does not hang the survey), only regular files are
//! read, each up to a bound; directories are listed up to a bound.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::path::Path;

/// The host's file system, from its root.
pub(crate) struct Root {
    dir: OwnedFd,
    /// The root as this machine names it (`None`: `/`); processes are the machine's, and their
    /// paths under the root are mapped back into the host's view with [`Root::host_path`].
    prefix: Option<std::path::PathBuf>,
}

/// What a directory listing holds: names with their types, and whether it was cut.
pub(crate) struct Listing {
    pub entries: Vec<(String, FileType)>,
    pub truncated: bool,
}

impl Root {
    pub(crate) fn open(root: Option<&Path>) -> std::io::Result<Root> {
        let at = root.unwrap_or(Path::new("/"));
        let dir = rustix::fs::open(
            at,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let prefix = match root {
            Some(r) => Some(std::fs::canonicalize(r)?).filter(|p| p != Path::new("/")),
            None => None,
        };
        Ok(Root { dir, prefix })
    }

    fn at(&self, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        rustix::fs::openat2(
            self.dir.as_fd(),
            rel,
            // `O_PATH` takes no other flag but these (openat2 refuses any other).
            if flags.contains(OFlags::PATH) {
                flags | OFlags::CLOEXEC
            } else {
                flags | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
            },
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(std::io::Error::from)
    }

    /// A regular file's bytes, refused when it is larger than `max` (nothing of it kept).
    pub(crate) fn read(&self, path: &str, max: u64) -> std::io::Result<Vec<u8>> {
        let (f, size) = self.file(path, max)?;
        let mut out = Vec::with_capacity(size as usize);
        f.take(max).read_to_end(&mut out)?;
        Ok(out)
    }

    /// A regular file opened to be read as a stream, with its size; refused when it is larger
    /// than `max`.
    pub(crate) fn file(&self, path: &str, max: u64) -> std::io::Result<(std::fs::File, u64)> {
        let fd = self.at(path, OFlags::RDONLY)?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(std::io::Error::other("not a regular file"));
        }
        let size = st.st_size.max(0) as u64;
        if size > max {
            return Err(std::io::Error::other(format!(
                "larger than {max} bytes: not read"
            )));
        }
        Ok((std::fs::File::from(fd), size))
    }

    /// [`Root::read`] as text (invalid UTF-8 replaced).
    pub(crate) fn text(&self, path: &str, max: u64) -> std::io::Result<String> {
        self.read(path, max)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Whether `path` is there (after symlinks, inside the root).
    pub(crate) fn exists(&self, path: &str) -> bool {
        self.at(path, OFlags::PATH).is_ok()
    }

    /// The owner (uid) of `path`.
    pub(crate) fn owner(&self, path: &str) -> std::io::Result<u32> {
        let fd = self.at(path, OFlags::PATH)?;
        Ok(rustix::fs::fstat(&fd)?.st_uid)
    }

    /// A directory's entries (names that are not UTF-8 are passed over), at most `max`,
    /// sorted by name; the directory is read as a stream, never whole.
    pub(crate) fn list(&self, path: &str, max: usize) -> std::io::Result<Listing> {
        let fd = self.at(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut dir = rustix::fs::Dir::new(fd)?;
        let mut entries = Vec::new();
        let mut truncated = false;
        while let Some(e) = dir.read() {
            let e = e?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if entries.len() >= max {
                truncated = true;
                break;
            }
            let mut ft = e.file_type();
            if ft == FileType::Unknown {
                ft = rustix::fs::statat(dir.fd()?, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map(|s| FileType::from_raw_mode(s.st_mode))
                    .unwrap_or(FileType::Unknown);
            }
            entries.push((name.to_owned(), ft));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Listing { entries, truncated })
    }

    /// A path of this machine (a process's executable, its configuration on its command line)
    /// as the host sees it: under the root, the part below it; with no root, itself. `None`
    /// when it is outside the root.
    pub(crate) fn host_path(&self, machine: &str) -> Option<String> {
        match &self.prefix {
            None => Some(machine.to_owned()),
            Some(p) => {
                let rest = Path::new(machine).strip_prefix(p).ok()?;
                Some(format!("/{}", rest.to_string_lossy()))
            }
        }
    }
}
