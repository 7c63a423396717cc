//! GnuPG keys, Kerberos keytabs and password-protected PKCS#12 bundles made by the real tools
//! (`gpg`, `ktutil`, `openssl pkcs12`): `keys scan` reports the fingerprints `gpg
//! --with-colons` prints, the principals, key versions and encryption types `klist -kte`
//! lists, and with `--password-file` what a bundle holds under its password; `keys compare`
//! matches them between two systems (a keytab entry by a keyed digest of its key); over ssh
//! the scan finds the same; the report's Keys section; and nothing of a secret key, a keytab's
//! key, a passphrase or a password is printed or kept.

use crate::keys::{json, sh};
use crate::support::*;
use rehost_test::TestDir;
use rehost_test::keys::{make_gpg, make_keytab};
use rehost_test::sshd::Sshd;

fn of_kind<'a>(v: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    v["scans"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] == kind)
        .collect()
}

fn at<'a>(ks: &[&'a serde_json::Value], path: &str) -> Vec<&'a serde_json::Value> {
    ks.iter()
        .copied()
        .filter(|k| k["path"].as_str().unwrap().ends_with(path))
        .collect()
}

fn fpr(k: &serde_json::Value) -> &str {
    k["openpgp"]["fingerprint"].as_str().unwrap_or_default()
}

