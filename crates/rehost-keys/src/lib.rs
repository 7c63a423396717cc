//! Key material: recognise, parse and fingerprint private keys, public keys and certificates
//! from bytes handed to this crate. No IO: the host side (`rehost-host`'s `scan_keys`
//! capability) walks the tree and hands each file's bytes here; this crate says what they are.
//!
//! What is kept of a key is public: its kind, algorithm and size, and fingerprints of its
//! public half — the SHA-256 of its DER `SubjectPublicKeyInfo` (what `openssl pkey -pubout
//! -outform DER | sha256sum` gives) and OpenSSH's `SHA256:…` (what `ssh-keygen -lf` gives).
//! Both are computed for every key whose public half is known, whatever its format, so a key
//! stored as OpenSSH on one host and as PKCS#8 on another is the same key. Nothing secret is
//! kept or formatted: a [`Key`] holds no byte of the private half, and errors name the
//! format that failed, never the content.
//!
//! [`sniff`] says from a file's first bytes whether it can hold key material at all, so that a
//! scan of a large tree reads only the few files that can. [`compare`] matches two scans.

mod compare;
mod config;
mod keygrip;
mod keytab;
mod openpgp;
mod parse;
mod pkcs12;
mod volume;
mod wireguard;

pub use compare::{Compared, Comparison, Problem, Verdict, compare};
pub use config::{Reference, Service, config_service, parse_config};
pub use keytab::{KeytabEntry, is_keytab, parse_keytab};
pub use openpgp::{OpenPgp, is_gpg_agent_key, is_openpgp, parse_gpg_agent_key, parse_openpgp};
pub use parse::{certificate_names, parse, parse_as, parse_as_opened};
pub use pkcs12::{MAX_PASSWORD, Password, Pkcs12, Pkcs12Bundle, parse_pkcs12, parse_pkcs12_opened};
pub use volume::{
    Crypttab, DigestKey, KeyFile, LUKS_MAGIC, Luks, LuksSlot, MAX_CRYPTTAB_LINE, MAX_LUKS2_HEADER,
    key_file, luks_len, parse_crypttab, parse_luks,
};
pub use wireguard::{is_wireguard, parse_wireguard};

use serde::{Deserialize, Serialize};

/// The bytes [`sniff`] wants to see of a file (fewer if the file is shorter).
pub const HEAD: usize = 4096;
/// The largest file read whole after sniffing as PEM (a CA bundle is a few hundred KiB).
pub const MAX_PEM: u64 = 4 << 20;
/// The largest DER structure or public key file read.
pub const MAX_DER: u64 = 64 << 10;
/// The largest crypttab read (a real one is a few hundred bytes).
pub const MAX_CRYPTTAB: u64 = 1 << 20;
/// The largest key file a crypttab entry names that is read for its digest (cryptsetup's own
/// default limit for a key file).
pub const MAX_KEY_FILE: u64 = 8 << 20;

/// What a file's first bytes say it could hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// `-----BEGIN …-----` blocks (PEM, OpenSSH private keys).
    Pem,
    /// OpenSSH public key lines (`ssh-ed25519 AAAA…`, `authorized_keys`).
    SshPublic,
    /// One DER structure filling the whole file.
    Der,
    /// A LUKS header (`LUKS\xba\xbe`), whatever the file's size: an image's first bytes.
    Luks,
    /// `/etc/crypttab`, known by its name rather than its bytes (the scan says so).
    Crypttab,
    /// OpenPGP key packets (a binary keyring or export) or a GnuPG keybox (`pubring.kbx`).
    OpenPgp,
    /// A Kerberos keytab (its entries' keys are digested under the scan's key: read by a scan
    /// with [`parse_keytab`], not by [`parse_as`]).
    Keytab,
}

/// Whether a file of `size` bytes whose first bytes are `head` (at most [`HEAD`]) can hold key
/// material, and in which encoding. Cheap: a scan reads the rest of a file only when this says
/// so.
pub fn sniff(head: &[u8], size: u64) -> Option<Sniff> {
    if size == 0 {
        return None;
    }
    if head.starts_with(LUKS_MAGIC) {
        return Some(Sniff::Luks);
    }
    if size <= MAX_PEM && find(head, b"-----BEGIN ").is_some() {
        return Some(Sniff::Pem);
    }
    if size <= MAX_PEM && is_openpgp(head, size) {
        return Some(Sniff::OpenPgp);
    }
    if size <= MAX_CRYPTTAB && is_keytab(head, size) {
        return Some(Sniff::Keytab);
    }
    if size <= MAX_DER {
        for prefix in [&b"ssh-"[..], b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-"] {
            if head.starts_with(prefix) {
                return Some(Sniff::SshPublic);
            }
        }
        if der_fills(head, size) {
            return Some(Sniff::Der);
        }
    }
    None
}

