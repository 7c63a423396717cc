//! The key scan's cache: which files a scan on this host read and found nothing in, so that
//! the next scan of the same paths skips them while they stay unchanged (issue 20's benchmark:
//! a scan of `/etc /usr /var/lib` opens 120,000 files; a repeated one stats them).
//!
//! An entry is a 128-bit BLAKE3 digest of a file's path as shown, device, inode, size, mtime
//! and ctime (nanoseconds): a file is skipped only when all six are what they were when it was
//! read. The ctime is the guard: every write, chmod, chown, rename or link sets it to the
//! kernel's clock, and no user can set it back (`utimensat` sets mtime, not ctime). Only files
//! whose ctime was at least [`SETTLED`] before the scan began are recorded, so a file written
//! in the same clock tick as it was read is read again next time (git's "racily clean"
//! problem). Files that held anything (keys, a configuration, what could not be parsed) are
//! never recorded: they are read every time.
//!
//! The cache lives in rehost's cache directory of the user running the scan
//! (`$XDG_CACHE_HOME/rehost/keys/`, a [`PrivateDir`]: owned by that user, not writable by
//! others, reached without following a symlink), one file per host identity and set of
//! scanned paths. The file is trusted only if it is a regular file owned by that user, mode
//! 0600 or stricter, the right size for the count it declares (at most [`MAX_ENTRIES`]),
//! made by this scanner (a digest of the code that decides what holds nothing: any change
//! invalidates it), and its checksum matches; otherwise it is ignored, named in the scan's
//! notes, and replaced. `--no-cache` neither reads nor writes it.

use rehost_tree::private::{PrivateDir, euid};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// A file's ctime must be this far before the scan's start to be recorded (clock ticks,
/// coarse timestamps and a scan that starts mid-write are well inside it).
pub(crate) const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);
/// The most entries a cache holds (16 bytes each: 64 MiB); past it, the rest are read again.
pub(crate) const MAX_ENTRIES: usize = 4_000_000;
/// A cache file not written for this long is removed when a scan opens the directory (one per
/// scanned path: a tree scanned once, a test's temporary directory, would stay for ever).
const UNUSED: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// A cache in use is written again at least this often, even unchanged, so that it is not
/// taken for unused.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const MAGIC: &[u8; 16] = b"rehost-keyscan1\n";
/// The header: magic, the scanner's digest, the number of entries.
const HEADER: usize = 16 + 32 + 8;

/// What identifies a file's content for the cache, from a `stat` of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ident {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Ident {
    pub(crate) fn of_stat(st: &rustix::fs::Stat) -> Ident {
        Ident {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
            ctime_ns: i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec),
        }
    }

    pub(crate) fn of_meta(m: &std::fs::Metadata) -> Ident {
        Ident {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    /// The cache's entry for this file at `shown`.
    pub(crate) fn entry(&self, shown: &str) -> u128 {
        let mut h = blake3::Hasher::new();
        h.update(&(shown.len() as u64).to_le_bytes());
        h.update(shown.as_bytes());
        h.update(&self.dev.to_le_bytes());
        h.update(&self.ino.to_le_bytes());
        h.update(&self.size.to_le_bytes());
        h.update(&self.mtime_ns.to_le_bytes());
        h.update(&self.ctime_ns.to_le_bytes());
        let mut e = [0u8; 16];
        e.copy_from_slice(&h.finalize().as_bytes()[..16]);
        u128::from_le_bytes(e)
    }
}

/// The digest of the code that decides that a file holds nothing a scan reads: the sniffing
/// and the path rules of rehost-keys and this crate's `examine`. A cache made by other code is
/// not trusted.
fn scanner_digest() -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&rehost_keys::scanner_digest());
    h.update(include_bytes!("keys.rs"));
    h.update(include_bytes!("keys_cache.rs"));
    *h.finalize().as_bytes()
}

