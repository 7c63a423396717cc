//! The scanner against material made by the real tools: every key is found with the kind and
//! the fingerprints `ssh-keygen -lf` and `openssl pkey -pubout -outform DER | sha256sum` give.

use rehost_keys::{Found, Kind, Scan, parse};
use rehost_test::TestDir;

#[test]
fn every_key_the_tools_make_is_found_with_the_tools_fingerprints() {
    let t = TestDir::new();
    let (made, _) = rehost_test::keys::make_all(t.path());
    for m in &made {
        let bytes = std::fs::read(t.path().join(&m.path)).unwrap();
        let (keys, errors) = parse(&bytes);
        assert!(errors.is_empty(), "{}: {errors:?}", m.path);
        assert_eq!(keys.len(), 1, "{}: {keys:?}", m.path);
        let k = &keys[0];
        assert_eq!(k.kind.name(), m.kind, "{}", m.path);
        if let Some(fp) = &m.ssh_sha256 {
            assert_eq!(k.ssh_sha256.as_ref(), Some(fp), "{}", m.path);
        }
        if let Some(fp) = m
            .spki_sha256
            .as_ref()
            .filter(|_| m.kind != "pkcs8-encrypted")
        {
            assert_eq!(k.spki_sha256.as_ref(), Some(fp), "{}: {k:?}", m.path);
        }
        if let Some(fp) = &m.cert_sha256 {
            assert_eq!(
                k.certificate.as_ref().map(|c| &c.sha256),
                Some(fp),
                "{}",
                m.path
            );
        }
        if m.kind == "pkcs8-encrypted" {
            assert!(
                k.encrypted && k.spki_sha256.is_none() && k.unknown.is_some(),
                "{}",
                m.path
            );
        }
        if m.path.contains("_pass") && m.kind == "ssh-private" {
            assert!(
                k.encrypted,
                "{}: a passphrase-protected key says so",
                m.path
            );
        }
        // An SSH key and its OpenSSH `.pub` have one identity; an SSH key also has the SPKI
        // fingerprint openssl would give its public half.
        if k.kind == Kind::SshPrivate && !m.path.contains("ed25519") {
            let spki =
                rehost_test::keys::ssh_public_spki_sha256(t.path(), &format!("{}.pub", m.path));
            assert_eq!(k.spki_sha256.as_ref(), Some(&spki), "{}", m.path);
        }
    }
    // As a scan: an encrypted key takes its public half from the public key beside it, and a
    // certificate finds its private key.
    let mut scan = Scan::default();
    for m in &made {
        let bytes = std::fs::read(t.path().join(&m.path)).unwrap();
        for key in parse(&bytes).0 {
            scan.found.push(Found {
                path: m.path.clone(),
                uid: 0,
                gid: 0,
                mode: 0o600,
                key,
                used_by: Vec::new(),
            });
        }
    }
    scan.take_public_halves();
    for m in made.iter().filter(|m| m.kind == "pkcs8-encrypted") {
        let f = scan.found.iter().find(|f| f.path == m.path).unwrap();
        assert_eq!(f.key.spki_sha256, m.spki_sha256, "{}", m.path);
    }
    let cert = scan
        .found
        .iter()
        .find(|f| f.path == "ssl/site.crt")
        .unwrap();
    assert_eq!(scan.private_key_of(&cert.key), Some("ssl/private/site.key"));
    assert_eq!(
        scan.private_keys().of(&cert.key),
        Some("ssl/private/site.key")
    );
    let certs: Vec<_> = made.iter().filter(|m| m.kind == "certificate").collect();
    assert_eq!(certs.len(), 3);
    let leaf = parse(&std::fs::read(t.path().join("ssl/leaf.crt")).unwrap())
        .0
        .remove(0);
    let c = leaf.certificate.unwrap();
    assert_eq!(c.subject, "CN=leaf.example");
    assert_eq!(c.issuer, "O=Example,CN=Test CA");
    assert!(!c.self_signed);
    assert!(c.not_after > c.not_before && c.not_after.ends_with('Z'));
}

#[test]
fn an_ssh_key_converted_by_openssl_keeps_its_identity() {
    let t = TestDir::new();
    let (_, _) = rehost_test::keys::make_all(t.path());
    let out = std::process::Command::new("sh")
        .arg("-ec")
        .arg("cp ssh/id_rsa conv && ssh-keygen -q -p -N '' -m PEM -f conv && openssl pkey -in conv -out conv8")
        .current_dir(t.path())
        .status()
        .unwrap();
    assert!(out.success());
    let id = |f: &str| {
        parse(&std::fs::read(t.path().join(f)).unwrap()).0[0]
            .identity()
            .unwrap()
    };
    assert_eq!(id("ssh/id_rsa"), id("conv"));
    assert_eq!(id("ssh/id_rsa"), id("conv8"));
    assert_ne!(
        id("ssh/id_rsa"),
        id("ssh/id_rsa.pub"),
        "a public key is not its private key"
    );
}
