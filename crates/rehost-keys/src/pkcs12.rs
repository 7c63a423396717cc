//! PKCS#12 bundles (`.p12`, `.pfx`): their structure walked with `der` (a PFX, its
//! authenticated safe of content infos, their safe bags), what is in the clear — certificates,
//! unencrypted key bags — parsed like any other DER, and what is encrypted counted and flagged:
//! a password is needed for it. With passwords given (`keys scan --password-file`), each
//! encrypted part and shrouded key bag is decrypted with PBES2 (`pkcs5`: PBKDF2 or scrypt with
//! AES, what OpenSSL 3 writes) and read like the clear ones; the decrypted bytes are wiped once
//! their public facts are taken. The legacy PKCS#12 schemes (RC2, 3DES with SHA-1) are not
//! opened, and said so. No password is asked for; nothing secret is kept.

use crate::{Encoding, Key, Kind};
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// The most bags read of one bundle.
const MAX_BAGS: usize = 1024;

/// A password a PKCS#12 bundle may be encrypted with, given by `--password-file`. Its `Debug`
/// does not show it (requests are logged); it travels, as hex, only inside a scan request to
/// the host that holds the bundle, and is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub Vec<u8>);

/// The longest password taken.
pub const MAX_PASSWORD: usize = 1024;

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::parse::hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("a password is at most 1024 bytes in hex");
        if s.len() % 2 != 0 || s.len() > 2 * MAX_PASSWORD {
            return Err(bad());
        }
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>, _>>()
            .map(Password)
    }
}

/// Overwrites decrypted bytes before they are dropped.
pub(crate) fn wipe(b: &mut [u8]) {
    for x in b.iter_mut() {
        // SAFETY: a valid, aligned, exclusive reference to a byte.
        unsafe { std::ptr::write_volatile(x, 0) };
    }
}

/// `data`'s plaintext under the first of `passwords` that opens it (PBES2), or why none did.
pub(crate) fn decrypt(
    alg: &[u8],
    data: &[u8],
    passwords: &[Password],
) -> Result<Vec<u8>, &'static str> {
    let scheme = pkcs5::EncryptionScheme::from_der(alg)
        .map_err(|_| "encrypted with a scheme rehost does not read")?;
    if !matches!(scheme, pkcs5::EncryptionScheme::Pbes2(_)) {
        return Err(
            "encrypted with a legacy scheme (PBES1, or PKCS#12's RC2 or 3DES with SHA-1): not opened (export it again with PBES2, OpenSSL 3's default: `openssl pkcs8 -topk8 -v2 aes-256-cbc`, `openssl pkcs12 -export` without -legacy)",
        );
    }
    if passwords.is_empty() {
        return Err("no password given (--password-file)");
    }
    for p in passwords {
        if let Ok(mut plain) = scheme.decrypt(&p.0, data) {
            // A wrong password passes the padding check now and then: the plaintext must read
            // as DER too.
            if AnyRef::from_der(&plain).is_ok() {
                return Ok(plain);
            }
            wipe(&mut plain);
        }
    }
    Err("none of the passwords given opens it")
}

/// What a PKCS#12 bundle shows without its password.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pkcs12 {
    /// Whether something in it is encrypted (a password is needed to read all of it).
    pub password_needed: bool,
    /// Whether it carries a MAC (its integrity is checked with the password).
    pub mac: bool,
    /// Certificates readable in the clear (each also a finding of its own).
    pub certificates: u32,
    /// Private keys in the clear (each also a finding of its own; a bundle that holds one
    /// unencrypted is a key in the clear).
    pub keys: u32,
    /// Private keys encrypted with the password (`pkcs8ShroudedKeyBag`).
    pub encrypted_keys: u32,
    /// Parts encrypted whole with the password (`encryptedData`: OpenSSL puts the
    /// certificates there by default) or for a recipient (`envelopedData`).
    pub encrypted_parts: u32,
    /// Encrypted keys and parts a given password opened (their contents are findings too).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub opened: u32,
    /// Why what is encrypted was not opened, when passwords were given and something was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_opened: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn children(value: &[u8]) -> der::Result<Vec<AnyRef<'_>>> {
    let mut r = SliceReader::new(value)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(AnyRef::decode(&mut r)?);
        if out.len() > MAX_BAGS {
            return Err(Tag::Sequence.length_error().into());
        }
    }
    Ok(out)
}

