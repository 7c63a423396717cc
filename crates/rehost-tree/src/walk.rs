//! The walk: lists a tree and hashes every regular file, in parallel, producing a [`Manifest`].
//!
//! Designed for the downtime window: directories are read with `fdopendir`/`readdir` and every
//! entry is opened and stat'ed relative to its directory's fd (`openat`, `fstat`, `fstatat`),
//! files are read with `read(2)` into a reusable, page-aligned per-thread buffer (no mmap, so a
//! file truncated under us cannot SIGBUS the process; mapping was measured and did not win:
//! docs/benchmarks.md), large files are hashed with BLAKE3's multithreaded `update_rayon` while
//! fewer files than cores are in flight, and the pool has more threads than cores (16 by
//! default) because a cold tree
//! of small files is bound by I/O latency, not CPU. Several trees walked together share one pool
//! and interleave.
//!
//! Nothing is skipped silently: an entry that cannot be opened, listed or read is recorded with
//! state `Unreadable(errno)` and whatever metadata `fstatat` still gave; one that disappears
//! between listing and opening is `Vanished`; a file whose size, mtime or ctime moved while it was
//! read, or whose byte count differs from its size, is `Unstable` and has no digest.

use crate::TreeError;
use crate::aligned::AlignedBuf;
use crate::glob::{Glob, any_match};
use crate::manifest::{Entry, Kind, Manifest, State, Xattr};
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod pair;
use pair::{Pair, StatKey};

/// What to walk and how.
#[derive(Clone)]
pub struct WalkOptions {
    /// Entries matching any of these are left out, with everything below them.
    pub excludes: Vec<Glob>,
    /// Reader threads (I/O parallelism). 0 means the default, 16: enough reads in flight for a
    /// cold disk, cheap when warm.
    pub threads: usize,
    /// Read extended attributes (and so POSIX ACLs).
    pub xattrs: bool,
    /// When not empty, only these entries are recorded (paths relative to the root, as
    /// [`only_path`] accepts them), each with the directories leading to it, instead of the whole
    /// tree: the single files `verify-files` compares. Directories on the way are opened without
    /// following a symlink; one that is a symlink is recorded as what it is and nothing below it
    /// is read. A listed path that does not exist is not recorded. A listed directory is recorded
    /// itself, not what it holds.
    pub only: Vec<Box<[u8]>>,
    /// Test hook, called with the relative path before a file is opened and after its first
    /// read. Used to make files vanish or change at an exact moment.
    #[doc(hidden)]
    pub hook: Option<Hook>,
}

pub type Hook = Arc<dyn Fn(HookPoint, &[u8]) + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPoint {
    BeforeOpen,
    AfterFirstRead,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            excludes: Vec::new(),
            threads: 0,
            xattrs: true,
            only: Vec::new(),
            hook: None,
        }
    }
}

impl std::fmt::Debug for WalkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkOptions")
            .field("excludes", &self.excludes)
            .field("threads", &self.threads)
            .field("xattrs", &self.xattrs)
            .field("only", &self.only.len())
            .finish()
    }
}

/// Counters of one side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub entries: u64,
    pub bytes: u64,
}

/// Reported about every 200 ms while walking: counts per side (index 0 is A, or the only
/// tree) and the time since the start, from which the caller derives rates. A transfer, once
/// both trees are walked, reports what it has copied as side 0 with `copying` set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub sides: [Counts; 2],
    pub elapsed: Duration,
    pub copying: bool,
    /// While copying: the bytes the copy will write in all (0 when not known), for the time
    /// left.
    pub to_copy: u64,
}

pub const DEFAULT_THREADS: usize = 16;
const SMALL_BUF: usize = 256 * 1024;
const BIG_FILE: u64 = 8 << 20;
/// Reads of a big file: 256 KiB, page-aligned, stays in the L2 cache between the kernel's copy
/// and the hash (4 MiB cost more kernel time here: 100 x 16 MiB per side, 0.62 against 0.51
/// CPU-seconds of kernel time; issue 27 measured 0.67 against 0.61 s of wall time).
const BIG_BUF: usize = 256 << 10;
const FILES_PER_TASK: usize = 16;
/// Files of A at least this big are read together with B's file of the same path when two
/// trees are walked as a pair ([`walk_pair`]): below it, opening B's file from B's root costs
/// about what the hashing saves. Measured: 1,000 files of 256 KiB and 1,000 of 96 KiB per side,
/// warm, 0.13 s paired from 64 KiB against 0.15 s from 1 MiB (CPU 0.24 against 0.285 s).
const PAIR_MIN: u64 = 64 << 10;

