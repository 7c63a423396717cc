//! The `scan_refs` capability: the lines of files under paths of a host that mention an address
//! or a name (`rehost_refs`), found where the files are (in-process for a local host, by the
//! agent on an ssh host) so that only the lines found cross the network.
//!
//! The walk is made for large trees: directories are read by descriptor (`getdents` through
//! rustix) and every entry opened relative to its directory without following a symlink
//! (`O_NOFOLLOW`, directories `O_DIRECTORY`), by [`THREADS`] threads sharing a queue of
//! directories; files are read in page-aligned pieces (256 KiB) into a buffer per thread.
//! Symlinks are neither followed nor searched (counted), devices, FIFOs and sockets are never
//! opened, and a file with a NUL byte is binary and left out (counted, as `grep -I`). What
//! cannot be read is named, never counted as searched.

use crate::agent::{Request, Response};
use crate::{Bytes, Host, HostError, LocalHost};
use rehost_refs::{Matcher, Needle};
use rehost_tree::aligned::AlignedBuf;
use rustix::fs::{FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, mpsc};

/// Reader threads: enough reads in flight for a cold disk, few enough for two cores.
pub const THREADS: usize = 4;
/// One read: 256 KiB, page-aligned (the kernel copies to an unaligned buffer several times
/// slower on these machines: docs/benchmarks.md).
const PIECE: usize = 256 << 10;
/// Lines per `RefsFound` response.
const PER_BATCH: usize = 256;
/// The most lines one scan returns; past this the scan stops and says so.
pub const MAX_FOUND: usize = 100_000;
/// Errors reported by path; past this, only their number.
const MAX_ERRORS: usize = 1000;
/// The most needles one scan takes.
pub const MAX_NEEDLES: usize = 1000;

/// One line found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefFound {
    /// The file, as the host names it (the scanned path joined with the path below it).
    pub path: String,
    /// 1-based.
    pub line: u64,
    /// Indexes into the needles asked for.
    pub needles: Vec<u32>,
    /// At most `rehost_refs::SHOWN` bytes of the line; not escaped.
    pub text: String,
}

/// The kernel's pseudo file systems (`statfs`'s `f_type`): their files are not data a client
/// keeps (and some block when read: `/proc/kmsg`), so a directory on one is not entered.
const PSEUDO: &[(i64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0x1cd1, "devpts"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x1980_0202, "mqueue"),
    (0x6573_5543, "fusectl"),
    (0x4249_4e4d, "binfmt_misc"),
    (0xf97c_ff8c, "selinuxfs"),
];

/// The pseudo file system `dir` is on, if it is on one.
fn pseudo(dir: &OwnedFd) -> Option<&'static str> {
    let st = rustix::fs::fstatfs(dir).ok()?;
    let t = st.f_type as i64;
    PSEUDO.iter().find(|(m, _)| *m == t).map(|(_, n)| *n)
}

/// What a scan found and what it did not search.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefsScan {
    /// Sorted by path, then line.
    pub found: Vec<RefFound>,
    /// Regular files searched to their end.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Files with a NUL byte: not searched past it.
    pub binary: u64,
    /// Symlinks met below a scanned directory: not followed.
    pub symlinks: u64,
    /// Directories on the kernel's pseudo file systems (`/proc`, `/sys`, ...): not entered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pseudo: Vec<String>,
    /// Paths that could not be read, and why.
    pub errors: Vec<String>,
    /// More than [`MAX_FOUND`] lines: the scan stopped there.
    pub truncated: bool,
}

