//! Bytes → [`Key`]s, with the field's own parsers: `pem-rfc7468` for PEM, `pkcs1`, `pkcs8`,
//! `sec1` and `spki` for the PKCS structures, `x509-cert` for certificates, `ssh-key` for
//! OpenSSH keys (the public half of a passphrase-protected one is stored in the clear).
//! The public half of a private key is derived from what the key holds (RSA's modulus and
//! exponent, SEC1's public point, Ed25519's seed) and encoded as the `SubjectPublicKeyInfo`
//! `openssl pkey -pubout` writes, whose SHA-256 is the key's identity.

use crate::{Certificate, Encoding, Key, Kind, Sniff, find};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const X448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.111");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// Every key and certificate in `bytes`, sniffed first; errors name what did not parse (a PEM
/// block's label and the parser's reason, never content).
pub fn parse(bytes: &[u8]) -> (Vec<Key>, Vec<String>) {
    match crate::sniff(&bytes[..bytes.len().min(crate::HEAD)], bytes.len() as u64) {
        Some(s) => parse_as(s, bytes),
        None => (Vec::new(), Vec::new()),
    }
}

/// Every key and certificate in `bytes`, read as `how`.
pub fn parse_as(how: Sniff, bytes: &[u8]) -> (Vec<Key>, Vec<String>) {
    parse_as_opened(how, bytes, &[])
}

/// [`parse_as`], opening a PKCS#12 bundle's encrypted parts with the first of `passwords`
/// that does.
pub fn parse_as_opened(
    how: Sniff,
    bytes: &[u8],
    passwords: &[crate::Password],
) -> (Vec<Key>, Vec<String>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    match how {
        Sniff::Pem => pem_blocks(bytes, passwords, &mut keys, &mut errors),
        Sniff::SshPublic => {
            for line in bytes.split(|&b| b == b'\n').take(10_000) {
                let Ok(line) = std::str::from_utf8(line) else {
                    continue;
                };
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Ok(k) = ssh_key::PublicKey::from_openssh(line) {
                    keys.push(ssh_public(Kind::SshPublic, k.key_data(), false));
                }
            }
        }
        Sniff::Der => {
            if let Some(k) = der_any(bytes, Encoding::Der) {
                keys.push(opened(k, bytes, passwords));
            } else if let Ok(ks) = crate::parse_pkcs12_opened(bytes, passwords) {
                keys.extend(ks);
            }
        }
        Sniff::Luks => match crate::parse_luks(bytes) {
            Ok(k) => keys.push(k),
            Err(e) => errors.push(e),
        },
        Sniff::Crypttab => return crate::parse_crypttab(bytes),
        Sniff::OpenPgp => return crate::parse_openpgp(bytes),
        // A keytab's keys are digested under the scan's key: `parse_keytab`, by the scan.
        Sniff::Keytab => {}
    }
    (keys, errors)
}

