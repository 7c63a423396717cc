//! GnuPG's key material: OpenPGP key packets (RFC 4880 / RFC 9580) in armored blocks
//! (`gpg --export-secret-keys --armor`), in binary keyrings (`secring.gpg`, `pubring.gpg`,
//! exports) and in GnuPG's keybox (`pubring.kbx`), and the agent's secret keys
//! (`private-keys-v1.d/KEYGRIP.key`, S-expressions).
//!
//! Parsed here by hand rather than with an OpenPGP crate: the fingerprint needs only the
//! public-key packet's bytes — v4: SHA-1 over `0x99 || two-octet length || body`, v6: SHA-256
//! over `0x9b || four-octet length || body` (v5, GnuPG's LibrePGP keys: `0x9a`, like v6) — and
//! `pgp` (rpgp) would link a dozen ciphers and signature schemes into the agent for that. A
//! secret-key packet's secret part follows its public part; only the public part's length is
//! worked out (by the algorithm's public fields) and nothing after it is looked at.
//!
//! An agent key file holds no OpenPGP fingerprint (that needs the creation time in the
//! keyring): it is identified by its keygrip, computed here as libgcrypt does — for RSA the
//! SHA-1 of the modulus as libgcrypt stores it, with its leading zero; for elliptic-curve keys
//! (Ed25519, Curve25519, NIST, Brainpool, secp256k1) over the curve's parameters and the
//! public point (`keygrip.rs`) — both from the agent file, so a renamed or altered file does
//! not pass for another key, and from an OpenPGP key packet, so an agent key is shown with the
//! fingerprint of the OpenPGP key it belongs to when the keyring is scanned with it. For other
//! algorithms and curves the keygrip is the file's name (said so).

use crate::{Encoding, Key, Kind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most packets read of one keyring or keybox blob.
const MAX_PACKETS: usize = 100_000;

/// What an OpenPGP key or a GnuPG agent key says of itself: public facts only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPgp {
    /// The key packet's version (4, 5 or 6); `None` for an agent key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// The OpenPGP fingerprint, uppercase hex, as `gpg --with-colons` prints it in `fpr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// libgcrypt's keygrip, uppercase hex (`gpg --with-keygrip`'s `grp`): an agent key's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keygrip: Option<String>,
    /// Where the keygrip comes from: `computed` (RSA) or `file name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keygrip_from: String,
    /// A subkey (`ssb`/`sub`), not a primary key.
    #[serde(default)]
    pub subkey: bool,
    /// The key's creation time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u32>,
    /// The first user ID of the key (its primary's), as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// An OpenPGP packet: its tag and body.
struct Packet<'a> {
    tag: u8,
    body: &'a [u8],
}

/// The packets of `b`, up to the first one that does not read (its reason returned).
fn packets(b: &[u8]) -> (Vec<Packet<'_>>, Option<String>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        if out.len() >= MAX_PACKETS {
            return (out, Some(format!("more than {MAX_PACKETS} packets")));
        }
        match packet(&b[at..]) {
            Some((p, used)) => {
                out.push(p);
                at += used;
            }
            None => return (out, Some(format!("a packet at byte {at} does not read"))),
        }
    }
    (out, None)
}

/// One packet at the start of `b` and the bytes it takes (partial lengths are refused: key
/// packets never use them).
fn packet(b: &[u8]) -> Option<(Packet<'_>, usize)> {
    let (tag, len, hdr) = header(b)?;
    let body = b.get(hdr..hdr.checked_add(len)?)?;
    Some((Packet { tag, body }, hdr + len))
}

/// A packet header at the start of `b`: its tag, its body's length and the header's.
fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let h = *b.first()?;
    if h & 0x80 == 0 {
        return None;
    }
    let (tag, len, hdr): (u8, usize, usize) = if h & 0x40 != 0 {
        let tag = h & 0x3f;
        let l0 = *b.get(1)? as usize;
        match l0 {
            0..=191 => (tag, l0, 2),
            192..=223 => (tag, ((l0 - 192) << 8) + *b.get(2)? as usize + 192, 3),
            255 => (tag, be32(b, 2)? as usize, 6),
            _ => return None,
        }
    } else {
        let tag = (h >> 2) & 0x0f;
        match h & 3 {
            0 => (tag, *b.get(1)? as usize, 2),
            1 => (
                tag,
                u16::from_be_bytes([*b.get(1)?, *b.get(2)?]) as usize,
                3,
            ),
            2 => (tag, be32(b, 1)? as usize, 5),
            _ => return None,
        }
    };
    Some((tag, len, hdr))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether a file's first bytes are an OpenPGP key packet (a binary keyring or export) or a
