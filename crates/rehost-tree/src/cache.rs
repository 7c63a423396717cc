//! The binary format of the incremental cache (`a.rmc`, `b.rmc`; not evidence — the evidence
//! is the text manifest of [`crate::manifest()`]).
//!
//! Made to be written and read fast: one big read or a few big writes, fixed little-endian
//! fields, length-prefixed records (so the records can be found with a cheap hop from length to
//! length and then decoded in parallel), and BLAKE3 over the whole file checked on load.
//!
//! ```text
//! header   "RHSTCACH" u32 version (1) u32 0
//!          i64 sec, u32 nsec: wall-clock time the walk that made it started
//!          u64 entries, u32 len + root bytes, u32 excludes, each u32 len + bytes (UTF-8)
//! record   u32 len (bytes of the record after this field), then
//!          u8 kind (0 f, 1 d, 2 l, 3 p, 4 s, 5 b, 6 c), u8 state (0 ok, 1 unstable, 2 vanished,
//!          3 unreadable), u8 flags (1 digest, 2 target, 4 xattrs), u8 0, i32 errno,
//!          u32 mode, uid, gid, link, u64 size, i64 mtime sec, u32 nsec, i64 ctime sec,
//!          u32 nsec, u64 dev, ino, rdev,
//!          [32] digest (flag 1), u32 len + path, u32 len + target (flag 2),
//!          u32 count, then count × (u32 len + name, u32 len + value) (flag 4)
//! trailer  32 bytes: BLAKE3 of every byte before it
//! ```
//!
//! A file that is cut short, has trailing bytes, fails its digest, or whose entries are not
//! strictly sorted by path is refused; the caller then reads every file (and warns).

use crate::manifest::{Entry, Kind, LINK_NONE, Manifest, State, Time};
use rayon::prelude::*;
use std::io;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RHSTCACH";
const VERSION: u32 = 1;
const FIXED: usize = 80;
/// Entries serialised per parallel task.
const CHUNK: usize = 8192;

const F_DIGEST: u8 = 1;
const F_TARGET: u8 = 2;
const F_XATTRS: u8 = 4;

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::File => 0,
        Kind::Dir => 1,
        Kind::Symlink => 2,
        Kind::Fifo => 3,
        Kind::Socket => 4,
        Kind::Block => 5,
        Kind::Char => 6,
    }
}

fn code_kind(c: u8) -> Option<Kind> {
    Some(match c {
        0 => Kind::File,
        1 => Kind::Dir,
        2 => Kind::Symlink,
        3 => Kind::Fifo,
        4 => Kind::Socket,
        5 => Kind::Block,
        6 => Kind::Char,
        _ => return None,
    })
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_entry(out: &mut Vec<u8>, e: &Entry) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let (state, errno) = match e.state {
        State::Ok => (0u8, 0i32),
        State::Unstable => (1, 0),
        State::Vanished => (2, 0),
        State::Unreadable(n) => (3, n),
    };
    let flags = if e.digest.is_some() { F_DIGEST } else { 0 }
        | if e.target.is_some() { F_TARGET } else { 0 }
        | if e.xattrs.is_some() { F_XATTRS } else { 0 };
    out.extend_from_slice(&[kind_code(e.kind), state, flags, 0]);
    out.extend_from_slice(&errno.to_le_bytes());
    for v in [e.mode, e.uid, e.gid, e.link] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&e.size.to_le_bytes());
    for t in [e.mtime, e.ctime] {
        out.extend_from_slice(&t.sec.to_le_bytes());
        out.extend_from_slice(&t.nsec.to_le_bytes());
    }
    for v in [e.dev, e.ino, e.rdev] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(d) = &e.digest {
        out.extend_from_slice(d);
    }
    put_bytes(out, &e.path);
    if let Some(t) = &e.target {
        put_bytes(out, t);
    }
    if let Some(xs) = &e.xattrs {
        out.extend_from_slice(&(xs.len() as u32).to_le_bytes());
        for (k, v) in xs.iter() {
            put_bytes(out, k);
            put_bytes(out, v);
        }
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// The file's bytes, in pieces (header, then chunks of records), and the trailer.
fn encode(m: &Manifest, taken: Time) -> Vec<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&taken.sec.to_le_bytes());
    head.extend_from_slice(&taken.nsec.to_le_bytes());
    head.extend_from_slice(&(m.entries.len() as u64).to_le_bytes());
    put_bytes(&mut head, &m.root);
    head.extend_from_slice(&(m.excludes.len() as u32).to_le_bytes());
    for x in &m.excludes {
        put_bytes(&mut head, x.as_bytes());
    }
    let mut parts = vec![head];
    parts.par_extend(m.entries.par_chunks(CHUNK).map(|c| {
        let mut out = Vec::with_capacity(c.len() * (FIXED + 4 + 4 + 32 + 48));
        for e in c {
            put_entry(&mut out, e);
        }
        out
    }));
    let mut h = blake3::Hasher::new();
    for p in &parts {
        h.update(p);
    }
    parts.push(h.finalize().as_bytes().to_vec());
    parts
}

