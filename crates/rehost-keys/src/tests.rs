use super::*;
use proptest::prelude::*;

#[test]
fn sniffing_reads_only_what_can_be_key_material() {
    assert_eq!(
        sniff(b"-----BEGIN CERTIFICATE-----\n", 100),
        Some(Sniff::Pem)
    );
    assert_eq!(sniff(b"ssh-ed25519 AAAA", 100), Some(Sniff::SshPublic));
    // A DER SEQUENCE of the file's exact length, and not of another.
    let mut der = vec![0x30, 0x82, 0x01, 0x00];
    der.resize(4 + 256, 0);
    assert_eq!(sniff(&der, 260), Some(Sniff::Der));
    assert_eq!(sniff(&der, 261), None);
    assert_eq!(sniff(b"#!/bin/sh\necho hello\n", 21), None);
    assert_eq!(sniff(b"", 0), None);
    // Too large to be a key file.
    assert_eq!(sniff(b"ssh-rsa AAAA", MAX_DER + 1), None);
    assert_eq!(sniff(b"-----BEGIN CERTIFICATE-----", MAX_PEM + 1), None);
}

#[test]
fn a_pem_block_quoted_in_source_code_is_not_key_material() {
    let py = b"CERT = '-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----'\n";
    assert_eq!(parse(py), (Vec::new(), Vec::new()));
    // Framed as PEM but broken: said.
    let broken = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert_eq!(parse(broken).1.len(), 1);
}

fn key(kind: Kind, spki: &str) -> Key {
    Key {
        kind,
        encoding: Encoding::Pem,
        algorithm: "rsa".into(),
        bits: Some(2048),
        encrypted: false,
        spki_sha256: Some(spki.into()),
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

fn found(path: &str, mode: u32, key: Key) -> Found {
    Found {
        path: path.into(),
        uid: 0,
        gid: 0,
        mode,
        key,
        used_by: Vec::new(),
    }
}

#[test]
fn keys_are_matched_by_identity_whatever_their_path_or_format() {
    let old = Scan {
        found: vec![
            found("/etc/a.key", 0o600, key(Kind::Pkcs1Private, "aa")),
            found("/etc/b.key", 0o600, key(Kind::Pkcs8Private, "bb")),
            found("/etc/c.key", 0o600, key(Kind::Sec1Private, "cc")),
            found("/etc/a.pub", 0o644, key(Kind::PublicKey, "aa")),
        ],
        ..Scan::default()
    };
    let new = Scan {
        found: vec![
            // Same path, now PKCS#8: present.
            found("/etc/a.key", 0o600, key(Kind::Pkcs8Private, "aa")),
            // Elsewhere: moved.
            found("/srv/b.pem", 0o600, key(Kind::Pkcs1Private, "bb")),
            // c is missing; d is extra; a.pub's public key is not a private key's match.
            found("/etc/d.key", 0o640, key(Kind::Pkcs8Private, "dd")),
            found("/etc/a.pub", 0o644, key(Kind::PublicKey, "aa")),
        ],
        ..Scan::default()
    };
    let c = compare(&old, &new);
    let v = |p: &str| {
        c.keys
            .iter()
            .find(|k| k.old.first().or(k.new.first()).map(String::as_str) == Some(p))
            .unwrap()
            .verdict
    };
    assert_eq!(v("/etc/a.key"), Verdict::Present);
    assert_eq!(v("/etc/b.key"), Verdict::Moved);
    assert_eq!(v("/etc/c.key"), Verdict::Missing);
    assert_eq!(v("/etc/d.key"), Verdict::Extra);
    assert_eq!(v("/etc/a.pub"), Verdict::Present);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert_eq!(c.problems[0].side, "new");
    assert!(
        c.problems[0].what.contains("readable by its group"),
        "{}",
        c.problems[0].what
    );
    assert_eq!(c.exit_code, 1);
}

#[test]
fn an_unidentified_key_or_an_unread_path_leaves_the_comparison_unverified() {
    let mut enc = key(Kind::Pkcs8Encrypted, "x");
    enc.spki_sha256 = None;
    let old = Scan {
        found: vec![found("/etc/e.key", 0o600, enc)],
        ..Scan::default()
    };
    let c = compare(&old, &Scan::default());
    assert_eq!(c.exit_code, 2);
    assert_eq!(c.keys[0].verdict, Verdict::Unidentified);
    let old = Scan {
        errors: vec!["/etc/x: permission denied".into()],
        ..Scan::default()
    };
    let c = compare(&old, &Scan::default());
    assert_eq!((c.exit_code, c.errors.len()), (2, 1));
    assert_eq!(compare(&Scan::default(), &Scan::default()).exit_code, 0);
}

#[test]
fn a_private_key_readable_by_others_is_a_problem_and_a_public_one_is_not() {
    assert!(
        found("k", 0o600, key(Kind::Pkcs8Private, "a"))
            .problems()
            .is_empty()
    );
    assert_eq!(
        found("k", 0o604, key(Kind::Pkcs8Private, "a"))
            .problems()
            .len(),
        1
    );
    assert!(
        found("k", 0o644, key(Kind::Certificate, "a"))
            .problems()
            .is_empty()
    );
}

proptest! {
    /// Hostile bytes never panic the parsers, whatever they claim to be.
    #[test]
    fn parsing_any_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600), label in 0usize..6) {
        let labels = ["OPENSSH PRIVATE KEY", "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "CERTIFICATE", "ENCRYPTED PRIVATE KEY"];
        let _ = parse(&body);
        let mut der = vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8];
        der.extend_from_slice(&body);
        let _ = parse_as(Sniff::Der, &der);
        let b64: String = body.iter().map(|b| (b'A' + b % 26) as char).collect();
        let pem = format!("-----BEGIN {0}-----\n{b64}\n-----END {0}-----\n", labels[label]);
        let _ = parse(pem.as_bytes());
        let _ = parse_as(Sniff::SshPublic, format!("ssh-ed25519 {b64}").as_bytes());
    }
}

