//! Kerberos keytabs (MIT's file format, version 0x502, what `ktutil` writes and `klist -k`
//! reads; Heimdal writes the same): each entry's principal, key version number and encryption
//! type, as `klist -kte` shows them. The key itself is kept only as a keyed digest under the
//! comparison's key ([`crate::KeyFile`]'s scheme), so that the same key on the new host
//! matches and nothing of it leaks — a Kerberos key derived from a password would otherwise
//! let anyone holding a plain hash guess the password offline.

use crate::{Encoding, Key, Kind};
use serde::{Deserialize, Serialize};

/// The most entries read of one keytab.
const MAX_ENTRIES: usize = 10_000;

/// One keytab entry: public facts and a keyed digest of its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeytabEntry {
    /// `component/component@REALM`, as `klist -k` prints it.
    pub principal: String,
    /// The key version number.
    pub kvno: u32,
    /// The encryption type's name (`aes256-cts-hmac-sha1-96`), or its number.
    pub enctype: String,
    /// When the entry was written, seconds since the epoch.
    pub timestamp: u32,
    /// `blake3-keyed:` and the keyed hash of the key's bytes under the comparison's key.
    pub digest: String,
}

/// Whether a file's first bytes can be a keytab (version 0x502 and a first entry that fits).
pub fn is_keytab(head: &[u8], size: u64) -> bool {
    head.starts_with(&[5, 2])
        && head.len() >= 6
        && i32::from_be_bytes([head[2], head[3], head[4], head[5]])
            .checked_abs()
            .is_some_and(|n| n > 0 && (n as u64) + 6 <= size)
}

fn enctype_name(e: u16) -> String {
    match e {
        1 => "des-cbc-crc".into(),
        3 => "des-cbc-md5".into(),
        16 => "des3-cbc-sha1".into(),
        17 => "aes128-cts-hmac-sha1-96".into(),
        18 => "aes256-cts-hmac-sha1-96".into(),
        19 => "aes128-cts-hmac-sha256-128".into(),
        20 => "aes256-cts-hmac-sha384-192".into(),
        23 => "arcfour-hmac".into(),
        24 => "arcfour-hmac-exp".into(),
        25 => "camellia128-cts-cmac".into(),
        26 => "camellia256-cts-cmac".into(),
        n => format!("enctype-{n}"),
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(v)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn counted(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

/// A name from the keytab, as written (lossy UTF-8; escaped where it is shown).
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One entry's bytes → the entry.
fn entry(b: &[u8], digest_key: &[u8; 32]) -> Option<KeytabEntry> {
    let mut c = Cursor { b, at: 0 };
    let n = c.u16()? as usize;
    if n == 0 || n > 64 {
        return None;
    }
    let realm = text(c.counted()?);
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        parts.push(text(c.counted()?));
    }
    let _name_type = c.u32()?;
    let timestamp = c.u32()?;
    let vno8 = c.u8()?;
    let enctype = c.u16()?;
    let key = c.counted()?;
    // A 32-bit key version number after the key, when there is room for one (and it is set).
    let kvno = match c.u32() {
        Some(v) if v != 0 => v,
        _ => u32::from(vno8),
    };
    Some(KeytabEntry {
        principal: format!("{}@{realm}", parts.join("/")),
        kvno,
        enctype: enctype_name(enctype),
        timestamp,
        digest: crate::KeyFile::of(key, digest_key).digest,
    })
}

/// The entries of a keytab, each a [`Kind::KerberosKey`]; what could not be read, by entry
/// number (never content). A file whose first entry does not read is not a keytab: nothing.
pub fn parse_keytab(b: &[u8], digest_key: &[u8; 32]) -> (Vec<Key>, Vec<String>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    if !b.starts_with(&[5, 2]) {
        return (keys, errors);
    }
    let mut at = 2usize;
    let mut n = 0usize;
    while at + 4 <= b.len() {
        let size = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        at += 4;
        if size == 0 {
            break;
        }
        let len = size.unsigned_abs() as usize;
        let Some(body) = b.get(at..at.saturating_add(len)) else {
            if n > 0 {
                errors.push(format!("keytab entry {}: cut short", n + 1));
            }
            break;
        };
        at += len;
        // A negative size is a hole left by a deleted entry.
        if size < 0 {
            continue;
        }
        n += 1;
        if n > MAX_ENTRIES {
            errors.push(format!(
                "keytab: more than {MAX_ENTRIES} entries, the rest not read"
            ));
            break;
        }
        match entry(body, digest_key) {
            Some(e) => keys.push(Key {
                encoding: Encoding::Raw,
                algorithm: e.enctype.clone(),
                keytab: Some(e),
                ..Key::blank(Kind::KerberosKey)
            }),
            None if keys.is_empty() => return (Vec::new(), Vec::new()),
            None => errors.push(format!("keytab entry {n} does not read")),
        }
    }
    (keys, errors)
}
