//! Two trees walked as a pair ([`super::walk_pair`]): A's walk reads B's big files side by side
//! with its own and hands B's digests over; B's walk leaves its big files for it and settles
//! them after both walks. Design: ARCHITECTURE.md, "Pairs".

use super::{
    BIG_BUF, BIG_FILE, BUF, Digest, InFlight, PAIR_MIN, Read, Walker, fill, fstat, fstatat, openat,
    update,
};
use crate::aligned::AlignedBuf;
use crate::manifest::{Entry, Kind, State};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the two walks of [`super::walk_pair`] share.
pub(super) struct Pair {
    /// B's root (owned by B's walker, which outlives the walk).
    root_b: RawFd,
    pub(super) handed: Mutex<Handed>,
    /// B's files its walk left for A's walk: path, and the stat taken when B's walk opened it.
    waiting: Mutex<Vec<(Box<[u8]>, libc::stat)>>,
    /// B's bytes read by A's walk (progress).
    pub(super) bytes_b: AtomicU64,
}

/// B's digests read by A's walk, by path, each with the stat key it holds for.
type Handed = std::collections::HashMap<Box<[u8]>, (StatKey, Digest)>;

/// What must be equal for a digest read at one moment to hold at another: the same file
/// (device, inode) with the same size, mtime and ctime.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct StatKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl StatKey {
    pub(super) fn of(st: &libc::stat) -> StatKey {
        StatKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

impl Pair {
    /// The pair's shared state, with B's root (a descriptor that outlives the walk).
    pub(super) fn new(root_b: RawFd) -> Pair {
        Pair {
            root_b,
            handed: Mutex::default(),
            waiting: Mutex::default(),
            bytes_b: AtomicU64::new(0),
        }
    }

    /// B's file at `rel` if it is a regular file of `size` bytes: every directory on the way
    /// opened from B's root without following a symlink, the file itself opened only after
    /// `fstatat` found a regular file there, and kept only if the opened file is that one.
    pub(super) fn open_b(&self, rel: &[u8], size: u64) -> Option<(OwnedFd, libc::stat)> {
        self.open_beneath(rel)
            .ok()
            .filter(|(_, st)| st.st_size as u64 == size)
    }

    /// B's regular file at `rel`, reached from B's root: every directory on the way opened
    /// without following a symlink, the file opened only after `fstatat` found a regular file
    /// there, and kept only if the opened file is that one. `EINVAL` when something else is
    /// there or took its place.
    fn open_beneath(&self, rel: &[u8]) -> Result<(OwnedFd, libc::stat), i32> {
        let (dirs, name) = crate::beneath::split_parent(rel);
        let mut dir: Option<OwnedFd> = None;
        if !dirs.is_empty() {
            for comp in dirs.split(|&b| b == b'/') {
                let c = CString::new(comp).map_err(|_| libc::EINVAL)?;
                let at = dir.as_ref().map_or(self.root_b, |d| d.as_raw_fd());
                dir = Some(openat(at, &c, libc::O_RDONLY | libc::O_DIRECTORY)?);
            }
        }
        let at = dir.as_ref().map_or(self.root_b, |d| d.as_raw_fd());
        let name = CString::new(name).map_err(|_| libc::EINVAL)?;
        let before = fstatat(at, &name)?;
        if Kind::from_mode(before.st_mode) != Kind::File {
            return Err(libc::EINVAL);
        }
        let fd = openat(at, &name, libc::O_RDONLY | libc::O_NONBLOCK)?;
        let st = fstat(fd.as_raw_fd())?;
        if StatKey::of(&st) != StatKey::of(&before) {
            return Err(libc::EINVAL);
        }
        Ok((fd, st))
    }

    /// Leaves one of B's files (its stat as B's walk took it) for A's walk.
    pub(super) fn wait(&self, path: &[u8], st: libc::stat) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((path.into(), st));
    }
}