/// GnuPG keybox.
pub fn is_openpgp(head: &[u8], size: u64) -> bool {
    if head.get(8..12) == Some(b"KBXf") && head.get(4) == Some(&1) {
        return true;
    }
    let Some((tag, len, hdr)) = header(head) else {
        return false;
    };
    matches!(tag, 5 | 6)
        && matches!(head.get(hdr), Some(4..=6))
        && len >= 12
        && (hdr + len) as u64 <= size
}

/// Whether `path` (its path on the host) is a GnuPG agent's key file:
/// `…/private-keys-v1.d/` and forty hex digits and `.key`.
pub fn is_gpg_agent_key(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default();
    parts.next() == Some("private-keys-v1.d")
        && name.len() == 44
        && name.ends_with(".key")
        && name[..40].bytes().all(|c| c.is_ascii_hexdigit())
}

/// The key packets of a binary keyring, export or keybox: each secret key (primary and
/// subkeys) and each public key, by fingerprint.
pub fn parse_openpgp(b: &[u8]) -> (Vec<Key>, Vec<String>) {
    if b.get(8..12) == Some(b"KBXf") {
        return keybox(b);
    }
    let (ps, err) = packets(b);
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    keyblock(&ps, Encoding::Raw, &mut keys, &mut errors);
    // A file whose first bytes only looked like a key packet is not OpenPGP: nothing to say.
    if keys.is_empty() {
        return (Vec::new(), Vec::new());
    }
    if let Some(e) = err {
        errors.push(format!("OpenPGP: {e}"));
    }
    (keys, errors)
}

/// The keys among `ps`; a user ID is given to the primary key before it.
fn keyblock(ps: &[Packet<'_>], encoding: Encoding, keys: &mut Vec<Key>, errors: &mut Vec<String>) {
    let mut primary: Option<usize> = None;
    for p in ps {
        match p.tag {
            5 | 6 | 7 | 14 => match key_packet(p.tag, p.body) {
                Ok(mut k) => {
                    k.encoding = encoding;
                    if matches!(p.tag, 5 | 6) {
                        primary = Some(keys.len());
                    }
                    keys.push(k);
                }
                Err(e) => errors.push(format!("an OpenPGP key packet does not read: {e}")),
            },
            13 => {
                if let Some(i) = primary
                    && let Some(o) = keys[i].openpgp.as_mut()
                    && o.user_id.is_none()
                {
                    // As written (at most 256 bytes); escaped where it is shown.
                    let uid = String::from_utf8_lossy(&p.body[..p.body.len().min(256)]);
                    o.user_id = Some(uid.into_owned());
                }
            }
            _ => {}
        }
    }
}

/// A keybox (`pubring.kbx`): its OpenPGP blobs' keyblocks.
fn keybox(b: &[u8]) -> (Vec<Key>, Vec<String>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    let mut at = 0usize;
    let mut blobs = 0usize;
    while at < b.len() {
        blobs += 1;
        if blobs > MAX_PACKETS {
            errors.push(format!("keybox: more than {MAX_PACKETS} blobs"));
            break;
        }
        let Some(len) = be32(b, at).map(|l| l as usize) else {
            errors.push(format!("keybox: a blob at byte {at} does not read"));
            break;
        };
        let Some(blob) = b.get(at..at.saturating_add(len)).filter(|_| len >= 6) else {
            errors.push(format!("keybox: a blob at byte {at} is cut short"));
            break;
        };
        // Type 2: an OpenPGP blob; its keyblock at an offset and length in the blob.
        if blob[4] == 2 {
            match (be32(blob, 8), be32(blob, 12)) {
                (Some(off), Some(n)) => {
                    match blob.get(off as usize..(off as usize).saturating_add(n as usize)) {
                        Some(kb) => {
                            let (ps, err) = packets(kb);
                            keyblock(&ps, Encoding::Raw, &mut keys, &mut errors);
                            if let Some(e) = err {
                                errors.push(format!("keybox blob at byte {at}: {e}"));
                            }
                        }
                        None => errors.push(format!(
                            "keybox: the keyblock of the blob at byte {at} lies outside it"
                        )),
                    }
                }
                _ => errors.push(format!("keybox: the blob at byte {at} is cut short")),
            }
        }
        at += len;
    }
    (keys, errors)
}

/// An armored block (`-----BEGIN PGP … KEY BLOCK-----`): its packets.
pub(crate) fn armored(block: &[u8]) -> Result<(Vec<Key>, Vec<String>), String> {
    use base64::Engine;
    let text = std::str::from_utf8(block).map_err(|_| "not UTF-8".to_owned())?;
    let mut lines = text.lines().skip(1);
    // Armor headers (`Comment: …`) up to an empty line.
    let mut body = String::new();
    let mut in_headers = true;
    for line in lines.by_ref() {
        let line = line.trim_end();
        if in_headers {
            if line.is_empty() {
                in_headers = false;
                continue;
            }
            if line.contains(": ") {
                continue;
            }
            in_headers = false;
        }
        // The checksum line (`=XXXX`) and the end line close the data.
        if line.starts_with('=') || line.starts_with("-----") {
            break;
        }
        body.push_str(line.trim());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("its base64 does not decode: {e}"))?;
    let (ps, err) = packets(&bytes);
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    keyblock(&ps, Encoding::Pem, &mut keys, &mut errors);
    if let Some(e) = err {
        errors.push(format!("OpenPGP: {e}"));
    }
    Ok((keys, errors))
}

/// The public part of a key packet's body: its version, creation time, algorithm, the bytes
/// the fingerprint is taken over, and the algorithm's name, size and (RSA) modulus.
struct PublicPart<'a> {
    version: u8,
    created: u32,
    algo: u8,
    bytes: &'a [u8],
    name: String,
    bits: Option<u32>,
    rsa_n: Option<&'a [u8]>,
    /// The keygrip of an elliptic-curve key on a curve libgcrypt's table has.
    ecc_grip: Option<String>,
}