#[test]
fn gnupg_keys_and_keytabs_are_found_with_the_tools_fingerprints_and_nothing_secret_printed() {
    let d = TestDir::new();
    let (gpg, mut secrets) = make_gpg(&d.join("old"));
    std::fs::create_dir_all(d.join("old/etc")).unwrap();
    let (klist, ks) = make_keytab(&d.join("old"), "etc/krb5.keytab");
    secrets.0.extend(ks.0);
    // The check has teeth: it fires on the files themselves.
    for f in [
        "old/export/secret.asc",
        "old/export/secret.gpg",
        "old/etc/krb5.keytab",
    ] {
        let bytes = std::fs::read(d.join(f)).unwrap();
        assert!(
            std::panic::catch_unwind(|| secrets.assert_absent(f, &bytes)).is_err(),
            "{f}"
        );
    }
    let o = rehost(&d, &["keys", "scan", "old", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
    let v = json(&o);

    // Every secret key and subkey in both exports (the binary one: the RSA key) and in the
    // keybox, by the fingerprint gpg prints.
    let sec = of_kind(&v, "openpgp-secret");
    let asc: Vec<&str> = at(&sec, "/export/secret.asc")
        .into_iter()
        .map(fpr)
        .collect();
    assert_eq!(asc, gpg.fingerprints, "{v}");
    let bin: Vec<&str> = at(&sec, "/export/secret.gpg")
        .into_iter()
        .map(fpr)
        .collect();
    assert_eq!(bin, gpg.fingerprints[..2], "{v}");
    assert!(
        at(&sec, "/export/secret.asc")[0]["encrypted"] == true,
        "{v}"
    );
    assert!(
        at(&sec, "/export/secret.asc")[2]["encrypted"] == false,
        "{v}"
    );
    assert_eq!(at(&sec, "/export/secret.asc")[0]["openpgp"]["version"], 4);
    assert_eq!(
        at(&sec, "/export/secret.asc")[0]["openpgp"]["user_id"],
        "RSA Test <rsa@example.org>"
    );
    assert_eq!(
        at(&sec, "/export/secret.asc")[2]["algorithm"],
        "eddsa-ed25519"
    );
    let public: Vec<&str> = at(&of_kind(&v, "openpgp-public"), "/gnupg/pubring.kbx")
        .into_iter()
        .map(fpr)
        .collect();
    assert_eq!(public, gpg.fingerprints, "{v}");

    // The agent's key files by keygrip: each keygrip computed as libgcrypt does — RSA, and
    // the elliptic-curve keys Ed25519, Curve25519 (cv25519) and NIST P-256 — equal to the
    // `grp` gpg prints, and its OpenPGP key found in the keybox beside it.
    let agent = of_kind(&v, "gpg-agent-key");
    assert_eq!(agent.len(), gpg.keygrips.len(), "{v}");
    for (grip, fp) in &gpg.keygrips {
        let k = at(&agent, &format!("/private-keys-v1.d/{grip}.key"));
        assert_eq!(k.len(), 1, "{grip}: {v}");
        assert_eq!(k[0]["openpgp"]["keygrip"], *grip, "{v}");
        assert_eq!(k[0]["openpgp"]["keygrip_from"], "computed", "{grip}: {v}");
        assert_eq!(fpr(k[0]), fp, "{grip}: {v}");
        assert_eq!(
            k[0]["encrypted"],
            gpg.protected_keygrips.contains(grip),
            "{grip}: {v}"
        );
    }
    // And each OpenPGP secret key in the export carries the keygrip gpg prints for it.
    for (grip, fp) in &gpg.keygrips {
        let k: Vec<_> = at(&sec, "/export/secret.asc")
            .into_iter()
            .filter(|k| fpr(k) == fp)
            .collect();
        assert_eq!(k.len(), 1, "{fp}: {v}");
        assert_eq!(k[0]["openpgp"]["keygrip"], *grip, "{fp}: {v}");
    }
    // A key file renamed: its computed keygrip stands (an Ed25519 one as well as RSA), and
    // the scan says so.
    let (ed_grip, _) = gpg.curves.iter().find(|(_, a)| a == "ed25519").unwrap();
    let moved = d.join("renamed/private-keys-v1.d");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::copy(
        d.join(&format!("old/gnupg/private-keys-v1.d/{ed_grip}.key")),
        moved.join(format!("{}.key", "A".repeat(40))),
    )
    .unwrap();
    let o = rehost(&d, &["keys", "scan", "renamed", "--json"]);
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    let r = json(&o);
    assert_eq!(
        r["scans"][0]["keys"][0]["openpgp"]["keygrip"], *ed_grip,
        "{r}"
    );
    assert!(
        r["scans"][0]["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("renamed or altered"),
        "{r}"
    );
    std::fs::remove_dir_all(d.join("renamed")).unwrap();

    // The keytab: what klist lists, and a digest of each key.
    let kt = of_kind(&v, "kerberos-key");
    assert_eq!(kt.len(), 2, "{v}");
    for (k, e) in kt.iter().zip(&klist) {
        assert_eq!(k["keytab"]["principal"], e.principal, "{v}");
        assert_eq!(k["keytab"]["kvno"], e.kvno, "{v}");
        assert_eq!(k["keytab"]["enctype"], e.enctype, "{v}");
        assert!(
            k["keytab"]["digest"]
                .as_str()
                .unwrap()
                .starts_with("blake3-keyed:")
        );
    }

    // The human view names the same.
    let o = rehost(&d, &["keys", "scan", "old"]);
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    for fp in &gpg.fingerprints {
        assert!(o.stdout.contains(&format!("openpgp:{fp}")), "{}", o.stdout);
    }
    assert!(
        o.stdout
            .contains("kerberos aes256-cts-hmac-sha1-96  krb5:host/db.example@EXAMPLE.ORG kvno 3"),
        "{}",
        o.stdout
    );

    // A copy on the new system: every key present. The keytab made again by ktutil holds the
    // same keys (the same password and principal derive the same key): present too.
    sh(&d, "mkdir new && cp -a old/gnupg old/export new/");
    std::fs::create_dir_all(d.join("new/etc")).unwrap();
    make_keytab(&d.join("new"), "etc/krb5.keytab");
    let o = rehost(&d, &["keys", "compare", "old", "new", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    let c = json(&o);
    assert!(
        c["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["verdict"] == "present"),
        "{c}"
    );
    // A keytab written again with another key for one principal and without the other, an
    // agent key gone: three missing, one extra.
    let rsa_grip = &gpg.rsa_keygrips[0];
    std::fs::remove_file(d.join(&format!("new/gnupg/private-keys-v1.d/{rsa_grip}.key"))).unwrap();
    sh(
        &d,
        "cd new/etc && rm krb5.keytab && (echo 'addent -key -p HTTP/web.example@EXAMPLE.ORG -k 7 -e aes128-cts-hmac-sha1-96'; sleep 0.3; echo ffeeddccbbaa99887766554433221100; sleep 0.3; echo 'wkt krb5.keytab'; sleep 0.3) | ktutil >/dev/null",
    );
    let o = rehost(&d, &["keys", "compare", "old", "new"]);
    assert_eq!(o.code, 1, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    assert!(
        o.stdout.contains(&format!(
            "missing  {}  gpg-agent-key rsa 3072 keygrip:{rsa_grip}",
            d.join(&format!("old/gnupg/private-keys-v1.d/{rsa_grip}.key"))
                .display()
        )),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(
            "kerberos-key kerberos aes128-cts-hmac-sha1-96 krb5:HTTP/web.example@EXAMPLE.ORG kvno 7"
        ),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(" 3 missing, 1 extra"), "{}", o.stdout);
}

/// In `dir` (made): `p12/site.p12`, an EC key and its self-signed certificate exported by
/// `openssl pkcs12` under a password (OpenSSL 3's default: PBES2, AES-256-CBC), and
/// `pw.txt` (0600) holding a wrong password and the right one. Returns the key's SPKI digest
/// as openssl prints it, the certificate's SHA-256, and the secrets (the password, the key's
/// PEM body).
fn make_p12(dir: &std::path::Path) -> (String, String, rehost_test::keys::Secrets) {
    std::fs::create_dir_all(dir.join("p12")).unwrap();
    let run = |script: &str| {
        let o = std::process::Command::new("sh")
            .args(["-ec", script])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    run(
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null \
         && openssl req -x509 -key key.pem -subj /CN=p12.example -days 365 -out cert.pem \
         && openssl pkcs12 -export -inkey key.pem -in cert.pem -passout pass:P12-Secret-4711 -out p12/site.p12 \
         && printf 'not-this-one\nP12-Secret-4711\n' > pw.txt && chmod 600 pw.txt p12/site.p12",
    );
    let spki = run("openssl pkey -in key.pem -pubout -outform DER | sha256sum")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let cert = run("openssl x509 -in cert.pem -outform DER | sha256sum")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let mut secrets = rehost_test::keys::Secrets::default();
    secrets.0.push(b"P12-Secret-4711".to_vec());
    secrets.0.push(b"not-this-one".to_vec());
    secrets
        .0
        .push(rehost_test::keys::hex_of(b"P12-Secret-4711").into_bytes());
    for line in std::fs::read_to_string(dir.join("key.pem"))
        .unwrap()
        .lines()
    {
        if !line.starts_with("-----") {
            secrets.0.push(line.as_bytes().to_vec());
        }
    }
    std::fs::remove_file(dir.join("key.pem")).unwrap();
    (spki, cert, secrets)
}

#[test]
fn a_password_file_opens_pkcs12_bundles_and_no_password_is_printed() {
    let d = TestDir::new();
    let (spki, cert, secrets) = make_p12(&d.join("old"));
    let pw = d.join("old/pw.txt").display().to_string();
    let kinds = |v: &serde_json::Value| -> Vec<String> {
        v["scans"][0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    // Without a password: the bundle, sealed.
    let o = rehost(&d, &["keys", "scan", "old/p12", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let v = json(&o);
    assert_eq!(kinds(&v), ["pkcs12"], "{v}");
    assert_eq!(v["scans"][0]["keys"][0]["pkcs12"]["password_needed"], true);
    // With the password file: the key and the certificate in it, with openssl's fingerprints;
    // the wrong password before the right one is passed over.
    for json_out in [true, false] {
        let mut args = vec!["keys", "scan", "old/p12", "--password-file", &pw];
        if json_out {
            args.push("--json");
        }
        let o = rehost(&d, &args);
        assert_eq!(o.code, 0, "{}", o.all());
        secrets.assert_absent("stdout", o.stdout.as_bytes());
        secrets.assert_absent("stderr", o.stderr.as_bytes());
        if !json_out {
            assert!(
                o.stdout.contains(
                    "pkcs12 opened with a given password: 1 certificate(s) and 1 key(s) in it"
                ),
                "{}",
                o.stdout
            );
            continue;
        }
        let v = json(&o);
        assert_eq!(kinds(&v), ["pkcs12", "certificate", "pkcs8-private"], "{v}");
        let ks = v["scans"][0]["keys"].as_array().unwrap();
        assert_eq!(ks[0]["pkcs12"]["opened"], 2, "{v}");
        assert!(ks[0]["pkcs12"]["not_opened"].is_null(), "{v}");
        assert_eq!(ks[1]["certificate"]["sha256"], cert.as_str(), "{v}");
        assert_eq!(ks[2]["spki_sha256"], spki.as_str(), "{v}");
    }
    // The key taken out of the bundle as PEM on the new side: present there by identity.
    sh(
        &d,
        "mkdir -p new/ssl && openssl pkcs12 -in old/p12/site.p12 -passin pass:P12-Secret-4711 -nocerts -noenc 2>/dev/null | openssl pkey -out new/ssl/site.key && chmod 600 new/ssl/site.key",
    );
    let o = rehost(
        &d,
        &[
            "keys",
            "compare",
            "old/p12",
            "new",
            "--password-file",
            &pw,
            "--json",
        ],
    );
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    let c = json(&o);
    let key = c["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "pkcs8-private")
        .unwrap_or_else(|| panic!("{c}"));
    assert_eq!(key["verdict"], "moved", "{c}");
    assert_eq!(key["fingerprint"], format!("spki-sha256:{spki}"), "{c}");
    // Only a wrong password: said, nothing opened.
    d.write("old/wrong.txt", "not-this-one\n");
    sh(&d, "chmod 600 old/wrong.txt");
    let wrong = d.join("old/wrong.txt").display().to_string();
    let o = rehost(
        &d,
        &[
            "keys",
            "scan",
            "old/p12",
            "--password-file",
            &wrong,
            "--json",
        ],
    );
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    let v = json(&o);
    assert_eq!(kinds(&v), ["pkcs12"], "{v}");
    assert_eq!(
        v["scans"][0]["keys"][0]["pkcs12"]["not_opened"],
        "none of the passwords given opens it"
    );
    // A password file others may read is refused before anything is scanned.
    sh(&d, "chmod 644 old/pw.txt");
    let o = rehost(&d, &["keys", "scan", "old/p12", "--password-file", &pw]);
    assert_eq!(o.code, 2, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
    assert!(
        o.stderr.contains("refused: the password file")
            && o.stderr.contains("(mode 0644): chmod 600"),
        "{}",
        o.all()
    );
}

#[test]
fn gnupg_keys_and_keytabs_over_ssh_are_what_a_local_scan_finds() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let (_, mut secrets) = make_gpg(&d.join("old"));
    std::fs::create_dir_all(d.join("old/etc")).unwrap();
    secrets
        .0
        .extend(make_keytab(&d.join("old"), "etc/krb5.keytab").1.0);
    let at = d.join("old").display().to_string();
    let cfg = sshd.ssh_config().display().to_string();
    let remote_at = format!("{}:{at}", sshd.destination());
    let local = rehost(&d, &["keys", "scan", &at, "--json"]);
    let remote = rehost(
        &d,
        &["keys", "scan", &remote_at, "--json", "--ssh-config", &cfg],
    );
    assert_eq!(local.code, 0, "{}", local.all());
    assert_eq!(remote.code, 0, "{}", remote.all());
    secrets.assert_absent("stdout", remote.stdout.as_bytes());
    secrets.assert_absent("stderr", remote.stderr.as_bytes());
    // The same findings, but for the keytab's digests: keyed afresh for each command.
    let keys = |o: &rehost_test::Output| {
        let mut v = json(o)["scans"][0]["keys"].clone();
        for k in v.as_array_mut().unwrap() {
            if let Some(t) = k.get_mut("keytab") {
                t["digest"] = "keyed".into();
            }
        }
        v
    };
    let (l, r) = (keys(&local), keys(&remote));
    assert!(l.as_array().unwrap().len() >= 12, "{l}");
    assert_eq!(l, r);
    // One command, one digest key: the keytab's keys match across the hosts.
    let o = rehost(
        &d,
        &["keys", "compare", &at, &remote_at, "--ssh-config", &cfg],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    assert!(o.stdout.contains(" 0 missing, 0 extra"), "{}", o.all());
}

const REPORT_PLAN: &str = r#"
[[data]]
id = "etc"
from = "old:/etc"
to = "new:/etc"
exclude = ["gnupg/"]

[[keys]]
id = "krb"
host = "old"
kind = "kerberos"
paths = ["/etc/krb5.keytab"]

[[keys]]
id = "tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/site.key", "/etc/ssl/site.crt"]

[[keys]]
id = "gpg"
host = "old"
kind = "gpg"
paths = ["/etc/gnupg/private-keys-v1.d"]

[[steps]]
id = "copy"
do = "sync"
data = "etc"

[[steps]]
id = "keys"
do = "verify-keys"
keys = ["krb", "tls", "gpg"]
to = "new"
search = ["/etc"]
"#;

/// The report's Keys section: each declared key with its fingerprint on both hosts, where it is
/// used, and the verdict; the GnuPG keys the data set excludes are "not carried". Nothing secret
/// in the journal, the evidence, the outputs or the reports.
#[test]
fn the_report_names_each_key_where_it_is_used_and_a_key_no_step_carries() {
    let d = TestDir::new();
    let (gpg, mut secrets) = make_gpg(&d.join("test-old/etc"));
    let (_, ks) = make_keytab(&d.join("test-old/etc"), "krb5.keytab");
    secrets.0.extend(ks.0);
    sh(
        &d,
        "mkdir -p test-old/etc/ssl/private test-old/etc/nginx test-new \
         && openssl genpkey -algorithm ED25519 -out test-old/etc/ssl/private/site.key \
         && chmod 600 test-old/etc/ssl/private/site.key \
         && openssl req -x509 -key test-old/etc/ssl/private/site.key -subj /CN=site.example -days 5 -out test-old/etc/ssl/site.crt",
    );
    let site =
        rehost_test::keys::spki_sha256(&d.join("test-old/etc"), "ssl/private/site.key", None);
    d.write(
        "test-old/etc/nginx/nginx.conf",
        "http {\n  server {\n    ssl_certificate_key /etc/ssl/private/site.key;\n  }\n}\n",
    );
    let mut site_secrets = rehost_test::keys::Secrets::default();
    for line in d.read("test-old/etc/ssl/private/site.key").lines() {
        if !line.starts_with("-----") {
            site_secrets.0.push(line.as_bytes().to_vec());
        }
    }
    secrets.0.extend(site_secrets.0);
    write_plan(&d, REPORT_PLAN);
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(o.stdout.contains("key-not-carried"), "{}", o.all());
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
    // The GnuPG keys stayed behind: the step fails, naming them missing.
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(o.all().contains("missing on `new`"), "{}", o.all());
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(md.contains("## Keys"), "{md}");
    let row = |key: &str, needle: &str| {
        md.lines()
            .filter(|l| l.starts_with(&format!("| `{key}` |")))
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row of `{key}` with {needle}: {md}"))
            .to_owned()
    };
    // The TLS key: its fingerprint, on both hosts, used by nginx on both.
    let tls = row("tls", &format!("spki-sha256:{site}"));
    assert!(
        tls.contains("`/etc/ssl/private/site.key`; used by `/etc/nginx/nginx.conf:3`")
            && tls.matches("used by `/etc/nginx/nginx.conf:3`").count() == 2
            && tls.ends_with("| present, by step `keys` attempt 1 |"),
        "{tls}"
    );
    // The certificate expiring in 5 days: its end and the warning, from the journal's evidence
    // (4 or 5 days left, by the second the step ran in: the number is not asserted).
    let crt = row("tls", "| certificate ");
    assert!(
        crt.contains("certificate")
            && crt.contains("; valid until ")
            && crt.contains("; warning: certificate expires at ")
            && crt.contains(" day(s): renew it"),
        "{crt}"
    );
    let journal = d.read(".rehost/plan/test/journal");
    assert!(
        journal.contains("\"warnings\":[{\"side\":\"new\",\"path\":\"/etc/ssl/site.crt\""),
        "{journal}"
    );
    // The keytab's entries, carried and present.
    let krb = row("krb", "krb5:host/db.example@EXAMPLE.ORG kvno 3");
    assert!(krb.contains("present"), "{krb}");
    // The GnuPG keys: not carried, in the lint's words, each by its keygrip and missing on B.
    for (grip, _) in &gpg.keygrips {
        let r = row("gpg", &format!("keygrip:{grip}"));
        assert!(
            r.contains("not carried: ")
                && r.contains("exclude `gnupg/`")
                && r.contains("| not found |")
                && r.ends_with("; missing on B |"),
            "{r}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{json}");
    assert_eq!(keys[2]["key"], "gpg");
    assert_eq!(keys[2]["verdict"], "not carried");
    assert!(keys[2]["not_carried"].as_str().unwrap().contains("gnupg/"));
    assert_eq!(keys[1]["verdict"], "present");
    assert!(keys[1]["not_carried"].is_null());

    // Nothing of a private key, a keytab's key or a passphrase in the state directory: the
    // journal, the evidence, the outputs, the reports.
    let mut files = Vec::new();
    crate::keys::every_file(&d.join(".rehost"), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("/test/journal")));
    assert!(files.iter().any(|(p, _)| p.ends_with("report.html")));
    for (p, bytes) in &files {
        secrets.assert_absent(p, bytes);
    }
}

/// Encrypted PKCS#8 keys made by `openssl pkcs8 -topk8 -v2 aes-256-cbc` (PEM and DER): without
/// a password each is found, its public half unknown; with `--password-file` each is opened,
/// its SPKI digest the one openssl prints, still called encrypted, and the old key stored
/// unencrypted on the new side is present by identity. No password nor key byte is printed.
#[test]
fn a_password_file_opens_encrypted_pkcs8_keys() {
    let d = TestDir::new();
    sh(
        &d,
        "mkdir -p old/ssl new/ssl \
         && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out plain.pem 2>/dev/null \
         && openssl pkcs8 -topk8 -v2 aes-256-cbc -in plain.pem -passout pass:Pk8-Secret-9 -out old/ssl/site.key \
         && openssl pkcs8 -topk8 -v2 aes-256-cbc -in plain.pem -passout pass:Pk8-Secret-9 -outform DER -out old/ssl/site.der \
         && cp plain.pem new/ssl/site.pem \
         && printf 'wrong-one\\nPk8-Secret-9\\n' > pw.txt && chmod 600 pw.txt old/ssl/* new/ssl/*",
    );
    let spki = rehost_test::keys::spki_sha256(d.path(), "plain.pem", None);
    let mut secrets = rehost_test::keys::Secrets::default();
    secrets.0.push(b"Pk8-Secret-9".to_vec());
    secrets
        .0
        .push(rehost_test::keys::hex_of(b"Pk8-Secret-9").into_bytes());
    for line in d.read("plain.pem").lines() {
        if !line.starts_with("-----") {
            secrets.0.push(line.as_bytes().to_vec());
        }
    }
    std::fs::remove_file(d.join("plain.pem")).unwrap();
    let keys = |o: &rehost_test::Output| -> Vec<serde_json::Value> {
        json(o)["scans"][0]["keys"].as_array().unwrap().clone()
    };
    // Without a password: found, sealed.
    let o = rehost(&d, &["keys", "scan", "old/ssl", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let ks = keys(&o);
    assert_eq!(ks.len(), 2, "{ks:#?}");
    for k in &ks {
        assert_eq!(k["kind"], "pkcs8-encrypted", "{k}");
        assert!(k["spki_sha256"].is_null(), "{k}");
    }
    // With the password file: both opened, openssl's fingerprint.
    let pw = d.join("pw.txt").display().to_string();
    let o = rehost(
        &d,
        &["keys", "scan", "old/ssl", "--password-file", &pw, "--json"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
    let ks = keys(&o);
    assert_eq!(ks.len(), 2, "{ks:#?}");
    for k in &ks {
        assert_eq!(k["kind"], "pkcs8-encrypted", "{k}");
        assert_eq!(k["encrypted"], true, "{k}");
        assert_eq!(k["spki_sha256"], spki.as_str(), "{k}");
        assert_eq!(k["algorithm"], "rsa", "{k}");
    }
    // The same key stored unencrypted on the new side: present by identity.
    let o = rehost(
        &d,
        &[
            "keys",
            "compare",
            "old/ssl",
            "new/ssl",
            "--password-file",
            &pw,
        ],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    // A wrong password only: said, nothing opened.
    d.write("wrong.txt", "wrong-one\n");
    sh(&d, "chmod 600 wrong.txt");
    let wrong = d.join("wrong.txt").display().to_string();
    let o = rehost(
        &d,
        &[
            "keys",
            "scan",
            "old/ssl",
            "--password-file",
            &wrong,
            "--json",
        ],
    );
    let ks = keys(&o);
    assert!(
        ks.iter().all(|k| k["spki_sha256"].is_null()
            && k["unknown"]
                .as_str()
                .is_some_and(|u| u.contains("none of the passwords given opens it"))),
        "{ks:#?}"
    );
}

/// A `verify-keys` step with `password_file`: the old server's encrypted PKCS#8 key is
/// identified and found, unencrypted, on the new one; without the file the step fails (the
/// key cannot be identified). The password is in neither the output, the journal nor the report.
#[test]
fn verify_keys_opens_encrypted_keys_with_its_password_file() {
    let hosts = |d: &TestDir| {
        sh(
            d,
            "mkdir -p test-old/etc/ssl test-new/etc/ssl \
             && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out plain.pem 2>/dev/null \
             && openssl pkcs8 -topk8 -v2 aes-256-cbc -in plain.pem -passout pass:Step-Secret-5 -out test-old/etc/ssl/site.key \
             && cp plain.pem test-new/etc/ssl/site.key && rm plain.pem \
             && printf 'Step-Secret-5\\n' > pw.txt && chmod 600 pw.txt test-old/etc/ssl/* test-new/etc/ssl/*",
        );
    };
    let plan = |password_file: &str| {
        format!(
            "[[keys]]\nid = \"site\"\nhost = \"old\"\nkind = \"tls\"\npaths = [\"/etc/ssl/site.key\"]\n\n\
             [[steps]]\nid = \"carry\"\ndo = \"run\"\nhost = \"new\"\ncommand = \"true\"\ntransfers = [\"site\"]\n\n\
             [[steps]]\nid = \"keys\"\ndo = \"verify-keys\"\nkeys = [\"site\"]\nto = \"new\"\n{password_file}"
        )
    };
    // Without the password file: the key cannot be identified, the step fails.
    let d = TestDir::new();
    hosts(&d);
    write_plan(&d, &plan(""));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("✗ failed"), "{}", o.stdout);

    // With it: identified on the old side, present on the new one.
    let d = TestDir::new();
    hosts(&d);
    let pw = d.join("pw.txt").display().to_string();
    write_plan(&d, &plan(&format!("password_file = \"{pw}\"\n")));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    let md = d.read("out/report.md");
    assert!(md.contains("site"), "{md}");
    for (what, text) in [
        ("stdout", o.stdout.clone()),
        ("report", md),
        ("journal", d.read(".rehost/plan/test/journal")),
        ("report run", r.all()),
    ] {
        assert!(!text.contains("Step-Secret-5"), "{what}: {text}");
    }
    // A password file others may read is refused, naming it, never its content.
    sh(&d, "chmod 644 pw.txt");
    std::fs::remove_dir_all(d.join(".rehost")).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(o.all().contains("chmod 600"), "{}", o.all());
    assert!(!o.all().contains("Step-Secret-5"), "{}", o.all());
}
