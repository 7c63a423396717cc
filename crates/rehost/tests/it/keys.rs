//! `rehost keys scan` and `keys compare`, and the `verify-keys` step kind, against key
//! material made by ssh-keygen and openssl: the fingerprints are the tools', a key is matched
//! whatever its path or format, the same scan over ssh finds the same, and no private key's
//! bytes or passphrase appear in anything rehost writes.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::keys::{Made, Secrets, make_all};
use rehost_test::sshd::Sshd;

pub(crate) fn json(o: &rehost_test::Output) -> serde_json::Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.all()))
}

pub(crate) fn sh(d: &TestDir, script: &str) {
    let st = std::process::Command::new("sh")
        .args(["-ec", script])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

/// The finding for `path` in a `keys scan --json` output.
fn finding<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    v["scans"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["path"].as_str().unwrap().ends_with(&format!("/{path}")))
        .unwrap_or_else(|| panic!("no finding for {path}: {v}"))
}

fn no_secrets(secrets: &Secrets, o: &rehost_test::Output) {
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
}

#[test]
fn a_scan_finds_every_key_with_the_tools_fingerprints_and_prints_no_secret() {
    let d = TestDir::new();
    let (made, secrets) = make_all(&d.join("old"));
    // The check below has teeth: body lines of every PEM private key, pieces of every DER
    // one, the passphrases; and it fires on the key files themselves.
    assert!(secrets.0.len() > 200, "{}", secrets.0.len());
    let leaked = std::panic::catch_unwind(|| {
        secrets.assert_absent(
            "a key file",
            &std::fs::read(d.join("old/ssl/private/rsa1.der")).unwrap(),
        )
    });
    assert!(leaked.is_err());
    // Not key material: skipped by their first bytes.
    d.write("old/etc/motd", "hello\n");
    d.write("old/bin/tool", "\x7fELF\x02\x01\x01");
    let o = rehost(&d, &["keys", "scan", "old", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    no_secrets(&secrets, &o);
    let v = json(&o);
    let keys = v["scans"][0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), made.len(), "{v}");
    assert_eq!(
        v["scans"][0]["read"],
        made.len() as u64,
        "only key files are read whole: {v}"
    );
    for Made {
        path,
        kind,
        ssh_sha256,
        spki_sha256,
        cert_sha256,
    } in &made
    {
        let f = finding(&v, path);
        assert_eq!(f["kind"], *kind, "{path}: {f}");
        if let Some(fp) = ssh_sha256 {
            assert_eq!(f["ssh_sha256"], *fp, "{path}: {f}");
        }
        if let Some(fp) = spki_sha256 {
            assert_eq!(f["spki_sha256"], *fp, "{path}: {f}");
        }
        if let Some(fp) = cert_sha256 {
            assert_eq!(f["certificate"]["sha256"], *fp, "{path}: {f}");
        }
    }
    assert!(finding(&v, "ssl/private/alone.key")["unknown"].is_string());
    assert_eq!(finding(&v, "ssl/private/app.key")["encrypted"], true);
    assert!(
        finding(&v, "ssl/site.crt")["private_key"]
            .as_str()
            .unwrap()
            .ends_with("/ssl/private/site.key")
    );
    assert!(
        finding(&v, "ssl/ca.crt")["private_key"]
            .as_str()
            .unwrap()
            .ends_with("/ssl/private/ca.key")
    );

    // The human view: the same facts; a private key readable by others is a problem.
    sh(&d, "chmod 644 old/ssl/private/rsa1.pem");
    let o = rehost(&d, &["keys", "scan", "old/ssl", "old/ssh/id_ed25519"]);
    assert_eq!(o.code, 1, "{}", o.all());
    no_secrets(&secrets, &o);
    assert!(
        o.stdout
            .contains("problem: private key readable by group and others (mode 0644)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("subject CN=leaf.example, issuer O=Example,CN=Test CA"),
        "{}",
        o.stdout
    );
    let ed = made.iter().find(|m| m.path == "ssh/id_ed25519").unwrap();
    assert!(
        o.stdout.contains(ed.ssh_sha256.as_deref().unwrap()),
        "{}",
        o.stdout
    );

    // Unreadable is said, and exits 2.
    let o = rehost(&d, &["keys", "scan", "nowhere"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stdout.contains("could not read: "), "{}", o.all());
}

#[test]
fn compare_matches_keys_by_fingerprint_whatever_their_path_or_format() {
    let d = TestDir::new();
    let (_, secrets) = make_all(&d.join("old"));
    sh(&d, "cp -a old same && cp -a old new");
    let o = rehost(&d, &["keys", "compare", "old", "same"]);
    assert_eq!(
        o.code,
        2,
        "the lone encrypted PKCS#8 key cannot be matched: {}",
        o.all()
    );
    assert!(o.stdout.contains("unidentified  "), "{}", o.stdout);
    sh(
        &d,
        "rm old/ssl/private/alone.key same/ssl/private/alone.key new/ssl/private/alone.key",
    );
    let o = rehost(&d, &["keys", "compare", "old", "same"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains(" 0 moved, 0 missing, 0 extra, 0 unidentified, 0 problems"),
        "{}",
        o.stdout
    );

    // On the new side: a PKCS#1 key now PKCS#8 elsewhere, an OpenSSH key now PEM elsewhere
    // (moved); one removed (missing); one too open (problem); one new (extra).
    sh(
        &d,
        "openssl pkey -in new/ssl/private/rsa1.pem -out new/rsa-now-pkcs8.pem && rm new/ssl/private/rsa1.pem \
         && mkdir new/keys && cp new/ssh/id_rsa new/keys/conv && ssh-keygen -q -p -N '' -m PEM -f new/keys/conv >/dev/null && rm new/ssh/id_rsa \
         && rm new/ssl/private/ec8.pem \
         && chmod 640 new/ssl/private/ed.pem \
         && openssl genpkey -algorithm ED25519 -out new/ssl/private/extra.pem",
    );
    let o = rehost(&d, &["keys", "compare", "old", "new", "--json"]);
    assert_eq!(o.code, 1, "{}", o.all());
    no_secrets(&secrets, &o);
    let v = json(&o);
    let verdict = |old: &str| {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| {
                k["old"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p.as_str().unwrap().ends_with(old))
            })
            .unwrap_or_else(|| panic!("{old}: {v}"))
    };
    let rsa1 = verdict("/ssl/private/rsa1.pem");
    assert_eq!(rsa1["verdict"], "moved", "{rsa1}");
    assert!(
        rsa1["new"][0]
            .as_str()
            .unwrap()
            .ends_with("/rsa-now-pkcs8.pem"),
        "{rsa1}"
    );
    assert_eq!(verdict("/ssh/id_rsa")["verdict"], "moved");
    assert!(
        verdict("/ssh/id_rsa")["new"][0]
            .as_str()
            .unwrap()
            .ends_with("/keys/conv")
    );
    assert_eq!(verdict("/ssl/private/ec8.pem")["verdict"], "missing");
    assert_eq!(verdict("/ssl/private/ed.pem")["verdict"], "present");
    assert_eq!(verdict("/ssh/id_rsa.pub")["verdict"], "present");
    let extra: Vec<_> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["verdict"] == "extra")
        .collect();
    assert_eq!(extra.len(), 1, "{v}");
    assert!(extra[0]["new"][0].as_str().unwrap().ends_with("/extra.pem"));
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["side"], "new");
    assert!(
        problems[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("/ssl/private/ed.pem")
    );

    let o = rehost(&d, &["keys", "compare", "old", "new"]);
    assert_eq!(o.code, 1);
    no_secrets(&secrets, &o);
    assert!(
        o.stdout.contains("missing  ")
            && o.stdout.contains("moved    ")
            && o.stdout.contains("extra    "),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("1 missing, 1 extra, 0 unidentified, 1 problem on the new side"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_scan_over_ssh_finds_what_a_local_scan_finds() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let (_, secrets) = make_all(&d.join("old"));
    let at = d.join("old").display().to_string();
    let cfg = sshd.ssh_config().display().to_string();
    let local = rehost(&d, &["keys", "scan", &at, "--json"]);
    let remote_at = format!("{}:{at}", sshd.destination());
    // The locations of one command are scanned side by side: the same ssh host twice (two
    // sessions at once on a host the agent has never reached) and this machine.
    let remote = rehost(
        &d,
        &[
            "keys",
            "scan",
            &remote_at,
            &remote_at,
            &at,
            "--json",
            "--ssh-config",
            &cfg,
        ],
    );
    assert_eq!(local.code, 0, "{}", local.all());
    assert_eq!(remote.code, 0, "{}", remote.all());
    no_secrets(&secrets, &remote);
    let keys = |o: &rehost_test::Output| json(o)["scans"][0]["keys"].clone();
    assert!(keys(&local).as_array().unwrap().len() > 20);
    assert_eq!(keys(&local), keys(&remote));
    let scans = json(&remote)["scans"].clone();
    assert_eq!(scans.as_array().unwrap().len(), 3, "{scans}");
    for (i, loc) in [&remote_at, &remote_at, &at].into_iter().enumerate() {
        assert_eq!(scans[i]["location"], loc.as_str(), "{scans}");
        assert_eq!(scans[i]["keys"], keys(&local), "scan {i}");
    }
    // And a comparison across hosts: the same keys.
    let o = rehost(
        &d,
        &["keys", "compare", &at, &remote_at, "--ssh-config", &cfg],
    );
    assert!(
        o.stdout.contains(" 0 moved, 0 missing, 0 extra"),
        "{}",
        o.all()
    );
}

pub(crate) const KEYS_PLAN: &str = r#"
[[keys]]
id = "tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/site.key", "/etc/ssl/site.crt"]

[[keys]]
id = "ssh-host"
host = "old"
kind = "ssh-host"
paths = ["/etc/ssh/id_ed25519", "/etc/ssh/rsa_pass"]

[[steps]]
id = "carry"
do = "run"
host = "new"
command = "true"
transfers = ["tls", "ssh-host"]

[[steps]]
id = "keys"
do = "verify-keys"
keys = ["tls", "ssh-host"]
to = "new"
search = ["/etc"]
"#;

/// Every file under `dir`, for the secrets check.
pub(crate) fn every_file(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            every_file(&p, out);
        } else if p.is_file() {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn the_verify_keys_step_proves_keys_by_fingerprint_and_records_no_secret() {
    let d = TestDir::new();
    let (made, secrets) = make_all(&d.join("test-old/etc"));
    // On the new host: the TLS key converted to PKCS#1 elsewhere, the certificate and the SSH
    // keys where they were.
    sh(
        &d,
        "mkdir -p test-new/etc/ssl test-new/etc/pki test-new/etc/ssh \
         && openssl pkey -in test-old/etc/ssl/private/site.key -traditional -out test-new/etc/pki/site.pem \
         && chmod 600 test-new/etc/pki/site.pem \
         && cp -p test-old/etc/ssl/site.crt test-new/etc/ssl/ \
         && cp -p test-old/etc/ssh/id_ed25519 test-old/etc/ssh/rsa_pass test-new/etc/ssh/",
    );
    write_plan(&d, KEYS_PLAN);
    let o = rehost(&d, &["check", "plan.toml"]);
    assert!(
        !o.stdout.contains("keys-unverified"),
        "the step implies `verifies`: {}",
        o.all()
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    no_secrets(&secrets, &o);
    assert!(
        o.stdout
            .contains("4 keys of 2 [[keys]] entries found on `new` by fingerprint"),
        "{}",
        o.stdout
    );

    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    let site = made
        .iter()
        .find(|m| m.path == "ssl/private/site.key")
        .unwrap();
    let fp = format!("spki-sha256:{}", site.spki_sha256.as_deref().unwrap());
    assert!(
        md.contains("`keys` attempt 1: `tls, ssh-host` — complete and correct"),
        "{md}"
    );
    assert!(
        md.contains("Key `tls`: pkcs8-private rsa 2048 moved"),
        "{md}"
    );
    assert!(
        md.contains(&fp) && md.contains("`/etc/pki/site.pem`"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.read(".rehost/plan/test/report.json")).unwrap();
    let v = &json["run"]["attempts"][1]["verification"];
    assert_eq!(v["kind"], "keys", "{json}");
    assert_eq!(v["keys"].as_array().unwrap().len(), 4, "{v}");

    // The key gone from the new host: the step fails and says which.
    std::fs::remove_file(d.join("test-new/etc/ssh/rsa_pass")).unwrap();
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--state", "again"],
    );
    assert_ne!(o.code, 0, "{}", o.all());
    no_secrets(&secrets, &o);
    assert!(o.all().contains("1 missing on `new`"), "{}", o.all());
    let o = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--state", "again"],
    );
    no_secrets(&secrets, &o);
    let md = d.read("again/test/report.md");
    assert!(
        md.contains("Key `ssh-host`: ssh-private rsa 2048 missing"),
        "{md}"
    );

    // Nothing of a private key or a passphrase in the state directory: the journal, the
    // outputs, the reports.
    let mut files = Vec::new();
    every_file(&d.join(".rehost"), &mut files);
    every_file(&d.join("again"), &mut files);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        names.iter().any(|p| p.ends_with("/test/journal")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|p| p.ends_with("report.json")),
        "{names:?}"
    );
    for (p, bytes) in &files {
        secrets.assert_absent(p, bytes);
    }
}
