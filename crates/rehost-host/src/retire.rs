//! Old data kept read-only (the `retire-old` step kind): every write permission bit removed
//! beneath a tree's root, each change returned so that it can be kept and undone, a second walk
//! that counts what is still writable, and the undo that restores only what is still as rehost
//! left it.
//!
//! The tree may hold entries other users own, and the old server may be compromised. So no
//! path string is ever resolved from the root down: each directory is opened relative to its
//! parent's descriptor with `O_NOFOLLOW`, each entry is opened `O_PATH | O_NOFOLLOW` relative to
//! its directory and its type and mode are read from that descriptor (`fstat`), and the mode is
//! set on exactly that inode (`fchmod` for a directory, `chmod` of `/proc/self/fd/N` for the
//! rest, as Linux has no `fchmodat(AT_SYMLINK_NOFOLLOW)` before 6.6). A symlink is never
//! followed nor changed (a symlink's own mode means nothing on Linux); a symlink swapped in for
//! a directory between listing and opening is refused by `O_NOFOLLOW`. A directory on another
//! file system (a mount point below the root) is not entered: it is named in the summary.
//!
//! What this does not do, stated wherever the result is shown: a process running as root (or
//! with `CAP_DAC_OVERRIDE`) can still write; anybody who owns a file can give its write bits
//! back; a file with other names (hard links) is the same inode under each, so those names
//! become read-only too (counted as `linked`).

use crate::bytes::Bytes;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Every write bit (owner, group, others).
const WRITE_BITS: u32 = 0o222;
/// The bits `chmod` sets.
const PERMISSION_BITS: u32 = 0o7777;
/// Deeper than this, a directory is an error (a tree built to exhaust descriptors).
pub const MAX_DEPTH: usize = 1024;
/// Entries of a list kept in a summary (errors, mount points, writable paths); the counts
/// say how many there were.
pub const MAX_LISTED: usize = 100;
/// Mode changes per response, and per restore request.
pub const BATCH: usize = 4096;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// One entry whose write bits rehost removed: its path relative to the root (empty for the
/// root itself), its inode, and its permission bits before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    pub path: Bytes,
    pub ino: u64,
    pub before: u32,
    pub after: u32,
}

/// What to do beneath the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadOnlyAction {
    /// Remove every write bit, returning each change.
    Apply,
    /// Change nothing; count (and list the first of) the entries that still have a write bit.
    Check,
}

/// What a walk beneath the root found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnlySummary {
    /// Entries walked, the root included, symlinks not.
    pub entries: u64,
    /// Entries whose write bits were removed (`Apply`).
    pub changed: u64,
    /// Entries that had no write bit already.
    pub already: u64,
    /// Symlinks seen: not followed, not changed.
    pub symlinks: u64,
    /// Regular files with more than one name (hard links): their other names, wherever they
    /// are, share the inode and so its mode.
    pub linked: u64,
    /// Mount points below the root (another file system): not entered, not changed.
    pub other_fs: Vec<Bytes>,
    /// Entries that still have a write bit: after `Check`, or what `Apply` could not change.
    pub writable_count: u64,
    /// The first [`MAX_LISTED`] of them.
    pub writable: Vec<Bytes>,
    /// Entries that could not be read or changed, each `path: why` (the first
    /// [`MAX_LISTED`]); `error_count` counts them all.
    pub errors: Vec<String>,
    pub error_count: u64,
}

impl ReadOnlySummary {
    fn error(&mut self, path: &[u8], why: impl std::fmt::Display) {
        self.error_count += 1;
        if self.errors.len() < MAX_LISTED {
            self.errors.push(format!(
                "{}: {why}",
                rehost_tree::escape::display(if path.is_empty() { b"." } else { path })
            ));
        }
    }

    fn still_writable(&mut self, path: &[u8]) {
        self.writable_count += 1;
        if self.writable.len() < MAX_LISTED {
            self.writable.push(Bytes::from(path));
        }
    }
}

/// A listening TCP socket: its local address (`0.0.0.0`, `::`, `192.0.2.10`) and port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    pub address: String,
    pub port: u16,
}