/// One scan's cache: the entries read (sorted), where it is written, what was said of it.
#[derive(Default)]
pub(crate) struct Cache {
    known: Vec<u128>,
    /// When the cache file read was last written (seconds since the epoch).
    written: i64,
    /// Where the entries with each value of their top 16 bits begin in `known` (and, last,
    /// its length): a lookup reads one or two cache lines, not a binary search's seventeen.
    index: Vec<u32>,
    dir: Option<PrivateDir>,
    name: String,
    /// When the scan began, nanoseconds since the epoch; files changed after `start -
    /// SETTLED` are not recorded.
    settled_before_ns: i128,
    /// What the scan's answer says of the cache: ignored and why, not written and why.
    pub notes: Vec<String>,
}

impl Cache {
    /// No cache (`--no-cache`): nothing skipped, nothing recorded.
    pub(crate) fn none() -> Cache {
        Cache::default()
    }

    /// The cache of a scan of `roots` (absolute paths on this host), opened (created if
    /// missing) in `$XDG_CACHE_HOME/rehost/keys`; one that cannot be trusted is ignored and
    /// named in [`Cache::notes`].
    pub(crate) fn open(roots: &[PathBuf]) -> Cache {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut c = Cache {
            settled_before_ns: now.saturating_sub(SETTLED).as_nanos() as i128,
            ..Cache::default()
        };
        let mut h = blake3::Hasher::new();
        h.update(crate::identity::host_identity().as_bytes());
        for r in roots {
            h.update(b"\0");
            h.update(std::os::unix::ffi::OsStrExt::as_bytes(r.as_os_str()));
        }
        c.name = format!("{}.rkc", &h.finalize().to_hex()[..32]);
        let path = rehost_tree::user_cache_dir().join("keys");
        let dir = match PrivateDir::open(&path, true) {
            Ok(Some(d)) => d,
            Ok(None) => return c,
            Err(e) => {
                c.notes.push(format!(
                    "the key scan cache was not used: {e}{}",
                    if e.is_refusal() {
                        " (rehost's cache directory must be owned by the user running it and not writable by others)"
                    } else {
                        ""
                    }
                ));
                return c;
            }
        };
        prune(&dir, &c.name, now);
        match read(&dir, &c.name) {
            Ok((known, written)) => {
                c.index = index(&known);
                c.known = known;
                c.written = written;
            }
            Err(why) => c.notes.push(format!(
                "ignored the key scan cache {}: {why}; every file was read, and the cache is made again",
                dir.path().join(&c.name).display()
            )),
        }
        c.dir = Some(dir);
        c
    }

    /// Whether the cache is used at all (a scan with an empty one reads every file, as
    /// without one, but records what it reads).
    pub(crate) fn active(&self) -> bool {
        self.dir.is_some()
    }

    /// Whether the cache has entries to skip files by (else a scan does not stat files first).
    pub(crate) fn has_entries(&self) -> bool {
        !self.known.is_empty()
    }

    pub(crate) fn contains(&self, entry: u128) -> bool {
        let b = (entry >> 112) as usize;
        match (self.index.get(b), self.index.get(b + 1)) {
            (Some(&lo), Some(&hi)) => self.known[lo as usize..hi as usize].contains(&entry),
            _ => false,
        }
    }

    /// Whether a file with `ident`, read and found to hold nothing, may be recorded: it
    /// settled before the scan began.
    pub(crate) fn settled(&self, ident: &Ident) -> bool {
        self.active()
            && ident.ctime_ns < self.settled_before_ns
            && ident.mtime_ns < self.settled_before_ns
    }