/// Each `-----BEGIN L-----` … `-----END L-----` block of a PEM file.
fn pem_blocks(
    bytes: &[u8],
    passwords: &[crate::Password],
    keys: &mut Vec<Key>,
    errors: &mut Vec<String>,
) {
    let mut at = 0;
    while let Some(b) = find(&bytes[at..], b"-----BEGIN ") {
        let start = at + b;
        let Some(label_end) = find(&bytes[start + 11..], b"-----") else {
            return;
        };
        let label = &bytes[start + 11..start + 11 + label_end];
        let mut end_marker = b"-----END ".to_vec();
        end_marker.extend_from_slice(label);
        end_marker.extend_from_slice(b"-----");
        let Some(e) = find(&bytes[start..], &end_marker) else {
            return;
        };
        let end = start + e + end_marker.len();
        at = end;
        // A PEM block starts a line: one quoted in source code (`"-----BEGIN …` in a Python
        // module that handles certificates) is not key material.
        let line_start = bytes[..start]
            .iter()
            .rev()
            .find(|&&b| b != b' ' && b != b'\t')
            .is_none_or(|&b| b == b'\n');
        if !line_start {
            continue;
        }
        let block = &bytes[start..end];
        let label = String::from_utf8_lossy(label).into_owned();
        // OpenPGP armor (`gpg --export-secret-keys --armor`): a key block holds several keys.
        if label == "PGP PRIVATE KEY BLOCK" || label == "PGP PUBLIC KEY BLOCK" {
            match crate::openpgp::armored(block) {
                Ok((k, e)) => {
                    keys.extend(k);
                    errors.extend(e);
                }
                Err(why) => errors.push(format!("a `{label}` block does not read: {why}")),
            }
            continue;
        }
        match pem_block(&label, block) {
            Ok(Some(k)) if k.kind == Kind::Pkcs8Encrypted && !passwords.is_empty() => {
                match pem_rfc7468::decode_vec(block) {
                    Ok((_, der)) => keys.push(opened(k, &der, passwords)),
                    Err(_) => keys.push(k),
                }
            }
            Ok(Some(k)) => keys.push(k),
            Ok(None) => {}
            Err(why) => errors.push(format!("a `{label}` block does not read: {why}")),
        }
    }
}

fn pem_block(label: &str, block: &[u8]) -> Result<Option<Key>, String> {
    // Legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED`): the whole structure is encrypted.
    if find(block, b"Proc-Type: 4,ENCRYPTED").is_some() {
        let (kind, algorithm) = match label {
            "RSA PRIVATE KEY" => (Kind::Pkcs1Private, "rsa"),
            "EC PRIVATE KEY" => (Kind::Sec1Private, "ecdsa"),
            "DSA PRIVATE KEY" => (Kind::Pkcs1Private, "dsa"),
            _ => return Ok(None),
        };
        return Ok(Some(encrypted(kind, Encoding::Pem, algorithm)));
    }
    if label == "OPENSSH PRIVATE KEY" {
        let k = ssh_key::PrivateKey::from_openssh(block).map_err(|e| e.to_string())?;
        return Ok(Some(ssh_public(
            Kind::SshPrivate,
            k.public_key().key_data(),
            k.is_encrypted(),
        )));
    }
    let wanted = matches!(
        label,
        "RSA PRIVATE KEY"
            | "EC PRIVATE KEY"
            | "PRIVATE KEY"
            | "ENCRYPTED PRIVATE KEY"
            | "PUBLIC KEY"
            | "RSA PUBLIC KEY"
            | "CERTIFICATE"
            | "X509 CERTIFICATE"
    );
    if !wanted {
        return Ok(None);
    }
    let (l, der) = pem_rfc7468::decode_vec(block).map_err(|e| e.to_string())?;
    let key = match l {
        "RSA PRIVATE KEY" => pkcs1_private(&der),
        "EC PRIVATE KEY" => sec1_private(&der),
        "PRIVATE KEY" => pkcs8_private(&der),
        "ENCRYPTED PRIVATE KEY" => pkcs8_encrypted(&der),
        "PUBLIC KEY" => public_key(&der),
        "RSA PUBLIC KEY" => pkcs1_public(&der),
        _ => certificate(&der),
    }
    .map_err(|e| e.to_string())?;
    Ok(Some(Key {
        encoding: Encoding::Pem,
        ..key
    }))
}

/// A DER structure read as a key or certificate (a PKCS#12 bag's content).
pub(crate) fn der_key(der: &[u8]) -> Option<Key> {
    der_any(der, Encoding::Der)
}

/// A DER file: whichever structure reads it whole.
fn der_any(der: &[u8], encoding: Encoding) -> Option<Key> {
    [
        certificate,
        pkcs8_private,
        pkcs8_encrypted,
        pkcs1_private,
        sec1_private,
        public_key,
        pkcs1_public,
    ]
    .into_iter()
    .find_map(|f| f(der).ok())
    .map(|k| Key { encoding, ..k })
}