/// One MPI at `at`: its value (without the two-octet bit count) and the offset after it.
fn mpi(b: &[u8], at: usize) -> Result<(&[u8], usize), String> {
    let bits = b
        .get(at..at + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]) as usize)
        .ok_or("an MPI is cut short")?;
    let end = at + 2 + bits.div_ceil(8);
    let v = b.get(at + 2..end).ok_or("an MPI is cut short")?;
    Ok((v, end))
}

fn curve_name(oid: &[u8]) -> (&'static str, Option<u32>) {
    match oid {
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01] => ("ed25519", Some(255)),
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01] => ("cv25519", Some(255)),
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => ("nistp256", Some(256)),
        [0x2b, 0x81, 0x04, 0x00, 0x22] => ("nistp384", Some(384)),
        [0x2b, 0x81, 0x04, 0x00, 0x23] => ("nistp521", Some(521)),
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07] => ("brainpoolP256r1", Some(256)),
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b] => ("brainpoolP384r1", Some(384)),
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d] => ("brainpoolP512r1", Some(512)),
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => ("secp256k1", Some(256)),
        _ => ("unknown curve", None),
    }
}

fn public_part(body: &[u8]) -> Result<PublicPart<'_>, String> {
    let version = *body.first().ok_or("empty")?;
    let created = be32(body, 1).ok_or("cut short")?;
    let algo = *body.get(5).ok_or("cut short")?;
    let (end, material_at) = match version {
        4 => (None, 6),
        5 | 6 => {
            let n = be32(body, 6).ok_or("cut short")? as usize;
            (Some(10 + n), 10)
        }
        v => {
            return Err(format!(
                "key packet version {v} is not read (v4, v5 and v6 are)"
            ));
        }
    };
    let m = material_at;
    let mut rsa_n = None;
    let mut ecc_grip = None;
    let (name, bits, mend) = match algo {
        1..=3 => {
            let (n, a) = mpi(body, m)?;
            let (_, a) = mpi(body, a)?;
            rsa_n = Some(n);
            ("rsa".to_owned(), Some(crate::parse::bit_len(n)), a)
        }
        16 | 20 => {
            let (p, a) = mpi(body, m)?;
            let (_, a) = mpi(body, a)?;
            let (_, a) = mpi(body, a)?;
            ("elgamal".to_owned(), Some(crate::parse::bit_len(p)), a)
        }
        17 => {
            let (p, mut a) = mpi(body, m)?;
            for _ in 0..3 {
                a = mpi(body, a)?.1;
            }
            ("dsa".to_owned(), Some(crate::parse::bit_len(p)), a)
        }
        18 | 19 | 22 => {
            let l = *body.get(m).ok_or("cut short")? as usize;
            let oid = body.get(m + 1..m + 1 + l).ok_or("cut short")?;
            let (curve, bits) = curve_name(oid);
            let (q, mut a) = mpi(body, m + 1 + l)?;
            // As GnuPG hands the key to libgcrypt (`pk_keygrip`): EdDSA with `flags eddsa`,
            // ECDH on Curve25519 with `flags djb-tweak`, the rest as held.
            let form = match (algo, curve) {
                (22, _) => crate::keygrip::PointForm::EddsaCompact,
                (18, "cv25519") => crate::keygrip::PointForm::DjbTweak,
                _ => crate::keygrip::PointForm::AsHeld,
            };
            ecc_grip = crate::keygrip::ecc_keygrip(&dotted_oid(oid), form, q);
            if algo == 18 {
                let kl = *body.get(a).ok_or("cut short")? as usize;
                a += 1 + kl;
            }
            let what = match algo {
                18 => "ecdh",
                19 => "ecdsa",
                _ => "eddsa",
            };
            (format!("{what}-{curve}"), bits, a)
        }
        25 => ("x25519".into(), Some(255), m + 32),
        26 => ("x448".into(), Some(448), m + 56),
        27 => ("ed25519".into(), Some(255), m + 32),
        28 => ("ed448".into(), Some(448), m + 57),
        a => match end {
            // v5/v6 say the material's length: the fingerprint needs nothing else.
            Some(e) => (format!("openpgp-algorithm-{a}"), None, e),
            None => return Err(format!("public-key algorithm {a} is not read")),
        },
    };
    let end = end.unwrap_or(mend);
    let bytes = body.get(..end).ok_or("cut short")?;
    Ok(PublicPart {
        version,
        created,
        algo,
        bytes,
        name,
        bits,
        rsa_n,
        ecc_grip,
    })
}