/// A LUKS2 binary header of `size` declared bytes followed by `json` (NUL-padded to `size`),
/// with its SHA-256 checksum as cryptsetup writes it.
fn luks2(size: u64, json: &str) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[..6].copy_from_slice(LUKS_MAGIC);
    b[6..8].copy_from_slice(&2u16.to_be_bytes());
    b[8..16].copy_from_slice(&size.to_be_bytes());
    b[72..78].copy_from_slice(b"sha256");
    b[168..172].copy_from_slice(b"u-u1");
    b.extend_from_slice(json.as_bytes());
    b.resize(size as usize, 0);
    use sha2::Digest;
    let sum = sha2::Sha256::digest(&b);
    b[448..480].copy_from_slice(&sum);
    b
}

#[test]
fn a_luks2_header_is_read_for_its_layout_and_its_checksum_checked() {
    let json = r#"{"keyslots":{"1":{"type":"luks2","key_size":64,"kdf":{"type":"argon2id","salt":"U0FMVFNBTFQ="}},"0":{"type":"luks2","key_size":64,"kdf":{"type":"pbkdf2","salt":"c2FsdA=="}}},"tokens":{"0":{"type":"systemd-tpm2","keyslots":["1"]}},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"}},"digests":{"0":{"type":"pbkdf2","hash":"sha256","salt":"ZGln","digest":"RElHRVNU"}},"config":{}}"#;
    let b = luks2(16 << 10, json);
    assert_eq!(sniff(&b[..HEAD], 1 << 30), Some(Sniff::Luks));
    assert_eq!(luks_len(&b), 16 << 10);
    let k = parse_luks(&b).unwrap();
    let l = k.luks.as_ref().unwrap();
    assert_eq!(l.uuid, "u-u1");
    assert_eq!(l.layout(), "luks2 0:pbkdf2 1:argon2id");
    assert_eq!(l.tokens, ["0:systemd-tpm2"]);
    assert_eq!(l.cipher, "aes-xts-plain64");
    assert_eq!(l.key_bits, Some(512));
    assert_eq!(l.checksum_ok, Some(true));
    // Nothing of the salts or the digest is kept.
    let all = serde_json::to_string(&k).unwrap();
    for s in ["U0FMVFNBTFQ=", "c2FsdA==", "ZGln", "RElHRVNU"] {
        assert!(!all.contains(s), "{all}");
    }
    // One byte of the JSON area changed: the checksum says so, a problem.
    let mut bad = b.clone();
    let at = 4096 + json.find("argon2id").unwrap();
    bad[at] = b'A';
    let k = parse_luks(&bad).unwrap();
    assert_eq!(k.luks.as_ref().unwrap().checksum_ok, Some(false));
    let f = found("/srv/img", 0o600, k);
    assert!(f.problems()[0].contains("does not match its checksum"));
}