impl Walker<'_> {
    /// A's file (`fa`) and B's (`fb`), both `size` bytes by their stat, read piece by piece
    /// side by side: A's pieces are hashed; B's are compared with A's, and hashed (from a copy
    /// of A's hash state before the piece) from the first piece that differs. Returns A's
    /// result as [`Self::hash`] does, and B's digest if B was read to exactly `size` bytes.
    pub(super) fn hash_pair(
        &self,
        fa: RawFd,
        fb: RawFd,
        size: u64,
        path: &[u8],
        pair: &Pair,
    ) -> (Read, Option<Digest>) {
        let mut ha = blake3::Hasher::new();
        // B's hash state once B's bytes differed from A's; until then it is A's.
        let mut hb: Option<blake3::Hasher> = None;
        let big = size >= BIG_FILE;
        let in_flight = InFlight::enter();
        for fd in [fa, fb] {
            // SAFETY: advisory only.
            unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
        }
        let mut owned = match BUF.take() {
            Some(b) if b.len() >= 2 * BIG_BUF => b,
            _ => AlignedBuf::new(2 * BIG_BUF),
        };
        let (mut ta, mut tb) = (0u64, 0u64);
        // B readable so far (an error there leaves B to its own walk).
        let mut b_ok = true;
        let (mut eof_a, mut eof_b) = (false, false);
        let mut first = true;
        let result = (|| {
            let (bufa, rest) = owned.split_at_mut(BIG_BUF);
            let bufb = &mut rest[..BIG_BUF];
            assert_eq!(bufa.as_ptr() as usize % crate::aligned::PAGE, 0);
            assert_eq!(bufb.as_ptr() as usize % crate::aligned::PAGE, 0);
            loop {
                let na = if eof_a {
                    0
                } else {
                    let (n, eof) = fill(fa, bufa, ta, size)?;
                    eof_a = eof;
                    n
                };
                let nb = if eof_b || !b_ok {
                    0
                } else {
                    match fill(fb, bufb, tb, size) {
                        Ok((n, eof)) => {
                            eof_b = eof;
                            n
                        }
                        Err(_) => {
                            b_ok = false;
                            0
                        }
                    }
                };
                if b_ok && hb.is_none() && bufa[..na] != bufb[..nb] {
                    hb = Some(ha.clone());
                }
                if na > 0 {
                    update(&mut ha, &bufa[..na], big, &in_flight);
                    ta += na as u64;
                    self.bytes.fetch_add(na as u64, Relaxed);
                }
                if nb > 0 {
                    if let Some(h) = &mut hb {
                        update(h, &bufb[..nb], big, &in_flight);
                    }
                    tb += nb as u64;
                    pair.bytes_b.fetch_add(nb as u64, Relaxed);
                }
                self.after_read(&mut first, path)?;
                if eof_a && (eof_b || !b_ok) {
                    return Ok((*ha.finalize().as_bytes(), ta));
                }
            }
        })();
        BUF.set(Some(owned));
        let b = match &result {
            Ok((digest_a, _)) if b_ok && eof_b && tb == size => Some(match hb {
                Some(h) => *h.finalize().as_bytes(),
                None => *digest_a,
            }),
            _ => None,
        };
        (result, b)
    }

    /// B's walk of a pair, after both walks: gives each file left waiting the digest A's walk
    /// read for it, if that read held for the stat B's walk saw; reads the others now (in
    /// parallel on the walk's pool), opened again from B's root: one that is no longer there
    /// is vanished, one that is no longer the file B's walk saw (another inode, size, mtime or
    /// ctime, not a regular file, a symlink on the way) unstable. Returns how many digests
    /// were handed over.
    pub(super) fn settle_waiting(&self, pair: &Pair) -> u64 {
        use rayon::prelude::*;
        let waiting = std::mem::take(&mut *pair.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        if waiting.is_empty() {
            return 0;
        }
        let handed = std::mem::take(&mut *pair.handed.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut at: std::collections::HashMap<&[u8], usize> = out
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.kind == Kind::File
                    && e.state == State::Ok
                    && e.digest.is_none()
                    && e.size >= PAIR_MIN
            })
            .map(|(i, e)| (&*e.path, i))
            .collect();
        let mut jobs = Vec::new();
        for (path, st) in waiting {
            if let Some(&i) = at.get(&*path) {
                jobs.push((i, path, st));
            }
        }
        at.clear();
        drop(at);
        let settled: Vec<(usize, Entry, bool)> = jobs
            .into_par_iter()
            .map(|(i, path, st)| {
                let mut e = Entry::new(path, Kind::File);
                if let Some((key, digest)) = handed.get(&e.path)
                    && *key == StatKey::of(&st)
                {
                    e.digest = Some(*digest);
                    return (i, e, true);
                }
                if self.cancel.load(Relaxed) {
                    return (i, e, false);
                }
                match pair.open_beneath(&e.path) {
                    Ok((fd, now)) if StatKey::of(&now) == StatKey::of(&st) => {
                        self.settle(fd.as_raw_fd(), &st, &mut e);
                    }
                    Ok(_) | Err(libc::EINVAL | libc::ELOOP | libc::ENOTDIR) => {
                        e.state = State::Unstable;
                    }
                    Err(libc::ENOENT) => e.state = State::Vanished,
                    Err(errno) => e.state = State::Unreadable(errno),
                }
                (i, e, false)
            })
            .collect();
        let mut compared = 0;
        for (i, e, from_pair) in settled {
            let x = &mut out[i];
            x.digest = e.digest;
            if x.state == State::Ok {
                x.state = e.state;
            }
            compared += u64::from(from_pair);
        }
        compared
    }
}