/// [`crate::Host::listening`]: the request, its answer bounded (sockets on the ports asked
/// for only, at most [`MAX_LISTED`] × 10, addresses that parse).
pub(crate) fn listening_on<H: crate::Host + ?Sized>(
    host: &H,
    ports: &[u16],
    cancel: &AtomicBool,
) -> Result<(Vec<Listening>, Vec<String>), crate::HostError> {
    let req = crate::Request::Listening {
        ports: ports.to_vec(),
    };
    let mut out = None;
    crate::request_bounded(host, &req, cancel, &mut |r| {
        if let crate::Response::Listening { sockets, gaps } = r {
            if out.is_some() {
                return Err("sent a second listing of listening sockets".into());
            }
            if sockets.len() > MAX_LISTED * 10 || gaps.len() > MAX_LISTED {
                return Err("sent more listening sockets or gaps than rehost keeps".into());
            }
            if let Some(s) = sockets.iter().find(|s| {
                !ports.contains(&s.port) || s.address.parse::<std::net::IpAddr>().is_err()
            }) {
                return Err(format!(
                    "sent a listening socket it was not asked for: {}",
                    rehost_tree::escape::text(&format!("{}:{}", s.address, s.port))
                ));
            }
            if gaps.iter().any(|g| g.len() > 4096) {
                return Err("sent a gap longer than 4096 bytes".into());
            }
            out = Some((sockets, gaps));
        }
        Ok(())
    })?;
    out.ok_or_else(|| crate::HostError::Protocol {
        host: host.name().to_owned(),
        message: "answered the listing of listening sockets with nothing".into(),
    })
}

/// What a restore did: modes set back, and the entries left as found, each `path: why`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSummary {
    pub restored: u64,
    pub left_count: u64,
    /// The first [`MAX_LISTED`] entries left.
    pub left: Vec<String>,
}

impl RestoreSummary {
    fn left(&mut self, path: &[u8], why: impl std::fmt::Display) {
        self.left_count += 1;
        if self.left.len() < MAX_LISTED {
            self.left.push(format!(
                "{}: {why}",
                rehost_tree::escape::display(if path.is_empty() { b"." } else { path })
            ));
        }
    }

    /// Adds another batch's summary.
    pub fn add(&mut self, other: RestoreSummary) {
        self.restored += other.restored;
        self.left_count += other.left_count;
        for l in other.left {
            if self.left.len() < MAX_LISTED {
                self.left.push(l);
            }
        }
    }
}

/// A directory being walked: its path, descriptor, the names still to visit.
struct Level {
    rel: Vec<u8>,
    fd: OwnedFd,
    names: std::vec::IntoIter<Vec<u8>>,
}