/// Writes the cache file atomically (temporary file and rename), without fsync: a torn file
/// fails its digest on the next load, which then reads everything.
/// The file is 0600 and its temporary name random (`O_EXCL | O_NOFOLLOW`): the cache holds
/// every path and digest of a tree.
pub(crate) fn write_file(m: &Manifest, taken: Time, path: &Path) -> io::Result<()> {
    let parts = encode(m, taken);
    crate::private::write_file_atomic(path, false, &mut |f| {
        for p in &parts {
            f.write_all(p)?;
        }
        Ok(())
    })
    .map_err(io::Error::other)
}

impl Manifest {
    /// The manifest in the cache's binary encoding (every field of every entry, BLAKE3 over
    /// the whole), for the wire between an agent and rehost: made and read in parallel, several
    /// times faster than the text format. Not evidence: the counts and warnings of the walk are
    /// not part of it.
    pub fn to_binary(&self) -> Vec<u8> {
        encode(self, Time::default()).concat()
    }

    /// Reads [`Manifest::to_binary`]'s output; refuses anything cut short, altered or unsorted.
    pub fn from_binary(buf: &[u8]) -> Result<Manifest, BadEncoding> {
        decode(buf).map(|(m, _)| m).map_err(BadEncoding)
    }
}

/// Why a binary manifest (the wire's, a cache's) was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadEncoding(Bad);

/// Why a cache file was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bad {
    Short,
    Magic,
    Digest,
    Record(usize),
    Count,
    Trailing,
    Unsorted,
    /// A path with an empty, `.` or `..` component.
    Outside,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Short => write!(f, "cut short"),
            Bad::Magic => write!(f, "not a rehost cache (version {VERSION})"),
            Bad::Digest => write!(f, "digest mismatch (corrupt or torn)"),
            Bad::Record(i) => write!(f, "bad record {i}"),
            Bad::Count => write!(f, "entry count disagrees with the records"),
            Bad::Trailing => write!(f, "bytes after the last record"),
            Bad::Unsorted => write!(f, "entries are not sorted by path"),
            Bad::Outside => write!(
                f,
                "a path is not inside the tree (`..`, `.` or empty component)"
            ),
        }
    }
}

