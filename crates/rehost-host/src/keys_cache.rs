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
//! problem). Files that held only certificates and public keys (all identified, nothing that
//! could not be parsed) are recorded with those keys' public facts (JSON), which a scan of the
//! unchanged file reports without opening it; files that held anything else (a private key, a
//! key file, a configuration, what could not be parsed) are never recorded: they are read
//! every time.
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

const MAGIC: &[u8; 16] = b"rehost-keyscan2\n";
/// The header: magic, the scanner's digest, the number of entries, the number of files whose
/// findings are kept.
const HEADER: usize = 16 + 32 + 8 + 8;
/// The most files whose findings a cache keeps, and the most bytes of one file's findings
/// (a bundle of 150 certificates is about 100 KiB of JSON); past them, files are parsed again.
const MAX_FOUND_FILES: usize = 100_000;
const MAX_FOUND_BYTES: usize = 1 << 20;
/// The largest cache file trusted: the entries' share and the findings' share.
const MAX_FILE: u64 = (HEADER + 16 * MAX_ENTRIES + 32) as u64 + (64 << 20);

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

    /// The cache's entry for this file, the entry `name` of the directory shown as `dir`: the
    /// first 16 bytes of BLAKE3 over the path's length, the path (`dir/name`, the name's raw
    /// bytes) and the identity, hashed as one input (a `Hasher` per file cost more than the
    /// rest of a skipped file's user time, and no path string is built for a skipped file).
    pub(crate) fn entry(&self, dir: &str, name: &[u8]) -> u128 {
        const IDENT: usize = 8 + 8 + 8 + 16 + 16;
        let path = dir.len() + 1 + name.len();
        let len = 8 + path + IDENT;
        let mut stack = [0u8; 512];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        let mut at = 0;
        for part in [
            &(path as u64).to_le_bytes()[..],
            dir.as_bytes(),
            b"/",
            name,
            &self.dev.to_le_bytes(),
            &self.ino.to_le_bytes(),
            &self.size.to_le_bytes(),
            &self.mtime_ns.to_le_bytes(),
            &self.ctime_ns.to_le_bytes(),
        ] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let mut e = [0u8; 16];
        e.copy_from_slice(&blake3::hash(buf).as_bytes()[..16]);
        u128::from_le_bytes(e)
    }
}