/// Scans `paths` on `host` for lines mentioning `needles`.
pub fn scan_refs<H: Host + ?Sized>(
    host: &H,
    paths: &[&str],
    needles: &[Needle],
    cancel: &AtomicBool,
) -> Result<RefsScan, HostError> {
    let req = Request::ScanRefs {
        paths: paths.iter().map(|p| Bytes::from(*p)).collect(),
        needles: needles.to_vec(),
    };
    let mut scan = RefsScan::default();
    let mut ended = false;
    let n = needles.len() as u32;
    crate::request_bounded(host, &req, cancel, &mut |r| match r {
        Response::RefsFound { found } if !ended => {
            if scan.found.len() + found.len() > MAX_FOUND {
                return Err(format!("refused: more than {MAX_FOUND} lines found"));
            }
            if let Some(f) = found.iter().find(|f| {
                f.needles.is_empty()
                    || f.needles.iter().any(|&i| i >= n)
                    || f.text.len() > 4 * rehost_refs::SHOWN
                    || f.path.len() > 4096
            }) {
                return Err(format!(
                    "refused: a line of {} that names no needle asked for, or is too long",
                    rehost_tree::escape::text(&f.path)
                ));
            }
            scan.found.extend(found);
            Ok(())
        }
        Response::RefsScanned { summary } if !ended => {
            ended = true;
            let found = std::mem::take(&mut scan.found);
            scan = summary;
            scan.found = found;
            scan.errors.truncate(MAX_ERRORS + 1);
            Ok(())
        }
        other => Err(format!(
            "refused: an answer `{}` to a reference scan",
            crate::agent::kind_name(&other)
        )),
    })?;
    if !ended {
        return Err(HostError::Protocol {
            host: host.name().to_owned(),
            message: "the reference scan ended without its summary".into(),
        });
    }
    scan.found
        .sort_by(|a, b| (a.path.as_bytes(), a.line).cmp(&(b.path.as_bytes(), b.line)));
    Ok(scan)
}

/// A directory to read: its descriptor and how its files are shown.
pub(crate) struct Job {
    pub(crate) dir: OwnedFd,
    pub(crate) shown: String,
}

impl Job {
    /// The path shown for the entry `name` of this directory (lossy UTF-8), built only where
    /// a file is opened or named: a scan that skips a file by its `stat` builds none.
    pub(crate) fn path_of(&self, name: &std::ffi::CStr) -> String {
        format!(
            "{}/{}",
            self.shown,
            String::from_utf8_lossy(name.to_bytes())
        )
    }
}

/// The queue the threads share: directories to read, and how many threads are reading one
/// (the key scan's walk shares it).
pub(crate) struct Queue {
    jobs: Mutex<Jobs>,
    more: Condvar,
}

/// The queue's state: directories to read, threads reading one, threads waiting for one.
struct Jobs {
    queued: Vec<Job>,
    busy: usize,
    waiting: usize,
}

impl Queue {
    pub(crate) fn new() -> Queue {
        Queue {
            jobs: Mutex::new(Jobs {
                queued: Vec::new(),
                busy: 0,
                waiting: 0,
            }),
            more: Condvar::new(),
        }
    }

    /// The next directory, or `None` once every thread waits and nothing is queued.
    pub(crate) fn next(&self) -> Option<Job> {
        let mut g = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(j) = g.queued.pop() {
                g.busy += 1;
                return Some(j);
            }
            if g.busy == 0 {
                if g.waiting > 0 {
                    self.more.notify_all();
                }
                return None;
            }
            g.waiting += 1;
            g = self.more.wait(g).unwrap_or_else(|e| e.into_inner());
            g.waiting -= 1;
        }
    }

    pub(crate) fn push(&self, j: Job) {
        self.push_all(&mut vec![j]);
    }

    /// Queues every directory of `jobs` (left empty) under one lock, waking only threads that
    /// wait: a wake-up is a system call even when no one sleeps (a futex per directory
    /// otherwise).
    pub(crate) fn push_all(&self, jobs: &mut Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let n = jobs.len();
        let mut g = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        g.queued.append(jobs);
        for _ in 0..g.waiting.min(n) {
            self.more.notify_one();
        }
    }

    pub(crate) fn done(&self) {
        let mut g = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        g.busy -= 1;
        if g.busy == 0 && g.queued.is_empty() && g.waiting > 0 {
            self.more.notify_all();
        }
    }
}

/// What a thread tells the emitting one.
enum Event {
    Found(RefFound),
    File { bytes: u64 },
    Binary,
    Symlink,
    Pseudo(String),
    Error(String),
}