#[test]
fn a_luks2_header_declaring_4_gib_is_refused_before_anything_is_read_for_it() {
    let mut b = luks2(16 << 10, "{}");
    b[8..16].copy_from_slice(&(4u64 << 30).to_be_bytes());
    // The scan reads only the binary header for it.
    assert_eq!(luks_len(&b), 4096);
    let e = parse_luks(&b[..4096]).unwrap_err();
    assert!(e.contains("declares a size of 4294967296 bytes"), "{e}");
    // Truncated, or a JSON area that is not JSON: errors, not panics.
    let b = luks2(32 << 10, "{}");
    assert!(parse_luks(&b[..20_000]).unwrap_err().contains("truncated"));
    let b = luks2(16 << 10, "{\"keyslots\": [");
    assert!(
        parse_luks(&b)
            .unwrap_err()
            .contains("JSON area does not read")
    );
}

proptest! {
    /// Random bytes after the magic (and a random version): an error or a header, never a
    /// panic, and never more read than `luks_len` allows.
    #[test]
    fn random_luks_headers_never_panic(
        version in 0u16..4,
        rest in proptest::collection::vec(any::<u8>(), 0..6000),
    ) {
        let mut b = LUKS_MAGIC.to_vec();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&rest);
        prop_assert!(luks_len(&b) <= MAX_LUKS2_HEADER);
        let _ = parse_luks(&b);
        let _ = parse(&b);
    }

    /// Random configuration text of every service: references or errors, never a panic.
    #[test]
    fn random_configurations_never_panic(t in "[a-zA-Z_ /=#\t\n:<>'\";.$-]{0,400}") {
        for path in [
            "/etc/nginx/nginx.conf",
            "/etc/apache2/a.conf",
            "/etc/postgresql.conf",
            "/etc/ssh/sshd_config",
            "/etc/openvpn/a.conf",
            "/etc/haproxy/h.cfg",
        ] {
            let s = config_service(path).unwrap();
            let _ = parse_config(s, path, t.as_bytes(), &[0; 32]);
        }
    }

    /// Random crypttab text: entries or errors by line number, never a panic.
    #[test]
    fn random_crypttabs_never_panic(t in "[a-z /=#\t\n:-]{0,400}") {
        let _ = parse_crypttab(t.as_bytes());
    }
}