/// A digest of the code that decides what a file holds — [`sniff`], the path and content rules
/// of [`is_wireguard`], [`is_gpg_agent_key`], [`config_service`] and [`parse_keytab`], and the
/// parsers (every source file of this crate but its tests) with the workspace's `Cargo.lock`
/// (the parsing crates' versions) — for a cache of what scans found (rehost-host's key scan
/// cache): one made by other code is not trusted. Any change to these sources changes it.
pub fn scanner_digest() -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for src in [
        &include_bytes!("lib.rs")[..],
        include_bytes!("config.rs"),
        include_bytes!("openpgp.rs"),
        include_bytes!("wireguard.rs"),
        include_bytes!("keytab.rs"),
        include_bytes!("volume.rs"),
        include_bytes!("parse.rs"),
        include_bytes!("pkcs12.rs"),
        include_bytes!("keygrip.rs"),
        include_bytes!("compare.rs"),
        include_bytes!("../../../Cargo.lock"),
    ] {
        h.update(&(src.len() as u64).to_le_bytes());
        h.update(src);
    }
    *h.finalize().as_bytes()
}

/// A DER SEQUENCE whose length says it is the whole file.
fn der_fills(head: &[u8], size: u64) -> bool {
    if head.len() < 2 || head[0] != 0x30 {
        return false;
    }
    let (len, header) = match head[1] {
        n @ 0..=0x7f => (u64::from(n), 2),
        0x81 if head.len() >= 3 => (u64::from(head[2]), 3),
        0x82 if head.len() >= 4 => (u64::from(u16::from_be_bytes([head[2], head[3]])), 4),
        0x83 if head.len() >= 5 => (
            u64::from(head[2]) << 16 | u64::from(head[3]) << 8 | u64::from(head[4]),
            5,
        ),
        _ => return false,
    };
    len + header == size && len >= 16
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // memchr's searcher (SIMD): the byte-by-byte windows it replaces were a fifth of a scan of
    // /etc /usr /var/lib, run on the first 4 KiB of every file.
    memchr::memmem::find(hay, needle)
}