fn names_of(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut it = rustix::fs::Dir::read_from(dir)?;
    while let Some(e) = it.read() {
        let n = e?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    names.sort_unstable();
    Ok(names)
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// Sets the permission bits of the inode `fd` refers to: `fchmod` where the descriptor allows
/// it (a directory opened for reading), else through `/proc/self/fd` (an `O_PATH` descriptor:
/// the magic link leads to exactly that inode, never to a name).
fn set_mode(fd: BorrowedFd<'_>, mode: u32, opath: bool) -> io::Result<()> {
    let mode = Mode::from_raw_mode(mode);
    if !opath {
        return Ok(rustix::fs::fchmod(fd, mode)?);
    }
    use std::os::fd::AsRawFd;
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::chmod(proc.as_str(), mode).map_err(|e| match e {
        rustix::io::Errno::NOENT => io::Error::other(
            "/proc is not mounted: rehost sets modes through /proc/self/fd (mount proc)",
        ),
        e => e.into(),
    })
}

/// Walks the tree at `root` (opened as the system resolves it, like every plan path), removing
/// every write bit (`Apply`, each change passed to `changed` as it is made) or counting what
/// still has one (`Check`). Fails only when the root cannot be opened or the walk is
/// cancelled; what cannot be read or changed below it is counted in the summary.
pub fn read_only(
    root: &Path,
    action: ReadOnlyAction,
    cancel: &AtomicBool,
    changed: &mut dyn FnMut(ModeChange),
) -> io::Result<ReadOnlySummary> {
    let mut sum = ReadOnlySummary::default();
    let root_fd = rustix::fs::open(root, DIR_FLAGS, Mode::empty())?;
    let st = rustix::fs::fstat(&root_fd)?;
    let dev = st.st_dev;
    visit(&mut sum, action, b"", root_fd.as_fd(), &st, false, changed);
    let names = names_of(root_fd.as_fd())?;
    let mut stack = vec![Level {
        rel: Vec::new(),
        fd: root_fd,
        names: names.into_iter(),
    }];
    while let Some(top) = stack.last_mut() {
        if cancel.load(Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let Some(name) = top.names.next() else {
            stack.pop();
            continue;
        };
        let rel = join(&top.rel, &name);
        let entry =
            match rustix::fs::openat(top.fd.as_fd(), name.as_slice(), PATH_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => {
                    sum.error(&rel, io::Error::from(e));
                    continue;
                }
            };
        let st = match rustix::fs::fstat(&entry) {
            Ok(st) => st,
            Err(e) => {
                sum.error(&rel, io::Error::from(e));
                continue;
            }
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                sum.symlinks += 1;
                continue;
            }
            _ if st.st_dev != dev => {
                if sum.other_fs.len() < MAX_LISTED {
                    sum.other_fs.push(Bytes::from(rel.as_slice()));
                }
                continue;
            }
            FileType::Directory => {}
            t => {
                if t == FileType::RegularFile && st.st_nlink > 1 {
                    sum.linked += 1;
                }
                visit(&mut sum, action, &rel, entry.as_fd(), &st, true, changed);
                continue;
            }
        }
        if stack.len() >= MAX_DEPTH {
            sum.error(
                &rel,
                format!("deeper than {MAX_DEPTH} directories: not walked"),
            );
            continue;
        }
        // A directory: opened for reading by name again, so it must be the same inode the
        // O_PATH descriptor holds (a rename in between is refused, not followed).
        let dir = match rustix::fs::openat(
            stack.last().expect("a level").fd.as_fd(),
            name.as_slice(),
            DIR_FLAGS,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                sum.error(&rel, io::Error::from(e));
                continue;
            }
        };
        match rustix::fs::fstat(&dir) {
            Ok(d) if d.st_ino == st.st_ino && d.st_dev == st.st_dev => {}
            Ok(_) => {
                sum.error(&rel, "replaced while being walked: not changed");
                continue;
            }
            Err(e) => {
                sum.error(&rel, io::Error::from(e));
                continue;
            }
        }
        visit(&mut sum, action, &rel, dir.as_fd(), &st, false, changed);
        let names = match names_of(dir.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                sum.error(&rel, e);
                continue;
            }
        };
        stack.push(Level {
            rel,
            fd: dir,
            names: names.into_iter(),
        });
    }
    Ok(sum)
}

/// One entry: its write bits removed (`Apply`) or counted (`Check`).
fn visit(
    sum: &mut ReadOnlySummary,
    action: ReadOnlyAction,
    rel: &[u8],
    fd: BorrowedFd<'_>,
    st: &rustix::fs::Stat,
    opath: bool,
    changed: &mut dyn FnMut(ModeChange),
) {
    sum.entries += 1;
    let before = st.st_mode & PERMISSION_BITS;
    if before & WRITE_BITS == 0 {
        sum.already += 1;
        return;
    }
    if action == ReadOnlyAction::Check {
        sum.still_writable(rel);
        return;
    }
    let after = before & !WRITE_BITS;
    match set_mode(fd, after, opath) {
        Ok(()) => {
            sum.changed += 1;
            changed(ModeChange {
                path: Bytes::from(rel),
                ino: st.st_ino,
                before,
                after,
            });
        }
        Err(e) => {
            sum.error(rel, e);
            sum.still_writable(rel);
        }
    }
}