#[test]
fn a_crypttab_is_read_by_its_fields_and_a_line_of_1_mib_is_refused() {
    let mut t = b"# <name> <device> <key> <options>\n\
        root UUID=abc /etc/keys/root.key luks,discard\n\
        swap /dev/sdb2 /dev/urandom swap\n\
        home PARTUUID=1 none luks\n\
        usb /dev/sdc1 /keys/usb.key:UUID=77 luks\n\
        broken\n"
        .to_vec();
    t.extend(std::iter::repeat_n(b'x', 1 << 20));
    t.extend_from_slice(b"\nlast /dev/sdd1\n");
    let (keys, errors) = parse_crypttab(&t);
    let c: Vec<&Crypttab> = keys.iter().map(|k| k.crypttab.as_ref().unwrap()).collect();
    assert_eq!(c.len(), 5, "{c:?}");
    assert_eq!(
        (c[0].line, c[0].name.as_str(), c[0].device.as_str()),
        (2, "root", "UUID=abc")
    );
    assert_eq!(c[0].key_file_to_read(), Some("/etc/keys/root.key"));
    assert_eq!(c[0].options, "luks,discard");
    assert_eq!(c[1].key_file_to_read(), None, "a device is not read");
    assert_eq!(c[2].key_file, None, "`none`: a passphrase");
    assert_eq!(c[3].key_file_to_read(), None, "on another device");
    assert!(c[3].key_file_note.is_some());
    assert_eq!((c[4].line, c[4].name.as_str()), (8, "last"));
    assert_eq!(
        errors,
        [
            "crypttab line 6 has fewer than two fields (name and device)",
            "crypttab line 7 is longer than 4096 bytes: not read"
        ]
    );
    // Identity by name, device and key file; a missing key file is a problem.
    assert_eq!(
        keys[0].identity().unwrap(),
        "crypttab:root:UUID=abc:/etc/keys/root.key"
    );
    let mut k = keys[0].clone();
    k.crypttab.as_mut().unwrap().key_file_found = Some(false);
    assert!(found("/etc/crypttab", 0o644, k).problems()[0].contains("does not exist"));
}

#[test]
fn a_key_file_digest_is_keyed_and_says_nothing_without_its_key() {
    let a = DigestKey([1; 32]);
    let b = DigestKey([2; 32]);
    let pass = b"hunter2\n";
    let k1 = key_file(pass, &a.0);
    let k2 = key_file(pass, &b.0);
    let k1b = key_file(pass, &a.0);
    assert_eq!(
        k1.identity(),
        k1b.identity(),
        "the same key: the same digest"
    );
    assert_ne!(k1.identity(), k2.identity(), "another key: another digest");
    let plain = blake3::hash(pass).to_hex().to_string();
    assert!(!serde_json::to_string(&k1).unwrap().contains(&plain));
    // A short file's length is not said; a key's is.
    assert_eq!(k1.key_file.as_ref().unwrap().bytes, None);
    assert_eq!(key_file(&[7; 64], &a.0).key_file.unwrap().bytes, Some(64));
    // The digest key round-trips as hex and its Debug hides it.
    let s = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<DigestKey>(&s).unwrap(), a);
    assert_eq!(format!("{a:?}"), "DigestKey(…)");
    assert!(serde_json::from_str::<DigestKey>("\"zz\"").is_err());
    // A key file readable by others is a problem like a private key.
    let f = found("/etc/keys/k", 0o644, k1);
    assert!(f.problems()[0].starts_with("key file readable by"));
}

/// `(directive, line, resolved)` of each reference a configuration gives.
fn refs(path: &str, text: &str) -> Vec<(String, u32, Option<String>)> {
    let s = config_service(path).unwrap_or_else(|| panic!("{path} is no configuration"));
    parse_config(s, path, text.as_bytes(), &[0; 32])
        .0
        .into_iter()
        .filter_map(|k| k.reference)
        .map(|r| (r.directive, r.line, r.resolved))
        .collect()
}

fn r(d: &str, line: u32, p: &str) -> (String, u32, Option<String>) {
    (d.into(), line, Some(p.into()))
}