/// What a piece of key material is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), host keys included.
    SshPrivate,
    /// An OpenSSH public key line.
    SshPublic,
    /// PKCS#1 `RSA PRIVATE KEY`.
    Pkcs1Private,
    /// PKCS#8 `PRIVATE KEY`.
    Pkcs8Private,
    /// PKCS#8 `ENCRYPTED PRIVATE KEY`: its public half is unknown without the passphrase.
    Pkcs8Encrypted,
    /// SEC1 `EC PRIVATE KEY`.
    Sec1Private,
    /// PKCS#1 `RSA PUBLIC KEY`.
    Pkcs1Public,
    /// A `SubjectPublicKeyInfo` (`PUBLIC KEY`).
    PublicKey,
    /// An X.509 certificate.
    Certificate,
    /// A LUKS header: an encrypted volume, by its UUID and key slot layout.
    LuksHeader,
    /// An `/etc/crypttab` entry.
    CrypttabEntry,
    /// A symmetric key file (one a crypttab entry or a service names), by a keyed digest.
    KeyFile,
    /// A service configuration's directive naming a key, certificate or key file.
    KeyReference,
    /// A PKCS#12 bundle (`.p12`, `.pfx`); what it holds in the clear is found beside it.
    Pkcs12,
    /// A WireGuard `PrivateKey`.
    WireguardPrivate,
    /// An OpenPGP secret key packet (primary or subkey): a GnuPG export, a `secring.gpg`.
    OpenpgpSecret,
    /// An OpenPGP public key packet: a keyring (`pubring.kbx`, `pubring.gpg`), an export.
    OpenpgpPublic,
    /// A GnuPG agent's secret key (`private-keys-v1.d/KEYGRIP.key`), by its keygrip.
    GpgAgentKey,
    /// A Kerberos keytab entry: principal, key version, encryption type, a keyed digest.
    KerberosKey,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SshPrivate => "ssh-private",
            Kind::SshPublic => "ssh-public",
            Kind::Pkcs1Private => "pkcs1-private",
            Kind::Pkcs8Private => "pkcs8-private",
            Kind::Pkcs8Encrypted => "pkcs8-encrypted",
            Kind::Sec1Private => "sec1-private",
            Kind::Pkcs1Public => "pkcs1-public",
            Kind::PublicKey => "public-key",
            Kind::Certificate => "certificate",
            Kind::LuksHeader => "luks-header",
            Kind::CrypttabEntry => "crypttab-entry",
            Kind::KeyFile => "key-file",
            Kind::KeyReference => "key-reference",
            Kind::Pkcs12 => "pkcs12",
            Kind::WireguardPrivate => "wireguard-private",
            Kind::OpenpgpSecret => "openpgp-secret",
            Kind::OpenpgpPublic => "openpgp-public",
            Kind::GpgAgentKey => "gpg-agent-key",
            Kind::KerberosKey => "kerberos-key",
        }
    }

    /// What must stay secret: a private key.
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Kind::SshPrivate
                | Kind::Pkcs1Private
                | Kind::Pkcs8Private
                | Kind::Pkcs8Encrypted
                | Kind::Sec1Private
                | Kind::KeyFile
                | Kind::Pkcs12
                | Kind::WireguardPrivate
                | Kind::OpenpgpSecret
                | Kind::GpgAgentKey
                | Kind::KerberosKey
        )
    }

    /// The class a key is matched within: a private key by a private key, a public key by a
    /// public key, a certificate by the same certificate.
    pub fn class(self) -> &'static str {
        match self {
            Kind::LuksHeader => return "luks",
            Kind::CrypttabEntry => return "crypttab",
            Kind::KeyFile => return "key-file",
            Kind::KeyReference => return "reference",
            Kind::Pkcs12 => return "pkcs12",
            Kind::KerberosKey => return "keytab",
            _ => {}
        }
        if self.is_private() {
            "private"
        } else if self == Kind::Certificate {
            "certificate"
        } else {
            "public"
        }
    }
}

/// How the bytes were encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Pem,
    Der,
    Openssh,
    /// A LUKS header's binary layout.
    Luks,
    /// A configuration file's text (a crypttab line).
    Text,
    /// Bytes with no structure (a symmetric key file).
    Raw,
}

/// One key or certificate, by its public facts only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub kind: Kind,
    pub encoding: Encoding,
    /// `rsa`, `ecdsa-p256`, `ed25519`, … (an OID when the algorithm has no name here).
    pub algorithm: String,
    /// The key's size in bits (an RSA modulus, a curve), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<u32>,
    /// Protected by a passphrase.
    #[serde(default)]
    pub encrypted: bool,
    /// SHA-256 of the DER `SubjectPublicKeyInfo` of its public half, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
    /// OpenSSH's fingerprint of its public half (`SHA256:` and base64 without padding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_sha256: Option<String>,
    /// Why the public half is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// A LUKS header's identity and layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luks: Option<Luks>,
    /// A crypttab entry as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypttab: Option<Crypttab>,
    /// A symmetric key file's keyed digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<KeyFile>,
    /// A service configuration's directive naming a key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    /// A PKCS#12 bundle's digest and what it shows without its password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Pkcs12Bundle>,
    /// A WireGuard private key's public key, base64, as `wg pubkey` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard_public: Option<String>,
    /// An OpenPGP key's fingerprint and keygrip, or a GnuPG agent key's keygrip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openpgp: Option<OpenPgp>,
    /// A Kerberos keytab entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keytab: Option<KeytabEntry>,
}

/// What a certificate says of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// RFC 4514 strings, as `openssl x509 -nameopt RFC2253` shows them.
    pub subject: String,
    pub issuer: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_before: String,
    pub not_after: String,
    /// Seconds since the epoch of `not_after`.
    pub not_after_unix: i64,
    /// SHA-256 of the whole certificate (`openssl x509 -fingerprint -sha256`), lowercase hex.
    pub sha256: String,
    /// Issued by itself.
    pub self_signed: bool,
}