/// An OID's DER content octets in dotted form (`1.3.6.1.4.1.11591.15.1`); empty if it does not
/// read.
fn dotted_oid(oid: &[u8]) -> String {
    let Some((&first, rest)) = oid.split_first() else {
        return String::new();
    };
    let mut parts = vec![
        u64::from(first / 40).min(2),
        u64::from(first) - 40 * u64::from(first / 40).min(2),
    ];
    let mut v: u64 = 0;
    for &b in rest {
        if v > u64::MAX >> 8 {
            return String::new();
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(v);
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// RSA's keygrip: SHA-1 of the modulus with one leading zero byte (libgcrypt's `%m`).
fn rsa_keygrip(n: &[u8]) -> String {
    let n = &n[n.iter().position(|&b| b != 0).unwrap_or(n.len())..];
    let mut h = sha1::Sha1::new();
    if n.first().is_some_and(|&b| b & 0x80 != 0) {
        h.update([0]);
    }
    h.update(n);
    crate::parse::hex(&h.finalize()).to_uppercase()
}

fn key_packet(tag: u8, body: &[u8]) -> Result<Key, String> {
    let p = public_part(body)?;
    let fingerprint = match p.version {
        4 => {
            let mut h = sha1::Sha1::new();
            h.update([0x99]);
            h.update((p.bytes.len() as u16).to_be_bytes());
            h.update(p.bytes);
            crate::parse::hex(&h.finalize())
        }
        v => {
            let mut h = Sha256::new();
            h.update([if v == 5 { 0x9a } else { 0x9b }]);
            h.update((p.bytes.len() as u32).to_be_bytes());
            h.update(p.bytes);
            crate::parse::hex(&h.finalize())
        }
    }
    .to_uppercase();
    let secret = matches!(tag, 5 | 7);
    // The secret part's first octet: 0 in the clear, else protected by a passphrase.
    let encrypted = secret && body.get(p.bytes.len()).is_some_and(|&s2k| s2k != 0);
    let _ = p.algo;
    Ok(Key {
        algorithm: p.name,
        bits: p.bits,
        encrypted,
        openpgp: Some(OpenPgp {
            version: Some(p.version),
            fingerprint: Some(fingerprint),
            keygrip: p.rsa_n.map(rsa_keygrip).or(p.ecc_grip.clone()),
            keygrip_from: if p.rsa_n.is_some() || p.ecc_grip.is_some() {
                "computed".into()
            } else {
                String::new()
            },
            subkey: matches!(tag, 7 | 14),
            created: Some(p.created),
            user_id: None,
        }),
        ..Key::blank(if secret {
            Kind::OpenpgpSecret
        } else {
            Kind::OpenpgpPublic
        })
    })
}

/// An S-expression value: a list or an atom.
enum Sexp {
    List(Vec<Sexp>),
    Atom(Vec<u8>),
}

impl Sexp {
    fn atom(&self) -> Option<&[u8]> {
        match self {
            Sexp::Atom(a) => Some(a),
            Sexp::List(_) => None,
        }
    }
    fn list(&self) -> &[Sexp] {
        match self {
            Sexp::List(l) => l,
            Sexp::Atom(_) => &[],
        }
    }
    /// The list among this list's items whose first atom is `name`.
    fn find(&self, name: &[u8]) -> Option<&Sexp> {
        self.list()
            .iter()
            .find(|s| s.list().first().and_then(Sexp::atom) == Some(name))
    }
}

/// Reads an S-expression in GnuPG's canonical (`(3:rsa…`) or advanced (`(rsa (n #00…#))`)
/// form. Bounded by its input; nesting is bounded too.
fn sexp(b: &[u8], at: &mut usize, depth: u32) -> Result<Sexp, String> {
    let skip_ws = |at: &mut usize| {
        while *at < b.len() && b[*at].is_ascii_whitespace() {
            *at += 1;
        }
    };
    skip_ws(at);
    let c = *b.get(*at).ok_or("cut short")?;
    if c == b'(' {
        if depth > 32 {
            return Err("nested too deep".into());
        }
        *at += 1;
        let mut items = Vec::new();
        loop {
            skip_ws(at);
            match b.get(*at) {
                Some(b')') => {
                    *at += 1;
                    return Ok(Sexp::List(items));
                }
                Some(_) => items.push(sexp(b, at, depth + 1)?),
                None => return Err("a list is not closed".into()),
            }
        }
    }
    if c.is_ascii_digit() {
        let start = *at;
        while b.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        if b.get(*at) == Some(&b':') {
            let n: usize = std::str::from_utf8(&b[start..*at])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("a length does not read")?;
            let v = b
                .get(*at + 1..(*at + 1).saturating_add(n))
                .ok_or("an atom is cut short")?;
            *at += 1 + n;
            return Ok(Sexp::Atom(v.to_vec()));
        }
        *at = start;
    }
    if c == b'#' {
        let end = b[*at + 1..]
            .iter()
            .position(|&x| x == b'#')
            .ok_or("a hex atom is not closed")?;
        let hex: Vec<u8> = b[*at + 1..*at + 1 + end]
            .iter()
            .copied()
            .filter(|x| !x.is_ascii_whitespace())
            .collect();
        *at += end + 2;
        let v = (0..hex.len() / 2)
            .map(|i| {
                std::str::from_utf8(&hex[2 * i..2 * i + 2])
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or("a hex atom does not read")?;
        return Ok(Sexp::Atom(v));
    }
    if c == b'"' {
        let end = b[*at + 1..]
            .iter()
            .position(|&x| x == b'"')
            .ok_or("a string is not closed")?;
        let v = b[*at + 1..*at + 1 + end].to_vec();
        *at += end + 2;
        return Ok(Sexp::Atom(v));
    }
    let start = *at;
    while b
        .get(*at)
        .is_some_and(|&x| !x.is_ascii_whitespace() && x != b'(' && x != b')')
    {
        *at += 1;
    }
    if *at == start {
        return Err("an unexpected character".into());
    }
    Ok(Sexp::Atom(b[start..*at].to_vec()))
}

/// A GnuPG agent key file (`private-keys-v1.d/KEYGRIP.key`, `path` its path on the host): its
/// algorithm, whether a passphrase protects it, and its keygrip. Only the public parameters
/// are looked at.
pub fn parse_gpg_agent_key(path: &str, b: &[u8]) -> (Vec<Key>, Vec<String>) {
    let name = path.rsplit('/').next().unwrap_or_default();
    let grip_name = name.trim_end_matches(".key").to_uppercase();
    // The extended format (GnuPG 2.2.20+): `Name: value` lines, `Key:` holding the expression
    // over continuation lines; else the whole file is one canonical expression.
    let expr: Vec<u8> = if b.starts_with(b"(") {
        b.to_vec()
    } else {
        let mut out = Vec::new();
        let mut in_key = false;
        for line in b.split(|&c| c == b'\n') {
            if line.starts_with(b" ") || line.starts_with(b"\t") {
                if in_key {
                    out.push(b' ');
                    out.extend_from_slice(line);
                }
                continue;
            }
            in_key = false;
            if let Some(v) = line.strip_prefix(b"Key:") {
                in_key = true;
                out.extend_from_slice(v);
            }
        }
        out
    };
    let mut at = 0;
    let s = match sexp(&expr, &mut at, 0) {
        Ok(s) => s,
        Err(e) => {
            return (
                Vec::new(),
                vec![format!("a GnuPG key file does not read: {e}")],
            );
        }
    };
    let head = s.list().first().and_then(Sexp::atom).unwrap_or_default();
    let (encrypted, on_card) = match head {
        b"private-key" => (false, false),
        b"protected-private-key" => (true, false),
        b"shadowed-private-key" => (false, true),
        _ => {
            return (
                Vec::new(),
                vec!["a GnuPG key file does not hold a private key".into()],
            );
        }
    };
    let Some(params) = s.list().get(1) else {
        return (Vec::new(), vec!["a GnuPG key file is empty".into()]);
    };
    let algo = String::from_utf8_lossy(params.list().first().and_then(Sexp::atom).unwrap_or(b"?"))
        .to_lowercase();
    let param = |n: &[u8]| {
        params
            .find(n)
            .and_then(|l| l.list().get(1))
            .and_then(Sexp::atom)
    };
    let (algorithm, bits, computed) = match algo.as_str() {
        "rsa" => match param(b"n") {
            Some(n) => (
                "rsa".to_owned(),
                Some(crate::parse::bit_len(n)),
                Some(rsa_keygrip(n)),
            ),
            None => ("rsa".to_owned(), None, None),
        },
        "ecc" | "ecdsa" | "eddsa" | "ecdh" => {
            let named = param(b"curve").map(|c| String::from_utf8_lossy(c).into_owned());
            // The flags list: `(flags eddsa)`, `(flags djb-tweak)`.
            let flags: Vec<&[u8]> = params
                .find(b"flags")
                .map(|l| l.list().iter().skip(1).filter_map(Sexp::atom).collect())
                .unwrap_or_default();
            let form = if flags.contains(&&b"eddsa"[..]) {
                crate::keygrip::PointForm::EddsaCompact
            } else if flags.contains(&&b"djb-tweak"[..]) {
                crate::keygrip::PointForm::DjbTweak
            } else {
                crate::keygrip::PointForm::AsHeld
            };
            let grip = named
                .as_deref()
                .zip(param(b"q"))
                .and_then(|(c, q)| crate::keygrip::ecc_keygrip(c, form, q));
            let curve = named
                .map(|c| c.to_lowercase())
                .unwrap_or_else(|| "unknown curve".into());
            (format!("ecc-{curve}"), None, grip)
        }
        other => (
            other.chars().filter(char::is_ascii_alphanumeric).collect(),
            None,
            None,
        ),
    };
    let mut errors = Vec::new();
    let (keygrip, from) = match computed {
        Some(g) => {
            if g != grip_name {
                errors.push(format!(
                    "a GnuPG key file named {grip_name} holds the key with keygrip {g}: renamed or altered"
                ));
            }
            (g, "computed")
        }
        None => (grip_name, "file name"),
    };
    let key = Key {
        encoding: Encoding::Text,
        algorithm: if on_card {
            format!("{algorithm} (on a smartcard: the file names it)")
        } else {
            algorithm
        },
        bits,
        encrypted,
        openpgp: Some(OpenPgp {
            version: None,
            fingerprint: None,
            keygrip: Some(keygrip),
            keygrip_from: from.into(),
            subkey: false,
            created: None,
            user_id: None,
        }),
        ..Key::blank(Kind::GpgAgentKey)
    };
    (vec![key], errors)
}