#[test]
fn each_service_configuration_names_its_key_files_as_the_service_resolves_them() {
    assert_eq!(config_service("/etc/motd"), None);
    assert_eq!(config_service("/etc/openvpn/README"), None);
    assert_eq!(
        refs(
            "/etc/nginx/sites-enabled/default",
            "server {\n  # ssl_certificate /no.crt;\n  ssl_certificate /etc/ssl/a.crt;\n  ssl_certificate_key \"ssl/a.key\";\n  ssl_certificate $var;\n}\n"
        ),
        [
            r("ssl_certificate", 3, "/etc/ssl/a.crt"),
            r("ssl_certificate_key", 4, "/etc/nginx/ssl/a.key"),
            ("ssl_certificate".into(), 5, None),
        ]
    );
    assert_eq!(
        refs(
            "/etc/apache2/sites-enabled/s.conf",
            "<VirtualHost *:443>\n\tsslcertificatekeyfile /etc/ssl/private/a.key\n\tSSLCertificateFile certs/a.crt\n"
        ),
        [
            r("SSLCertificateKeyFile", 2, "/etc/ssl/private/a.key"),
            r("SSLCertificateFile", 3, "/etc/apache2/certs/a.crt"),
        ]
    );
    // Relative to the data directory.
    assert_eq!(
        refs(
            "/etc/postgresql/16/main/postgresql.conf",
            "data_directory = '/var/lib/postgresql/16/main'\nssl_cert_file = 'server.crt'\t# the certificate\nssl_key_file='/etc/ssl/private/pg.key'\n#ssl_ca_file = ''\n"
        ),
        [
            r("ssl_cert_file", 2, "/var/lib/postgresql/16/main/server.crt"),
            r("ssl_key_file", 3, "/etc/ssl/private/pg.key"),
        ]
    );
    assert_eq!(
        refs(
            "/srv/pg/postgresql.conf",
            "ssl_key_file 'server.key'\nssl_cert_file = server.crt#x\n"
        ),
        [
            r("ssl_key_file", 1, "/srv/pg/server.key"),
            r("ssl_cert_file", 2, "/srv/pg/server.crt")
        ]
    );
    assert_eq!(
        refs(
            "/etc/ssh/sshd_config.d/10-keys.conf",
            "hostkey /etc/ssh/ssh_host_ed25519_key\nHostCertificate /etc/ssh/c.pub\n"
        ),
        [
            r("HostKey", 1, "/etc/ssh/ssh_host_ed25519_key"),
            r("HostCertificate", 2, "/etc/ssh/c.pub"),
        ]
    );
    assert_eq!(
        refs(
            "/etc/haproxy/haproxy.cfg",
            "global\n  crt-base /etc/ssl/haproxy\nfrontend web\n  bind :443 ssl crt site.pem ca-file /etc/ssl/ca.pem\n"
        ),
        [
            r("crt", 4, "/etc/ssl/haproxy/site.pem"),
            r("ca-file", 4, "/etc/ssl/ca.pem")
        ]
    );
}

#[test]
fn an_openvpn_configuration_names_files_and_holds_inline_keys() {
    let text = "client\nca ca.crt\nkey /etc/openvpn/client.key\ntls-auth ta.key 1\ncert [inline]\n<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\n0123abcd\n-----END OpenVPN Static key V1-----\n</tls-crypt>\n<key>\n-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n</key>\n<ca>\nunclosed\n";
    let path = "/etc/openvpn/client/c.conf";
    assert_eq!(
        refs(path, text),
        [
            r("ca", 2, "/etc/openvpn/client/ca.crt"),
            r("key", 3, "/etc/openvpn/client.key"),
            r("tls-auth", 4, "/etc/openvpn/client/ta.key"),
        ]
    );
    let (keys, errors) = parse_config(Service::Openvpn, path, text.as_bytes(), &[9; 32]);
    let statics: Vec<&Key> = keys.iter().filter(|k| k.kind == Kind::KeyFile).collect();
    assert_eq!(
        statics.len(),
        1,
        "the inline static key, by its keyed digest"
    );
    assert!(!serde_json::to_string(&keys).unwrap().contains("0123abcd"));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("inline block <key> at line 11"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("<ca> from line 16 is not closed"),
        "{errors:?}"
    );
    // The broken key's content is not in the error.
    assert!(!errors.iter().any(|e| e.contains("not base64")));
}