impl Key {
    /// A key of `kind` with nothing known yet (the fields filled by whoever makes it).
    pub fn blank(kind: Kind) -> Key {
        Key {
            kind,
            encoding: Encoding::Der,
            algorithm: String::new(),
            bits: None,
            encrypted: false,
            spki_sha256: None,
            ssh_sha256: None,
            unknown: None,
            certificate: None,
            luks: None,
            crypttab: None,
            key_file: None,
            reference: None,
            pkcs12: None,
            wireguard_public: None,
            openpgp: None,
            keytab: None,
        }
    }

    /// What the key is matched by on another host: its class and the fingerprint of its public
    /// half (a certificate: its own digest). `None`: it cannot be matched (an encrypted PKCS#8
    /// key whose public half is nowhere beside it).
    pub fn identity(&self) -> Option<String> {
        if let Some(c) = &self.certificate {
            return Some(format!("certificate:{}", c.sha256));
        }
        if let Some(l) = &self.luks {
            return Some(format!("luks:{}:{}", l.uuid, l.layout()));
        }
        if let Some(c) = &self.crypttab {
            return Some(format!(
                "crypttab:{}:{}:{}",
                c.name,
                c.device,
                c.key_file.as_deref().unwrap_or("none")
            ));
        }
        if let Some(k) = &self.key_file {
            return Some(format!("key-file:{}", k.digest));
        }
        if let Some(b) = &self.pkcs12 {
            return Some(format!("pkcs12:sha256:{}", b.sha256));
        }
        if let Some(w) = &self.wireguard_public {
            return Some(format!("private:wireguard:{w}"));
        }
        if let Some(o) = &self.openpgp {
            // An agent key by its keygrip (its file holds no fingerprint), an OpenPGP key by
            // its fingerprint.
            if self.kind == Kind::GpgAgentKey {
                return o
                    .keygrip
                    .as_ref()
                    .map(|g| format!("private:gpg-keygrip:{g}"));
            }
            return o
                .fingerprint
                .as_ref()
                .map(|f| format!("{}:openpgp:{f}", self.kind.class()));
        }
        if let Some(t) = &self.keytab {
            return Some(format!(
                "keytab:{}:{}:{}:{}",
                t.principal, t.kvno, t.enctype, t.digest
            ));
        }
        if let Some(r) = &self.reference {
            return Some(format!(
                "reference:{}:{}:{}",
                r.service,
                r.directive,
                r.resolved.as_deref().unwrap_or(&r.target)
            ));
        }
        let class = self.kind.class();
        if let Some(s) = &self.spki_sha256 {
            return Some(format!("{class}:spki-sha256:{s}"));
        }
        self.ssh_sha256.as_ref().map(|s| format!("{class}:ssh:{s}"))
    }

    /// The fingerprint to show: OpenSSH's for SSH keys, the SPKI digest for the others.
    pub fn fingerprint(&self) -> Option<String> {
        if let Some(l) = &self.luks {
            return Some(format!("luks-uuid:{}", l.uuid));
        }
        if let Some(c) = &self.crypttab {
            return Some(format!("crypttab:{}", c.name));
        }
        if let Some(k) = &self.key_file {
            // Enough to tell key files apart in a listing; the whole digest is the identity.
            return Some(k.digest.chars().take("blake3-keyed:".len() + 16).collect());
        }
        if let Some(b) = &self.pkcs12 {
            return Some(format!(
                "pkcs12-sha256:{}",
                &b.sha256[..b.sha256.len().min(16)]
            ));
        }
        if let Some(w) = &self.wireguard_public {
            return Some(format!("wg:{w}"));
        }
        if let Some(o) = &self.openpgp {
            return match (&o.fingerprint, &o.keygrip, self.kind) {
                (Some(f), Some(g), Kind::GpgAgentKey) => Some(format!("keygrip:{g} openpgp:{f}")),
                (_, Some(g), Kind::GpgAgentKey) => Some(format!("keygrip:{g}")),
                (Some(f), _, _) => Some(format!("openpgp:{f}")),
                _ => None,
            };
        }
        if let Some(t) = &self.keytab {
            return Some(format!("krb5:{} kvno {}", t.principal, t.kvno));
        }
        if let Some(r) = &self.reference {
            return Some(format!(
                "uses:{}",
                r.resolved.as_deref().unwrap_or(&r.target)
            ));
        }
        match (self.kind, &self.ssh_sha256, &self.spki_sha256) {
            (Kind::SshPrivate | Kind::SshPublic, Some(s), _) => Some(s.clone()),
            (_, _, Some(h)) => Some(format!("spki-sha256:{h}")),
            (_, Some(s), None) => Some(s.clone()),
            _ => None,
        }
    }