fn sequence<'a>(a: &AnyRef<'a>) -> der::Result<Vec<AnyRef<'a>>> {
    a.tag().assert_eq(Tag::Sequence)?;
    children(a.value())
}

/// The single value inside an `[n] EXPLICIT` wrapper.
fn explicit<'a>(a: &AnyRef<'a>, n: u8) -> der::Result<AnyRef<'a>> {
    if a.tag()
        != (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(n.into()),
        })
    {
        return Err(a.tag().unexpected_error(None).into());
    }
    AnyRef::from_der(a.value())
}

/// The bags of a SafeContents: keys and certificates in the clear found, shrouded keys opened
/// with `passwords` when one does.
fn safe_bags(
    bags: &AnyRef<'_>,
    passwords: &[Password],
    p: &mut Pkcs12,
    inner: &mut Vec<Key>,
    why_not: &mut Option<&'static str>,
) -> der::Result<()> {
    for bag in sequence(bags)?.iter().take(MAX_BAGS) {
        let b = sequence(bag)?;
        let (Some(id), Some(value)) = (b.first(), b.get(1)) else {
            continue;
        };
        let id = id.decode_as::<ObjectIdentifier>()?;
        let value = explicit(value, 0)?;
        if id == SHROUDED_KEY_BAG {
            p.encrypted_keys += 1;
            // EncryptedPrivateKeyInfo { algorithm, OCTET STRING }.
            let e = sequence(&value)?;
            let (Some(alg), Some(data)) = (e.first(), e.get(1)) else {
                continue;
            };
            match decrypt(&der_of(alg)?, data.value(), passwords) {
                Ok(mut plain) => {
                    p.opened += 1;
                    if let Some(k) = crate::parse::der_key(&plain) {
                        inner.push(k);
                    }
                    wipe(&mut plain);
                }
                Err(w) => {
                    why_not.get_or_insert(w);
                }
            }
        } else if id == KEY_BAG {
            let raw = der_of(&value)?;
            if let Some(k) = crate::parse::der_key(&raw) {
                p.keys += 1;
                inner.push(k);
            }
        } else if id == CERT_BAG {
            let c = sequence(&value)?;
            if let (Some(t), Some(v)) = (c.first(), c.get(1))
                && t.decode_as::<ObjectIdentifier>()? == X509_CERT
            {
                let cert = explicit(v, 0)?;
                cert.tag().assert_eq(Tag::OctetString)?;
                if let Some(k) = crate::parse::der_key(cert.value()) {
                    p.certificates += 1;
                    inner.push(k);
                }
            }
        }
    }
    Ok(())
}

/// A DER PKCS#12 bundle → the bundle (kind [`Kind::Pkcs12`]) and what it holds in the clear.
pub fn parse_pkcs12(der: &[u8]) -> der::Result<Vec<Key>> {
    parse_pkcs12_opened(der, &[])
}