/// Scans `paths` (plan paths, resolved on `host`), streaming lines found.
pub(crate) fn execute(
    host: &LocalHost,
    paths: &[Bytes],
    needles: &[Needle],
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(Response),
) -> Result<(), HostError> {
    if needles.len() > MAX_NEEDLES {
        return Err(HostError::Protocol {
            host: host.name().to_owned(),
            message: format!("more than {MAX_NEEDLES} needles"),
        });
    }
    let matcher = Matcher::new(needles.to_vec()).map_err(|message| HostError::Protocol {
        host: host.name().to_owned(),
        message,
    })?;
    let queue = Queue::new();
    let stop = AtomicBool::new(false);
    let mut c = Collector {
        summary: RefsScan::default(),
        batch: Vec::new(),
        emitted: 0,
        more_errors: 0,
        stop: &stop,
    };
    // The paths named: searched here (a file) or queued (a directory), before any thread runs.
    let mut buf = AlignedBuf::with_capacity(PIECE);
    for path in paths {
        let shown = String::from_utf8_lossy(path.as_bytes()).into_owned();
        let abs = host.resolve_bytes(path.as_bytes());
        let mut out = Vec::new();
        match open_top(&abs) {
            Ok(Top::Dir(dir)) => queue.push(Job {
                dir,
                shown: shown.trim_end_matches('/').to_owned(),
            }),
            Ok(Top::File(f)) => search(f, &shown, &matcher, &mut buf, &mut out),
            Err(e) => out.push(Event::Error(format!("{shown}: {e}"))),
        }
        for e in out {
            c.take(e, emit);
        }
    }
    drop(buf);
    let (tx, rx) = mpsc::sync_channel::<Vec<Event>>(64);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (tx, queue, matcher, stop) = (tx.clone(), &queue, &matcher, &stop);
            s.spawn(move || {
                let mut buf = AlignedBuf::with_capacity(PIECE);
                let mut out = Vec::new();
                while let Some(job) = queue.next() {
                    if !stop.load(Relaxed) && !cancel.load(Relaxed) {
                        read_dir(&job, queue, matcher, &mut buf, &mut out, &tx);
                    }
                    queue.done();
                    if !out.is_empty() && tx.send(std::mem::take(&mut out)).is_err() {
                        stop.store(true, Relaxed);
                    }
                }
            });
        }
        drop(tx);
        for events in rx {
            for e in events {
                c.take(e, emit);
            }
        }
    });
    if cancel.load(Relaxed) {
        return Err(HostError::Tree {
            host: host.name().to_owned(),
            path: "/".into(),
            source: rehost_tree::TreeError::Cancelled,
        });
    }
    let Collector {
        mut summary,
        batch,
        more_errors,
        ..
    } = c;
    if !batch.is_empty() {
        emit(Response::RefsFound { found: batch });
    }
    if more_errors > 0 {
        summary.errors.push(format!(
            "and {more_errors} more paths that could not be read"
        ));
    }
    summary.errors.sort();
    summary.pseudo.sort();
    emit(Response::RefsScanned { summary });
    Ok(())
}

/// Takes the threads' events in the emitting thread: lines in batches, counts, errors.
struct Collector<'a> {
    /// Counts and errors; its `found` stays empty (the lines go out in batches).
    summary: RefsScan,
    batch: Vec<RefFound>,
    emitted: usize,
    more_errors: u64,
    stop: &'a AtomicBool,
}

impl Collector<'_> {
    fn take(&mut self, e: Event, emit: &mut dyn FnMut(Response)) {
        match e {
            Event::Found(f) => {
                if self.summary.truncated {
                    return;
                }
                if self.emitted + self.batch.len() >= MAX_FOUND {
                    self.summary.truncated = true;
                    self.stop.store(true, Relaxed);
                    return;
                }
                self.batch.push(f);
                if self.batch.len() >= PER_BATCH {
                    self.emitted += self.batch.len();
                    emit(Response::RefsFound {
                        found: std::mem::take(&mut self.batch),
                    });
                }
            }
            Event::File { bytes } => {
                self.summary.files += 1;
                self.summary.bytes += bytes;
            }
            Event::Binary => self.summary.binary += 1,
            Event::Symlink => self.summary.symlinks += 1,
            Event::Pseudo(p) => {
                if self.summary.pseudo.len() < MAX_ERRORS {
                    self.summary.pseudo.push(p);
                }
            }
            Event::Error(e) => {
                if self.summary.errors.len() < MAX_ERRORS {
                    self.summary.errors.push(e);
                } else {
                    self.more_errors += 1;
                }
            }
        }
    }
}

enum Top {
    Dir(OwnedFd),
    File(std::fs::File),
}

/// A scanned path itself: resolved as the system resolves it (the administrator named it),
/// a directory or a regular file.
fn open_top(abs: &Path) -> std::io::Result<Top> {
    let fd = rustix::fs::open(
        abs,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => match pseudo(&fd) {
            Some(fs) => Err(std::io::Error::other(format!(
                "on the kernel's {fs} file system: not searched"
            ))),
            None => Ok(Top::Dir(fd)),
        },
        FileType::RegularFile => Ok(Top::File(std::fs::File::from(fd))),
        _ => Err(std::io::Error::other(
            "not a directory or a regular file: not searched",
        )),
    }
}