    /// Writes `entries` (the files skipped and the files recorded by a complete scan) as the
    /// new cache, unless they are what it held.
    pub(crate) fn save(&mut self, mut entries: Vec<u128>) {
        let Some(dir) = &self.dir else {
            return;
        };
        entries.sort_unstable();
        entries.dedup();
        if entries.len() > MAX_ENTRIES {
            entries.truncate(MAX_ENTRIES);
            self.notes.push(format!(
                "the key scan cache keeps at most {MAX_ENTRIES} files; the others are read every time"
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        // Unchanged: written again only once a day (so that pruning sees it used); nothing to
        // record and no file: nothing written.
        let fresh = now - self.written < REFRESH.as_secs() as i64;
        if entries == self.known && (fresh || (self.written == 0 && entries.is_empty())) {
            return;
        }
        let digest = scanner_digest();
        let written = dir.write_atomic(&self.name, false, &mut |w| {
            let mut h = blake3::Hasher::new();
            let mut put = |w: &mut dyn std::io::Write, b: &[u8]| {
                h.update(b);
                w.write_all(b)
            };
            put(w, MAGIC)?;
            put(w, &digest)?;
            put(w, &(entries.len() as u64).to_le_bytes())?;
            for e in &entries {
                put(w, &e.to_le_bytes())?;
            }
            w.write_all(h.finalize().as_bytes())
        });
        if let Err(e) = written {
            self.notes
                .push(format!("the key scan cache was not written: {e}"));
        }
    }
}

/// [`Cache::index`] of sorted entries.
fn index(known: &[u128]) -> Vec<u32> {
    let mut index = Vec::with_capacity((1 << 16) + 1);
    let mut at = 0;
    for b in 0..=(1usize << 16) {
        while at < known.len() && ((known[at] >> 112) as usize) < b {
            at += 1;
        }
        index.push(at as u32);
    }
    index
}

/// Removes the cache files in `dir` but `keep` not written for [`UNUSED`] (and temporary files
/// a writer left as long), never following a symlink; what cannot be removed stays.
fn prune(dir: &PrivateDir, keep: &str, now: std::time::Duration) {
    let Ok(list) = rustix::fs::Dir::read_from(dir.fd()) else {
        return;
    };
    let before = now.saturating_sub(UNUSED).as_secs() as i64;
    for e in list.flatten() {
        let name = e.file_name();
        let b = name.to_bytes();
        let ours = b.ends_with(b".rkc")
            || (b.starts_with(b".") && b.windows(12).any(|w| w == b".rehost-tmp-"));
        if !ours || b == keep.as_bytes() {
            continue;
        }
        if let Ok(st) = rustix::fs::statat(dir.fd(), name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            && st.st_mtime < before
        {
            let _ = rustix::fs::unlinkat(dir.fd(), name, rustix::fs::AtFlags::empty());
        }
    }
}

/// The entries of the cache file `name` in `dir` and when it was written (its mtime), or why
/// it is not trusted. A missing file is an empty cache.
fn read(dir: &PrivateDir, name: &str) -> Result<(Vec<u128>, i64), String> {
    use rustix::fs::{Mode, OFlags};
    let fd = match rustix::fs::openat(
        dir.fd(),
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok((Vec::new(), 0)),
        Err(rustix::io::Errno::LOOP) => return Err("it is a symlink".into()),
        Err(e) => return Err(e.to_string()),
    };
    let mut f = std::fs::File::from(fd);
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let me = euid();
    if meta.uid() != me {
        return Err(format!(
            "owned by uid {}, not by uid {me} who runs the scan",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "mode {:04o}: others than its owner may read or write it",
            meta.mode() & 0o7777
        ));
    }
    let len = meta.len();
    let max = (HEADER + 16 * MAX_ENTRIES + 32) as u64;
    if len < (HEADER + 32) as u64 || len > max {
        return Err(format!("{len} bytes: not a key scan cache"));
    }
    let mut b = Vec::with_capacity(len as usize);
    (&mut f)
        .take(len)
        .read_to_end(&mut b)
        .map_err(|e| e.to_string())?;
    if b.len() as u64 != len {
        return Err("changed while it was read".into());
    }
    let (body, sum) = b.split_at(b.len() - 32);
    if !body.starts_with(MAGIC) {
        return Err("not a key scan cache (its first bytes)".into());
    }
    if blake3::hash(body).as_bytes() != sum {
        return Err("corrupt (its checksum does not match)".into());
    }
    if body[16..48] != scanner_digest() {
        return Err("made by another version of rehost's scanner".into());
    }
    let n = u64::from_le_bytes(body[48..56].try_into().unwrap_or_default()) as usize;
    if n > MAX_ENTRIES || body.len() != HEADER + 16 * n {
        return Err("corrupt (its length does not match its count)".into());
    }
    let entries: Vec<u128> = body[HEADER..]
        .chunks_exact(16)
        .map(|e| u128::from_le_bytes(e.try_into().unwrap_or_default()))
        .collect();
    if !entries.is_sorted() {
        return Err("corrupt (not sorted)".into());
    }
    Ok((entries, meta.mtime()))
}