/// Sets back the modes of `changes` beneath `root`: only an entry that is still the inode
/// rehost changed, still at the mode rehost set, is restored; anything else is left as found
/// and named (somebody changed it since: their change is not undone).
pub fn restore(
    root: &Path,
    changes: &[ModeChange],
    cancel: &AtomicBool,
) -> io::Result<RestoreSummary> {
    let mut sum = RestoreSummary::default();
    let mut at = rehost_tree::beneath::Beneath::open(root)?;
    for c in changes {
        if cancel.load(Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let rel = c.path.as_bytes();
        if c.before & !PERMISSION_BITS != 0 || c.after & !PERMISSION_BITS != 0 {
            sum.left(rel, "not a permission mode: refused");
            continue;
        }
        let fd = if rel.is_empty() {
            rustix::fs::open(root, PATH_FLAGS.union(OFlags::DIRECTORY), Mode::empty())
                .map_err(io::Error::from)
        } else {
            at.parent(rel).and_then(|(dir, name)| {
                rustix::fs::openat(dir, name, PATH_FLAGS, Mode::empty()).map_err(io::Error::from)
            })
        };
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                sum.left(rel, "gone");
                continue;
            }
            Err(e) => {
                sum.left(rel, e);
                continue;
            }
        };
        let st = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => {
                sum.left(rel, io::Error::from(e));
                continue;
            }
        };
        let now = st.st_mode & PERMISSION_BITS;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            sum.left(rel, "now a symlink: left as found");
        } else if st.st_ino != c.ino {
            sum.left(rel, "replaced since (another inode): left as found");
        } else if now != c.after {
            sum.left(
                rel,
                format_args!(
                    "mode {now:04o}, not the {:04o} rehost set: changed since, left as found",
                    c.after
                ),
            );
        } else {
            match set_mode(fd.as_fd(), c.before, true) {
                Ok(()) => sum.restored += 1,
                Err(e) => sum.left(rel, e),
            }
        }
    }
    Ok(sum)
}

/// The agent's side of `ReadOnly` and `RestoreModes` (and a local host's, in-process).
pub(crate) fn execute(
    host: &crate::LocalHost,
    req: &crate::Request,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(crate::Response),
) -> Result<(), crate::HostError> {
    use crate::{Host, HostError, Request, Response};
    let (root, result) = match req {
        Request::ReadOnly { root, action } => {
            let root = host.resolve_bytes(root.as_bytes());
            let mut batch = Vec::new();
            let r = read_only(&root, *action, cancel, &mut |c| {
                batch.push(c);
                if batch.len() >= BATCH {
                    emit(Response::ModesChanged {
                        changes: std::mem::take(&mut batch),
                    });
                }
            });
            if !batch.is_empty() {
                emit(Response::ModesChanged { changes: batch });
            }
            (
                root,
                r.map(|summary| emit(Response::ReadOnlyDone { summary })),
            )
        }
        Request::RestoreModes { root, changes } => {
            let root = host.resolve_bytes(root.as_bytes());
            let r = if changes.len() > BATCH {
                Err(io::Error::other(format!(
                    "refused: {} mode changes in one request, more than {BATCH}",
                    changes.len()
                )))
            } else {
                restore(&root, changes, cancel)
            };
            (
                root,
                r.map(|summary| emit(Response::ModesRestored { summary })),
            )
        }
        _ => unreachable!("capability::execute hands retire only its own requests"),
    };
    result.map_err(|source| {
        if source.kind() == io::ErrorKind::Interrupted {
            HostError::Tree {
                host: host.name().to_owned(),
                path: root.clone(),
                source: rehost_tree::TreeError::Cancelled,
            }
        } else {
            HostError::Write {
                host: host.name().to_owned(),
                path: root.clone(),
                source,
            }
        }
    })
}

/// The agent's side of `Listening` (and a local host's): the machine's listening TCP sockets
/// on `ports`, from its kernel, and what could not be read.
pub(crate) fn listening_here(ports: &[u16]) -> crate::Response {
    let mut gaps = Vec::new();
    let sockets = crate::survey::procs::listeners(&mut gaps)
        .into_iter()
        .filter(|l| l.listen.proto == rehost_survey::Proto::Tcp && ports.contains(&l.listen.port))
        .map(|l| Listening {
            address: l.listen.address,
            port: l.listen.port,
        })
        .take(MAX_LISTED * 10)
        .collect();
    crate::Response::Listening {
        sockets,
        gaps: gaps
            .into_iter()
            .filter(|g| g.what != "/proc/net/unix")
            .map(|g| format!("{}: {}", g.what, g.why))
            .collect(),
    }
}

