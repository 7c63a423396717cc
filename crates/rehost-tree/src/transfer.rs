//! Copying a tree: the built-in transfer for hosts without rsync, and the rsync command line for
//! the `sync` step kind.
//!
//! The built-in transfer walks both trees (hashing both, in one pool), then makes the
//! destination match the source: deletes what the source lacks (deepest first), creates or
//! replaces entries whose type or content differ, re-creates hard links, and sets owner, xattrs
//! (so ACLs), mode and mtime where they differ, directories last and deepest first. A file whose
//! BLAKE3 already matches is not copied, and metadata already equal is not touched (so its
//! ctime does not move and the next incremental verification trusts it). New content is written
//! to a temporary name in the same directory and renamed into place. Paths are handled as
//! absolute paths, so entries deeper than PATH_MAX (4096 bytes) fail with ENAMETOOLONG and are
//! recorded in the report's errors.

#[cfg(test)]
mod tests;

use crate::TreeError;
use crate::beneath::{Beneath, open_source, remove_all, split_parent};
use crate::manifest::{Entry, Kind, LINK_NONE, Manifest, State, Time, Xattr, is_tree_path};
use crate::walk::{Counts, Progress, WalkOptions, walk_pair};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Excludes (left alone on both sides) and reader threads.
    pub walk: WalkOptions,
    /// Remove destination entries the source does not have (rsync's `--delete`). Default true.
    pub delete: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            walk: WalkOptions::default(),
            delete: true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferReport {
    /// Entries created on the destination (including replaced ones).
    pub created: u64,
    /// Entries whose metadata was updated in place.
    pub updated: u64,
    pub deleted: u64,
    /// Entries already equal: nothing done.
    pub unchanged: u64,
    pub bytes_copied: u64,
    /// Entries that could not be transferred (source unreadable or changing, or a failed
    /// operation), with the reason. Non-empty means the transfer is incomplete.
    pub errors: Vec<(Box<[u8]>, String)>,
}

impl TransferReport {
    /// Adds another report's counts and errors (a transfer applied in several batches).
    pub fn absorb(&mut self, other: TransferReport) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.bytes_copied += other.bytes_copied;
        self.errors.extend(other.errors);
    }
}

/// The metadata the transfer sets on an entry: what verify compares besides content, links
/// and devices.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: Time,
    pub xattrs: Option<Box<[Xattr]>>,
}

impl Meta {
    pub fn of(e: &Entry) -> Meta {
        Meta {
            kind: e.kind,
            uid: e.uid,
            gid: e.gid,
            mode: e.mode,
            mtime: e.mtime,
            xattrs: e.xattrs.clone(),
        }
    }

    /// Whether setting `self` over `have` changes anything (a directory's mtime is looked at
    /// again when applied: creating its children moves it).
    fn differs(&self, have: &Meta) -> bool {
        self.uid != have.uid
            || self.gid != have.gid
            || self.xattrs != have.xattrs
            || (self.kind != Kind::Symlink && self.mode != have.mode)
            || self.mtime != have.mtime
    }
}

/// One change to the destination tree; paths are relative to its root. A [`TransferPlan`]'s
/// operations, applied in order by [`apply`], make the destination equal to the source.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Remove an entry (a directory with everything below it): the source lacks it, or
    /// (`replaced`) has something of another type there, which the next operation creates.
    Remove {
        path: Box<[u8]>,
        dir: bool,
        replaced: bool,
    },
    Mkdir {
        path: Box<[u8]>,
    },
    /// A regular file with the source's content, written under a temporary name beside it,
    /// checked against `digest`, given its metadata and renamed into place. `staged`: the
    /// content is already in this temporary file (sent ahead in pieces, see [`stage`]).
    /// `ino`: the source file's inode as the walk saw it, checked when it is read.
    File {
        path: Box<[u8]>,
        size: u64,
        digest: [u8; 32],
        meta: Meta,
        staged: Option<Box<[u8]>>,
        #[serde(default)]
        ino: Option<u64>,
    },
    Symlink {
        path: Box<[u8]>,
        target: Box<[u8]>,
        meta: Meta,
    },
    /// A fifo, socket or device.
    Node {
        path: Box<[u8]>,
        rdev: u64,
        meta: Meta,
    },
    /// A hard link to `to`, transferred earlier (nothing done if it already is one).
    Link {
        path: Box<[u8]>,
        to: Box<[u8]>,
    },
    /// Metadata of an entry whose type and content are already right.
    Meta {
        path: Box<[u8]>,
        want: Meta,
        have: Meta,
    },
    /// A directory's metadata, after everything inside it, deepest first; `have` is `None`
    /// for a directory this transfer created.
    DirMeta {
        path: Box<[u8]>,
        want: Meta,
        have: Option<Meta>,
    },
}