struct Rd<'a> {
    b: &'a [u8],
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|s| s.try_into().expect("length checked"))
    }
    fn u32(&mut self) -> Option<u32> {
        self.arr().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.arr().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.arr().map(i64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn get_entry(rec: &[u8]) -> Option<Entry> {
    let mut r = Rd { b: rec };
    let [k, st, flags, pad] = r.arr()?;
    if pad != 0 || flags & !(F_DIGEST | F_TARGET | F_XATTRS) != 0 {
        return None;
    }
    let errno = i32::from_le_bytes(r.arr()?);
    let mut e = Entry::new(Box::default(), code_kind(k)?);
    e.state = match st {
        0 => State::Ok,
        1 => State::Unstable,
        2 => State::Vanished,
        3 => State::Unreadable(errno),
        _ => return None,
    };
    e.mode = r.u32()?;
    e.uid = r.u32()?;
    e.gid = r.u32()?;
    e.link = r.u32()?;
    e.nlink = if e.link == LINK_NONE { 1 } else { 2 };
    e.size = r.u64()?;
    e.mtime = Time {
        sec: r.i64()?,
        nsec: r.u32()?,
    };
    e.ctime = Time {
        sec: r.i64()?,
        nsec: r.u32()?,
    };
    e.dev = r.u64()?;
    e.ino = r.u64()?;
    e.rdev = r.u64()?;
    if flags & F_DIGEST != 0 {
        e.digest = Some(r.arr()?);
    }
    e.path = r.bytes()?.into();
    if flags & F_TARGET != 0 {
        e.target = Some(r.bytes()?.into());
    }
    if flags & F_XATTRS != 0 {
        let n = r.u32()? as usize;
        if n > r.b.len() / 8 {
            return None;
        }
        let mut xs = Vec::with_capacity(n);
        for _ in 0..n {
            xs.push((r.bytes()?.into(), r.bytes()?.into()));
        }
        e.xattrs = Some(xs.into());
    }
    r.b.is_empty().then_some(e)
}

/// Decodes and checks a whole cache file: the manifest and when its walk started.
pub(crate) fn decode(buf: &[u8]) -> Result<(Manifest, Time), Bad> {
    let Some(body_len) = buf.len().checked_sub(32) else {
        return Err(Bad::Short);
    };
    let (body, digest) = buf.split_at(body_len);
    let check = || {
        let mut h = blake3::Hasher::new();
        if body.len() >= 1 << 20 {
            h.update_rayon(body);
        } else {
            h.update(body);
        }
        *h.finalize().as_bytes() == digest
    };
    let parse = || -> Result<(Manifest, Time), Bad> {
        let mut r = Rd { b: body };
        if r.take(8) != Some(MAGIC) || r.u32() != Some(VERSION) || r.u32() != Some(0) {
            return Err(if body.len() < 16 {
                Bad::Short
            } else {
                Bad::Magic
            });
        }
        let taken = Time {
            sec: r.i64().ok_or(Bad::Short)?,
            nsec: r.u32().ok_or(Bad::Short)?,
        };
        let count = r.u64().ok_or(Bad::Short)?;
        let mut m = Manifest {
            root: r.bytes().ok_or(Bad::Short)?.into(),
            ..Manifest::default()
        };
        let nx = r.u32().ok_or(Bad::Short)?;
        for _ in 0..nx {
            let x = r.bytes().ok_or(Bad::Short)?;
            m.excludes
                .push(String::from_utf8(x.to_vec()).map_err(|_| Bad::Magic)?);
        }
        if count > (r.b.len() / (FIXED + 8)) as u64 {
            return Err(Bad::Count);
        }
        // Hop from length to length to find the records, then decode them in parallel.
        let mut recs: Vec<&[u8]> = Vec::with_capacity(count as usize);
        while !r.b.is_empty() {
            if recs.len() as u64 == count {
                return Err(Bad::Trailing);
            }
            let rec = r.bytes().ok_or(Bad::Record(recs.len()))?;
            recs.push(rec);
        }
        if recs.len() as u64 != count {
            return Err(Bad::Count);
        }
        m.entries = recs
            .par_iter()
            .enumerate()
            .map(|(i, rec)| get_entry(rec).ok_or(Bad::Record(i)))
            .collect::<Result<Vec<Entry>, Bad>>()?;
        if !m.entries.par_windows(2).all(|w| w[0].path < w[1].path) {
            return Err(Bad::Unsorted);
        }
        if !m
            .entries
            .par_iter()
            .all(|e| crate::manifest::is_tree_path(&e.path))
        {
            return Err(Bad::Outside);
        }
        Ok((m, taken))
    };
    let (ok, m) = rayon::join(check, parse);
    // The digest first: a corrupt file is reported as such, whatever else it broke.
    if !ok {
        return Err(Bad::Digest);
    }
    m
}

/// What [`read_file`] returns: the manifest, or why there is none.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Bad(Bad),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::Bad(b) => b.fmt(f),
        }
    }
}