fn blank(kind: Kind) -> Key {
    Key::blank(kind)
}

fn encrypted(kind: Kind, encoding: Encoding, algorithm: &str) -> Key {
    Key {
        encoding,
        algorithm: algorithm.into(),
        encrypted: true,
        unknown: Some(
            "encrypted: its public half is unknown without the passphrase and no public key or certificate of the same name is beside it".into(),
        ),
        ..blank(kind)
    }
}

/// Fills a key's names and fingerprints from its public half.
fn with_public(mut k: Key, p: &Public) -> Key {
    k.algorithm = p.algorithm();
    k.bits = p.bits();
    match p.spki() {
        Ok(spki) => k.spki_sha256 = Some(hex(&Sha256::digest(&spki))),
        Err(e) => k.unknown = Some(format!("its public half does not encode: {e}")),
    }
    k.ssh_sha256 = p
        .ssh()
        .map(|d| d.fingerprint(ssh_key::HashAlg::Sha256).to_string());
    k
}

/// A public half, from whichever format held it.
enum Public {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        curve: ObjectIdentifier,
        point: Vec<u8>,
    },
    Ed25519([u8; 32]),
    /// Any other algorithm: its `SubjectPublicKeyInfo` as found.
    Spki(Vec<u8>, ObjectIdentifier),
}

impl Public {
    fn algorithm(&self) -> String {
        match self {
            Public::Rsa { .. } => "rsa".into(),
            Public::Ec { curve, .. } => format!("ecdsa-{}", curve_name(curve)),
            Public::Ed25519(_) => "ed25519".into(),
            Public::Spki(_, oid) => algorithm_name(oid),
        }
    }

    fn bits(&self) -> Option<u32> {
        match self {
            Public::Rsa { n, .. } => Some(bit_len(n)),
            Public::Ec { curve, .. } => curve_bits(curve),
            Public::Ed25519(_) => Some(256),
            Public::Spki(_, oid) if *oid == ED448 => Some(456),
            Public::Spki(_, oid) if *oid == X25519 => Some(253),
            Public::Spki(_, oid) if *oid == X448 => Some(448),
            Public::Spki(..) => None,
        }
    }

    /// The DER `SubjectPublicKeyInfo` `openssl pkey -pubout -outform DER` writes.
    fn spki(&self) -> der::Result<Vec<u8>> {
        let (oid, params, key): (ObjectIdentifier, Option<Vec<u8>>, Vec<u8>) = match self {
            Public::Rsa { n, e } => {
                let pk = pkcs1::RsaPublicKey {
                    modulus: UintRef::new(n)?,
                    public_exponent: UintRef::new(e)?,
                };
                (RSA, Some(der::asn1::Null.to_der()?), pk.to_der()?)
            }
            Public::Ec { curve, point } => (EC, Some(curve.to_der()?), point.clone()),
            Public::Ed25519(k) => (ED25519, None, k.to_vec()),
            Public::Spki(der, _) => return Ok(der.clone()),
        };
        let params = match &params {
            Some(p) => Some(AnyRef::from_der(p)?),
            None => None,
        };
        SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid,
                parameters: params,
            },
            subject_public_key: BitStringRef::from_bytes(&key)?,
        }
        .to_der()
    }

    /// The same public half as OpenSSH keys it (RSA, ECDSA on the NIST curves, Ed25519).
    fn ssh(&self) -> Option<ssh_key::public::KeyData> {
        use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
        Some(match self {
            Public::Rsa { n, e } => KeyData::Rsa(RsaPublicKey {
                e: ssh_key::Mpint::from_positive_bytes(e).ok()?,
                n: ssh_key::Mpint::from_positive_bytes(n).ok()?,
            }),
            Public::Ec { point, .. } => {
                KeyData::Ecdsa(EcdsaPublicKey::from_sec1_bytes(point).ok()?)
            }
            Public::Ed25519(k) => KeyData::Ed25519(Ed25519PublicKey(*k)),
            Public::Spki(..) => return None,
        })
    }

    /// A `SubjectPublicKeyInfo` read back into its parts where it is one of the known kinds.
    fn from_spki(der: &[u8]) -> der::Result<Public> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)?;
        let oid = spki.algorithm.oid;
        let key = spki.subject_public_key.as_bytes().unwrap_or_default();
        if oid == RSA {
            let pk = pkcs1::RsaPublicKey::<UintRef>::from_der(key)?;
            return Ok(Public::Rsa {
                n: pk.modulus.as_bytes().to_vec(),
                e: pk.public_exponent.as_bytes().to_vec(),
            });
        }
        if oid == EC
            && let Some(Ok(curve)) = spki.algorithm.parameters.map(|p| p.decode_as())
        {
            return Ok(Public::Ec {
                curve,
                point: key.to_vec(),
            });
        }
        if oid == ED25519
            && let Ok(k) = <[u8; 32]>::try_from(key)
        {
            return Ok(Public::Ed25519(k));
        }
        Ok(Public::Spki(der.to_vec(), oid))
    }
}

