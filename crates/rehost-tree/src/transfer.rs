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
use crate::manifest::{Entry, Kind, LINK_NONE, Manifest, State, Time, Xattr, is_tree_path};
use crate::walk::{Counts, Progress, WalkOptions, walk_many};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
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
    /// content is already in the temporary file (sent ahead in pieces, see [`stage`]).
    File {
        path: Box<[u8]>,
        size: u64,
        digest: [u8; 32],
        meta: Meta,
        staged: bool,
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
            let to = src.entries[e.link as usize].path.clone();
            p.ops.push(Op::Link { path, to });
            continue;
        }
        let same = match (e.kind, d) {
            (_, None) => false,
            (Kind::File, Some(d)) => {
                // Content equal, and not hard-linked on the destination to anything the source
                // does not link it to (else copy, which breaks the wrong link).
                let links_ok = d.link == LINK_NONE
                    || (e.link != LINK_NONE
                        && dgroups[&d.link]
                            .iter()
                            .all(|q| src.find(q).is_some_and(|k| src.entries[k].link == e.link)));
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
                    staged: false,
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
    /// Writes the content of the source file `path` (`size` bytes by the manifest) into
    /// `out`, a new empty file, leaving runs of zeros as holes ([`write_sparse`]); returns the
    /// bytes written and their BLAKE3.
    fn copy(&mut self, path: &[u8], size: u64, out: &std::fs::File) -> io::Result<(u64, [u8; 32])>;
}

/// Content read from a local source tree.
pub struct LocalSource<'a> {
    root: &'a Path,
    /// One buffer for every file (allocating a large one per file cost the kernel more than
    /// the copying: a fresh mapping, zeroed and unmapped each time).
    buf: Vec<u8>,
}

impl<'a> LocalSource<'a> {
    pub fn new(root: &'a Path) -> Self {
        LocalSource {
            root,
            buf: vec![0u8; 1 << 20],
        }
    }
}

impl Content for LocalSource<'_> {
    fn copy(
        &mut self,
        path: &[u8],
        _size: u64,
        out: &std::fs::File,
    ) -> io::Result<(u64, [u8; 32])> {
        use std::io::Read;
        let mut f = std::fs::File::open(join(self.root, path))?;
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
        out: &std::fs::File,
    ) -> io::Result<(u64, [u8; 32])> {
        let n = (size as usize).min(self.data.len());
        let (mine, rest) = self.data.split_at(n);
        self.data = rest;
        write_sparse(out, 0, mine)?;
        Ok((n as u64, *blake3::hash(mine).as_bytes()))
    }
}

/// Writes `data` at `offset`, skipping whole 4 KiB blocks of zeros so that they stay holes
/// (the file's length is set by the caller with `set_len`), as `rsync --sparse` does.
pub fn write_sparse(out: &std::fs::File, offset: u64, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const BLOCK: usize = 4096;
    let mut run_start: Option<usize> = None;
    let mut i = 0;
    while i < data.len() {
        let end = (i + BLOCK).min(data.len());
        let zero = data[i..end].iter().all(|&b| b == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(i),
            (true, Some(s)) => {
                out.write_all_at(&data[s..i], offset + s as u64)?;
                run_start = None;
            }
            _ => {}
        }
        i = end;
    }
    if let Some(s) = run_start {
        out.write_all_at(&data[s..], offset + s as u64)?;
    }
    Ok(())
}