/// Walks and hashes one tree.
pub fn manifest(
    root: &Path,
    opts: &WalkOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Manifest, TreeError> {
    let mut v = walk_many(&[(root, None)], opts, progress, cancel)?;
    Ok(v.pop().expect("one manifest"))
}

/// Walks several trees at once in one pool, each optionally with an earlier manifest of the
/// same tree whose digests are trusted for files whose dev, inode, size, mtime and ctime are
/// unchanged.
pub fn walk_many(
    jobs: &[(&Path, Option<&Manifest>)],
    opts: &WalkOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Vec<Manifest>, TreeError> {
    walk(jobs, false, opts, progress, cancel)
}

/// Walks tree A and tree B, where B should be a copy of A, like [`walk_many`] with the two,
/// reading each pair of big files once: a file of A that must be read (at least 64 KiB,
/// not trusted from `previous`) is read together with B's file at the same path if that
/// is a regular file of the same size (reached from B's root without following a symlink,
/// never opened if it is anything else). A's bytes are hashed; B's are compared with them
/// piece by piece and hashed only from the first piece that differs, from a copy of A's hash
/// state. So B's digest is the BLAKE3 of B's bytes as read, computed once for both where they
/// are equal.
///
/// B's digest is handed to B's walk only if B's file was read to exactly its size and its
/// device, inode, size, mtime and ctime were the same before and after that read and when B's
/// own walk opened it; otherwise B's walk reads the file itself as [`walk_many`] would
/// (unstable, unreadable, vanished recorded the same way). [`Manifest::compared`] counts the
/// files of B whose digest came from such a pair read.
pub fn walk_pair(
    a: (&Path, Option<&Manifest>),
    b: (&Path, Option<&Manifest>),
    opts: &WalkOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<(Manifest, Manifest), TreeError> {
    let mut v = walk(&[a, b], opts.only.is_empty(), opts, progress, cancel)?;
    let mb = v.pop().expect("two manifests");
    let ma = v.pop().expect("two manifests");
    Ok((ma, mb))
}

fn walk(
    jobs: &[(&Path, Option<&Manifest>)],
    paired: bool,
    opts: &WalkOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Vec<Manifest>, TreeError> {
    let threads = if opts.threads == 0 {
        DEFAULT_THREADS
    } else {
        opts.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rehost-walk-{i}"))
        .build()
        .map_err(|e| TreeError::Threads(e.to_string()))?;
    let mut roots = Vec::new();
    for (root, _) in jobs {
        let c = CString::new(root.as_os_str().as_bytes()).map_err(|_| TreeError::Root {
            path: root.to_path_buf(),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        // SAFETY: c is a valid C string; the fd is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let source = std::io::Error::last_os_error();
            return Err(if source.raw_os_error() == Some(libc::ENOTDIR) {
                TreeError::RootNotDir {
                    path: root.to_path_buf(),
                }
            } else {
                TreeError::Root {
                    path: root.to_path_buf(),
                    source,
                }
            });
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        roots.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let pair = (paired && roots.len() == 2).then(|| Pair::new(roots[1].as_raw_fd()));
    let mut walkers = Vec::new();
    for (i, ((root, previous), fd)) in jobs.iter().zip(roots).enumerate() {
        walkers.push((
            Walker {
                opts,
                previous: *previous,
                lead: pair.as_ref().filter(|_| i == 0),
                follow: pair.as_ref().filter(|_| i == 1),
                // Sized from the earlier manifest: no regrowth copies of a vector of hundreds
                // of thousands of entries on the incremental path.
                out: Mutex::new(Vec::with_capacity(previous.map_or(0, |m| m.entries.len()))),
                entries: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                rehashed: AtomicU64::new(0),
                trusted: AtomicU64::new(0),
                cancel,
            },
            fd,
            root.as_os_str().as_bytes().to_vec(),
        ));
    }
    let start = Instant::now();
    let done = AtomicBool::new(false);
    std::thread::scope(|ts| {
        let walkers = &walkers;
        let done = &done;
        let pool = &pool;
        ts.spawn(move || {
            // Set even if a task panics, so the progress loop ends and the panic propagates.
            struct Done<'d>(&'d AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Relaxed);
                }
            }
            let _done = Done(done);
            pool.scope(|s| {
                for (w, fd, _) in walkers {
                    s.spawn(move |s| w.root(s, fd));
                }
            });
        });
        let report = |progress: &mut dyn FnMut(Progress)| {
            let mut p = Progress {
                elapsed: start.elapsed(),
                ..Progress::default()
            };
            for (i, (w, _, _)) in walkers.iter().take(2).enumerate() {
                p.sides[i] = Counts {
                    entries: w.entries.load(Relaxed),
                    bytes: w.bytes.load(Relaxed),
                };
            }
            if let Some(pair) = &pair {
                p.sides[1].bytes += pair.bytes_b.load(Relaxed);
            }
            progress(p);
        };
        let mut last = Instant::now();
        while !done.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            if last.elapsed() >= Duration::from_millis(200) {
                last = Instant::now();
                report(progress);
            }
        }
        report(progress);
    });
    if cancel.load(Relaxed) {
        return Err(TreeError::Cancelled);
    }
    let compared = match (&pair, walkers.get(1)) {
        (Some(pair), Some((b, _, _))) => pool.install(|| b.settle_waiting(pair)),
        _ => 0,
    };
    if cancel.load(Relaxed) {
        return Err(TreeError::Cancelled);
    }
    // Sorting hundreds of thousands of entries chases a pointer per comparison: sort the trees
    // in parallel, each with a parallel sort, on the walk's pool.
    use rayon::prelude::*;
    Ok(pool.install(|| {
        walkers
            .into_par_iter()
            .enumerate()
            .map(|(i, (w, _, root))| {
                let mut m = Manifest {
                    root: root.into(),
                    excludes: opts
                        .excludes
                        .iter()
                        .map(|g| g.as_str().to_string())
                        .collect(),
                    entries: w.out.into_inner().unwrap_or_else(|e| e.into_inner()),
                    rehashed: w.rehashed.into_inner(),
                    trusted: w.trusted.into_inner(),
                    compared: if i == 1 { compared } else { 0 },
                    warnings: Vec::new(),
                };
                m.finish();
                m
            })
            .collect()
    }))
}

/// Counts of one batch of files, added to the shared counters once per batch rather than once
/// per file (their cache line would otherwise bounce between cores).
#[derive(Default)]
struct Tally {
    trusted: u64,
    bytes: u64,
}

struct Walker<'a> {
    opts: &'a WalkOptions,
    previous: Option<&'a Manifest>,
    /// A's walk of a pair: reads B's big files with A's ([`walk_pair`]).
    lead: Option<&'a Pair>,
    /// B's walk of a pair: leaves its big files (path and stat) waiting for A's walk.
    follow: Option<&'a Pair>,
    out: Mutex<Vec<Entry>>,
    entries: AtomicU64,
    bytes: AtomicU64,
    rehashed: AtomicU64,
    trusted: AtomicU64,
    cancel: &'a AtomicBool,
}

type Digest = [u8; 32];

/// A file's read: its digest and the bytes read, or the errno.
type Read = Result<(Digest, u64), i32>;

thread_local! {
    static BUF: RefCell<Option<AlignedBuf>> = const { RefCell::new(None) };
}

/// Files being hashed at this moment, in every walk of this process.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One file counted in [`IN_FLIGHT`] while it lives.
struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, Relaxed);
        InFlight
    }
    fn count(&self) -> usize {
        IN_FLIGHT.load(Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Relaxed);
    }
}

