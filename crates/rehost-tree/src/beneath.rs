//! Paths beneath a root, resolved without ever following a symlink: the one way the transfer
//! touches a destination tree, and the way a source file is opened for its content.
//!
//! Other users may own directories inside the trees rehost works on as root, and the old
//! server may be compromised. So no operation takes a path string from the root down: every
//! entry is reached through the descriptor of its parent directory, and every directory on
//! the way is opened `O_DIRECTORY | O_NOFOLLOW` relative to the one above it, starting from
//! the root's descriptor. A symlink (planted, or swapped in for a directory during the run)
//! is never crossed: opening it as a directory fails with `ELOOP`/`ENOTDIR` and the operation
//! is recorded as failed. Components `.`, `..` and empty ones are refused before any system
//! call ([`is_tree_path`]).
//!
//! Why a walk per component rather than `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: it is
//! as strict (each step refuses symlinks; `..` never reaches the kernel), it works on the 3.10
//! kernels of the old servers rehost reads from (`openat2` came with 5.6), and with the cache
//! of open directories below ([`Beneath::parent`]), operations in path order open each
//! directory once, which is cheaper than resolving every path from the root.
//!
//! What this does not stop: a user who owns a directory inside the tree may rename it away
//! (within the file system, to a place she can write) after rehost opened it; rehost then
//! writes what the source has at that place into the directory it opened, wherever it now is.
//! Nothing is ever written into a directory that was not, when opened, beneath the root.

use crate::manifest::is_tree_path;
use rustix::fs::{AtFlags, Mode, OFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Flags of every directory opened on the way down.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A root directory and the directories below it opened so far.
pub struct Beneath {
    root: OwnedFd,
    /// The directories of the last parent looked up, outermost first: each component's name
    /// and its descriptor (opened relative to the one before it, or to the root).
    stack: Vec<(Box<[u8]>, OwnedFd)>,
}

impl Beneath {
    /// Opens `root` (the path the user named, resolved once as the system resolves it).
    pub fn open(root: &Path) -> io::Result<Beneath> {
        let root = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Beneath {
            root,
            stack: Vec::new(),
        })
    }

    /// The directory holding `rel` (a non-empty tree path) and `rel`'s last component.
    pub fn parent<'p>(&mut self, rel: &'p [u8]) -> io::Result<(BorrowedFd<'_>, &'p [u8])> {
        check_path(rel)?;
        let (dir, name) = split_parent(rel);
        Ok((self.dir(dir)?, name))
    }

    /// The directory `rel` itself (the root for an empty path), opened without following a
    /// symlink at any component.
    pub fn dir(&mut self, rel: &[u8]) -> io::Result<BorrowedFd<'_>> {
        if !rel.is_empty() {
            check_path(rel)?;
        }
        let comps: Vec<&[u8]> = if rel.is_empty() {
            Vec::new()
        } else {
            rel.split(|&b| b == b'/').collect()
        };
        let keep = self
            .stack
            .iter()
            .zip(&comps)
            .take_while(|((have, _), want)| &have[..] == **want)
            .count();
        self.stack.truncate(keep);
        for c in &comps[keep..] {
            let at = self
                .stack
                .last()
                .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd());
            let fd = rustix::fs::openat(at, *c, DIR_FLAGS, Mode::empty())?;
            self.stack.push(((*c).into(), fd));
        }
        Ok(self
            .stack
            .last()
            .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd()))
    }

    /// [`Beneath::dir`], as a descriptor of its own (to hold beside another lookup).
    pub fn dir_owned(&mut self, rel: &[u8]) -> io::Result<OwnedFd> {
        self.dir(rel)?.try_clone_to_owned()
    }

    /// Forgets the open directories at and below `rel`: it was removed or replaced, and a later
    /// operation below it must open what is there now.
    pub fn forget(&mut self, rel: &[u8]) {
        let depth = rel.split(|&b| b == b'/').count();
        if self.stack.len() >= depth
            && self.stack[..depth]
                .iter()
                .map(|(c, _)| &c[..])
                .eq(rel.split(|&b| b == b'/'))
        {
            self.stack.truncate(depth - 1);
        }
    }
}

fn check_path(rel: &[u8]) -> io::Result<()> {
    if rel.is_empty() || !is_tree_path(rel) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refused: not a path inside the tree",
        ));
    }
    Ok(())
}

/// Removes `name` in `dir`, and everything below it when it is a directory, never following
/// a symlink (a symlink is removed, not what it points to). Missing is not an error.
pub fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    empty_dir(sub.as_fd())?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside the directory `dir`.
fn empty_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    // Names first, then removal: removing while reading may skip entries.
    let mut names = Vec::new();
    let mut it = rustix::fs::Dir::read_from(dir)?;
    while let Some(e) = it.read() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_all(dir, &n)?;
    }
    Ok(())
}

/// Opens a source file for reading its content: beneath `root` with no symlink anywhere on
/// the way, `O_NONBLOCK` so that a FIFO swapped in cannot block, and only if it is still the
/// regular file the walk saw (`ino`: its inode number, when known; the device is not compared,
/// since a cached walk's device number may predate a reboot).
pub fn open_source(b: &mut Beneath, rel: &[u8], ino: Option<u64>) -> io::Result<std::fs::File> {
    let (dir, name) = b.parent(rel)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::other(
            "refused: no longer a regular file (replaced since the walk)",
        ));
    }
    if let Some(ino) = ino
        && st.st_ino as u64 != ino
    {
        return Err(io::Error::other(
            "refused: replaced by another file since the walk (its inode differs)",
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// A relative path's directory part (empty at the top) and its last component.
pub fn split_parent(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&rel[..0], rel),
    }
}