/// [`parse_pkcs12`], opening what is encrypted with the first of `passwords` that does.
pub fn parse_pkcs12_opened(der: &[u8], passwords: &[Password]) -> der::Result<Vec<Key>> {
    let pfx = AnyRef::from_der(der)?;
    let top = sequence(&pfx)?;
    let [version, auth_safe, rest @ ..] = &top[..] else {
        return Err(Tag::Sequence.length_error().into());
    };
    if version.decode_as::<u8>()? != 3 {
        return Err(Tag::Integer.value_error().into());
    }
    let mut p = Pkcs12 {
        mac: !rest.is_empty(),
        ..Pkcs12::default()
    };
    let mut inner = Vec::new();
    // authSafe: ContentInfo { data, [0] OCTET STRING (AuthenticatedSafe) }.
    let ci = sequence(auth_safe)?;
    let [ct, content] = &ci[..] else {
        return Err(Tag::Sequence.length_error().into());
    };
    if ct.decode_as::<ObjectIdentifier>()? != DATA {
        // Signed (public-key integrity mode): not read.
        return Err(Tag::ObjectIdentifier.value_error().into());
    }
    let octets = explicit(content, 0)?;
    octets.tag().assert_eq(Tag::OctetString)?;
    // AuthenticatedSafe ::= SEQUENCE OF ContentInfo.
    let auth = AnyRef::from_der(octets.value())?;
    let mut why_not: Option<&'static str> = None;
    for part in sequence(&auth)? {
        let ci = sequence(&part)?;
        let (Some(ct), content) = (ci.first(), ci.get(1)) else {
            continue;
        };
        let ct = ct.decode_as::<ObjectIdentifier>()?;
        if ct == ENVELOPED_DATA {
            p.encrypted_parts += 1;
            why_not.get_or_insert(
                "a part is encrypted for a recipient's key (envelopedData): not opened",
            );
            continue;
        }
        if ct == ENCRYPTED_DATA {
            p.encrypted_parts += 1;
            let Some(content) = content else { continue };
            // EncryptedData { version, EncryptedContentInfo { type, algorithm, [0] IMPLICIT
            // OCTET STRING } }.
            let ed = sequence(&explicit(content, 0)?)?;
            let Some(eci) = ed.get(1) else { continue };
            let eci = sequence(eci)?;
            let (Some(alg), Some(enc)) = (eci.get(1), eci.get(2)) else {
                continue;
            };
            if enc.tag()
                != (Tag::ContextSpecific {
                    constructed: false,
                    number: TagNumber(0),
                })
            {
                why_not
                    .get_or_insert("an encrypted part's content is not in one piece: not opened");
                continue;
            }
            match decrypt(&der_of(alg)?, enc.value(), passwords) {
                Ok(mut plain) => {
                    p.opened += 1;
                    let r = AnyRef::from_der(&plain).and_then(|bags| {
                        safe_bags(&bags, passwords, &mut p, &mut inner, &mut why_not)
                    });
                    wipe(&mut plain);
                    r?;
                }
                Err(w) => {
                    why_not.get_or_insert(w);
                }
            }
            continue;
        }
        if ct != DATA {
            continue;
        }
        let Some(content) = content else { continue };
        let safe = explicit(content, 0)?;
        safe.tag().assert_eq(Tag::OctetString)?;
        let bags = AnyRef::from_der(safe.value())?;
        safe_bags(&bags, passwords, &mut p, &mut inner, &mut why_not)?;
    }
    if !passwords.is_empty() {
        p.not_opened = why_not.map(str::to_owned);
    }
    p.password_needed = p.encrypted_keys > 0 || p.encrypted_parts > 0;
    let bundle = Key {
        kind: Kind::Pkcs12,
        encoding: Encoding::Der,
        algorithm: "pkcs12".into(),
        bits: None,
        encrypted: p.password_needed,
        spki_sha256: None,
        ssh_sha256: None,
        unknown: None,
        certificate: None,
        luks: None,
        crypttab: None,
        key_file: None,
        reference: None,
        wireguard_public: None,
        openpgp: None,
        keytab: None,
        pkcs12: Some(Pkcs12Bundle {
            sha256: crate::parse::hex(&Sha256::digest(der)),
            contents: p,
        }),
    };
    let mut out = vec![bundle];
    out.extend(inner);
    Ok(out)
}

/// A bundle's contents and its own digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pkcs12Bundle {
    /// SHA-256 of the whole file, lowercase hex: the same bundle on both hosts. Its parts are
    /// encrypted with random salts, so the digest tells nothing of the password.
    pub sha256: String,
    #[serde(flatten)]
    pub contents: Pkcs12,
}

/// The DER of a value decoded as `AnyRef` (its header re-encoded).
fn der_of(a: &AnyRef<'_>) -> der::Result<Vec<u8>> {
    der::Encode::to_der(a)
}
