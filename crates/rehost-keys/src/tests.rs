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
    }
}

fn found(path: &str, mode: u32, key: Key) -> Found {
    Found {
        path: path.into(),
        uid: 0,
        gid: 0,
        mode,
        key,
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
