//! Encrypted volumes: LUKS headers and `/etc/crypttab`. M 2.319: the keys of an encrypted
//! file system are often stored elsewhere than its data; a volume copied block by block
//! without them is lost. What is kept of a header is its identity and layout — UUID, label,
//! version, cipher, key slots (which are active, their KDF), tokens — never a salt, a digest or
//! key material. A crypttab entry is kept as written (name, device, key file, options); the
//! key file it names is read by the host scan and kept only as a keyed digest ([`KeyFile`]).
//!
//! Headers come from hostile hosts: every length is checked against the bytes read before it
//! is used, a LUKS2 header size outside what LUKS2 allows (16 KiB to 4 MiB) is refused before
//! anything is read for it, and the JSON area is parsed only within those bytes.

use crate::{Encoding, Key, Kind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `LUKS\xba\xbe`: the first bytes of a LUKS1 or LUKS2 header.
pub const LUKS_MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
/// LUKS1's binary header: 208 bytes and eight 48-byte key slots.
const LUKS1_LEN: usize = 592;
/// LUKS2's binary header, before its JSON area.
const LUKS2_BIN: usize = 4096;
/// The largest LUKS2 header (binary header and JSON area) LUKS2 allows.
pub const MAX_LUKS2_HEADER: u64 = 4 << 20;
/// The most key slots, segments or tokens kept of one header (LUKS2 allows 32 key slots).
const MAX_ITEMS: usize = 64;
/// A crypttab line longer than this is not read (real ones are under 200 bytes).
pub const MAX_CRYPTTAB_LINE: usize = 4096;
/// The most entries kept of one crypttab.
const MAX_CRYPTTAB_ENTRIES: usize = 4096;

/// What a LUKS header says of itself: identity and layout, never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Luks {
    /// 1 or 2.
    pub version: u16,
    pub uuid: String,
    /// LUKS2's label, when set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// The data's cipher, e.g. `aes-xts-plain64` (LUKS2: of its first segment).
    pub cipher: String,
    /// LUKS1's hash spec; LUKS2's volume key digest hash.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// The volume key's size in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<u32>,
    /// Every key slot (LUKS1: all eight, active or not; LUKS2: those the JSON area lists).
    pub keyslots: Vec<LuksSlot>,
    /// LUKS2 tokens, as `ID:TYPE` (e.g. `0:systemd-tpm2`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// LUKS2: whether the header's SHA-256 checksum matches what was read (`None`: another
    /// checksum algorithm, not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_ok: Option<bool>,
}

/// One key slot of a LUKS header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LuksSlot {
    pub id: u32,
    pub active: bool,
    /// Its key derivation: `pbkdf2`, `argon2id`, … (LUKS1: always PBKDF2 with the header's hash).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kdf: String,
}

impl Luks {
    /// The layout a header is matched by: its version and its active key slots with their
    /// KDFs (`luks2 0:argon2id 1:pbkdf2`). A slot added or removed is another layout.
    pub fn layout(&self) -> String {
        let mut s = format!("luks{}", self.version);
        for k in self.keyslots.iter().filter(|k| k.active) {
            s.push_str(&format!(" {}:{}", k.id, k.kdf));
        }
        s
    }

    /// `luks2 aes-xts-plain64 512-bit key, key slots 0:pbkdf2`.
    pub fn describe(&self) -> String {
        let slots: Vec<String> = self
            .keyslots
            .iter()
            .filter(|k| k.active)
            .map(|k| format!("{}:{}", k.id, k.kdf))
            .collect();
        format!(
            "luks{} {}{}, key slots {}",
            self.version,
            self.cipher,
            self.key_bits
                .map(|b| format!(" {b}-bit key"))
                .unwrap_or_default(),
            if slots.is_empty() {
                "none active".into()
            } else {
                slots.join(" ")
            }
        )
    }
}