    /// `algorithm` and its size, e.g. `rsa 3072`.
    pub fn algorithm_and_size(&self) -> String {
        if let Some(l) = &self.luks {
            return l.describe();
        }
        if let Some(c) = &self.crypttab {
            return c.describe();
        }
        if let Some(r) = &self.reference {
            return r.describe();
        }
        if let Some(b) = &self.pkcs12 {
            let c = &b.contents;
            return match (c.password_needed, c.opened, &c.not_opened) {
                (true, n, None) if n > 0 => format!(
                    "pkcs12 opened with a given password: {} certificate(s) and {} key(s) in it",
                    c.certificates,
                    c.keys + c.encrypted_keys
                ),
                (true, n, Some(why)) => format!(
                    "pkcs12: {} certificate(s) and {} key(s) read; {n} of {} encrypted key(s) and part(s) opened with a given password, the others not: {why}",
                    c.certificates,
                    c.keys,
                    c.encrypted_keys + c.encrypted_parts
                ),
                _ => format!(
                    "pkcs12: {} certificate(s) and {} key(s) in the clear{}",
                    c.certificates,
                    c.keys,
                    if c.password_needed {
                        format!(
                            ", {} encrypted key(s) and {} encrypted part(s) need its password",
                            c.encrypted_keys, c.encrypted_parts
                        )
                    } else {
                        String::new()
                    }
                ),
            };
        }
        if let Some(t) = &self.keytab {
            return format!("kerberos {}", t.enctype);
        }
        if let Some(k) = &self.key_file {
            return match k.bytes {
                Some(n) => format!("symmetric, {n} bytes"),
                None => "symmetric, under 32 bytes (a passphrase?)".into(),
            };
        }
        match self.bits {
            Some(b) => format!("{} {b}", self.algorithm),
            None => self.algorithm.clone(),
        }
    }
}

/// A key found in a file on a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The file's path on the host (lossy UTF-8: shown escaped, never trusted).
    pub path: String,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    #[serde(flatten)]
    pub key: Key,
    /// The configurations that name it, as `PATH:LINE` (a crypttab entry naming a key file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
}

impl Found {
    /// What is wrong with it where it is: a private key readable by group or others.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.key.kind.is_private() && self.mode & 0o044 != 0 {
            out.push(format!(
                "{} readable by {} (mode {:04o}): only its owner should read it (chmod go-rwx)",
                if self.key.kind == Kind::KeyFile {
                    "key file"
                } else {
                    "private key"
                },
                match (self.mode & 0o040 != 0, self.mode & 0o004 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                },
                self.mode & 0o7777
            ));
        }
        if let Some(c) = &self.key.crypttab
            && c.key_file_found == Some(false)
        {
            out.push(format!(
                "the key file {} that crypttab line {} names for volume `{}` does not exist: the volume does not unlock at boot (carry the key file, or correct the entry)",
                c.key_file.as_deref().unwrap_or_default(),
                c.line,
                c.name
            ));
        }
        if let Some(c) = &self.key.crypttab
            && c.luks_found == Some(false)
        {
            out.push(format!(
                "crypttab line {} names volume `{}` on {}, but no LUKS header with that UUID is on this host: the volume does not open at boot (carry the volume, or correct the entry)",
                c.line,
                c.name,
                c.device
            ));
        }
        if let Some(r) = &self.key.reference
            && r.found == Some(false)
        {
            out.push(format!(
                "the file {} that line {} names ({} {}) does not exist: {} does not start with it (carry the file, or correct the configuration)",
                r.resolved.as_deref().unwrap_or(&r.target),
                r.line,
                r.service,
                r.directive,
                r.service
            ));
        }
        if let Some(l) = &self.key.luks
            && l.checksum_ok == Some(false)
        {
            out.push(format!(
                "the LUKS2 header {} does not match its checksum: damaged or altered (cryptsetup repair, or its backup)",
                l.uuid
            ));
        }
        out
    }
}

/// A certificate expiring within this many days is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