/// The CPUs this process may run on (read once).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn fstat(fd: RawFd) -> Result<libc::stat, i32> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out pointer.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } < 0 {
        return Err(errno());
    }
    // SAFETY: fstat succeeded and filled it.
    Ok(unsafe { st.assume_init() })
}

fn fstatat(dir: RawFd, name: &CStr) -> Result<libc::stat, i32> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid pointers.
    if unsafe {
        libc::fstatat(
            dir,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } < 0
    {
        return Err(errno());
    }
    // SAFETY: fstatat succeeded.
    Ok(unsafe { st.assume_init() })
}

/// Whether `name` in `dir` is a directory (not following a symlink).
fn is_dir_at(dir: RawFd, name: &CStr) -> bool {
    // SAFETY: a zeroed stat is a valid out-parameter; valid fd and C string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn openat(dir: RawFd, name: &CStr, flags: i32) -> Result<OwnedFd, i32> {
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: valid C string.
    let mut fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_NOATIME) };
    if fd < 0 && errno() == libc::EPERM {
        // O_NOATIME is only allowed to the owner (or root).
        // SAFETY: as above.
        fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: freshly opened fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn same_content_key(st: &libc::stat, e: &Entry) -> bool {
    e.kind == Kind::File
        && e.state == State::Ok
        && e.digest.is_some()
        && st.st_dev == e.dev
        && st.st_ino == e.ino
        && st.st_size as u64 == e.size
        && st.st_mtime == e.mtime.sec
        && st.st_mtime_nsec as u32 == e.mtime.nsec
        && st.st_ctime == e.ctime.sec
        && st.st_ctime_nsec as u32 == e.ctime.nsec
}

/// Checks a path for [`WalkOptions::only`]: relative to the root, not empty, no empty, `.` or
/// `..` component, no NUL byte.
pub fn only_path(path: &[u8]) -> Result<(), crate::NotBelowRoot> {
    let bad = path.is_empty()
        || path.contains(&0)
        || path
            .split(|&b| b == b'/')
            .any(|c| c.is_empty() || c == b"." || c == b"..");
    if bad {
        return Err(crate::NotBelowRoot(crate::escape::display(path)));
    }
    Ok(())
}

fn join(dir: &[u8], name: &[u8]) -> Box<[u8]> {
    if dir.is_empty() {
        return name.into();
    }
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    p.push(b'/');
    p.extend_from_slice(name);
    p.into()
}

impl<'a> Walker<'a> {
    fn push(&self, batch: &mut Vec<Entry>) {
        if batch.is_empty() {
            return;
        }
        self.entries.fetch_add(batch.len() as u64, Relaxed);
        self.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(batch);
    }

    fn root<'s>(&'s self, s: &rayon::Scope<'s>, fd: &'s OwnedFd) {
        let mut e = Entry::new(Box::default(), Kind::Dir);
        match fstat(fd.as_raw_fd()) {
            Ok(st) => e.set_stat(&st),
            Err(errno) => e.state = State::Unreadable(errno),
        }
        self.fd_xattrs(fd.as_raw_fd(), &mut e);
        // The root fd is borrowed; list through a duplicate we own.
        // SAFETY: dup of a valid fd.
        let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            e.state = State::Unreadable(errno());
            self.push(&mut vec![e]);
            return;
        }
        self.push(&mut vec![e]);
        // SAFETY: fresh fd.
        let dup = unsafe { OwnedFd::from_raw_fd(dup) };
        if self.opts.only.is_empty() {
            self.dir(s, Arc::new(dup), Vec::new());
        } else {
            self.only(&dup);
        }
    }

    /// Records the entries of [`WalkOptions::only`] and the directories leading to them, each
    /// once, reached through directory descriptors from the root without following a symlink.
    fn only(&self, root: &OwnedFd) {
        let mut recorded: std::collections::BTreeSet<Box<[u8]>> = Default::default();
        let mut out = Vec::new();
        let mut tally = Tally::default();
        for path in &self.opts.only {
            if self.cancel.load(Relaxed) {
                return;
            }
            if only_path(path).is_err() {
                continue;
            }
            let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let (last, parents) = comps.split_last().expect("split yields one part at least");
            let mut dir: Option<OwnedFd> = None;
            let mut rel: Vec<u8> = Vec::new();
            let mut reached = true;
            for comp in parents {
                let name = CString::new(*comp).expect("only_path refuses NUL");
                let here = join(&rel, comp);
                let at = dir.as_ref().unwrap_or(root).as_raw_fd();
                match openat(at, &name, libc::O_RDONLY | libc::O_DIRECTORY) {
                    Ok(fd) => {
                        if recorded.insert(here.clone()) {
                            let mut e = Entry::new(here.clone(), Kind::Dir);
                            match fstat(fd.as_raw_fd()) {
                                Ok(st) => e.set_stat(&st),
                                Err(errno) => e.state = State::Unreadable(errno),
                            }
                            self.fd_xattrs(fd.as_raw_fd(), &mut e);
                            out.push(e);
                        }
                        dir = Some(fd);
                        rel = here.into();
                    }
                    Err(libc::ENOENT) => {
                        reached = false;
                        break;
                    }
                    Err(errno) => {
                        // A symlink or a file where a directory was expected is recorded as
                        // what it is; anything else as the directory that could not be opened.
                        if recorded.insert(here.clone()) {
                            out.push(match errno {
                                libc::ENOTDIR | libc::ELOOP => self.other(at, &name, here),
                                _ => self.failed(at, &name, here, Kind::Dir, errno),
                            });
                        }
                        reached = false;
                        break;
                    }
                }
            }
            if !reached || !recorded.insert(path.clone()) {
                continue;
            }
            let name = CString::new(*last).expect("only_path refuses NUL");
            let at = dir.as_ref().unwrap_or(root).as_raw_fd();
            match fstatat(at, &name) {
                Ok(st) if Kind::from_mode(st.st_mode) == Kind::File => {
                    out.push(self.file(at, &name, path.clone(), &[], &mut tally));
                }
                Ok(st) if Kind::from_mode(st.st_mode) == Kind::Dir => {
                    out.push(
                        match openat(at, &name, libc::O_RDONLY | libc::O_DIRECTORY) {
                            Ok(fd) => {
                                let mut e = Entry::new(path.clone(), Kind::Dir);
                                match fstat(fd.as_raw_fd()) {
                                    Ok(st) => e.set_stat(&st),
                                    Err(errno) => e.state = State::Unreadable(errno),
                                }
                                self.fd_xattrs(fd.as_raw_fd(), &mut e);
                                e
                            }
                            Err(errno) => self.failed(at, &name, path.clone(), Kind::Dir, errno),
                        },
                    );
                }
                Ok(_) => out.push(self.other(at, &name, path.clone())),
                Err(libc::ENOENT) => {
                    recorded.remove(path);
                }
                Err(errno) => out.push(self.failed(at, &name, path.clone(), Kind::File, errno)),
            }
        }
        self.trusted.fetch_add(tally.trusted, Relaxed);
        self.bytes.fetch_add(tally.bytes, Relaxed);
        self.push(&mut out);
    }

    /// Lists one open directory: subdirectories become tasks, files are hashed in batches
    /// spawned as tasks, everything else is stat'ed here.
    fn dir<'s>(&'s self, s: &rayon::Scope<'s>, fd: Arc<OwnedFd>, rel: Vec<u8>) {
        if self.cancel.load(Relaxed) {
            return;
        }
        let names = match read_dir(fd.as_raw_fd()) {
            Ok(n) => n,
            Err(errno) => {
                // Record the listing failure on the directory entry itself.
                let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(e) = out.iter_mut().rev().find(|e| *e.path == *rel) {
                    e.state = State::Unreadable(errno);
                }
                return;
            }
        };
        let mut done = Vec::new();
        let mut files: Vec<(CString, Box<[u8]>)> = Vec::new();
        for (name, dtype) in names {
            let path = join(&rel, name.to_bytes());
            if !self.opts.excludes.is_empty() {
                let is_dir = match dtype {
                    libc::DT_DIR => true,
                    // Only a directory-only pattern needs the type the listing did not give.
                    libc::DT_UNKNOWN if self.opts.excludes.iter().any(Glob::dir_only) => {
                        is_dir_at(fd.as_raw_fd(), &name)
                    }
                    _ => false,
                };
                if any_match(&self.opts.excludes, &path, is_dir) {
                    continue;
                }
            }
            match dtype {
                libc::DT_REG => {
                    files.push((name, path));
                    if files.len() == FILES_PER_TASK {
                        let batch = std::mem::take(&mut files);
                        let fd = fd.clone();
                        let rel = rel.clone();
                        s.spawn(move |s| self.files(s, &fd, &rel, batch));
                    }
                }
                libc::DT_DIR => {
                    if let Some(e) = self.subdir(s, fd.as_raw_fd(), &name, path) {
                        done.push(e);
                    }
                }
                libc::DT_UNKNOWN => match fstatat(fd.as_raw_fd(), &name) {
                    Ok(st) if Kind::from_mode(st.st_mode) == Kind::File => files.push((name, path)),
                    Ok(st) if Kind::from_mode(st.st_mode) == Kind::Dir => {
                        if let Some(e) = self.subdir(s, fd.as_raw_fd(), &name, path) {
                            done.push(e);
                        }
                    }
                    _ => done.push(self.other(fd.as_raw_fd(), &name, path)),
                },
                _ => done.push(self.other(fd.as_raw_fd(), &name, path)),
            }
        }
        self.push(&mut done);
        if !files.is_empty() {
            self.files(s, &fd, &rel, files);
        }
    }

    /// Opens a subdirectory, records it, and spawns its listing. Returns the entry if it could
    /// not be opened (so it is recorded by the caller's batch).
    fn subdir<'s>(
        &'s self,
        s: &rayon::Scope<'s>,
        parent: RawFd,
        name: &CStr,
        path: Box<[u8]>,
    ) -> Option<Entry> {
        match openat(parent, name, libc::O_RDONLY | libc::O_DIRECTORY) {
            Ok(fd) => {
                let mut e = Entry::new(path, Kind::Dir);
                match fstat(fd.as_raw_fd()) {
                    Ok(st) => e.set_stat(&st),
                    Err(errno) => e.state = State::Unreadable(errno),
                }
                self.fd_xattrs(fd.as_raw_fd(), &mut e);
                let rel = e.path.to_vec();
                // Recorded before listing, so a listing failure can mark it.
                self.push(&mut vec![e]);
                let fd = Arc::new(fd);
                s.spawn(move |s| self.dir(s, fd, rel));
                None
            }
            Err(libc::ENOTDIR) | Err(libc::ELOOP) => Some(self.other(parent, name, path)),
            Err(errno) => Some(self.failed(parent, name, path, Kind::Dir, errno)),
        }
    }

    /// An entry that could not be opened: keep what `fstatat` still says.
    fn failed(&self, dir: RawFd, name: &CStr, path: Box<[u8]>, kind: Kind, errno: i32) -> Entry {
        let mut e = Entry::new(path, kind);
        if errno == libc::ENOENT {
            e.state = State::Vanished;
            return e;
        }
        match fstatat(dir, name) {
            Ok(st) => e.set_stat(&st),
            Err(libc::ENOENT) => {
                e.state = State::Vanished;
                return e;
            }
            Err(_) => {}
        }
        e.state = State::Unreadable(errno);
        e
    }

    /// The entries of the earlier manifest below directory `rel` (children and deeper): one
    /// contiguous run of the sorted manifest, so that each file is then looked up among it by
    /// the bytes after the directory's prefix.
    fn cached_below(&self, rel: &[u8]) -> &'a [Entry] {
        let Some(prev) = self.previous else {
            return &[];
        };
        let e = &prev.entries[..];
        if rel.is_empty() {
            return e;
        }
        // Paths below `rel` start with `rel/`; '0' is the byte after '/'.
        let mut bound = rel.to_vec();
        bound.push(b'/');
        let start = e.partition_point(|x| *x.path < *bound);
        *bound.last_mut().expect("pushed") = b'0';
        let len = e[start..].partition_point(|x| *x.path < *bound);
        &e[start..start + len]
    }

    fn files<'s>(
        &'s self,
        _s: &rayon::Scope<'s>,
        dir: &OwnedFd,
        rel: &[u8],
        batch: Vec<(CString, Box<[u8]>)>,
    ) {
        if self.cancel.load(Relaxed) {
            return;
        }
        let cached = self.cached_below(rel);
        let mut done = Vec::with_capacity(batch.len());
        let mut tally = Tally::default();
        for (name, path) in batch {
            done.push(self.file(dir.as_raw_fd(), &name, path, cached, &mut tally));
        }
        self.trusted.fetch_add(tally.trusted, Relaxed);
        self.bytes.fetch_add(tally.bytes, Relaxed);
        self.push(&mut done);
    }

    /// `cached` is [`Self::cached_below`] the file's directory.
    fn file(
        &self,
        dir: RawFd,
        name: &CStr,
        path: Box<[u8]>,
        cached: &[Entry],
        tally: &mut Tally,
    ) -> Entry {
        let skip = path.len() - name.to_bytes().len();
        if !cached.is_empty()
            && let Ok(st) = fstatat(dir, name)
            && let Ok(i) = cached.binary_search_by(|e| e.path[skip..].cmp(name.to_bytes()))
            && same_content_key(&st, &cached[i])
        {
            let old = &cached[i];
            let mut e = Entry::new(path, Kind::File);
            e.set_stat(&st);
            e.digest = old.digest;
            e.xattrs = old.xattrs.clone();
            tally.trusted += 1;
            tally.bytes += e.size;
            return e;
        }
        if let Some(h) = &self.opts.hook {
            h(HookPoint::BeforeOpen, &path);
        }
        let fd = match openat(dir, name, libc::O_RDONLY | libc::O_NONBLOCK) {
            Ok(fd) => fd,
            Err(libc::ELOOP) => return self.other(dir, name, path),
            Err(errno) => return self.failed(dir, name, path, Kind::File, errno),
        };
        let mut e = Entry::new(path, Kind::File);
        let st1 = match fstat(fd.as_raw_fd()) {
            Ok(st) => st,
            Err(errno) => {
                e.state = State::Unreadable(errno);
                return e;
            }
        };
        e.set_stat(&st1);
        if e.kind != Kind::File {
            // Replaced by something else between listing and opening.
            drop(fd);
            return self.other(dir, name, e.path);
        }
        self.rehashed.fetch_add(1, Relaxed);
        let size = st1.st_size as u64;
        if let Some(pair) = self.follow
            && size >= PAIR_MIN
        {
            // Its digest is settled after the walk ([`Self::settle_waiting`]).
            self.fd_xattrs(fd.as_raw_fd(), &mut e);
            pair.wait(&e.path, st1);
            return e;
        }
        if let Some(pair) = self.lead
            && size >= PAIR_MIN
            && let Some((fb, stb)) = pair.open_b(&e.path, size)
        {
            let (a, b) = self.hash_pair(fd.as_raw_fd(), fb.as_raw_fd(), size, &e.path, pair);
            if let Some(digest) = b
                && let Ok(after) = fstat(fb.as_raw_fd())
                && StatKey::of(&after) == StatKey::of(&stb)
            {
                pair.handed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(e.path.clone(), (StatKey::of(&stb), digest));
            }
            self.finish_read(fd.as_raw_fd(), &st1, a, &mut e);
        } else {
            self.settle(fd.as_raw_fd(), &st1, &mut e);
        }
        self.fd_xattrs(fd.as_raw_fd(), &mut e);
        e
    }

    /// Reads and hashes an opened file whose stat before was `st1`, setting `e`'s digest, or
    /// its state when it could not be read or changed meanwhile.
    fn settle(&self, fd: RawFd, st1: &libc::stat, e: &mut Entry) {
        let r = self.hash(fd, st1.st_size as u64, &e.path);
        self.finish_read(fd, st1, r, e);
    }

    /// The digest of a read, if the file's stat after it is its stat before and the read
    /// yielded exactly its size.
    fn finish_read(&self, fd: RawFd, st1: &libc::stat, read: Read, e: &mut Entry) {
        match read {
            Err(errno) => e.state = State::Unreadable(errno),
            Ok((digest, n)) => match fstat(fd) {
                Err(errno) => e.state = State::Unreadable(errno),
                Ok(st2) => {
                    let moved = st2.st_size != st1.st_size
                        || st2.st_mtime != st1.st_mtime
                        || st2.st_mtime_nsec != st1.st_mtime_nsec
                        || st2.st_ctime != st1.st_ctime
                        || st2.st_ctime_nsec != st1.st_ctime_nsec;
                    if moved || n != st1.st_size as u64 {
                        e.state = State::Unstable;
                    } else {
                        e.digest = Some(digest);
                    }
                }
            },
        }
    }

    /// BLAKE3 of the content; returns the digest and the bytes read.
    fn hash(&self, fd: RawFd, size: u64, path: &[u8]) -> Read {
        let mut hasher = blake3::Hasher::new();
        let big = size >= BIG_FILE;
        let in_flight = InFlight::enter();
        if big {
            // SAFETY: advisory only.
            unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
        }
        let want = if big { BIG_BUF } else { SMALL_BUF };
        let mut total = 0u64;
        let mut first = true;
        // Take the buffer out of the thread-local rather than borrowing it: while
        // `update_rayon` waits for its halves, rayon may run another file's hash on this thread
        // (regression: "RefCell already borrowed" with many large files), which then simply
        // allocates a buffer of its own.
        let mut owned = match BUF.take() {
            Some(b) if b.len() >= want => b,
            _ => AlignedBuf::new(want),
        };
        let result = (|| {
            let buf = &mut owned[..want];
            // Issue 27: a read into a buffer off a page boundary costs the kernel 5x here.
            assert_eq!(buf.as_ptr() as usize % crate::aligned::PAGE, 0);
            loop {
                // Fill the buffer fully so multithreaded hashing gets big chunks.
                let (filled, eof) = fill(fd, buf, total, size)?;
                if filled > 0 {
                    // Both halves of a piece on other cores only while there are idle cores:
                    // with as many files in flight as cores, `update_rayon` nested in the
                    // pool's file tasks only made the idle workers spin (11,236 `sched_yield`
                    // calls for 100 x 16 MiB per side against 1,014; CPU time the same).
                    update(&mut hasher, &buf[..filled], big, &in_flight);
                    total += filled as u64;
                    self.bytes.fetch_add(filled as u64, Relaxed);
                }
                self.after_read(&mut first, path)?;
                if eof {
                    return Ok((*hasher.finalize().as_bytes(), total));
                }
            }
        })();
        BUF.set(Some(owned));
        result
    }

    /// After each piece of a read: the test hook after the first, and whether to go on
    /// (`ECANCELED` once the walk is cancelled).
    fn after_read(&self, first: &mut bool, path: &[u8]) -> Result<(), i32> {
        if std::mem::take(first)
            && let Some(h) = &self.opts.hook
        {
            h(HookPoint::AfterFirstRead, path);
        }
        if self.cancel.load(Relaxed) {
            return Err(libc::ECANCELED);
        }
        Ok(())
    }

    /// Symlinks, fifos, sockets, devices: never opened (opening a device can have effects).
    fn other(&self, dir: RawFd, name: &CStr, path: Box<[u8]>) -> Entry {
        let mut e = Entry::new(path, Kind::File);
        let st = match fstatat(dir, name) {
            Ok(st) => st,
            Err(errno) => return self.failed(dir, name, e.path, Kind::File, errno),
        };
        e.set_stat(&st);
        if e.kind == Kind::Symlink {
            let mut buf = vec![0u8; (st.st_size as usize).max(255) + 1];
            // SAFETY: buf valid for buf.len() bytes.
            let n =
                unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                e.state = State::Unreadable(errno());
            } else if n as usize == buf.len() {
                e.state = State::Unstable;
            } else {
                buf.truncate(n as usize);
                e.target = Some(buf.into());
            }
        }
        if self.opts.xattrs {
            let p = format!("/proc/self/fd/{dir}/");
            let mut full = p.into_bytes();
            full.extend_from_slice(name.to_bytes());
            let full = CString::new(full).expect("no NUL in a file name");
            match read_xattrs(XattrSrc::Path(&full)) {
                Ok(x) => e.xattrs = x,
                Err(errno) if e.state == State::Ok => e.state = State::Unreadable(errno),
                Err(_) => {}
            }
        }
        e
    }

    fn fd_xattrs(&self, fd: RawFd, e: &mut Entry) {
        if !self.opts.xattrs {
            return;
        }
        match read_xattrs(XattrSrc::Fd(fd)) {
            Ok(x) => e.xattrs = x,
            Err(errno) if e.state == State::Ok => e.state = State::Unreadable(errno),
            Err(_) => {}
        }
    }
}