/// Whether a path a host sent can name an entry beneath a root (empty: the root itself).
fn sane(path: &[u8]) -> bool {
    path.is_empty() || rehost_tree::manifest::is_tree_path(path)
}

fn sane_summary(s: &ReadOnlySummary) -> Result<(), String> {
    if s.errors.len() > MAX_LISTED || s.writable.len() > MAX_LISTED || s.other_fs.len() > MAX_LISTED
    {
        return Err(format!(
            "sent a summary listing more than {MAX_LISTED} entries"
        ));
    }
    if s.errors.iter().any(|e| e.len() > 4096) {
        return Err("sent an error longer than 4096 bytes".into());
    }
    match s
        .writable
        .iter()
        .chain(&s.other_fs)
        .find(|p| !sane(p.as_bytes()))
    {
        Some(p) => Err(format!(
            "sent a path that is not inside the tree: {}",
            rehost_tree::escape::display(p.as_bytes())
        )),
        None => Ok(()),
    }
}

/// [`crate::Host::read_only`]: the request, with what the host sends bounded and checked
/// (paths inside the tree, no more changes than entries, lists within their bounds).
pub(crate) fn receive<H: crate::Host + ?Sized>(
    host: &H,
    path: &str,
    action: ReadOnlyAction,
    cancel: &AtomicBool,
    take: &mut dyn FnMut(Vec<ModeChange>) -> Result<(), String>,
) -> Result<ReadOnlySummary, crate::HostError> {
    use crate::Response;
    let req = crate::Request::ReadOnly {
        root: Bytes::from(path),
        action,
    };
    let max = crate::limits::max_entries();
    let (mut n, mut out) = (0u64, None);
    crate::request_bounded(host, &req, cancel, &mut |r| match r {
        Response::ModesChanged { changes } => {
            if action == ReadOnlyAction::Check || out.is_some() {
                return Err("sent mode changes it was not asked for".into());
            }
            n += changes.len() as u64;
            if n > max {
                return Err(format!(
                    "sent more than {max} mode changes ({})",
                    crate::limits::HINT
                ));
            }
            if let Some(c) = changes.iter().find(|c| !sane(c.path.as_bytes())) {
                return Err(format!(
                    "sent a mode change of a path that is not inside the tree: {}",
                    rehost_tree::escape::display(c.path.as_bytes())
                ));
            }
            take(changes)
        }
        Response::ReadOnlyDone { summary } => {
            if out.is_some() {
                return Err("sent a second summary".into());
            }
            sane_summary(&summary)?;
            if summary.changed != n {
                return Err(format!(
                    "said it changed {} mode(s) but sent {n}",
                    summary.changed
                ));
            }
            out = Some(summary);
            Ok(())
        }
        _ => Ok(()),
    })?;
    out.ok_or_else(|| crate::HostError::Protocol {
        host: host.name().to_owned(),
        message: "answered the read-only walk with no summary".into(),
    })
}

/// [`crate::Host::restore_modes`]: one request per [`BATCH`] changes, the summaries added.
pub(crate) fn restore_on<H: crate::Host + ?Sized>(
    host: &H,
    path: &str,
    changes: &[ModeChange],
    cancel: &AtomicBool,
) -> Result<RestoreSummary, crate::HostError> {
    use crate::Response;
    let mut total = RestoreSummary::default();
    for batch in changes.chunks(BATCH) {
        let req = crate::Request::RestoreModes {
            root: Bytes::from(path),
            changes: batch.to_vec(),
        };
        let mut out = None;
        crate::request_bounded(host, &req, cancel, &mut |r| {
            if let Response::ModesRestored { summary } = r {
                if out.is_some() {
                    return Err("sent a second restore summary".into());
                }
                if summary.left.len() > MAX_LISTED
                    || summary.restored + summary.left_count != batch.len() as u64
                {
                    return Err(format!(
                        "answered {} mode change(s) with {} restored and {} left",
                        batch.len(),
                        summary.restored,
                        summary.left_count
                    ));
                }
                out = Some(summary);
            }
            Ok(())
        })?;
        match out {
            Some(s) => total.add(s),
            None => {
                return Err(crate::HostError::Protocol {
                    host: host.name().to_owned(),
                    message: "answered the restore of modes with nothing".into(),
                });
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
