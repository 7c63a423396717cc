//! PKCS#12 bundles (`.p12`, `.pfx`), read without a password: their structure walked with
//! `der` (a PFX, its authenticated safe of content infos, their safe bags), what is in the
//! clear — certificates, unencrypted key bags — parsed like any other DER, and what is
//! encrypted counted and flagged: a password is needed for it. No password is asked for or
//! tried; nothing encrypted is kept.

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

/// A DER PKCS#12 bundle → the bundle (kind [`Kind::Pkcs12`]) and what it holds in the clear.
pub fn parse_pkcs12(der: &[u8]) -> der::Result<Vec<Key>> {
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
    for part in sequence(&auth)? {
        let ci = sequence(&part)?;
        let (Some(ct), content) = (ci.first(), ci.get(1)) else {
            continue;
        };
        let ct = ct.decode_as::<ObjectIdentifier>()?;
        if ct == ENCRYPTED_DATA || ct == ENVELOPED_DATA {
            p.encrypted_parts += 1;
            continue;
        }
        if ct != DATA {
            continue;
        }
        let Some(content) = content else { continue };
        let safe = explicit(content, 0)?;
        safe.tag().assert_eq(Tag::OctetString)?;
        let bags = AnyRef::from_der(safe.value())?;
        for bag in sequence(&bags)?.iter().take(MAX_BAGS) {
            let b = sequence(bag)?;
            let (Some(id), Some(value)) = (b.first(), b.get(1)) else {
                continue;
            };
            let id = id.decode_as::<ObjectIdentifier>()?;
            let value = explicit(value, 0)?;
            if id == SHROUDED_KEY_BAG {
                p.encrypted_keys += 1;
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