/// Reads one directory: its subdirectories queued, its regular files searched.
fn read_dir(
    job: &Job,
    queue: &Queue,
    matcher: &Matcher,
    buf: &mut AlignedBuf,
    out: &mut Vec<Event>,
    tx: &mpsc::SyncSender<Vec<Event>>,
) {
    entries(job, &mut |entry| {
        let (name, kind) = match entry {
            Ok(e) => e,
            Err(e) => {
                out.push(Event::Error(e));
                return ControlFlow::Continue(());
            }
        };
        let shown = job.path_of(name);
        match kind {
            FileType::Directory => match rustix::fs::openat(
                &job.dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => match pseudo(&dir) {
                    Some(fs) => out.push(Event::Pseudo(format!("{shown} ({fs})"))),
                    None => queue.push(Job { dir, shown }),
                },
                Err(e) => out.push(Event::Error(format!("{shown}: {e}"))),
            },
            FileType::RegularFile => match rustix::fs::openat(
                &job.dir,
                name,
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => {
                    // Replaced by something else since it was listed: only a regular file is read.
                    match rustix::fs::fstat(&fd) {
                        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                            search(std::fs::File::from(fd), &shown, matcher, buf, out)
                        }
                        Ok(_) => out.push(Event::Error(format!(
                            "{shown}: replaced by something other than a file while scanned"
                        ))),
                        Err(e) => out.push(Event::Error(format!("{shown}: {e}"))),
                    }
                }
                Err(e) => out.push(Event::Error(format!("{shown}: {e}"))),
            },
            FileType::Symlink => out.push(Event::Symlink),
            _ => {}
        }
        if out.len() >= PER_BATCH && tx.send(std::mem::take(out)).is_err() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
}

/// An entry of a directory ([`entries`]): its name and its type; or what could not be read.
pub(crate) type Entry<'a> = Result<(&'a std::ffi::CStr, FileType), String>;

/// Each entry of `job`'s directory but `.` and `..`, handed to `each` with its name and its
/// type (asked with `statat`, not following a symlink, where the directory does
/// not say); what cannot be read is handed as an error naming the directory or the entry. The
/// one directory walk of the reference and key scans.
pub(crate) fn entries(job: &Job, each: &mut dyn FnMut(Entry<'_>) -> ControlFlow<()>) {
    // `getdents64` straight into a buffer of this thread's, on the job's own descriptor
    // (opened for this walk, at its start): `Dir::read_from` would reopen the directory
    // (`openat "."`, `fcntl`, `close`) and start from a buffer of 32 entries.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<std::mem::MaybeUninit<u8>>> =
            std::cell::RefCell::new(vec![std::mem::MaybeUninit::uninit(); DIR_BUF]);
    }
    BUF.with_borrow_mut(|buf| {
        let mut dir = rustix::fs::RawDir::new(&job.dir, buf);
        while let Some(entry) = dir.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let _ = each(Err(format!("{}: {e}", job.shown)));
                    break;
                }
            };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                match rustix::fs::statat(
                    &job.dir,
                    entry.file_name(),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) => kind = FileType::from_raw_mode(st.st_mode),
                    Err(e) => {
                        let shown = job.path_of(entry.file_name());
                        if each(Err(format!("{shown}: {e}"))).is_break() {
                            return;
                        }
                        continue;
                    }
                }
            }
            if each(Ok((entry.file_name(), kind))).is_break() {
                return;
            }
        }
    });
}

/// The bytes of directory entries one `getdents64` call may return (about 1,000 names).
const DIR_BUF: usize = 32 << 10;

/// Searches one open regular file to its end (or its first NUL byte).
fn search(
    mut f: std::fs::File,
    shown: &str,
    matcher: &Matcher,
    buf: &mut AlignedBuf,
    out: &mut Vec<Event>,
) {
    let mut scan = matcher.file();
    let mut bytes = 0u64;
    loop {
        buf.truncate(0);
        match buf.read_from(&mut f, PIECE) {
            Ok(0) => break,
            Ok(n) => {
                bytes += n as u64;
                if !scan.feed(&buf[..]) {
                    out.push(Event::Binary);
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.push(Event::Error(format!("{shown}: {e}")));
                return;
            }
        }
    }
    let s = scan.finish();
    out.push(Event::File { bytes });
    for h in s.hits {
        out.push(Event::Found(RefFound {
            path: shown.to_owned(),
            line: h.line,
            needles: h.needles,
            text: h.text,
        }));
    }
}