fn ssh_public(kind: Kind, d: &ssh_key::public::KeyData, encrypted: bool) -> Key {
    use ssh_key::public::{EcdsaPublicKey, KeyData};
    let public = match d {
        KeyData::Rsa(r) => {
            r.n.as_positive_bytes()
                .zip(r.e.as_positive_bytes())
                .map(|(n, e)| Public::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                })
        }
        KeyData::Ecdsa(e) => Some(Public::Ec {
            curve: match e {
                EcdsaPublicKey::NistP256(_) => P256,
                EcdsaPublicKey::NistP384(_) => P384,
                EcdsaPublicKey::NistP521(_) => P521,
            },
            point: e.as_sec1_bytes().to_vec(),
        }),
        KeyData::Ed25519(k) => Some(Public::Ed25519(k.0)),
        _ => None,
    };
    let k = Key {
        encoding: Encoding::Openssh,
        encrypted,
        ..blank(kind)
    };
    let mut k = match public {
        Some(p) => with_public(k, &p),
        None => Key {
            algorithm: d.algorithm().as_str().to_owned(),
            ..k
        },
    };
    // OpenSSH's own fingerprint of its own encoding, whatever the algorithm.
    k.ssh_sha256 = Some(d.fingerprint(ssh_key::HashAlg::Sha256).to_string());
    k
}

fn pkcs1_private(der: &[u8]) -> der::Result<Key> {
    let k = pkcs1::RsaPrivateKeyRef::from_der(der)?;
    Ok(with_public(
        blank(Kind::Pkcs1Private),
        &Public::Rsa {
            n: k.modulus.as_bytes().to_vec(),
            e: k.public_exponent.as_bytes().to_vec(),
        },
    ))
}

fn pkcs1_public(der: &[u8]) -> der::Result<Key> {
    let k = pkcs1::RsaPublicKey::<UintRef>::from_der(der)?;
    Ok(with_public(
        blank(Kind::Pkcs1Public),
        &Public::Rsa {
            n: k.modulus.as_bytes().to_vec(),
            e: k.public_exponent.as_bytes().to_vec(),
        },
    ))
}

fn sec1_private(der: &[u8]) -> der::Result<Key> {
    let k = sec1::EcPrivateKey::from_der(der)?;
    let curve = k.parameters.and_then(|p| p.named_curve());
    sec1_key(Kind::Sec1Private, curve, k.public_key)
}

