//! WireGuard configurations (`wg-quick`'s `/etc/wireguard/*.conf`): an `[Interface]`'s
//! `PrivateKey` is a private key whose public half is derived here — X25519 of the clamped
//! scalar and the base point, what `wg pubkey` prints — and a `[Peer]`'s `PresharedKey` is
//! symmetric material, identified by its keyed digest. Nothing of either is kept.

use crate::{Encoding, Key, Kind};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Whether the file at `path` (its path on the host) is a WireGuard configuration.
pub fn is_wireguard(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default();
    name.ends_with(".conf") && parts.any(|d| d == "wireguard")
}

/// The keys of a WireGuard configuration, and what could not be read (by line, never content).
pub fn parse_wireguard(bytes: &[u8], digest_key: &[u8; 32]) -> (Vec<Key>, Vec<String>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in bytes.split(|&c| c == b'\n').enumerate().take(100_000) {
        let n = i + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if !k.eq_ignore_ascii_case("PrivateKey") && !k.eq_ignore_ascii_case("PresharedKey") {
            continue;
        }
        let Some(key) = STANDARD
            .decode(v)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            errors.push(format!(
                "wireguard line {n}: its {k} is not 32 bytes in base64"
            ));
            continue;
        };
        if k.eq_ignore_ascii_case("PresharedKey") {
            keys.push(crate::key_file(&key, digest_key));
            continue;
        }
        let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(key).to_bytes();
        let public = STANDARD.encode(public);
        keys.push(Key {
            kind: Kind::WireguardPrivate,
            encoding: Encoding::Text,
            algorithm: "x25519".into(),
            bits: Some(253),
            encrypted: false,
            spki_sha256: None,
            // WireGuard's own name for the key: its public key as `wg pubkey` prints it.
            ssh_sha256: None,
            unknown: None,
            certificate: None,
            luks: None,
            crypttab: None,
            key_file: None,
            reference: None,
            pkcs12: None,
            wireguard_public: Some(public),
            openpgp: None,
            keytab: None,
        });
    }
    (keys, errors)
}