/// The digest of the code that decides what a file holds: the sniffing, path rules and parsers
/// of rehost-keys (with the workspace's `Cargo.lock`: the parsing crates' versions) and this
/// crate's `examine`. A cache made by other code is not trusted.
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
    /// The files that held only certificates and public keys, by entry: their keys as JSON.
    found: std::collections::HashMap<u128, Box<[u8]>>,
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
            Ok((known, found, written)) => {
                c.index = index(&known);
                c.known = known;
                c.found = found;
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
        !self.known.is_empty() || !self.found.is_empty()
    }

    /// The findings kept for the file with `entry` (JSON of its keys), if it held only
    /// certificates and public keys when a scan read it and is unchanged since.
    pub(crate) fn findings(&self, entry: u128) -> Option<&[u8]> {
        self.found.get(&entry).map(|b| &b[..])
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

    /// Writes `entries` (the files that held nothing) and `found` (the files whose findings are
    /// kept, with them) of a complete scan as the new cache, unless they are what it held
    /// (`hits`: how many of them the scan took from it).
    pub(crate) fn save(
        &mut self,
        mut entries: Vec<u128>,
        mut found: Vec<(u128, Box<[u8]>)>,
        hits: u64,
    ) {
        let Some(dir) = &self.dir else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let fresh = now - self.written < REFRESH.as_secs() as i64;
        // Every entry one the cache held: nothing new to record, and no sort of 100,000 entries
        // in the scan's serial tail. Entries of files gone since stay until the daily rewrite
        // (harmless: an entry matches only a file with the same path and identity).
        if fresh && hits == (entries.len() + found.len()) as u64 {
            return;
        }
        entries.sort_unstable();
        entries.dedup();
        if entries.len() > MAX_ENTRIES {
            entries.truncate(MAX_ENTRIES);
            self.notes.push(format!(
                "the key scan cache keeps at most {MAX_ENTRIES} files; the others are read every time"
            ));
        }
        found.sort_unstable_by_key(|f| f.0);
        found.dedup_by_key(|f| f.0);
        found.retain(|f| f.1.len() <= MAX_FOUND_BYTES);
        found.truncate(MAX_FOUND_FILES);
        // Unchanged: written again only once a day (so that pruning sees it used); nothing to
        // record and no file: nothing written.
        let same_found = found.len() == self.found.len()
            && found
                .iter()
                .all(|(e, b)| self.found.get(e).is_some_and(|k| k == b));
        if entries == self.known
            && same_found
            && (fresh || (self.written == 0 && entries.is_empty() && found.is_empty()))
        {
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
            put(w, &(found.len() as u64).to_le_bytes())?;
            for e in &entries {
                put(w, &e.to_le_bytes())?;
            }
            for (e, keys) in &found {
                put(w, &e.to_le_bytes())?;
                put(w, &(keys.len() as u32).to_le_bytes())?;
                put(w, keys)?;
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

/// What a cache file holds: the entries of files that held nothing, the findings kept by entry,
/// and when it was written (its mtime).
type Contents = (Vec<u128>, std::collections::HashMap<u128, Box<[u8]>>, i64);

/// The entries and findings of the cache file `name` in `dir` and when it was written, or why
/// it is not trusted. A missing file is an empty cache.
fn read(dir: &PrivateDir, name: &str) -> Result<Contents, String> {
    use rustix::fs::{Mode, OFlags};
    let fd = match rustix::fs::openat(
        dir.fd(),
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok((Vec::new(), Default::default(), 0)),
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
    if len < (HEADER + 32) as u64 || len > MAX_FILE {
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
        return Err(if body.starts_with(&MAGIC[..14]) {
            "made by another version of rehost's scanner".into()
        } else {
            "not a key scan cache (its first bytes)".into()
        });
    }
    if blake3::hash(body).as_bytes() != sum {
        return Err("corrupt (its checksum does not match)".into());
    }
    if body[16..48] != scanner_digest() {
        return Err("made by another version of rehost's scanner".into());
    }
    let count = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap_or_default());
    let (n, m) = (count(48), count(56));
    let corrupt = || "corrupt (its length does not match its counts)".to_owned();
    if n > MAX_ENTRIES as u64 || m > MAX_FOUND_FILES as u64 {
        return Err(corrupt());
    }
    let (n, m) = (n as usize, m as usize);
    let Some(listed) = body.get(HEADER..HEADER + 16 * n) else {
        return Err(corrupt());
    };
    let entries: Vec<u128> = listed
        .chunks_exact(16)
        .map(|e| u128::from_le_bytes(e.try_into().unwrap_or_default()))
        .collect();
    if !entries.is_sorted() {
        return Err("corrupt (not sorted)".into());
    }
    let mut found = std::collections::HashMap::with_capacity(m);
    let mut rest = &body[HEADER + 16 * n..];
    for _ in 0..m {
        let (Some(e), Some(l)) = (rest.get(..16), rest.get(16..20)) else {
            return Err(corrupt());
        };
        let e = u128::from_le_bytes(e.try_into().unwrap_or_default());
        let l = u32::from_le_bytes(l.try_into().unwrap_or_default()) as usize;
        let Some(keys) = rest.get(20..20 + l).filter(|_| l <= MAX_FOUND_BYTES) else {
            return Err(corrupt());
        };
        if found.insert(e, Box::from(keys)).is_some() {
            return Err("corrupt (a file twice)".into());
        }
        rest = &rest[20 + l..];
    }
    if !rest.is_empty() {
        return Err(corrupt());
    }
    Ok((entries, found, meta.mtime()))
}