impl Op {
    pub fn path(&self) -> &[u8] {
        match self {
            Op::Remove { path, .. }
            | Op::Mkdir { path }
            | Op::File { path, .. }
            | Op::Symlink { path, .. }
            | Op::Node { path, .. }
            | Op::Link { path, .. }
            | Op::Meta { path, .. }
            | Op::DirMeta { path, .. } => path,
        }
    }
}

/// What it takes to make a destination equal to a source: computed from the two manifests
/// alone ([`plan`]), applied where the destination is ([`apply`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferPlan {
    pub ops: Vec<Op>,
    /// Entries already equal.
    pub unchanged: u64,
    /// Source entries that cannot be transferred (unreadable, vanished or changing while
    /// they were read), with the reason.
    pub errors: Vec<(Box<[u8]>, String)>,
}

impl TransferPlan {
    /// The bytes the plan's file operations will write (for progress and time left).
    pub fn bytes_to_copy(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                Op::File { size, .. } => *size,
                _ => 0,
            })
            .sum()
    }
}

/// Plans the transfer of `src` onto `dst` (both manifests with digests). Pure.
pub fn plan(src: &Manifest, dst: &Manifest, delete: bool) -> TransferPlan {
    let mut p = TransferPlan::default();
    if delete {
        // Deepest first: reverse path order puts children before their parent.
        for d in dst.entries.iter().rev() {
            if !d.path.is_empty() && src.find(&d.path).is_none() {
                p.ops.push(Op::Remove {
                    path: d.path.clone(),
                    dir: d.kind == Kind::Dir,
                    replaced: false,
                });
            }
        }
    }
    let mut dgroups: std::collections::HashMap<u32, Vec<&[u8]>> = Default::default();
    for e in &dst.entries {
        if e.link != LINK_NONE {
            dgroups.entry(e.link).or_default().push(&e.path);
        }
    }
    let mut dirs = Vec::new();
    for (i, e) in src.entries.iter().enumerate() {
        if e.state != State::Ok {
            p.errors
                .push((e.path.clone(), format!("source {}", e.state.describe())));
            continue;
        }
        let mut d = dst.find(&e.path).map(|j| &dst.entries[j]);
        if let Some(have) = d
            && (have.kind != e.kind || have.state != State::Ok)
        {
            if e.path.is_empty() {
                // Never remove the destination's root: it is what the user named.
                p.errors.push((
                    e.path.clone(),
                    format!("destination root is {}", have.state.describe()),
                ));
                continue;
            }
            p.ops.push(Op::Remove {
                path: e.path.clone(),
                dir: have.kind == Kind::Dir,
                replaced: true,
            });
            d = None;
        }
        let path = e.path.clone();
        if e.kind == Kind::Dir {
            if d.is_none() {
                p.ops.push(Op::Mkdir { path });
            }
            dirs.push((e, d));
            continue;
        }
        // Second and later members of a hard-link group: link to the first one's copy.
        if e.link != LINK_NONE && e.link as usize != i {
            // Manifests from hosts are checked (`Manifest::check`); this keeps plan total.
            let Some(first) = src.entries.get(e.link as usize) else {
                p.errors
                    .push((path, "hard link to an entry that does not exist".into()));
                continue;
            };
            let to = first.path.clone();
            p.ops.push(Op::Link { path, to });
            continue;
        }
        let same = match (e.kind, d) {
            (_, None) => false,
            (Kind::File, Some(d)) => {
                // Content equal, and not hard-linked on the destination to anything the source
                // does not link it to (else copy, which breaks the wrong link).
                let links_ok =
                    d.link == LINK_NONE
                        || (e.link != LINK_NONE
                            && dgroups.get(&d.link).into_iter().flatten().all(|q| {
                                src.find(q).is_some_and(|k| src.entries[k].link == e.link)
                            }));
                d.size == e.size && d.digest.is_some() && d.digest == e.digest && links_ok
            }
            (Kind::Symlink, Some(d)) => d.target == e.target,
            (Kind::Block | Kind::Char, Some(d)) => d.rdev == e.rdev,
            (_, Some(_)) => true,
        };
        let meta = Meta::of(e);
        if let Some(d) = d.filter(|_| same) {
            let have = Meta::of(d);
            if meta.differs(&have) {
                p.ops.push(Op::Meta {
                    path,
                    want: meta,
                    have,
                });
            } else {
                p.unchanged += 1;
            }
            continue;
        }
        p.ops.push(match e.kind {
            Kind::File => match e.digest {
                Some(digest) => Op::File {
                    path,
                    size: e.size,
                    digest,
                    meta,
                    staged: None,
                    ino: Some(e.ino),
                },
                None => {
                    p.errors
                        .push((path, "source was not read completely".into()));
                    continue;
                }
            },
            Kind::Symlink => Op::Symlink {
                path,
                target: e.target.clone().unwrap_or_default(),
                meta,
            },
            _ => Op::Node {
                path,
                rdev: e.rdev,
                meta,
            },
        });
    }
    // Directory metadata last (creating children moves their mtime), deepest first.
    for (e, d) in dirs.into_iter().rev() {
        p.ops.push(Op::DirMeta {
            path: e.path.clone(),
            want: Meta::of(e),
            have: d.map(Meta::of),
        });
    }
    p
}