impl Found {
    /// What is about to go wrong with it: a certificate expired, or expiring within
    /// [`EXPIRY_WARNING_DAYS`] days of `now` (seconds since the epoch). Shown, not failed on.
    pub fn warnings_at(&self, now: i64) -> Vec<String> {
        let Some(c) = &self.key.certificate else {
            return Vec::new();
        };
        let left = c.not_after_unix.saturating_sub(now);
        if left <= 0 {
            vec![format!("certificate expired at {}: renew it", c.not_after)]
        } else if left < EXPIRY_WARNING_DAYS * 86_400 {
            vec![format!(
                "certificate expires at {}, in {} day(s): renew it before the migration's window ends",
                c.not_after,
                left / 86_400
            )]
        } else {
            Vec::new()
        }
    }

    /// [`Found::warnings_at`] now.
    pub fn warnings(&self) -> Vec<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.warnings_at(now)
    }
}

/// The keys found under some paths of one host, and what could not be examined.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub found: Vec<Found>,
    /// Each path that could not be examined, and why.
    pub errors: Vec<String>,
    /// Regular files examined (their first bytes read).
    pub files: u64,
    /// Files read whole because their first bytes could be key material.
    pub read: u64,
    /// Of the files examined, those not opened: the host's key scan cache knows them
    /// unchanged (path, device, inode, size, mtime, ctime) since a scan found nothing in them.
    #[serde(default)]
    pub cached: u64,
    /// What the scan says of the host's key scan cache: ignored (a planted, corrupt or
    /// foreign-owned file) or not written, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The path the scan was asked for, when one: paths below it are compared relative to it
    /// (`keys compare /srv/old /srv/new`); empty for absolute paths on both sides.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base: String,
}

impl Scan {
    /// `path` relative to the scan's [`base`](Scan::base).
    pub fn relative<'a>(&self, path: &'a str) -> &'a str {
        if self.base.is_empty() {
            return path;
        }
        match path.strip_prefix(self.base.trim_end_matches('/')) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        }
    }
}

impl Scan {
    /// An encrypted key whose public half is unknown takes it from a public key or certificate
    /// beside it: the same directory and the same name up to its first `.` (`site.key` and
    /// `site.crt`, `id_rsa` and `id_rsa.pub`). Run once after a scan.
    pub fn take_public_halves(&mut self) {
        let stem = |p: &str| -> (String, String) {
            let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
            let stem = name.split('.').next().unwrap_or(name);
            (dir.to_owned(), stem.to_owned())
        };
        let publics: Vec<(String, String, Key)> = self
            .found
            .iter()
            .filter(|f| !f.key.kind.is_private() && f.key.spki_sha256.is_some())
            .map(|f| {
                let (d, s) = stem(&f.path);
                (d, s, f.key.clone())
            })
            .collect();
        for f in &mut self.found {
            // Only a key with no identity of its own (a bundle, a key file, a LUKS header have
            // theirs).
            if f.key.identity().is_some() {
                continue;
            }
            let (d, s) = stem(&f.path);
            let beside: Vec<&Key> = publics
                .iter()
                .filter(|(pd, ps, _)| *pd == d && *ps == s)
                .map(|(_, _, k)| k)
                .collect();
            // Only an unambiguous public half.
            if let [k] = beside[..] {
                f.key.spki_sha256 = k.spki_sha256.clone();
                f.key.ssh_sha256 = k.ssh_sha256.clone();
                if f.key.algorithm.is_empty() || f.key.algorithm == "unknown" {
                    f.key.algorithm = k.algorithm.clone();
                    f.key.bits = k.bits;
                }
                f.key.unknown = None;
            }
        }
    }

    /// One finding per path and identity: a key found both in a scanned directory and through
    /// a configuration that names it is kept once, with every configuration that names it.
    /// Run once after a scan.
    pub fn merge_duplicates(&mut self) {
        let mut seen: std::collections::HashMap<(String, Option<String>), usize> =
            std::collections::HashMap::new();
        let mut out: Vec<Found> = Vec::with_capacity(self.found.len());
        for f in std::mem::take(&mut self.found) {
            // Findings without an identity of their own are kept as they are.
            let Some(id) = f.key.identity() else {
                out.push(f);
                continue;
            };
            match seen.get(&(f.path.clone(), Some(id.clone()))) {
                Some(&i) => {
                    for u in f.used_by {
                        if !out[i].used_by.contains(&u) {
                            out[i].used_by.push(u);
                        }
                    }
                }
                None => {
                    seen.insert((f.path.clone(), Some(id)), out.len());
                    out.push(f);
                }
            }
        }
        self.found = out;
    }