fn sec1_key(kind: Kind, curve: Option<ObjectIdentifier>, point: Option<&[u8]>) -> der::Result<Key> {
    let Some(curve) = curve else {
        return Ok(Key {
            algorithm: "ecdsa".into(),
            unknown: Some("its curve is not named".into()),
            ..blank(kind)
        });
    };
    match point {
        Some(point) => Ok(with_public(
            blank(kind),
            &Public::Ec {
                curve,
                point: point.to_vec(),
            },
        )),
        None => Ok(Key {
            algorithm: format!("ecdsa-{}", curve_name(&curve)),
            bits: curve_bits(&curve),
            unknown: Some("it holds no public point".into()),
            ..blank(kind)
        }),
    }
}

fn pkcs8_private(der: &[u8]) -> der::Result<Key> {
    let k = pkcs8::PrivateKeyInfoRef::from_der(der)?;
    let oid = k.algorithm.oid;
    let inner = k.private_key.as_bytes();
    // A public half stored beside the private one (PKCS#8 v2) is the one to fingerprint.
    if let Some(p) = k.public_key.as_ref().and_then(|p| p.as_bytes()) {
        if oid == RSA || oid == RSA_PSS {
            // Rare; the private key holds it anyway.
        } else {
            let spki = SubjectPublicKeyInfoRef {
                algorithm: k.algorithm,
                subject_public_key: BitStringRef::from_bytes(p)?,
            }
            .to_der()?;
            return Ok(with_public(
                blank(Kind::Pkcs8Private),
                &Public::from_spki(&spki)?,
            ));
        }
    }
    if oid == RSA || oid == RSA_PSS {
        let r = pkcs1::RsaPrivateKeyRef::from_der(inner)?;
        let public = Public::Rsa {
            n: r.modulus.as_bytes().to_vec(),
            e: r.public_exponent.as_bytes().to_vec(),
        };
        let mut key = with_public(blank(Kind::Pkcs8Private), &public);
        if oid == RSA_PSS {
            // Its SubjectPublicKeyInfo keeps the RSA-PSS identifier and its parameters.
            let (n, e) = match &public {
                Public::Rsa { n, e } => (n, e),
                _ => unreachable!(),
            };
            let pk = pkcs1::RsaPublicKey {
                modulus: UintRef::new(n)?,
                public_exponent: UintRef::new(e)?,
            }
            .to_der()?;
            let spki = SubjectPublicKeyInfoRef {
                algorithm: k.algorithm,
                subject_public_key: BitStringRef::from_bytes(&pk)?,
            }
            .to_der()?;
            key.algorithm = "rsa-pss".into();
            key.spki_sha256 = Some(hex(&Sha256::digest(&spki)));
            key.ssh_sha256 = None;
        }
        return Ok(key);
    }
    if oid == EC {
        let ec = sec1::EcPrivateKey::from_der(inner)?;
        let curve = k
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .or_else(|| ec.parameters.and_then(|p| p.named_curve()));
        return sec1_key(Kind::Pkcs8Private, curve, ec.public_key);
    }
    if oid == ED25519 {
        let seed = <&OctetStringRef>::from_der(inner)?;
        let seed: [u8; 32] = seed
            .as_bytes()
            .try_into()
            .map_err(|_| der::Tag::OctetString.length_error())?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        return Ok(with_public(
            blank(Kind::Pkcs8Private),
            &Public::Ed25519(public),
        ));
    }
    Ok(Key {
        algorithm: algorithm_name(&oid),
        bits: match oid {
            o if o == X25519 => Some(253),
            o if o == X448 => Some(448),
            o if o == ED448 => Some(456),
            _ => None,
        },
        unknown: Some("its public half is not stored in the file".into()),
        ..blank(Kind::Pkcs8Private)
    })
}

fn pkcs8_encrypted(der: &[u8]) -> der::Result<Key> {
    pkcs8::EncryptedPrivateKeyInfoRef::from_der(der)?;
    Ok(encrypted(Kind::Pkcs8Encrypted, Encoding::Der, "unknown"))
}