proptest! {
    /// Random DER-framed bytes (a SEQUENCE the file's length, as the sniffer wants): read as a
    /// key, a certificate or a PKCS#12 bundle, or not at all; never a panic.
    #[test]
    fn random_der_structures_never_panic(
        body in proptest::collection::vec(any::<u8>(), 16..3000),
        version in any::<bool>(),
    ) {
        let mut b = vec![0x30, 0x82];
        b.extend_from_slice(&(body.len() as u16 + if version { 3 } else { 0 }).to_be_bytes());
        if version {
            b.extend_from_slice(&[0x02, 0x01, 0x03]);
        }
        b.extend_from_slice(&body);
        let _ = parse(&b);
        let _ = parse_pkcs12(&b);
    }

    /// Random WireGuard configuration text: keys or errors by line, never a panic.
    #[test]
    fn random_wireguard_configurations_never_panic(t in "[a-zA-Z0-9+/= \\n\\[\\]]{0,400}") {
        let _ = parse_wireguard(t.as_bytes(), &[0; 32]);
    }
}

#[test]
fn a_certificate_expiring_within_30_days_is_warned_of_and_not_failed_on() {
    let mut k = key(Kind::Certificate, "cc");
    k.certificate = Some(Certificate {
        subject: "CN=a".into(),
        issuer: "CN=a".into(),
        serial: "01".into(),
        not_before: "2026-01-01T00:00:00Z".into(),
        not_after: "2026-02-01T00:00:00Z".into(),
        not_after_unix: 1_769_904_000,
        sha256: "ab".into(),
        self_signed: true,
    });
    let f = found("/etc/ssl/a.crt", 0o644, k);
    let day = 86_400;
    assert!(f.warnings_at(1_769_904_000 - 31 * day).is_empty());
    let w = f.warnings_at(1_769_904_000 - 10 * day);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("expires at 2026-02-01T00:00:00Z, in 10 day(s)"),
        "{w:?}"
    );
    assert!(f.warnings_at(1_769_904_000 + 1)[0].contains("expired at"));
    assert!(f.problems().is_empty(), "a warning, not a problem");
    // In a comparison: listed for its side, and the exit code unchanged.
    let s = Scan {
        found: vec![f],
        ..Scan::default()
    };
    let c = compare(&s, &s);
    assert_eq!(c.exit_code, 0);
    assert_eq!(c.warnings.len(), 2, "{c:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// OpenPGP packets, keyboxes, agent key files and keytabs from a hostile host: any bytes
    /// after a plausible first header end in findings or errors, never a panic.
    #[test]
    fn random_openpgp_keytab_and_agent_key_files_never_panic(
        first in prop_oneof![Just(0x95u8), Just(0x99), Just(0xc5), Just(0xc6), Just(0x05), any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        sexp in "[()0-9a-z: #\"\n]{0,300}",
    ) {
        let mut b = vec![first];
        b.extend_from_slice(&body);
        let _ = crate::parse_openpgp(&b);
        let mut kbx = vec![0, 0, 0, 32, 1, 1, 0, 2, b'K', b'B', b'X', b'f'];
        kbx.extend_from_slice(&body);
        let _ = crate::parse_openpgp(&kbx);
        let mut kt = vec![5, 2];
        kt.extend_from_slice(&body);
        let _ = crate::parse_keytab(&kt, &[7; 32]);
        let _ = crate::parse_gpg_agent_key("/g/private-keys-v1.d/AA.key", sexp.as_bytes());
        let mut armored = b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n".to_vec();
        armored.extend_from_slice(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &b).as_bytes());
        armored.extend_from_slice(b"\n-----END PGP PRIVATE KEY BLOCK-----\n");
        let _ = crate::parse(&armored);
    }
}