/// Writes a piece of a file's content into its temporary name under `root` (a new file when
/// `offset` is 0), for a later [`Op::File`] with `staged` (large files sent in pieces).
pub fn stage(root: &Path, path: &[u8], offset: u64, data: &[u8]) -> io::Result<()> {
    if path.is_empty() || !is_tree_path(path) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refused: not a path inside the tree",
        ));
    }
    let tmp = temp_name(&join(root, path));
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if offset == 0 {
        o.create(true).truncate(true);
    }
    let f = o.open(&tmp)?;
    write_sparse(&f, offset, data)
}

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
    let mut t = Apply {
        root,
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
        if !is_tree_path(op.path()) || !is_tree_path(link) {
            t.rep.errors.push((
                op.path().into(),
                "refused: not a path inside the tree".into(),
            ));
            continue;
        }
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
    // SAFETY: a valid fd.
    check(unsafe { libc::syncfs(dir.as_raw_fd()) })
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
    let mut ms = walk_many(&[(src, None), (dst, None)], &opts.walk, progress, cancel)?;
    let md = ms.pop().expect("two manifests");
    let msrc = ms.pop().expect("two manifests");
    let p = plan(&msrc, &md, opts.delete);
    let start = Instant::now();
    let mut rep = apply(
        dst,
        &p.ops,
        &mut LocalSource::new(src),
        &mut |c| {
            progress(Progress {
                sides: [c, Counts::default()],
                elapsed: start.elapsed(),
                copying: true,
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

fn join(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

struct Apply<'a> {
    root: &'a Path,
    rep: TransferReport,
    done: Counts,
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn remove(p: &Path, dir: bool) -> io::Result<()> {
    if dir {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
}

impl Apply<'_> {
    fn op(&mut self, op: &Op, content: &mut dyn Content) -> io::Result<()> {
        let dp = join(self.root, op.path());
        match op {
            Op::Remove { dir, replaced, .. } => {
                match remove(&dp, *dir) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ if *replaced => {}
                    _ => self.rep.deleted += 1,
                }
                Ok(())
            }
            Op::Mkdir { .. } => {
                std::fs::create_dir(&dp)?;
                self.rep.created += 1;
                Ok(())
            }
            Op::Link { to, .. } => {
                use std::os::unix::fs::MetadataExt;
                let first = join(self.root, to);
                let want = std::fs::symlink_metadata(&first)?;
                if let Ok(have) = std::fs::symlink_metadata(&dp) {
                    if have.ino() == want.ino() && have.dev() == want.dev() {
                        self.rep.unchanged += 1;
                        return Ok(());
                    }
                    std::fs::remove_file(&dp)?;
                }
                std::fs::hard_link(&first, &dp)?;
                self.rep.created += 1;
                Ok(())
            }
            Op::Meta { want, have, .. } => {
                if set_meta(&dp, want, Some(have))? {
                    self.rep.updated += 1;
                } else {
                    self.rep.unchanged += 1;
                }
                Ok(())
            }
            Op::DirMeta { want, have, .. } => {
                if set_meta(&dp, want, have.as_ref())? && have.is_some() {
                    self.rep.updated += 1;
                }
                Ok(())
            }
            Op::File { meta, .. } | Op::Symlink { meta, .. } | Op::Node { meta, .. } => {
                let tmp = temp_name(&dp);
                let made = self.create(op, &tmp, content).and_then(|()| {
                    set_meta(&tmp, meta, None)?;
                    std::fs::rename(&tmp, &dp)
                });
                if made.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                made?;
                self.rep.created += 1;
                Ok(())
            }
        }
    }

    /// Creates the new entry of `op` under its temporary name.
    fn create(&mut self, op: &Op, tmp: &Path, content: &mut dyn Content) -> io::Result<()> {
        match op {
            Op::File {
                path,
                size,
                digest,
                staged,
                ..
            } => {
                let (f, n, got) = if *staged {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(tmp)?;
                    f.set_len(*size)?;
                    let mut hasher = blake3::Hasher::new();
                    let n = std::io::copy(&mut &f, &mut hasher)?;
                    (f, n, *hasher.finalize().as_bytes())
                } else {
                    let _ = std::fs::remove_file(tmp);
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(tmp)?;
                    let (n, got) = content.copy(path, *size, &f)?;
                    f.set_len(n)?;
                    (f, n, got)
                };
                drop(f);
                if n != *size || got != *digest {
                    return Err(io::Error::other(format!(
                        "the source changed while it was copied ({n} bytes read of {size}, BLAKE3 {} where the walk read {}); sync again",
                        &blake3::Hash::from(got).to_hex()[..16],
                        &blake3::Hash::from(*digest).to_hex()[..16],
                    )));
                }
                self.rep.bytes_copied += n;
                self.done.bytes += n;
                Ok(())
            }
            Op::Symlink { target, .. } => {
                let _ = std::fs::remove_file(tmp);
                std::os::unix::fs::symlink(OsStr::from_bytes(target), tmp)
            }
            Op::Node { rdev, meta, .. } => {
                let _ = std::fs::remove_file(tmp);
                let fmt = match meta.kind {
                    Kind::Fifo => libc::S_IFIFO,
                    Kind::Socket => libc::S_IFSOCK,
                    Kind::Block => libc::S_IFBLK,
                    _ => libc::S_IFCHR,
                };
                // SAFETY: valid C string.
                check(unsafe { libc::mknod(cpath(tmp)?.as_ptr(), fmt | 0o600, *rdev) })
            }
            _ => unreachable!("only entries with content are created under a temporary name"),
        }
    }
}

/// Sets owner, xattrs, mode and mtime on `p` where they differ from `have` (`None`: set
/// everything). Returns whether anything changed.
fn set_meta(p: &Path, e: &Meta, have: Option<&Meta>) -> io::Result<bool> {
    let c = cpath(p)?;
    let mut changed = false;
    if have.is_none_or(|h| h.uid != e.uid || h.gid != e.gid) {
        // SAFETY: valid C string.
        check(unsafe { libc::lchown(c.as_ptr(), e.uid, e.gid) })?;
        changed = true;
    }
    if have.is_none_or(|h| h.xattrs != e.xattrs) {
        let empty: &[Xattr] = &[];
        let want = e.xattrs.as_deref().unwrap_or(empty);
        if let Some(old) = have.and_then(|h| h.xattrs.as_deref()) {
            for (k, _) in old
                .iter()
                .filter(|(k, _)| !want.iter().any(|(w, _)| w == k))
            {
                let k =
                    CString::new(&k[..]).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                // SAFETY: valid C strings.
                check(unsafe { libc::lremovexattr(c.as_ptr(), k.as_ptr()) })?;
            }
        }
        for (k, v) in want {
            let k = CString::new(&k[..]).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: valid pointers and lengths.
            check(unsafe {
                libc::lsetxattr(c.as_ptr(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0)
            })?;
        }
        changed = true;
    }
    // After chown (which clears setuid bits) and ACLs (which set the group bits).
    if e.kind != Kind::Symlink && (have.is_none_or(|h| h.mode != e.mode) || changed) {
        // SAFETY: valid C string.
        check(unsafe { libc::chmod(c.as_ptr(), e.mode) })?;
        changed = true;
    }
    // A directory's mtime moved if entries were created or deleted in it: look again.
    let mtime_differs = match have {
        None => true,
        Some(_) if e.kind == Kind::Dir => {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::symlink_metadata(p)?;
            m.mtime() != e.mtime.sec || m.mtime_nsec() as u32 != e.mtime.nsec
        }
        Some(h) => h.mtime != e.mtime,
    };
    if mtime_differs || changed {
        let ts = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: e.mtime.sec,
                tv_nsec: e.mtime.nsec as i64,
            },
        ];
        // SAFETY: valid pointers.
        check(unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        changed = true;
    }
    Ok(changed)
}

/// The temporary name new content is written to, beside its final place.
pub fn temp_name(p: &Path) -> PathBuf {
    let name = p.file_name().map(|n| n.as_bytes()).unwrap_or(b"x");
    // Keep within NAME_MAX: a short hash of the name instead of the name when it is long.
    let tmp = if name.len() > 200 {
        format!(".rehost-tmp-{}", &blake3::hash(name).to_hex()[..16]).into_bytes()
    } else {
        [b".rehost-tmp-", name].concat()
    };
    p.with_file_name(OsStr::from_bytes(&tmp))
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