/// An encrypted PKCS#8 key (`k`, read from `der`) opened with the first of `passwords` that
/// does: its public half and fingerprints, still marked encrypted. The plaintext is wiped once
/// read; a key none opens stays as it was, saying why.
fn opened(k: Key, der: &[u8], passwords: &[crate::Password]) -> Key {
    if k.kind != Kind::Pkcs8Encrypted || passwords.is_empty() {
        return k;
    }
    let Ok(info) = pkcs8::EncryptedPrivateKeyInfoRef::from_der(der) else {
        return k;
    };
    let Ok(alg) = info.encryption_algorithm.to_der() else {
        return k;
    };
    match crate::pkcs12::decrypt(&alg, info.encrypted_data.as_bytes(), passwords) {
        Ok(mut plain) => {
            let inner = pkcs8_private(&plain);
            crate::pkcs12::wipe(&mut plain);
            match inner {
                Ok(inner) => Key {
                    kind: Kind::Pkcs8Encrypted,
                    encoding: k.encoding,
                    encrypted: true,
                    ..inner
                },
                Err(_) => Key {
                    unknown: Some(
                        "encrypted: a password opened it, and what it holds is not a PKCS#8 key"
                            .into(),
                    ),
                    ..k
                },
            }
        }
        Err(why) => Key {
            unknown: Some(format!("encrypted: {why}")),
            ..k
        },
    }
}

fn public_key(der: &[u8]) -> der::Result<Key> {
    Ok(with_public(
        blank(Kind::PublicKey),
        &Public::from_spki(der)?,
    ))
}

/// A certificate's name exactly as x509-cert's `Display` writes it (RFC 4514: the RDNs
/// reversed, `,` between them, `+` within one; `KEY=value` with RFC 4514's escapes where the
/// attribute has a name and a string value, else `OID=#DER-hex`), with each attribute type's
/// shortest name looked up once: `const_oid`'s table is searched name by name, which was a
/// tenth of a cached scan of /etc /usr /var/lib (2,316 certificates, four names each).
pub(crate) fn name_text(n: &x509_cert::name::Name) -> String {
    use std::fmt::Write;
    use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
    use x509_cert::der::{Tag, Tagged};
    let mut out = String::new();
    for (i, rdn) in n
        .iter_rdn()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let v = &atv.value;
            let val = match v.tag() {
                Tag::PrintableString => PrintableStringRef::try_from(v).ok().map(|s| s.as_str()),
                Tag::Utf8String => Utf8StringRef::try_from(v).ok().map(|s| s.as_str()),
                Tag::Ia5String => Ia5StringRef::try_from(v).ok().map(|s| s.as_str()),
                Tag::TeletexString => TeletexStringRef::try_from(v).ok().map(|s| s.as_str()),
                _ => None,
            };
            match (shortest_name(&atv.oid), val) {
                (Some(key), Some(val)) => {
                    out.push_str(&key.to_ascii_uppercase());
                    out.push('=');
                    let mut it = val.char_indices().peekable();
                    while let Some((i, c)) = it.next() {
                        match c {
                            '#' if i == 0 => out.push_str("\\#"),
                            ' ' if i == 0 || it.peek().is_none() => out.push_str("\\ "),
                            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                                out.push('\\');
                                out.push(c);
                            }
                            '\x00'..='\x1f' | '\x7f' => {
                                let _ = write!(out, "\\{:02x}", c as u8);
                            }
                            _ => out.push(c),
                        }
                    }
                }
                _ => {
                    let _ = write!(out, "{}=#", atv.oid);
                    for b in v.to_der().unwrap_or_default() {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            }
        }
    }
    out
}