#[test]
fn a_gnupg_agent_key_file_is_named_by_its_keygrip_and_a_renamed_rsa_one_is_said() {
    // An RSA modulus with its top bit set: libgcrypt's keygrip hashes it with a leading zero.
    let n = [0xc0u8; 16];
    let grip = {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        h.update([0]);
        h.update(n);
        crate::parse::hex(&h.finalize()).to_uppercase()
    };
    let hexn: String = n.iter().map(|b| format!("{b:02X}")).collect();
    let file = format!(
        "Created: 20261207T072503\nKey: (protected-private-key (rsa (n #00{hexn}#)\n (e #010001#)(protected openpgp-s2k3-ocb-aes ((sha1 #00#\n \"1\")#00#)#AA#)))\n"
    );
    let (k, e) =
        crate::parse_gpg_agent_key(&format!("/g/private-keys-v1.d/{grip}.key"), file.as_bytes());
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(k[0].kind, Kind::GpgAgentKey);
    assert!(k[0].encrypted);
    let o = k[0].openpgp.as_ref().unwrap();
    assert_eq!(
        (o.keygrip.as_deref(), o.keygrip_from.as_str()),
        (Some(grip.as_str()), "computed")
    );
    assert_eq!(k[0].identity(), Some(format!("private:gpg-keygrip:{grip}")));
    // The same file under another name: the computed keygrip stands, and the name is said.
    let other = "0".repeat(40);
    let (k, e) = crate::parse_gpg_agent_key(
        &format!("/g/private-keys-v1.d/{other}.key"),
        file.as_bytes(),
    );
    assert_eq!(
        k[0].openpgp.as_ref().unwrap().keygrip.as_deref(),
        Some(grip.as_str())
    );
    assert!(e[0].contains("renamed or altered"), "{e:?}");
    // Canonical S-expressions (GnuPG 2.1's format) read the same; an ECC key on a curve
    // libgcrypt's table has gets its keygrip computed (and a wrong name said), one on another
    // curve takes its name's.
    let canon = b"(21:protected-private-key(3:ecc(5:curve7:Ed25519)(1:q3:abc)))";
    let (k, e) = crate::parse_gpg_agent_key(&format!("/g/private-keys-v1.d/{other}.key"), canon);
    assert_eq!(k[0].algorithm, "ecc-ed25519");
    assert_eq!(k[0].openpgp.as_ref().unwrap().keygrip_from, "computed");
    assert!(e[0].contains("renamed or altered"), "{e:?}");
    let canon = b"(21:protected-private-key(3:ecc(5:curve5:Ed448)(1:q3:abc)))";
    let (k, e) = crate::parse_gpg_agent_key(&format!("/g/private-keys-v1.d/{other}.key"), canon);
    assert_eq!(k[0].algorithm, "ecc-ed448");
    assert_eq!(k[0].openpgp.as_ref().unwrap().keygrip_from, "file name");
    assert!(e.is_empty(), "{e:?}");
    assert!(crate::is_gpg_agent_key(&format!(
        "/root/.gnupg/private-keys-v1.d/{grip}.key"
    )));
    assert!(!crate::is_gpg_agent_key(
        "/root/.gnupg/private-keys-v1.d/x.key"
    ));
}

#[test]
fn bytes_that_only_look_like_a_key_packet_are_not_an_error() {
    // An old-format tag-6 header, version 4, a length that fits, then garbage.
    let mut b = vec![0x99, 0x00, 0x20, 4];
    b.extend_from_slice(&[0xff; 40]);
    assert_eq!(
        crate::sniff(&b, b.len() as u64),
        Some(crate::Sniff::OpenPgp)
    );
    assert_eq!(crate::parse_openpgp(&b), (Vec::new(), Vec::new()));
}