/// Adds a piece to a hash: both halves of a big file's piece on other cores while fewer files
/// than cores are in flight.
fn update(hasher: &mut blake3::Hasher, piece: &[u8], big: bool, in_flight: &InFlight) {
    if big && in_flight.count() < cores() {
        hasher.update_rayon(piece);
    } else {
        hasher.update(piece);
    }
}

/// Reads the next piece of a file of `size` bytes (by its stat), `total` bytes of which were
/// read before, until `buf` is full or the file ends: returns the bytes read and whether the
/// file ended. Never reads far past `size`: a file that yields more than its size (pagemap-like
/// files in /proc report 0 and read for gigabytes) is unstable, and one more byte proves it.
/// Reads ask for at least 4 KiB, as some of those files refuse a read of one byte (pagemap:
/// 8-byte units).
fn fill(fd: RawFd, buf: &mut [u8], total: u64, size: u64) -> Result<(usize, bool), i32> {
    let mut filled = 0;
    while filled < buf.len() {
        let read_so_far = total + filled as u64;
        if read_so_far > size {
            return Ok((filled, true));
        }
        let left = (size + 1 - read_so_far).max(4096);
        let req = (buf.len() - filled).min(usize::try_from(left).unwrap_or(usize::MAX));
        // SAFETY: buf is valid for writes of `req` bytes at `filled`.
        let n = unsafe { libc::read(fd, buf[filled..].as_mut_ptr().cast(), req) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok((filled, true));
        }
        filled += n as usize;
        // A short read ending exactly at the stat size is EOF without another call; growth
        // after the stat is caught by the second fstat.
        if (n as usize) < req && total + filled as u64 == size {
            return Ok((filled, true));
        }
    }
    Ok((filled, false))
}