pub(crate) fn read_file(path: &Path) -> Result<(Manifest, Time), ReadError> {
    // In one read into a page-aligned buffer (issue 27; `fs::read`'s Vec sits off a page).
    let mut f = std::fs::File::open(path).map_err(ReadError::Io)?;
    let size = f.metadata().map_err(ReadError::Io)?.len();
    let mut want = size as usize + 1;
    let mut buf = crate::aligned::AlignedBuf::with_capacity(want);
    // Until the end, even if it grew since the stat.
    while buf.read_from(&mut f, want).map_err(ReadError::Io)? == want {
        want = 1 << 20;
    }
    decode(&buf).map_err(ReadError::Bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_encoding_round_trips_and_refuses_damage() {
        let m = sample();
        let b = m.to_binary();
        assert_eq!(Manifest::from_binary(&b).unwrap(), m);
        for at in [0, 20, b.len() / 2, b.len() - 1] {
            let mut bad = b.clone();
            bad[at] ^= 1;
            assert!(Manifest::from_binary(&bad).is_err(), "bit flipped at {at}");
        }
        assert!(Manifest::from_binary(&b[..b.len() - 1]).is_err());
        assert!(Manifest::from_binary(&[]).is_err());
    }

    /// A manifest from another host whose paths leave the tree is refused whole.
    #[test]
    fn paths_outside_the_tree_are_refused() {
        use crate::manifest::is_tree_path;
        for ok in [&b""[..], b"a", b"a/b", b"a/.b", b"..a", b"a.."] {
            assert!(is_tree_path(ok), "{ok:?}");
        }
        for bad in [
            &b"/a"[..],
            b"a/",
            b"a//b",
            b".",
            b"..",
            b"../a",
            b"a/../b",
            b"a/./b",
        ] {
            assert!(!is_tree_path(bad), "{bad:?}");
        }
        let mut m = sample();
        m.entries
            .insert(1, Entry::new(b"../root/.ssh".to_vec().into(), Kind::File));
        assert!(m.entries.windows(2).all(|w| w[0].path < w[1].path));
        let err = Manifest::from_binary(&m.to_binary()).unwrap_err();
        assert_eq!(err, BadEncoding(Bad::Outside), "{err}");
    }

    fn sample() -> Manifest {
        let mut entries = Vec::new();
        let mut root = Entry::new(Box::default(), Kind::Dir);
        root.xattrs = Some(vec![(b"user.k".to_vec().into(), b"v\0,=".to_vec().into())].into());
        entries.push(root);
        for i in 0..20_000u32 {
            let mut e = Entry::new(format!("d/f{i:06}").into_bytes().into(), Kind::File);
            e.mode = 0o644;
            e.uid = i;
            e.gid = i + 1;
            e.size = u64::from(i) * 1000;
            e.mtime = Time {
                sec: -5 + i64::from(i),
                nsec: 999_999_999,
            };
            e.ctime = Time {
                sec: 1_700_000_000,
                nsec: i,
            };
            e.dev = 0x803;
            e.ino = u64::from(i) + 12;
            e.digest = Some([i as u8; 32]);
            match i % 7 {
                1 => e.state = State::Unreadable(13),
                2 => {
                    e.state = State::Unstable;
                    e.digest = None;
                }
                3 => {
                    e.kind = Kind::Symlink;
                    e.digest = None;
                    e.target = Some(b"../t \n\xff".to_vec().into());
                }
                4 => {
                    e.kind = Kind::Char;
                    e.digest = None;
                    e.rdev = libc::makedev(4, 64);
                }
                5 => {
                    e.xattrs = Some(
                        vec![
                            (
                                b"system.posix_acl_access".to_vec().into(),
                                vec![2; 28].into(),
                            ),
                            (b"user.empty".to_vec().into(), Vec::new().into()),
                        ]
                        .into(),
                    )
                }
                6 => e.state = State::Vanished,
                _ => {}
            }
            entries.push(e);
        }
        // Two hard links.
        entries[3].ino = 5;
        entries[9].ino = 5;
        entries[3].nlink = 3;
        entries[9].nlink = 3;
        let mut m = Manifest {
            root: b"/srv/da\xffta".to_vec().into(),
            excludes: vec!["*.tmp".into(), "a b".into()],
            entries,
            ..Manifest::default()
        };
        m.finish();
        m
    }

    const TAKEN: Time = Time {
        sec: 1_800_000_000,
        nsec: 123,
    };

    fn bytes(m: &Manifest) -> Vec<u8> {
        encode(m, TAKEN).concat()
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(decode(&bytes(&m)).unwrap(), (m.clone(), TAKEN));
        let empty = Manifest::default();
        assert_eq!(decode(&bytes(&empty)).unwrap(), (empty, TAKEN));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.rmc");
        write_file(&m, TAKEN, &p).unwrap();
        assert_eq!(read_file(&p).unwrap(), (m, TAKEN));
        assert!(!p.with_extension("rehost-tmp").exists());
    }

    #[test]
    fn corruption_is_refused() {
        let m = sample();
        let good = bytes(&m);
        // Flipped bits anywhere (header, records, trailer).
        for i in (0..good.len()).step_by(good.len() / 97) {
            let mut b = good.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "flip at {i} accepted");
        }
        // Cut short anywhere, torn writes included.
        for n in [0, 5, 31, 32, 40, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..n]).is_err(), "cut at {n} accepted");
        }
        // Appended bytes.
        let mut b = good.clone();
        b.push(0);
        assert_eq!(decode(&b).unwrap_err(), Bad::Digest);
        // Structural errors are caught even with a valid digest.
        let resign = |mut b: Vec<u8>| {
            let n = b.len() - 32;
            let d = *blake3::hash(&b[..n]).as_bytes();
            b[n..].copy_from_slice(&d);
            b
        };
        let mut unsorted = m.clone();
        unsorted.entries.swap(1, 2);
        assert_eq!(decode(&bytes(&unsorted)).unwrap_err(), Bad::Unsorted);
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(decode(&resign(b)).unwrap_err(), Bad::Magic);
        let mut b = good.clone();
        let count_at = 28;
        b[count_at + 1] ^= 1; // 256 more than there are
        assert_eq!(decode(&resign(b)).unwrap_err(), Bad::Count);
        let mut b = good.clone();
        b[count_at] ^= 1; // one fewer than there are
        assert_eq!(decode(&resign(b)).unwrap_err(), Bad::Trailing);
    }
}