/// Where [`apply`] gets the content of the files it writes.
pub trait Content {
    /// Writes the content of the source file `path` (`size` bytes by the manifest, inode `ino`
    /// when known) into `out`, a new empty file, leaving runs of zeros as holes
    /// ([`write_sparse`]); returns the bytes written and their BLAKE3.
    fn copy(
        &mut self,
        path: &[u8],
        size: u64,
        ino: Option<u64>,
        out: &std::fs::File,
    ) -> io::Result<(u64, [u8; 32])>;
}

/// Content read from a local source tree: each file opened beneath the root without
/// following symlinks, and only if it is still the regular file the walk saw
/// ([`open_source`]).
pub struct LocalSource {
    root: Beneath,
    /// One buffer for every file (allocating a large one per file cost the kernel more than
    /// the copying: a fresh mapping, zeroed and unmapped each time).
    buf: crate::aligned::AlignedBuf,
}

impl LocalSource {
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(LocalSource {
            root: Beneath::open(root)?,
            buf: crate::aligned::AlignedBuf::new(1 << 20),
        })
    }
}

impl Content for LocalSource {
    fn copy(
        &mut self,
        path: &[u8],
        size: u64,
        ino: Option<u64>,
        out: &std::fs::File,
    ) -> io::Result<(u64, [u8; 32])> {
        use std::io::Read;
        let mut f = open_source(&mut self.root, path, ino)?.take(size.saturating_add(1));
        let mut hasher = blake3::Hasher::new();
        let mut at = 0u64;
        loop {
            let n = match f.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&self.buf[..n]);
            write_sparse(out, at, &self.buf[..n])?;
            at += n as u64;
        }
        Ok((at, *hasher.finalize().as_bytes()))
    }
}

/// Content sent along with the operations (the agent's side of a transfer between hosts):
/// each unstaged file's bytes, in operation order.
pub struct InlineContent<'a> {
    pub data: &'a [u8],
}

impl Content for InlineContent<'_> {
    fn copy(
        &mut self,
        _path: &[u8],
        size: u64,
        _ino: Option<u64>,
        out: &std::fs::File,
    ) -> io::Result<(u64, [u8; 32])> {
        let n = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let (mine, rest) = self.data.split_at(n);
        self.data = rest;
        write_sparse(out, 0, mine)?;
        Ok((n as u64, *blake3::hash(mine).as_bytes()))
    }
}