/// One line of `/etc/crypttab`, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crypttab {
    /// Its line number in the file.
    pub line: u32,
    /// The mapped device's name (`/dev/mapper/NAME`).
    pub name: String,
    /// The encrypted device: a path, `UUID=…`, `PARTUUID=…`, `LABEL=…`.
    pub device: String,
    /// The key file it names (`None` for `none`, `-` or no third field: a passphrase asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
    /// Whether the key file exists on the host: `Some(false)` is a problem (the volume does not
    /// unlock at boot). `None`: not looked for (none named, a device, or another device's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file_found: Option<bool>,
    /// Why the key file was not read, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file_note: Option<String>,
    /// For a `UUID=` device: where the LUKS header with that UUID was found on the host (a
    /// scanned file or device, or `/dev/disk/by-uuid/UUID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luks_header: Option<String>,
    /// Whether a LUKS header with the device's UUID is on the host: `Some(false)` is a problem
    /// (the volume does not open at boot). `None`: not looked for (no `UUID=`, or the host
    /// has no `/dev/disk/by-uuid` and the scan found no such header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luks_found: Option<bool>,
}

impl Crypttab {
    /// The UUID of the device it names as `UUID=…` or `/dev/disk/by-uuid/…`, when it does and
    /// the UUID is only hex digits and dashes.
    pub fn uuid(&self) -> Option<&str> {
        let u = self
            .device
            .strip_prefix("UUID=")
            .or_else(|| self.device.strip_prefix("/dev/disk/by-uuid/"))?;
        (!u.is_empty() && u.len() <= 64 && u.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'))
            .then_some(u)
    }

    /// `volume NAME on DEVICE, key file PATH`.
    pub fn describe(&self) -> String {
        format!(
            "volume {} on {}, key file {}",
            self.name,
            self.device,
            self.key_file.as_deref().unwrap_or("none (a passphrase)")
        )
    }

    /// The key file the scan should read: an absolute path that is not a device's and not on
    /// another device (`PATH:DEVICE`).
    pub fn key_file_to_read(&self) -> Option<&str> {
        let k = self.key_file.as_deref()?;
        (k.starts_with('/')
            && !k.contains(':')
            && !["/dev/", "/proc/", "/sys/"]
                .iter()
                .any(|d| k.starts_with(d)))
        .then_some(k)
    }
}

/// A symmetric key file (one a crypttab entry names), identified without leaking it: the
/// BLAKE3 keyed hash of its bytes under a 32-byte key drawn afresh for each scan or comparison
/// (both sides of a comparison use the same one). Without that key, which is never stored,
/// the digest says nothing of the file — not even of a short passphrase, which a plain hash
/// would let anyone holding the digest guess offline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// `blake3-keyed:` and the keyed hash, lowercase hex.
    pub digest: String,
    /// Its size, when at least 32 bytes (a shorter file is likely a passphrase: its length is
    /// not said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl KeyFile {
    /// The key file of `bytes` under the comparison's `key`.
    pub fn of(bytes: &[u8], key: &[u8; 32]) -> KeyFile {
        KeyFile {
            digest: format!(
                "blake3-keyed:{}",
                blake3::keyed_hash(key, bytes).to_hex().as_str()
            ),
            bytes: (bytes.len() >= 32).then_some(bytes.len() as u64),
        }
    }
}

/// How many bytes of a file starting with `head` (at least the LUKS magic) hold its LUKS
/// header: 592 for LUKS1, LUKS2's declared header size when LUKS2 allows it, else what is
/// needed to say why not (the binary header).
pub fn luks_len(head: &[u8]) -> u64 {
    match be16(head, 6) {
        Some(1) => LUKS1_LEN as u64,
        Some(2) => match be64(head, 8) {
            Some(n) if luks2_size_ok(n) => n,
            _ => LUKS2_BIN as u64,
        },
        _ => LUKS2_BIN as u64,
    }
}