fn read_dir(fd: RawFd) -> Result<Vec<(CString, u8)>, i32> {
    // fdopendir takes ownership of its fd; give it a duplicate.
    // SAFETY: fd is valid.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(errno());
    }
    // SAFETY: dup is a fresh fd that fdopendir now owns.
    let dirp = unsafe { libc::fdopendir(dup) };
    if dirp.is_null() {
        let e = errno();
        // SAFETY: fdopendir failed, so dup is still ours.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    // SAFETY: the directory stream starts at offset 0 for a fresh open; rewind in case.
    unsafe { libc::rewinddir(dirp) };
    let mut out = Vec::new();
    let result = loop {
        // SAFETY: errno reset so end of stream is told apart from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: dirp is a valid stream used by this thread only.
        let d = unsafe { libc::readdir64(dirp) };
        if d.is_null() {
            let e = errno();
            break if e == 0 { Ok(()) } else { Err(e) };
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let (name, dtype) = unsafe { (CStr::from_ptr((*d).d_name.as_ptr()), (*d).d_type) };
        let b = name.to_bytes();
        if b == b"." || b == b".." {
            continue;
        }
        out.push((name.to_owned(), dtype));
    };
    // SAFETY: closes dup too.
    unsafe { libc::closedir(dirp) };
    result.map(|()| out)
}

enum XattrSrc<'a> {
    Fd(RawFd),
    Path(&'a CStr),
}

/// All extended attributes, sorted by name; `None` when there are none or the file system has
/// none.
fn read_xattrs(src: XattrSrc) -> Result<Option<Box<[Xattr]>>, i32> {
    let list = |buf: &mut [u8]| -> isize {
        // SAFETY: buf valid for its length (or null with 0).
        unsafe {
            let p = if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            };
            match src {
                XattrSrc::Fd(fd) => libc::flistxattr(fd, p, buf.len()),
                XattrSrc::Path(path) => libc::llistxattr(path.as_ptr(), p, buf.len()),
            }
        }
    };
    let get = |name: &CStr, buf: &mut [u8]| -> isize {
        // SAFETY: as above.
        unsafe {
            let p = if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            };
            match src {
                XattrSrc::Fd(fd) => libc::fgetxattr(fd, name.as_ptr(), p, buf.len()),
                XattrSrc::Path(path) => libc::lgetxattr(path.as_ptr(), name.as_ptr(), p, buf.len()),
            }
        }
    };
    // Most files have no xattrs: ask with a stack buffer first, no allocation, no zeroing of
    // a heap buffer per file.
    let mut stack = [0u8; 512];
    for _attempt in 0..5 {
        let mut names: Vec<u8> = Vec::new();
        let mut n = list(&mut stack);
        if n >= 0 {
            names.extend_from_slice(&stack[..n as usize]);
        } else if errno() == libc::ERANGE {
            let need = list(&mut []);
            if need < 0 {
                return Err(errno());
            }
            names = vec![0u8; need as usize + 64];
            n = list(&mut names);
        }
        if n < 0 {
            return match errno() {
                libc::ENOTSUP => Ok(None),
                libc::ERANGE => continue,
                e => Err(e),
            };
        }
        if n == 0 {
            return Ok(None);
        }
        let mut out: Vec<Xattr> = Vec::new();
        let mut raced = false;
        for name in names[..n as usize]
            .split(|&c| c == 0)
            .filter(|s| !s.is_empty())
        {
            let cname = CString::new(name).expect("split on NUL");
            let mut val = vec![0u8; 256];
            let mut m = get(&cname, &mut val);
            if m < 0 && errno() == libc::ERANGE {
                let need = get(&cname, &mut []);
                if need >= 0 {
                    val = vec![0u8; need as usize + 64];
                    m = get(&cname, &mut val);
                }
            }
            if m < 0 {
                match errno() {
                    libc::ENODATA | libc::ERANGE => {
                        raced = true;
                        break;
                    }
                    e => return Err(e),
                }
            }
            val.truncate(m as usize);
            out.push((name.into(), val.into()));
        }
        if raced {
            continue;
        }
        out.sort();
        return Ok(Some(out.into()));
    }
    Err(libc::EAGAIN)
}