/// The length and BLAKE3 of a file's content, read in large pieces (`io::copy`'s 8 KiB reads
/// cost a system call each and leave the hasher's SIMD lanes half used).
fn hash_file(f: &std::fs::File) -> io::Result<(u64, [u8; 32])> {
    use std::os::unix::fs::FileExt;
    let mut buf = crate::aligned::AlignedBuf::new(1 << 20);
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    loop {
        match f.read_at(&mut buf, n) {
            Ok(0) => return Ok((n, *hasher.finalize().as_bytes())),
            Ok(k) => {
                hasher.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes `data` at `offset`, skipping whole 4 KiB blocks of zeros so that they stay holes
/// (the file's length is set by the caller with `set_len`), as `rsync --sparse` does.
pub fn write_sparse(out: &std::fs::File, offset: u64, data: &[u8]) -> io::Result<()> {
    const BLOCK: usize = 4096;
    let mut run_start: Option<usize> = None;
    let mut i = 0;
    while i < data.len() {
        let end = (i + BLOCK).min(data.len());
        let zero = data[i..end].iter().all(|&b| b == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(i),
            (true, Some(s)) => {
                write_chunked(out, &data[s..i], offset + s as u64)?;
                run_start = None;
            }
            _ => {}
        }
        i = end;
    }
    if let Some(s) = run_start {
        write_chunked(out, &data[s..], offset + s as u64)?;
    }
    Ok(())
}

/// The most one write system call is given. The kernel copies a write into the page cache
/// twice as fast in 256 KiB pieces as in one of 8 MiB (900 MiB written from memory: 0.44
/// against 0.98 CPU-seconds here), and a large file's pieces arrive in 8 MiB.
const WRITE_CHUNK: usize = 256 << 10;

fn write_chunked(out: &std::fs::File, data: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut at = offset;
    for chunk in data.chunks(WRITE_CHUNK) {
        out.write_all_at(chunk, at)?;
        at += chunk.len() as u64;
    }
    Ok(())
}

/// The prefix of every temporary name the transfer creates; followed by 24 random hex digits.
pub const TEMP_PREFIX: &str = ".rehost-tmp-";

/// A fresh temporary name, unpredictable to other users (from the kernel's random source), so
/// that nobody can plant something under it in advance; created with `O_EXCL | O_NOFOLLOW`
/// anyway.
pub fn temp_name() -> Box<[u8]> {
    format!("{TEMP_PREFIX}{}", crate::private::random_hex(12))
        .into_bytes()
        .into()
}

/// Whether `name` is one of [`temp_name`]'s names: one component, nothing else.
fn is_temp_name(name: &[u8]) -> bool {
    name.len() == TEMP_PREFIX.len() + 24
        && name.starts_with(TEMP_PREFIX.as_bytes())
        && name[TEMP_PREFIX.len()..]
            .iter()
            .all(|b| b.is_ascii_hexdigit())
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("refused: {why}"))
}

/// Writes a piece of a file's content into the temporary file `tmp` (a [`temp_name`]) beside
/// `path` under `root`, for a later [`Op::File`] with `staged` (large files sent in pieces). The
/// first piece (`offset` 0) creates it, mode 0600, failing if the name exists; later pieces
/// write only into a regular file this process's user owns with no other link.
pub fn stage(root: &Path, path: &[u8], tmp: &[u8], offset: u64, data: &[u8]) -> io::Result<()> {
    if path.is_empty() || !is_tree_path(path) {
        return Err(refused("not a path inside the tree"));
    }
    if !is_temp_name(tmp) {
        return Err(refused("not a temporary name of the transfer"));
    }
    let mut at = Beneath::open(root)?;
    let (dir, _) = at.parent(path)?;
    let f = if offset == 0 {
        create_temp(dir, tmp)?
    } else {
        open_staged(dir, tmp, false)?
    };
    write_sparse(&f, offset, data)
}

/// Creates the temporary file `tmp` in `dir`: new, never through a symlink, readable by its
/// owner alone until its real mode is set after the content is checked.
fn create_temp(dir: BorrowedFd<'_>, tmp: &[u8]) -> io::Result<std::fs::File> {
    let fd = rustix::fs::openat(
        dir,
        tmp,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Opens a staged temporary file again, only if it is still the one this process created: a
/// regular file, owned by this user, with no other name (a user who may write the directory
/// can swap the name, but cannot make a file owned by root).
fn open_staged(dir: BorrowedFd<'_>, tmp: &[u8], read: bool) -> io::Result<std::fs::File> {
    let mode = if read { OFlags::RDWR } else { OFlags::WRONLY };
    let fd = rustix::fs::openat(
        dir,
        tmp,
        mode | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
        || st.st_nlink != 1
    {
        return Err(refused(
            "the staged temporary file was replaced by another user; transfer again",
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// Test hook of [`apply_with_hook`]: called before each operation, so a test can act as
/// another user would between two operations (what an attacker's timing achieves).
pub type ApplyHook<'a> = &'a mut dyn FnMut(&Op);

/// Applies `ops` to the tree at `root`, taking file content from `content`. Per-operation
/// failures are recorded in the report and the rest go on. Call [`sync_fs`] after the last
/// batch.
pub fn apply(
    root: &Path,
    ops: &[Op],
    content: &mut dyn Content,
    progress: &mut dyn FnMut(Counts),
    cancel: &AtomicBool,
) -> Result<TransferReport, TreeError> {
    apply_with_hook(root, ops, content, progress, cancel, &mut |_| {})
}

/// [`apply`], calling `hook` before each operation.
#[doc(hidden)]
pub fn apply_with_hook(
    root: &Path,
    ops: &[Op],
    content: &mut dyn Content,
    progress: &mut dyn FnMut(Counts),
    cancel: &AtomicBool,
    hook: ApplyHook<'_>,
) -> Result<TransferReport, TreeError> {
    let mut t = Apply {
        at: Beneath::open(root).map_err(|e| TreeError::transfer(root, e))?,
        rep: TransferReport::default(),
        done: Counts::default(),
    };
    for op in ops {
        if cancel.load(Relaxed) {
            return Err(TreeError::Cancelled);
        }
        let link = match op {
            Op::Link { to, .. } => to,
            _ => op.path(),
        };
        let empty_ok = matches!(op, Op::DirMeta { .. } | Op::Meta { .. });
        if (!is_tree_path(op.path()) || !is_tree_path(link)) || (op.path().is_empty() && !empty_ok)
        {
            t.rep.errors.push((
                op.path().into(),
                "refused: not a path inside the tree".into(),
            ));
            continue;
        }
        hook(op);
        if let Err(e) = t.op(op, content) {
            t.rep.errors.push((op.path().into(), e.to_string()));
        }
        t.done.entries += 1;
        if t.done.entries.is_multiple_of(1024) {
            progress(t.done);
        }
    }
    progress(t.done);
    Ok(t.rep)
}

/// Flushes the file system holding `root` to disk (`syncfs`): a transfer is reported done
/// when its data is on disk, not in the page cache. Called once at the end of a transfer.
pub fn sync_fs(root: &Path) -> io::Result<()> {
    let dir = std::fs::File::open(root)?;
    Ok(rustix::fs::syncfs(&dir)?)
}

/// Makes `dst` a copy of `src`. Per-entry failures are recorded in the report, not returned.
pub fn transfer(
    src: &Path,
    dst: &Path,
    opts: &TransferOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<TransferReport, TreeError> {
    std::fs::create_dir_all(dst).map_err(|e| TreeError::transfer(dst, e))?;
    let (msrc, md) = walk_pair((src, None), (dst, None), &opts.walk, progress, cancel)?;
    let p = plan(&msrc, &md, opts.delete);
    let to_copy = p.bytes_to_copy();
    let start = Instant::now();
    let mut source = LocalSource::new(src).map_err(|e| TreeError::transfer(src, e))?;
    let mut rep = apply(
        dst,
        &p.ops,
        &mut source,
        &mut |c| {
            progress(Progress {
                sides: [c, Counts::default()],
                elapsed: start.elapsed(),
                copying: true,
                to_copy,
            })
        },
        cancel,
    )?;
    rep.unchanged += p.unchanged;
    rep.errors.splice(0..0, p.errors);
    if let Err(e) = sync_fs(dst) {
        rep.errors.push((
            Box::default(),
            format!("syncing the file system failed: {e}"),
        ));
    }
    Ok(rep)
}

struct Apply {
    at: Beneath,
    rep: TransferReport,
    done: Counts,
}

/// Opens an existing entry without following it, as a handle for its metadata, and checks it
/// is of the kind the plan expects (it may have been swapped since the walk).
fn open_entry(dir: BorrowedFd<'_>, name: &[u8], kind: Kind) -> io::Result<OwnedFd> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if kind_of(st.st_mode) != Some(kind) {
        return Err(io::Error::other(
            "refused: the entry changed type since the walk; transfer again",
        ));
    }
    Ok(fd)
}

fn kind_of(mode: u32) -> Option<Kind> {
    Some(match FileType::from_raw_mode(mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        FileType::Fifo => Kind::Fifo,
        FileType::Socket => Kind::Socket,
        FileType::BlockDevice => Kind::Block,
        FileType::CharacterDevice => Kind::Char,
        FileType::Unknown => return None,
    })
}

impl Apply {
    fn op(&mut self, op: &Op, content: &mut dyn Content) -> io::Result<()> {
        match op {
            Op::Remove { path, replaced, .. } => {
                let (dir, name) = self.at.parent(path)?;
                let existed = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok();
                remove_all(dir, name)?;
                self.at.forget(path);
                if existed && !*replaced {
                    self.rep.deleted += 1;
                }
                Ok(())
            }
            Op::Mkdir { path } => {
                let (dir, name) = self.at.parent(path)?;
                // Owner-only until its real mode is set, after everything inside it.
                rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
                self.at.forget(path);
                self.rep.created += 1;
                Ok(())
            }
            Op::Link { path, to } => {
                let (to_dir, from_name) = split_parent(to);
                let from = self.at.dir_owned(to_dir)?;
                let want = rustix::fs::statat(&from, from_name, AtFlags::SYMLINK_NOFOLLOW)?;
                if FileType::from_raw_mode(want.st_mode) != FileType::RegularFile {
                    return Err(refused("a hard link must point at a regular file"));
                }
                let (dir, name) = self.at.parent(path)?;
                if let Ok(have) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    if have.st_ino == want.st_ino && have.st_dev == want.st_dev {
                        self.rep.unchanged += 1;
                        return Ok(());
                    }
                    rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
                }
                rustix::fs::linkat(&from, from_name, dir, name, AtFlags::empty())?;
                self.rep.created += 1;
                Ok(())
            }
            Op::Meta { path, want, have } => {
                let (dir, name) = self.at.parent(path)?;
                let fd = open_entry(dir, name, want.kind)?;
                if set_meta(Handle::Path(fd.as_fd()), want, Some(have))? {
                    self.rep.updated += 1;
                } else {
                    self.rep.unchanged += 1;
                }
                Ok(())
            }
            Op::DirMeta { path, want, have } => {
                if want.kind != Kind::Dir {
                    return Err(refused("directory metadata for an entry that is not one"));
                }
                let dir = self.at.dir(path)?;
                if set_meta(Handle::Fd(dir), want, have.as_ref())? && have.is_some() {
                    self.rep.updated += 1;
                }
                Ok(())
            }
            Op::File { .. } | Op::Symlink { .. } | Op::Node { .. } => {
                let path = op.path();
                let staged = match op {
                    Op::File {
                        staged: Some(t), ..
                    } => Some(t.clone()),
                    _ => None,
                };
                let tmp = staged.unwrap_or_else(temp_name);
                if !is_temp_name(&tmp) {
                    return Err(refused("not a temporary name of the transfer"));
                }
                let (dir, name) = self.at.parent(path)?;
                let dir = dir.try_clone_to_owned()?;
                let made = self
                    .create(op, dir.as_fd(), &tmp, content)
                    .and_then(|()| Ok(rustix::fs::renameat(&dir, &*tmp, &dir, name)?));
                if made.is_err() {
                    let _ = rustix::fs::unlinkat(&dir, &*tmp, AtFlags::empty());
                }
                made?;
                self.rep.created += 1;
                Ok(())
            }
        }
    }

    /// Creates the new entry of `op` under the temporary name `tmp` in `dir`, with its content
    /// checked and its metadata set.
    fn create(
        &mut self,
        op: &Op,
        dir: BorrowedFd<'_>,
        tmp: &[u8],
        content: &mut dyn Content,
    ) -> io::Result<()> {
        match op {
            Op::File {
                path,
                size,
                digest,
                staged,
                meta,
                ino,
            } => {
                let (f, n, got) = if staged.is_some() {
                    let f = open_staged(dir, tmp, true)?;
                    f.set_len(*size)?;
                    let (n, got) = hash_file(&f)?;
                    (f, n, got)
                } else {
                    let f = create_temp(dir, tmp)?;
                    let (n, got) = content.copy(path, *size, *ino, &f)?;
                    f.set_len(n)?;
                    (f, n, got)
                };
                if n != *size || got != *digest {
                    return Err(io::Error::other(format!(
                        "the source changed while it was copied ({n} bytes read of {size}, BLAKE3 {} where the walk read {}); sync again",
                        &blake3::Hash::from(got).to_hex()[..16],
                        &blake3::Hash::from(*digest).to_hex()[..16],
                    )));
                }
                if meta.kind != Kind::File {
                    return Err(refused("file content for an entry that is not a file"));
                }
                set_meta(Handle::Fd(f.as_fd()), meta, None)?;
                self.rep.bytes_copied += n;
                self.done.bytes += n;
                Ok(())
            }
            Op::Symlink { target, meta, .. } => {
                if meta.kind != Kind::Symlink {
                    return Err(refused("a symlink for an entry that is not one"));
                }
                rustix::fs::symlinkat(&**target, dir, tmp)?;
                let fd = open_own(dir, tmp, Kind::Symlink)?;
                set_meta(Handle::Path(fd.as_fd()), meta, None)?;
                Ok(())
            }
            Op::Node { rdev, meta, .. } => {
                let ft = match meta.kind {
                    Kind::Fifo => FileType::Fifo,
                    Kind::Socket => FileType::Socket,
                    Kind::Block => FileType::BlockDevice,
                    Kind::Char => FileType::CharacterDevice,
                    _ => return Err(refused("a special file for an entry that is not one")),
                };
                rustix::fs::mknodat(dir, tmp, ft, Mode::from_raw_mode(0o600), *rdev)?;
                let fd = open_own(dir, tmp, meta.kind)?;
                set_meta(Handle::Path(fd.as_fd()), meta, None)?;
                Ok(())
            }
            _ => unreachable!("only entries with content are created under a temporary name"),
        }
    }
}

/// Opens what this process just created under `tmp`, checking that it still is (a user who
/// may write the directory could have swapped the name in between).
fn open_own(dir: BorrowedFd<'_>, tmp: &[u8], kind: Kind) -> io::Result<OwnedFd> {
    let fd = open_entry(dir, tmp, kind)?;
    let st = rustix::fs::fstat(&fd)?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(refused(
            "the temporary entry was replaced by another user; transfer again",
        ));
    }
    Ok(fd)
}

/// What metadata is set through: an open file or directory, or an `O_PATH` handle of an entry
/// that cannot be opened for reading without side effects or at all (symlinks, devices,
/// FIFOs), reached through its `/proc/self/fd` link, which names the entry itself, never
/// what a symlink points to.
#[derive(Clone, Copy)]
enum Handle<'a> {
    Fd(BorrowedFd<'a>),
    Path(BorrowedFd<'a>),
}

impl Handle<'_> {
    fn proc_path(fd: BorrowedFd<'_>) -> String {
        format!("/proc/self/fd/{}", fd.as_raw_fd())
    }
}

/// Sets owner, xattrs, mode and mtime where they differ from `have` (`None`: set everything).
/// Returns whether anything changed.
fn set_meta(h: Handle<'_>, e: &Meta, have: Option<&Meta>) -> io::Result<bool> {
    use rustix::fs::{Gid, Uid, XattrFlags};
    let mut changed = false;
    if have.is_none_or(|h| h.uid != e.uid || h.gid != e.gid) {
        // from_raw_unchecked: an id of -1 (from a hostile manifest) means "leave as is" to
        // the kernel, not a panic here.
        let (uid, gid) = (
            Some(Uid::from_raw_unchecked(e.uid)),
            Some(Gid::from_raw_unchecked(e.gid)),
        );
        match h {
            Handle::Fd(fd) => rustix::fs::fchown(fd, uid, gid)?,
            Handle::Path(fd) => rustix::fs::chownat(
                fd,
                "",
                uid,
                gid,
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            )?,
        }
        changed = true;
    }
    if have.is_none_or(|h| h.xattrs != e.xattrs) {
        let empty: &[Xattr] = &[];
        let want = e.xattrs.as_deref().unwrap_or(empty);
        let names: Vec<&[u8]> = match have {
            Some(h) => h
                .xattrs
                .as_deref()
                .unwrap_or(empty)
                .iter()
                .map(|(k, _)| &k[..])
                .filter(|k| !want.iter().any(|(w, _)| &w[..] == *k))
                .collect(),
            None => Vec::new(),
        };
        for k in names {
            match h {
                Handle::Fd(fd) => rustix::fs::fremovexattr(fd, k)?,
                Handle::Path(fd) => rustix::fs::removexattr(Handle::proc_path(fd), k)?,
            }
        }
        for (k, v) in want {
            match h {
                Handle::Fd(fd) => rustix::fs::fsetxattr(fd, &**k, v, XattrFlags::empty())?,
                Handle::Path(fd) => {
                    rustix::fs::setxattr(Handle::proc_path(fd), &**k, v, XattrFlags::empty())?
                }
            }
        }
        changed = true;
    }
    // After chown (which clears setuid bits) and ACLs (which set the group bits).
    if e.kind != Kind::Symlink && (have.is_none_or(|h| h.mode != e.mode) || changed) {
        let mode = Mode::from_raw_mode(e.mode & 0o7777);
        match h {
            Handle::Fd(fd) => rustix::fs::fchmod(fd, mode)?,
            Handle::Path(fd) => {
                rustix::fs::chmodat(CWD, Handle::proc_path(fd), mode, AtFlags::empty())?
            }
        }
        changed = true;
    }
    // A directory's mtime moved if entries were created or deleted in it: look again.
    let mtime_differs = match have {
        None => true,
        Some(_) if e.kind == Kind::Dir => {
            let fd = match h {
                Handle::Fd(fd) | Handle::Path(fd) => fd,
            };
            let st = rustix::fs::fstat(fd)?;
            st.st_mtime != e.mtime.sec || st.st_mtime_nsec as u32 != e.mtime.nsec
        }
        Some(h) => h.mtime != e.mtime,
    };
    if mtime_differs || changed {
        let times = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: e.mtime.sec,
                tv_nsec: (e.mtime.nsec % 1_000_000_000) as _,
            },
        };
        match h {
            Handle::Fd(fd) => rustix::fs::futimens(fd, &times)?,
            Handle::Path(fd) => {
                rustix::fs::utimensat(CWD, Handle::proc_path(fd), &times, AtFlags::empty())?
            }
        }
        changed = true;
    }
    Ok(changed)
}

/// Options for the rsync command of the `sync` step.
#[derive(Clone, Debug, Default)]
pub struct RsyncOptions {
    pub excludes: Vec<String>,
    /// `--dry-run --itemize-changes`: show what would change.
    pub dry_run: bool,
    /// Extra arguments from the plan, appended before the locations.
    pub extra: Vec<String>,
}

/// The argv of the `sync` step: everything verify compares is carried. `-a` (recursive, links,
/// perms, times, group, owner, devices, specials), `-H` hard links, `-A` ACLs, `-X` xattrs,
/// `--numeric-ids`, `--sparse`, `--delete` (with `--delete-excluded` off: excluded entries are
/// left alone), `--modify-window=-1` (compare mtimes to the nanosecond; without it rsync 3.x
/// leaves directories, symlinks and special files it creates with the copy time when that falls
/// in the source mtime's second), `--info=progress2` and `--no-inc-recursive` for an overall
/// progress figure (see [`parse_rsync_progress`]). `src` and `dst` are rsync locations (`PATH`
/// or `HOST:PATH`); a trailing `/` is added to `src` so its content, not the directory itself,
/// is copied.
pub fn rsync_command(src: &str, dst: &str, opts: &RsyncOptions) -> Vec<String> {
    let mut v: Vec<String> = [
        "rsync",
        "-aHAX",
        "--numeric-ids",
        "--sparse",
        "--delete",
        "--modify-window=-1",
        "--info=progress2",
        "--no-inc-recursive",
        "--protect-args",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if opts.dry_run {
        v.push("--dry-run".into());
        v.push("--itemize-changes".into());
    }
    for x in &opts.excludes {
        v.push(format!("--exclude={x}"));
    }
    v.extend(opts.extra.iter().cloned());
    v.push(if src.ends_with('/') {
        src.to_string()
    } else {
        format!("{src}/")
    });
    v.push(dst.to_string());
    v
}

/// rsync's version (`3.5.0`) if an `rsync` on PATH runs, else `None` (then use [`transfer`]).
pub fn rsync_available() -> Option<String> {
    let out = Command::new("rsync").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    let v = first
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)?;
    Some(v.to_string())
}

/// One `--info=progress2` update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsyncProgress {
    pub bytes: u64,
    pub percent: u8,
}

/// Parses a progress2 line such as `  1,234,567  45%   12.34MB/s    0:00:10 (xfr#5, to-chk=10/100)`
/// (rsync separates updates with `\r`; split on it first).
pub fn parse_rsync_progress(line: &str) -> Option<RsyncProgress> {
    let mut w = line.split_whitespace();
    let bytes = w.next()?.replace([',', '.'], "").parse().ok()?;
    let percent = w.next()?.strip_suffix('%')?.parse().ok()?;
    Some(RsyncProgress { bytes, percent })
}