fn luks2_size_ok(n: u64) -> bool {
    n.is_power_of_two() && (16 << 10..=MAX_LUKS2_HEADER).contains(&n)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A NUL-terminated string field, lossy, printable characters only (a header's text fields
/// are ASCII; anything else is shown as `?`).
fn cstr(b: &[u8], at: usize, len: usize) -> String {
    let f = b.get(at..at + len).unwrap_or_default();
    let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    f[..end]
        .iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

/// A LUKS header → a [`Key`] of kind [`Kind::LuksHeader`]; an error says which field is
/// wrong, never content.
pub fn parse_luks(b: &[u8]) -> Result<Key, String> {
    if !b.starts_with(LUKS_MAGIC) {
        return Err("no LUKS magic".into());
    }
    let luks = match be16(b, 6) {
        Some(1) => luks1(b)?,
        Some(2) => luks2(b)?,
        Some(v) => return Err(format!("LUKS version {v} is not one rehost reads (1, 2)")),
        None => return Err("LUKS header truncated before its version".into()),
    };
    Ok(Key {
        kind: Kind::LuksHeader,
        encoding: Encoding::Luks,
        algorithm: format!("luks{}", luks.version),
        bits: luks.key_bits,
        encrypted: false,
        spki_sha256: None,
        ssh_sha256: None,
        unknown: None,
        certificate: None,
        luks: Some(luks),
        crypttab: None,
        key_file: None,
        reference: None,
        pkcs12: None,
        wireguard_public: None,
        openpgp: None,
        keytab: None,
    })
}

fn luks1(b: &[u8]) -> Result<Luks, String> {
    if b.len() < LUKS1_LEN {
        return Err(format!(
            "LUKS1 header truncated: {} of {LUKS1_LEN} bytes",
            b.len()
        ));
    }
    let cipher = format!("{}-{}", cstr(b, 8, 32), cstr(b, 40, 32));
    let hash = cstr(b, 72, 32);
    let key_bytes = be32(b, 108).unwrap_or(0);
    let uuid = cstr(b, 168, 40);
    let mut keyslots = Vec::new();
    for i in 0..8u32 {
        let at = 208 + 48 * i as usize;
        let active = match be32(b, at) {
            Some(0x00AC_71F3) => true,
            Some(0x0000_DEAD) => false,
            Some(x) => {
                return Err(format!(
                    "LUKS1 key slot {i} has the unknown state {x:#010x}"
                ));
            }
            None => return Err("LUKS1 header truncated".into()),
        };
        keyslots.push(LuksSlot {
            id: i,
            active,
            kdf: if active {
                format!("pbkdf2-{hash}")
            } else {
                String::new()
            },
        });
    }
    Ok(Luks {
        version: 1,
        uuid,
        label: String::new(),
        cipher,
        hash,
        key_bits: key_bytes.checked_mul(8).filter(|&b| b > 0 && b <= 8192),
        keyslots,
        tokens: Vec::new(),
        checksum_ok: None,
    })
}

fn luks2(b: &[u8]) -> Result<Luks, String> {
    let size = be64(b, 8).ok_or("LUKS2 header truncated before its size")?;
    if !luks2_size_ok(size) {
        return Err(format!(
            "LUKS2 header declares a size of {size} bytes, which LUKS2 does not allow (a power of two from 16 KiB to 4 MiB)"
        ));
    }
    let size = size as usize;
    if b.len() < size {
        return Err(format!(
            "LUKS2 header truncated: {} of the {size} bytes it declares",
            b.len()
        ));
    }
    let label = cstr(b, 24, 48);
    let csum_alg = cstr(b, 72, 32);
    let uuid = cstr(b, 168, 40);
    let checksum_ok = (csum_alg == "sha256").then(|| {
        let mut h = Sha256::new();
        h.update(&b[..448]);
        h.update([0u8; 64]);
        h.update(&b[512..size]);
        h.finalize()[..] == b[448..480]
    });
    let area = &b[LUKS2_BIN..size];
    let end = area.iter().position(|&c| c == 0).unwrap_or(area.len());
    let json: serde_json::Value = serde_json::from_slice(&area[..end])
        .map_err(|e| format!("LUKS2 JSON area does not read: {e}"))?;
    let obj = |k: &str| json.get(k).and_then(|v| v.as_object());
    let short = |v: Option<&serde_json::Value>| -> String {
        v.and_then(|v| v.as_str())
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect()
    };
    let id = |k: &str| k.parse::<u32>().ok();
    let mut keyslots = Vec::new();
    let mut key_bits = None;
    for (k, v) in obj("keyslots")
        .ok_or("LUKS2 JSON area has no `keyslots` object")?
        .iter()
        .take(MAX_ITEMS)
    {
        let Some(n) = id(k) else { continue };
        if key_bits.is_none() {
            key_bits = v
                .get("key_size")
                .and_then(|s| s.as_u64())
                .and_then(|s| u32::try_from(s.checked_mul(8)?).ok());
        }
        keyslots.push(LuksSlot {
            id: n,
            active: true,
            kdf: short(v.get("kdf").and_then(|k| k.get("type"))),
        });
    }
    keyslots.sort_by_key(|k| k.id);
    let segment = obj("segments").and_then(|s| {
        let mut v: Vec<(&String, &serde_json::Value)> = s.iter().collect();
        v.sort_by_key(|(k, _)| id(k));
        v.first().map(|(_, v)| (*v).clone())
    });
    let cipher = short(segment.as_ref().and_then(|s| s.get("encryption")));
    let hash = obj("digests")
        .and_then(|d| d.values().next())
        .map(|d| short(d.get("hash")))
        .unwrap_or_default();
    let mut tokens: Vec<(u32, String)> = obj("tokens")
        .map(|t| {
            t.iter()
                .take(MAX_ITEMS)
                .filter_map(|(k, v)| Some((id(k)?, short(v.get("type")))))
                .collect()
        })
        .unwrap_or_default();
    tokens.sort();
    Ok(Luks {
        version: 2,
        uuid,
        label,
        cipher,
        hash,
        key_bits,
        keyslots,
        tokens: tokens
            .into_iter()
            .map(|(i, t)| format!("{i}:{t}"))
            .collect(),
        checksum_ok,
    })
}

/// `/etc/crypttab` → one [`Key`] of kind [`Kind::CrypttabEntry`] per entry, and what could not
/// be read (by line number, never content).
pub fn parse_crypttab(b: &[u8]) -> (Vec<Key>, Vec<String>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in b.split(|&c| c == b'\n').enumerate() {
        let n = i + 1;
        if line.len() > MAX_CRYPTTAB_LINE {
            errors.push(format!(
                "crypttab line {n} is longer than {MAX_CRYPTTAB_LINE} bytes: not read"
            ));
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            errors.push(format!("crypttab line {n} is not UTF-8: not read"));
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if keys.len() >= MAX_CRYPTTAB_ENTRIES {
            errors.push(format!(
                "crypttab has more than {MAX_CRYPTTAB_ENTRIES} entries: the rest not read"
            ));
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            errors.push(format!(
                "crypttab line {n} has fewer than two fields (name and device)"
            ));
            continue;
        }
        let key_file = f
            .get(2)
            .filter(|k| !matches!(**k, "none" | "-"))
            .map(|k| (*k).to_owned());
        let mut entry = Crypttab {
            line: n as u32,
            name: f[0].into(),
            device: f[1].into(),
            key_file,
            options: f.get(3).copied().unwrap_or_default().into(),
            key_file_found: None,
            key_file_note: None,
            luks_header: None,
            luks_found: None,
        };
        if entry.key_file.is_some() && entry.key_file_to_read().is_none() {
            entry.key_file_note = Some(
                "not read: a device, a relative path or a file on another device (PATH:DEVICE)"
                    .into(),
            );
        }
        keys.push(Key {
            kind: Kind::CrypttabEntry,
            encoding: Encoding::Text,
            algorithm: "crypttab".into(),
            bits: None,
            encrypted: false,
            spki_sha256: None,
            ssh_sha256: None,
            unknown: None,
            certificate: None,
            luks: None,
            crypttab: Some(entry),
            key_file: None,
            reference: None,
            pkcs12: None,
            wireguard_public: None,
            openpgp: None,
            keytab: None,
        });
    }
    (keys, errors)
}

/// A key file named by a crypttab entry, as a [`Key`] of kind [`Kind::KeyFile`].
pub fn key_file(bytes: &[u8], digest_key: &[u8; 32]) -> Key {
    Key {
        kind: Kind::KeyFile,
        encoding: Encoding::Raw,
        algorithm: "symmetric".into(),
        bits: None,
        encrypted: false,
        spki_sha256: None,
        ssh_sha256: None,
        unknown: None,
        certificate: None,
        luks: None,
        crypttab: None,
        key_file: Some(KeyFile::of(bytes, digest_key)),
        reference: None,
        pkcs12: None,
        wireguard_public: None,
        openpgp: None,
        keytab: None,
    }
}

/// The key of a comparison's [`KeyFile`] digests: drawn afresh for each comparison, handed to
/// both hosts' scans, never stored. Its `Debug` does not show it (requests are logged), and it
/// travels as hex only inside a scan request.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey(pub [u8; 32]);

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(…)")
    }
}

impl Serialize for DigestKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::parse::hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for DigestKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("a digest key is 64 hex digits");
        if s.len() != 64 {
            return Err(bad());
        }
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(DigestKey(k))
    }
}