/// RFC 9580's own samples: the v6 certificate of appendix A.3 (Ed25519 primary, X25519
/// subkey) and the v4 Ed25519 legacy key of A.2, with the fingerprints the RFC gives. (GnuPG
/// 2.2 here makes no v6 key: these are the v6 check.)
#[test]
fn rfc_9580_sample_keys_have_the_fingerprints_the_rfc_gives() {
    let v6 = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n\
xioGY4d/4xsAAAAg+U2nu0jWCmHlZ3BqZYfQMxmZu52JGggkLq2EVD34laPCsQYf\n\
GwoAAABCBYJjh3/jAwsJBwUVCg4IDAIWAAKbAwIeCSIhBssYbE8GCaaX5NUt+mxy\n\
KwwfHifBilZwj2Ul7Ce62azJBScJAgcCAAAAAK0oIBA+LX0ifsDm185Ecds2v8lw\n\
gyU2kCcUmKfvBXbAf6rhRYWzuQOwEn7E/aLwIwRaLsdry0+VcallHhSu4RN6HWaE\n\
QsiPlR4zxP/TP7mhfVEe7XWPxtnMUMtf15OyA51YBM4qBmOHf+MZAAAAIIaTJINn\n\
+eUBXbki+PSAld2nhJh/LVmFsS+60WyvXkQ1wpsGGBsKAAAALAWCY4d/4wKbDCIh\n\
BssYbE8GCaaX5NUt+mxyKwwfHifBilZwj2Ul7Ce62azJAAAAAAQBIKbpGG2dWTX8\n\
j+VjFM21J0hqWlEg+bdiojWnKfA5AQpWUWtnNwDEM0g12vYxoWM8Y81W+bHBw805\n\
I8kWVkXU6vFOi+HWvv/ira7ofJu16NnoUkhclkUrk0mXubZvyl4GBg==\n\
-----END PGP PUBLIC KEY BLOCK-----\n";
    let (keys, errors) = crate::parse(v6.as_bytes());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let o = keys[0].openpgp.as_ref().unwrap();
    assert_eq!(o.version, Some(6));
    assert_eq!(
        o.fingerprint.as_deref(),
        Some("CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9")
    );
    assert_eq!(
        (keys[0].kind, keys[0].algorithm.as_str()),
        (Kind::OpenpgpPublic, "ed25519")
    );
    assert_eq!(keys[1].algorithm, "x25519");
    assert!(keys[1].openpgp.as_ref().unwrap().subkey);
    let v4 = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n\
xjMEU/NfCxYJKwYBBAHaRw8BAQdAPwmJlL3ZFu1AUxl5NOSofIBzOhKA1i+AEJku\n\
Q+47JAY=\n\
-----END PGP PUBLIC KEY BLOCK-----\n";
    let (keys, _) = crate::parse(v4.as_bytes());
    assert_eq!(
        keys[0].openpgp.as_ref().unwrap().fingerprint.as_deref(),
        Some("C959BDBAFA32A2F89A153B678CFDE12197965A9A")
    );
    assert_eq!(keys[0].algorithm, "eddsa-ed25519");
}

/// `parse::name_text` (the certificate names with their attribute names remembered) writes
/// what x509-cert's `Display` writes: escapes, several values in one RDN, an unnamed OID, a
/// value that is not a string.
#[test]
fn certificate_names_are_written_as_x509_cert_writes_them() {
    use std::str::FromStr;
    for s in [
        "CN=example.org,O=Example\\, Inc.,C=DE",
        "CN=a+OU=b,O=c",
        "CN=\\#hash\\ ,L=x\\;y\\<z\\>",
        "UID=someone,DC=example,DC=org",
        "1.2.3.4=#0403616263,CN=x",
        "CN=,O=\\\"quoted\\\"",
        "EMAILADDRESS=ops@example.org,CN=ops",
    ] {
        let n = x509_cert::name::Name::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(crate::parse::name_text(&n), n.to_string(), "{s}");
    }
}