/// The shortest of `const_oid`'s names for `oid` (the first of that length), as x509-cert
/// takes it, remembered per OID.
fn shortest_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    static SEEN: std::sync::Mutex<Vec<(ObjectIdentifier, Option<&'static str>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, n)) = seen.iter().find(|(o, _)| o == oid) {
        return *n;
    }
    let mut best: Option<&'static str> = None;
    for m in der::oid::db::DB.find_names_for_oid(*oid) {
        if best.is_none_or(|b| m.len() < b.len()) {
            best = Some(m);
        }
    }
    // Bounded: a hostile certificate's made-up OIDs are not all remembered.
    if seen.len() < 256 {
        seen.push((*oid, best));
    }
    best
}

fn certificate(der: &[u8]) -> der::Result<Key> {
    let c = x509_cert::Certificate::from_der(der)?;
    let tbs = c.tbs_certificate();
    let spki = tbs.subject_public_key_info().to_der()?;
    let mut k = with_public(blank(Kind::Certificate), &Public::from_spki(&spki)?);
    let v = tbs.validity();
    let subject = name_text(tbs.subject());
    let issuer = name_text(tbs.issuer());
    k.certificate = Some(Certificate {
        self_signed: subject == issuer,
        subject,
        issuer,
        serial: hex(tbs.serial_number().as_bytes()),
        not_before: v.not_before.to_date_time().to_string(),
        not_after: v.not_after.to_date_time().to_string(),
        not_after_unix: i64::try_from(v.not_after.to_unix_duration().as_secs()).unwrap_or(i64::MAX),
        sha256: hex(&Sha256::digest(der)),
    });
    Ok(k)
}

fn curve_name(c: &ObjectIdentifier) -> String {
    match *c {
        o if o == P256 => "p256".into(),
        o if o == P384 => "p384".into(),
        o if o == P521 => "p521".into(),
        o if o == SECP256K1 => "secp256k1".into(),
        o => o.to_string(),
    }
}

fn curve_bits(c: &ObjectIdentifier) -> Option<u32> {
    match *c {
        o if o == P256 || o == SECP256K1 => Some(256),
        o if o == P384 => Some(384),
        o if o == P521 => Some(521),
        _ => None,
    }
}

fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match *oid {
        o if o == RSA => "rsa".into(),
        o if o == RSA_PSS => "rsa-pss".into(),
        o if o == EC => "ecdsa".into(),
        o if o == DSA => "dsa".into(),
        o if o == ED25519 => "ed25519".into(),
        o if o == ED448 => "ed448".into(),
        o if o == X25519 => "x25519".into(),
        o if o == X448 => "x448".into(),
        o => o.to_string(),
    }
}

/// Bits of a big-endian unsigned integer (leading zero bytes ignored).
pub(crate) fn bit_len(n: &[u8]) -> u32 {
    let n: &[u8] = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros())
}

pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The DNS names a certificate is issued for (its subjectAltName's `dNSName`s), of every
/// certificate in `bytes` (PEM blocks, or one DER certificate): the names a service that
/// presents it answers to. Nothing else of the file is kept.
pub fn certificate_names(bytes: &[u8]) -> Vec<String> {
    use x509_cert::ext::pkix::{SubjectAltName, name::GeneralName};
    let mut ders: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    while let Some(b) = find(&bytes[at..], b"-----BEGIN CERTIFICATE-----") {
        let start = at + b;
        let marker = b"-----END CERTIFICATE-----";
        let Some(e) = find(&bytes[start..], marker) else {
            break;
        };
        let end = start + e + marker.len();
        at = end;
        if let Ok((_, der)) = pem_rfc7468::decode_vec(&bytes[start..end]) {
            ders.push(der);
        }
    }
    if ders.is_empty() && bytes.first() == Some(&0x30) {
        ders.push(bytes.to_vec());
    }
    let mut names = Vec::new();
    for der in ders {
        let Ok(c) = x509_cert::Certificate::from_der(&der) else {
            continue;
        };
        if let Ok(Some((_, san))) = c.tbs_certificate().get_extension::<SubjectAltName>() {
            for n in san.0 {
                if let GeneralName::DnsName(d) = n {
                    names.push(d.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}