    /// A GnuPG agent key (known by its keygrip) takes the fingerprint, version, creation time
    /// and user ID of the OpenPGP key with the same keygrip found in the same scan (a keyring
    /// scanned with it). Its identity stays its keygrip. Run once after a scan.
    pub fn link_openpgp(&mut self) {
        let by_grip: std::collections::HashMap<String, OpenPgp> = self
            .found
            .iter()
            .filter(|f| f.key.kind != Kind::GpgAgentKey)
            .filter_map(|f| f.key.openpgp.as_ref())
            .filter(|o| o.fingerprint.is_some())
            .filter_map(|o| Some((o.keygrip.clone()?, o.clone())))
            .collect();
        for f in &mut self.found {
            if f.key.kind != Kind::GpgAgentKey {
                continue;
            }
            if let Some(o) = f.key.openpgp.as_mut()
                && let Some(k) = o.keygrip.as_ref().and_then(|g| by_grip.get(g))
            {
                o.fingerprint = k.fingerprint.clone();
                o.version = k.version;
                o.subkey = k.subkey;
                o.created = k.created;
                o.user_id = k.user_id.clone();
            }
        }
    }

    /// A crypttab entry naming its device by `UUID=` is linked to the LUKS header with that
    /// UUID found in the same scan (an image or device scanned with it): the entry says where
    /// the header is, and the header is used by the entry (`CRYPTTAB:LINE`). Run once after a
    /// scan.
    pub fn link_crypttab(&mut self) {
        let headers: Vec<(String, String)> = self
            .found
            .iter()
            .filter_map(|f| Some((f.key.luks.as_ref()?.uuid.to_lowercase(), f.path.clone())))
            .collect();
        let mut uses: Vec<(String, String)> = Vec::new();
        for f in &mut self.found {
            let Some(c) = f.key.crypttab.as_mut() else {
                continue;
            };
            let Some(uuid) = c.uuid().map(str::to_lowercase) else {
                continue;
            };
            if let Some((_, path)) = headers.iter().find(|(u, _)| *u == uuid) {
                c.luks_found = Some(true);
                c.luks_header = Some(path.clone());
                uses.push((path.clone(), format!("{}:{}", f.path, c.line)));
            }
        }
        for (path, used) in uses {
            for f in self
                .found
                .iter_mut()
                .filter(|f| f.path == path && f.key.luks.is_some())
            {
                if !f.used_by.contains(&used) {
                    f.used_by.push(used.clone());
                }
            }
        }
    }

    /// Whether a certificate's key is on the host: the path of a private key with the same
    /// public half.
    pub fn private_key_of(&self, cert: &Key) -> Option<&str> {
        let spki = cert.spki_sha256.as_ref()?;
        self.found
            .iter()
            .find(|f| f.key.kind.is_private() && f.key.spki_sha256.as_ref() == Some(spki))
            .map(|f| f.path.as_str())
    }

    /// [`Scan::private_key_of`] for every certificate at once: the path of the first private
    /// key found with each SPKI digest (a scan of a CA store lists thousands of certificates;
    /// asking each against every finding was quadratic).
    pub fn private_keys(&self) -> PrivateKeys<'_> {
        let mut by_spki = std::collections::HashMap::new();
        for f in &self.found {
            if f.key.kind.is_private()
                && let Some(spki) = f.key.spki_sha256.as_deref()
            {
                by_spki.entry(spki).or_insert(f.path.as_str());
            }
        }
        PrivateKeys(by_spki)
    }
}

/// The private keys of a scan by SPKI digest ([`Scan::private_keys`]).
pub struct PrivateKeys<'a>(std::collections::HashMap<&'a str, &'a str>);

impl<'a> PrivateKeys<'a> {
    /// Where the private key of `cert` (a certificate or public key) is, as
    /// [`Scan::private_key_of`] says.
    pub fn of(&self, cert: &Key) -> Option<&'a str> {
        self.0.get(cert.spki_sha256.as_deref()?).copied()
    }
}

#[cfg(test)]
mod tests;
