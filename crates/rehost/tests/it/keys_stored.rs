//! Keys stored elsewhere than the data they open (M 2.319), against material made by the real
//! tools: LUKS headers made by `cryptsetup luksFormat` on file images and the crypttab key
//! files that open them, key files named by service configurations, PKCS#12 bundles made by
//! `openssl pkcs12 -export`, WireGuard keys made by `wg`. Each test also searches what rehost
//! printed or wrote for the key files, passphrases, salts and digests it must never show.

use crate::keys::{KEYS_PLAN, every_file, json, sh};
use crate::support::*;
use rehost_test::TestDir;
use rehost_test::keys::Secrets;
use rehost_test::sshd::Sshd;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What `make_volumes` made: the UUIDs of its LUKS images and what must never be printed.
struct Volumes {
    luks2: String,
    luks1: String,
    secrets: Secrets,
}

/// Under `root`: a LUKS2 image (`srv/vol2.img`, two key slots: a 64-byte key file and a
/// passphrase file) and a LUKS1 image (`srv/vol1.img`, the passphrase file), made by
/// `cryptsetup luksFormat` on plain files; their key files under `etc/keys`; an `etc/crypttab`
/// naming both key files, a key file that does not exist and a passphrase.
fn make_volumes(d: &TestDir, root: &str) -> Volumes {
    rehost_test::require_tool("cryptsetup");
    std::fs::create_dir_all("/run/cryptsetup").unwrap();
    let fast = "--pbkdf pbkdf2 --pbkdf-force-iterations 1000";
    sh(
        d,
        &format!(
            "mkdir -p {root}/etc/keys {root}/srv && cd {root} \
             && head -c 64 /dev/urandom > etc/keys/root.key \
             && printf 'correct-horse-9271' > etc/keys/pass.txt && chmod 600 etc/keys/* \
             && truncate -s 20M srv/vol2.img && truncate -s 4M srv/vol1.img \
             && cryptsetup luksFormat -q --type luks2 {fast} --label data srv/vol2.img etc/keys/root.key \
             && cryptsetup luksAddKey -q {fast} --key-file etc/keys/root.key srv/vol2.img etc/keys/pass.txt \
             && cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 srv/vol1.img etc/keys/pass.txt"
        ),
    );
    let out = |args: &[&str]| {
        let o = std::process::Command::new(rehost_test::require_tool("cryptsetup"))
            .args(args)
            .current_dir(d.join(root))
            .output()
            .unwrap();
        assert!(o.status.success(), "cryptsetup {args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let luks2 = out(&["luksUUID", "srv/vol2.img"]).trim().to_owned();
    let luks1 = out(&["luksUUID", "srv/vol1.img"]).trim().to_owned();
    d.write(
        &format!("{root}/etc/crypttab"),
        format!(
            "# <target> <source> <key file> <options>\n\
             data UUID={luks2} /etc/keys/root.key luks,discard\n\
             legacy /srv/vol1.img /etc/keys/pass.txt luks\n\
             home UUID=0000 none luks\n"
        ),
    );
    // Never printed: the key files, their plain digests, the headers' salts and digests.
    let root_key = std::fs::read(d.join(&format!("{root}/etc/keys/root.key"))).unwrap();
    let mut secrets = vec![
        root_key.clone(),
        hex(&root_key).into_bytes(),
        b"correct-horse-9271".to_vec(),
        blake3::hash(&root_key).to_hex().as_bytes().to_vec(),
        blake3::hash(b"correct-horse-9271")
            .to_hex()
            .as_bytes()
            .to_vec(),
    ];
    let meta: serde_json::Value =
        serde_json::from_str(&out(&["luksDump", "--dump-json-metadata", "srv/vol2.img"])).unwrap();
    for part in ["keyslots", "digests"] {
        for v in meta[part].as_object().unwrap().values() {
            for s in [&v["kdf"]["salt"], &v["salt"], &v["digest"]] {
                if let Some(s) = s.as_str() {
                    secrets.push(s.as_bytes().to_vec());
                }
            }
        }
    }
    let v1 = std::fs::read(d.join(&format!("{root}/srv/vol1.img"))).unwrap();
    // LUKS1: the volume key digest and its salt, key slot 0's salt.
    for (at, len) in [(112, 20), (132, 32), (216, 32)] {
        secrets.push(hex(&v1[at..at + len]).into_bytes());
    }
    assert!(secrets.len() >= 10, "{}", secrets.len());
    Volumes {
        luks2,
        luks1,
        secrets: Secrets(secrets),
    }
}

/// The findings of kind `kind` in a `keys scan --json` output.
fn of_kind<'a>(v: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    v["scans"][0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] == kind)
        .collect()
}

#[test]
fn luks_headers_crypttab_entries_and_their_key_files_are_found_and_nothing_secret_printed() {
    let d = TestDir::new();
    let vols = make_volumes(&d, "test-old");
    // A key file that does not exist; hostile entries: a symlink out of the root, `..`, a
    // file that is not a key (read only for its keyed digest), a 1 MiB line.
    sh(
        &d,
        "ln -s /etc/passwd test-old/etc/keys/link.key \
         && printf 'TOPSECRET-not-a-key\\n' > test-old/etc/secret.conf \
         && printf 'gone /dev/vdb /etc/keys/gone.key luks\\nln /dev/vdc /etc/keys/link.key luks\\nup /dev/vdd /../../etc/shadow luks\\nconf /dev/vde /etc/secret.conf luks\\nesc\\033[2J /dev/vdf /etc/keys/\\033]0;pwn\\007.key luks\\n' >> test-old/etc/crypttab \
         && head -c 1048576 /dev/zero | tr '\\0' x >> test-old/etc/crypttab && echo >> test-old/etc/crypttab",
    );
    let mut secrets = vols.secrets;
    secrets.0.push(b"TOPSECRET".to_vec());
    write_plan(&d, KEYS_PLAN);
    let scan = |d: &TestDir, json: bool| {
        let mut args = vec![
            "keys",
            "scan",
            "old:/",
            "--plan",
            "plan.toml",
            "--env",
            "test",
        ];
        if json {
            args.push("--json");
        }
        rehost(d, &args)
    };
    let o = scan(&d, true);
    assert_eq!(o.code, 1, "the missing key file is a problem: {}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
    let v = json(&o);

    // The headers, as cryptsetup made them: UUID, version, key slots, label.
    let luks = of_kind(&v, "luks-header");
    assert_eq!(luks.len(), 2, "{v}");
    let l2 = luks.iter().find(|k| k["path"] == "/srv/vol2.img").unwrap();
    assert_eq!(l2["luks"]["uuid"], vols.luks2.as_str(), "{l2}");
    assert_eq!(l2["luks"]["version"], 2);
    assert_eq!(l2["luks"]["label"], "data");
    assert_eq!(l2["luks"]["checksum_ok"], true);
    assert_eq!(l2["luks"]["cipher"], "aes-xts-plain64");
    let slots = |k: &serde_json::Value| -> Vec<u64> {
        k["luks"]["keyslots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["active"] == true)
            .map(|s| s["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(slots(l2), [0, 1]);
    let l1 = luks.iter().find(|k| k["path"] == "/srv/vol1.img").unwrap();
    assert_eq!(l1["luks"]["uuid"], vols.luks1.as_str(), "{l1}");
    assert_eq!(l1["luks"]["version"], 1);
    assert_eq!(slots(l1), [0]);
    assert_eq!(l1["luks"]["keyslots"].as_array().unwrap().len(), 8);

    // The crypttab: each entry; the key files found where it says, inside the host's root.
    let entries = of_kind(&v, "crypttab-entry");
    let entry = |name: &str| {
        *entries
            .iter()
            .find(|e| e["crypttab"]["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {v}"))
    };
    assert_eq!(entries.len(), 8, "{v}");
    assert_eq!(
        entry("data")["crypttab"]["device"],
        format!("UUID={}", vols.luks2)
    );
    assert_eq!(entry("data")["crypttab"]["key_file_found"], true);
    assert_eq!(entry("legacy")["crypttab"]["key_file_found"], true);
    assert!(entry("home")["crypttab"]["key_file"].is_null());
    assert_eq!(entry("gone")["crypttab"]["key_file_found"], false);
    assert!(
        entry("gone")["problems"][0].as_str().unwrap().contains(
            "/etc/keys/gone.key that crypttab line 5 names for volume `gone` does not exist"
        ),
        "{v}"
    );
    assert!(
        entry("ln")["crypttab"]["key_file_note"]
            .as_str()
            .unwrap()
            .contains("symlink"),
        "a symlink is not followed: {v}"
    );
    assert!(
        entry("up")["crypttab"]["key_file_note"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "`..` does not climb out of the root: {v}"
    );
    assert!(
        v["scans"][0]["errors"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("crypttab line 10 is longer than 4096 bytes")),
        "{v}"
    );
    let files = of_kind(&v, "key-file");
    let file = |p: &str| {
        *files
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p}: {v}"))
    };
    assert_eq!(files.len(), 3, "root.key, pass.txt, secret.conf: {v}");
    assert_eq!(file("/etc/keys/root.key")["used_by"][0], "/etc/crypttab:2");
    assert_eq!(file("/etc/keys/root.key")["key_file"]["bytes"], 64);
    assert!(
        file("/etc/keys/pass.txt")["key_file"]["bytes"].is_null(),
        "a short file's length is not said"
    );
    assert_eq!(file("/etc/keys/pass.txt")["mode"], 0o600);
    // The digest is keyed afresh for each scan: another scan, another digest.
    let digest = file("/etc/keys/root.key")["key_file"]["digest"].clone();
    assert!(digest.as_str().unwrap().starts_with("blake3-keyed:"));
    let again = json(&scan(&d, true));
    let again = of_kind(&again, "key-file")
        .into_iter()
        .find(|f| f["path"] == "/etc/keys/root.key")
        .unwrap()["key_file"]["digest"]
        .clone();
    assert_ne!(digest, again);

    // The human view says the same, escaped, and nothing secret.
    let o = scan(&d, false);
    assert_eq!(o.code, 1, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    for want in [
        format!(
            "/srv/vol2.img  luks-header  luks2 aes-xts-plain64 512-bit key, key slots 0:pbkdf2 1:pbkdf2  luks-uuid:{}",
            vols.luks2
        ),
        format!(
            "LUKS2 UUID {}, label data, header checksum matches",
            vols.luks2
        ),
        "named by /etc/crypttab:3".into(),
        "its key file is on this host".into(),
    ] {
        assert!(o.stdout.contains(&want), "{want}\n{}", o.stdout);
    }
    // A hostile entry's terminal controls reach the terminal escaped, never raw.
    assert!(o.stdout.contains("volume esc"), "{}", o.stdout);
    assert!(
        !o.stdout.contains('\x1b') && !o.stdout.contains('\x07'),
        "{}",
        o.stdout
    );
}

#[test]
fn compare_and_verify_keys_prove_luks_headers_and_crypttab_key_files_on_the_new_host() {
    let d = TestDir::new();
    let vols = make_volumes(&d, "test-old");
    sh(&d, "cp -a --sparse=always test-old test-new");
    write_plan(
        &d,
        r#"
[[keys]]
id = "volumes"
host = "old"
kind = "luks"
paths = ["/etc/crypttab", "/srv/vol2.img", "/srv/vol1.img"]

[[steps]]
id = "carry"
do = "run"
host = "new"
command = "true"
transfers = ["volumes"]

[[steps]]
id = "keys"
do = "verify-keys"
keys = ["volumes"]
to = "new"
search = ["/etc", "/srv"]
"#,
    );
    let compare = |d: &TestDir| {
        rehost(
            d,
            &[
                "keys",
                "compare",
                "old:/",
                "new:/",
                "--plan",
                "plan.toml",
                "--env",
                "test",
                "--json",
            ],
        )
    };
    let o = compare(&d);
    assert_eq!(o.code, 0, "{}", o.all());
    vols.secrets.assert_absent("stdout", o.stdout.as_bytes());
    let v = json(&o);
    let verdicts = |v: &serde_json::Value, kind: &str| -> Vec<String> {
        let mut x: Vec<String> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kind"] == kind)
            .map(|k| {
                format!(
                    "{} {}",
                    k["verdict"].as_str().unwrap(),
                    k["old"][0].as_str().or(k["new"][0].as_str()).unwrap()
                )
            })
            .collect();
        x.sort();
        x
    };
    assert_eq!(
        verdicts(&v, "luks-header"),
        ["present /srv/vol1.img", "present /srv/vol2.img"]
    );
    assert_eq!(
        verdicts(&v, "key-file"),
        ["present /etc/keys/pass.txt", "present /etc/keys/root.key"]
    );
    assert_eq!(verdicts(&v, "crypttab-entry").len(), 3, "{v}");

    // The step: everything proved, in the report by UUID.
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    vols.secrets.assert_absent("stdout", o.stdout.as_bytes());
    let o = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("Key `volumes`: luks-header luks2 aes-xts-plain64 512-bit key, key slots 0:pbkdf2 1:pbkdf2 present"),
        "{md}"
    );
    assert!(md.contains(&format!("luks-uuid:{}", vols.luks2)), "{md}");
    assert!(
        md.contains("Key `volumes`: key-file symmetric, 64 bytes present"),
        "the key file the crypttab names is carried with it: {md}"
    );

    // On the new host: the key file replaced by another (the volume no longer opens with it),
    // the passphrase file gone, a key slot added to the LUKS1 header.
    sh(
        &d,
        "head -c 64 /dev/urandom > test-new/etc/keys/root.key && rm test-new/etc/keys/pass.txt \
         && printf 'second-pass-5512' > test-new/p2 \
         && cryptsetup luksAddKey -q --pbkdf-force-iterations 1000 --key-file test-old/etc/keys/pass.txt test-new/srv/vol1.img test-new/p2",
    );
    let o = compare(&d);
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o);
    assert_eq!(
        verdicts(&v, "key-file"),
        [
            "extra /etc/keys/root.key",
            "missing /etc/keys/pass.txt",
            "missing /etc/keys/root.key"
        ],
        "{v}"
    );
    assert_eq!(
        verdicts(&v, "luks-header"),
        [
            "extra /srv/vol1.img",
            "missing /srv/vol1.img",
            "present /srv/vol2.img"
        ],
        "another key slot layout is another header: {v}"
    );
    let problems = v["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["side"] == "new"
            && p["what"]
                .as_str()
                .unwrap()
                .contains("/etc/keys/pass.txt that crypttab line 3")),
        "{v}"
    );
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--state", "again"],
    );
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(o.all().contains("3 missing on `new`"), "{}", o.all());
    let o = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--state", "again"],
    );
    assert_eq!(o.code, 1, "the verdict is FAILED: {}", o.all());
    let md = d.read("again/test/report.md");
    assert!(
        md.contains("Key `volumes`: key-file symmetric, 64 bytes missing"),
        "{md}"
    );

    // Nothing of a key file, a passphrase, a salt or a header digest in the state directory.
    let mut secrets = vols.secrets;
    secrets.0.push(b"second-pass-5512".to_vec());
    let mut files = Vec::new();
    every_file(&d.join(".rehost"), &mut files);
    every_file(&d.join("again"), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("/test/journal")));
    for (p, bytes) in &files {
        secrets.assert_absent(p, bytes);
    }
}

#[test]
fn luks_headers_and_crypttab_key_files_over_ssh_are_what_a_local_scan_finds() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let vols = make_volumes(&d, "old");
    let at = d.join("old").display().to_string();
    // Over ssh the host has no root: the crypttab names the key files where they are.
    d.write(
        "old/etc/crypttab",
        format!(
            "data UUID={} {at}/etc/keys/root.key luks\nlegacy {at}/srv/vol1.img {at}/etc/keys/pass.txt luks\ngone /dev/vdb {at}/etc/keys/gone.key luks\n",
            vols.luks2
        ),
    );
    let cfg = sshd.ssh_config().display().to_string();
    let remote_at = format!("{}:{at}", sshd.destination());
    let local = rehost(&d, &["keys", "scan", &at, "--json"]);
    let remote = rehost(
        &d,
        &["keys", "scan", &remote_at, "--json", "--ssh-config", &cfg],
    );
    assert_eq!(local.code, 1, "the missing key file: {}", local.all());
    assert_eq!(remote.code, 1, "{}", remote.all());
    vols.secrets
        .assert_absent("stdout", remote.stdout.as_bytes());
    vols.secrets
        .assert_absent("stderr", remote.stderr.as_bytes());
    // The same findings, but for the key files' digests: keyed afresh for each command.
    let keys = |o: &rehost_test::Output| {
        let mut v = json(o)["scans"][0]["keys"].clone();
        for k in v.as_array_mut().unwrap() {
            if let Some(f) = k.get_mut("key_file") {
                f["digest"] = "keyed".into();
            }
        }
        v
    };
    let (l, r) = (keys(&local), keys(&remote));
    assert_eq!(l, r);
    let kinds: Vec<&str> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "luks-header").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "key-file").count(), 2);
    // One command, one digest key: the key files match across the hosts.
    let o = rehost(
        &d,
        &[
            "keys",
            "compare",
            &at,
            &remote_at,
            "--ssh-config",
            &cfg,
            "--json",
        ],
    );
    vols.secrets.assert_absent("stdout", o.stdout.as_bytes());
    let v = json(&o);
    let present = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] == "key-file" && k["verdict"] == "present")
        .count();
    assert_eq!(present, 2, "{v}");
}

/// A crypttab entry naming its volume by `UUID=` is linked to the LUKS header with that UUID:
/// one scanned with it, or the device udev's `/dev/disk/by-uuid` names on the host; a UUID no
/// header has on a host that has `/dev/disk/by-uuid` is a problem (the volume does not open at
/// boot).
#[test]
fn a_crypttab_uuid_is_linked_to_its_luks_header_and_one_nowhere_is_a_problem() {
    let d = TestDir::new();
    let vols = make_volumes(&d, "test-old");
    // The LUKS1 volume as a device udev names by its UUID.
    sh(
        &d,
        &format!(
            "mkdir -p test-old/dev/disk/by-uuid && cp test-old/srv/vol1.img test-old/dev/sdb \
             && ln -s ../../sdb test-old/dev/disk/by-uuid/{} \
             && echo 'legacy2 UUID={} /etc/keys/pass.txt luks' >> test-old/etc/crypttab",
            vols.luks1, vols.luks1
        ),
    );
    write_plan(&d, KEYS_PLAN);
    let scan = |at: &str| {
        let o = rehost(
            &d,
            &[
                "keys",
                "scan",
                at,
                "--plan",
                "plan.toml",
                "--env",
                "test",
                "--json",
            ],
        );
        vols.secrets.assert_absent("stdout", o.stdout.as_bytes());
        (o.code, json(&o), o.all())
    };
    let entry = |v: &serde_json::Value, name: &str| {
        of_kind(v, "crypttab-entry")
            .into_iter()
            .find(|k| k["crypttab"]["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {v}"))
            .clone()
    };
    // /etc alone: the LUKS1 device through by-uuid; the LUKS2 image is not on the host's
    // devices and not scanned, and UUID=0000 is nowhere: both problems.
    let (code, v, all) = scan("old:/etc");
    assert_eq!(code, 1, "{all}");
    let by_uuid = format!("/dev/disk/by-uuid/{}", vols.luks1);
    let l = entry(&v, "legacy2");
    assert_eq!(l["crypttab"]["luks_found"], true, "{l}");
    assert_eq!(l["crypttab"]["luks_header"], by_uuid.as_str(), "{l}");
    let header = of_kind(&v, "luks-header")
        .into_iter()
        .find(|k| k["path"] == by_uuid.as_str())
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(header["luks"]["uuid"], vols.luks1.as_str(), "{header}");
    assert_eq!(header["used_by"][0], "/etc/crypttab:5", "{header}");
    for name in ["data", "home"] {
        let e = entry(&v, name);
        assert_eq!(e["crypttab"]["luks_found"], false, "{e}");
        assert!(
            e["problems"][0]
                .as_str()
                .unwrap()
                .contains("no LUKS header with that UUID is on this host"),
            "{e}"
        );
    }
    // The whole host: the LUKS2 image scanned with the crypttab is its header.
    let (_, v, _) = scan("old:/");
    let e = entry(&v, "data");
    assert_eq!(e["crypttab"]["luks_found"], true, "{e}");
    assert_eq!(e["crypttab"]["luks_header"], "/srv/vol2.img", "{e}");
    let header = of_kind(&v, "luks-header")
        .into_iter()
        .find(|k| k["path"] == "/srv/vol2.img")
        .unwrap()
        .clone();
    assert_eq!(header["used_by"][0], "/etc/crypttab:2", "{header}");
    assert_eq!(entry(&v, "home")["crypttab"]["luks_found"], false);
}

/// Under `root`: a TLS key and certificate named by nginx, Apache, PostgreSQL (relative to its
/// data directory), OpenVPN (with a static key file and an inline one) and HAProxy; an SSH host
/// key named by sshd_config; files some configurations name that do not exist, and hostile
/// references (a `..` path, a symlink out of the root, a file that is not a key).
fn make_services(d: &TestDir, root: &str) {
    sh(
        d,
        &format!(
            "mkdir -p {root} && cd {root} && mkdir -p etc/nginx/sites-enabled etc/apache2/sites-enabled etc/ssl/private etc/ssh/sshd_config.d \
               etc/openvpn/server etc/haproxy etc/postgresql/16/main var/lib/postgresql/16/main \
             && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout etc/ssl/private/site.key \
                  -out etc/ssl/site.crt -subj /CN=site.example -days 365 2>/dev/null \
             && cat etc/ssl/site.crt etc/ssl/private/site.key > etc/ssl/private/site.pem \
             && chmod 600 etc/ssl/private/* \
             && cp etc/ssl/site.crt var/lib/postgresql/16/main/server.crt \
             && ssh-keygen -q -t ed25519 -N '' -C '' -f etc/ssh/ssh_host_ed25519_key \
             && head -c 256 /dev/urandom | base64 > etc/openvpn/server/ta.key && chmod 600 etc/openvpn/server/ta.key \
             && printf 'root:$6$TOPSECRETHASH:19000::::::\\n' > etc/shadow && chmod 600 etc/shadow \
             && ln -s /etc/passwd etc/ssl/link.crt"
        ),
    );
    let w = |p: &str, text: &str| d.write(&format!("{root}/{p}"), text);
    w(
        "etc/nginx/sites-enabled/default",
        "server {\n    listen 443 ssl;\n    ssl_certificate /etc/ssl/site.crt;\n    ssl_certificate_key \"/etc/ssl/private/site.key\";\n    ssl_trusted_certificate /etc/ssl/gone-ca.crt;\n    ssl_client_certificate /etc/shadow;\n}\n",
    );
    w(
        "etc/apache2/sites-enabled/default-ssl.conf",
        "<VirtualHost *:443>\n  SSLCertificateFile /etc/ssl/site.crt\n  SSLCertificateKeyFile /etc/ssl/../../../../../etc/ssl/private/site.key\n  SSLCACertificateFile /etc/ssl/link.crt\n</VirtualHost>\n",
    );
    w(
        "etc/postgresql/16/main/postgresql.conf",
        "data_directory = '/var/lib/postgresql/16/main'\nssl = on\nssl_cert_file = 'server.crt'\t# relative to the data directory\nssl_key_file = '/etc/ssl/private/site.key'\n",
    );
    w(
        "etc/ssh/sshd_config",
        "Port 22\nHostKey /etc/ssh/ssh_host_ed25519_key\n",
    );
    w(
        "etc/ssh/sshd_config.d/10-rsa.conf",
        "HostKey /etc/ssh/ssh_host_rsa_key\n",
    );
    w(
        "etc/openvpn/server/server.conf",
        "port 1194\nca /etc/ssl/site.crt\ncert /etc/ssl/site.crt\nkey /etc/ssl/private/site.key\ntls-auth ta.key 0\n<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\nfeedface0123456789abcdef0badcafe\n-----END OpenVPN Static key V1-----\n</tls-crypt>\n",
    );
    sh(
        d,
        &format!("chmod 600 {root}/etc/openvpn/server/server.conf"),
    );
    w(
        "etc/haproxy/haproxy.cfg",
        "global\n    crt-base /etc/ssl/private\nfrontend web\n    bind :443 ssl crt site.pem\n",
    );
}

#[test]
fn keys_named_by_service_configurations_are_found_where_the_configuration_says() {
    let d = TestDir::new();
    make_services(&d, "test-old");
    write_plan(&d, KEYS_PLAN);
    let secrets = Secrets(vec![
        b"TOPSECRETHASH".to_vec(),
        b"feedface0123456789abcdef0badcafe".to_vec(),
        std::fs::read(d.join("test-old/etc/openvpn/server/ta.key")).unwrap(),
    ]);
    let o = rehost(
        &d,
        &[
            "keys",
            "scan",
            "old:/etc",
            "--plan",
            "plan.toml",
            "--env",
            "test",
            "--json",
        ],
    );
    assert_eq!(o.code, 1, "files named that do not exist: {}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    secrets.assert_absent("stderr", o.stderr.as_bytes());
    let v = json(&o);
    let all = v["scans"][0]["keys"].as_array().unwrap();
    let reference = |config: &str, directive: &str| {
        all.iter()
            .find(|k| k["path"] == config && k["reference"]["directive"] == directive)
            .unwrap_or_else(|| panic!("{config} {directive}: {v}"))
    };
    // Each reference: its configuration and line, where it points, whether that exists.
    let r = reference("/etc/nginx/sites-enabled/default", "ssl_certificate_key");
    assert_eq!(r["kind"], "key-reference");
    assert_eq!(r["reference"]["line"], 4);
    assert_eq!(r["reference"]["resolved"], "/etc/ssl/private/site.key");
    assert_eq!(r["reference"]["found"], true);
    let pg = reference("/etc/postgresql/16/main/postgresql.conf", "ssl_cert_file");
    assert_eq!(
        pg["reference"]["resolved"], "/var/lib/postgresql/16/main/server.crt",
        "relative to the data directory: {pg}"
    );
    assert_eq!(
        pg["reference"]["found"], true,
        "found outside the scanned /etc: {pg}"
    );
    assert_eq!(
        reference("/etc/openvpn/server/server.conf", "tls-auth")["reference"]["resolved"],
        "/etc/openvpn/server/ta.key"
    );
    assert_eq!(
        reference("/etc/haproxy/haproxy.cfg", "crt")["reference"]["resolved"],
        "/etc/ssl/private/site.pem"
    );
    // Missing: problems naming the configuration's line.
    for (config, directive, line) in [
        (
            "/etc/nginx/sites-enabled/default",
            "ssl_trusted_certificate",
            5,
        ),
        ("/etc/ssh/sshd_config.d/10-rsa.conf", "HostKey", 1),
    ] {
        let r = reference(config, directive);
        assert_eq!(r["reference"]["found"], false, "{r}");
        assert!(
            r["problems"][0]
                .as_str()
                .unwrap()
                .contains(&format!("that line {line} names")),
            "{r}"
        );
    }
    // Hostile: /etc/shadow is read as a key candidate only; `..` and a symlink are refused.
    let sh_ref = reference("/etc/nginx/sites-enabled/default", "ssl_client_certificate");
    assert_eq!(
        sh_ref["reference"]["note"], "holds no key or certificate rehost reads",
        "{sh_ref}"
    );
    assert!(
        reference(
            "/etc/apache2/sites-enabled/default-ssl.conf",
            "SSLCertificateKeyFile"
        )["reference"]["note"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v}"
    );
    assert!(
        reference(
            "/etc/apache2/sites-enabled/default-ssl.conf",
            "SSLCACertificateFile"
        )["reference"]["note"]
            .as_str()
            .unwrap()
            .contains("symlink"),
        "{v}"
    );
    // The keys they name: found once each, linked to every configuration that names them.
    let at = |p: &str| -> Vec<&serde_json::Value> {
        all.iter()
            .filter(|k| k["path"] == p && k["kind"] != "key-reference")
            .collect()
    };
    let key = at("/etc/ssl/private/site.key");
    assert_eq!(key.len(), 1, "{v}");
    let used: Vec<&str> = key[0]["used_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    for u in [
        "/etc/nginx/sites-enabled/default:4",
        "/etc/postgresql/16/main/postgresql.conf:4",
        "/etc/openvpn/server/server.conf:4",
    ] {
        assert!(used.contains(&u), "{u}: {used:?}");
    }
    let host_key = at("/etc/ssh/ssh_host_ed25519_key");
    assert_eq!(host_key[0]["used_by"][0], "/etc/ssh/sshd_config:2");
    let ta = at("/etc/openvpn/server/ta.key");
    assert_eq!(
        ta[0]["kind"], "key-file",
        "a static key, by its keyed digest: {v}"
    );
    let pg_cert = at("/var/lib/postgresql/16/main/server.crt");
    assert_eq!(pg_cert[0]["kind"], "certificate");
    // The same scan as the inventory BSI's CON.1 asks for: one CSV row per key, with where
    // it is used and a certificate's expiry.
    let o = rehost(
        &d,
        &[
            "keys",
            "scan",
            "old:/etc",
            "--plan",
            "plan.toml",
            "--env",
            "test",
            "--format",
            "csv",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.all());
    secrets.assert_absent("csv", o.stdout.as_bytes());
    let rows: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        rows[0],
        "location,path,kind,algorithm,fingerprint,used_by,not_after,uid,gid,mode,encrypted,problems,warnings"
    );
    assert_eq!(rows.len(), all.len() + 1, "{}", o.stdout);
    let row = |prefix: &str| {
        *rows
            .iter()
            .find(|r| r.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {}", o.stdout))
    };
    let site = row("old:/etc,/etc/ssl/private/site.key,pkcs8-private,");
    let spki = key[0]["spki_sha256"].as_str().unwrap();
    assert!(site.contains(&format!(",spki-sha256:{spki},")), "{site}");
    for u in &used {
        assert!(site.contains(u), "{u}: {site}");
    }
    let cert = row("old:/etc,/var/lib/postgresql/16/main/server.crt,certificate,");
    assert!(
        cert.contains(&format!(
            ",{},",
            pg_cert[0]["certificate"]["not_after"].as_str().unwrap()
        )),
        "{cert}"
    );
    assert_eq!(
        at("/etc/ssl/private/site.pem").len(),
        2,
        "certificate and key"
    );
    // The inline static key: in the configuration itself.
    assert!(
        at("/etc/openvpn/server/server.conf")
            .iter()
            .any(|k| k["kind"] == "key-file"),
        "{v}"
    );

    // Compared with a copy: every reference and key present; then the key a configuration
    // names gone from the new host.
    sh(
        &d,
        "cp -a test-old test-new && touch test-new/etc/ssh/ssh_host_rsa_key test-old/etc/ssh/ssh_host_rsa_key && touch test-new/etc/ssl/gone-ca.crt test-old/etc/ssl/gone-ca.crt",
    );
    let compare = |d: &TestDir| {
        rehost(
            d,
            &[
                "keys",
                "compare",
                "old:/etc",
                "new:/etc",
                "--plan",
                "plan.toml",
                "--env",
                "test",
                "--json",
            ],
        )
    };
    let o = compare(&d);
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    // (site.pem holds the same key: both gone.)
    sh(
        &d,
        "rm test-new/etc/ssl/private/site.key test-new/etc/ssl/private/site.pem",
    );
    let o = compare(&d);
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o);
    assert!(
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["verdict"] == "missing"
                && k["kind"] == "pkcs8-private"
                && k["old"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p == "/etc/ssl/private/site.key")),
        "{v}"
    );
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["side"] == "new")
        .map(|p| p["what"].as_str().unwrap())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains(
            "the file /etc/ssl/private/site.key that line 4 names (nginx ssl_certificate_key) does not exist"
        )),
        "{problems:?}"
    );
}

/// `cmd` run by bash in `d`, its stdout.
fn out(d: &TestDir, cmd: &str) -> String {
    let o = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-ec", cmd])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

#[test]
fn pkcs12_bundles_show_what_needs_no_password_and_wireguard_keys_their_public_key() {
    rehost_test::require_tool("wg");
    let d = TestDir::new();
    sh(
        &d,
        "mkdir -p old/ssl old/wireguard && cd old/ssl \
         && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -subj /CN=bundle.example -days 200 2>/dev/null \
         && openssl pkcs12 -export -in c.pem -inkey k.pem -out sealed.p12 -passout pass:Sesame-771 \
         && openssl pkcs12 -export -in c.pem -inkey k.pem -out certs-clear.p12 -passout pass:Sesame-771 -certpbe NONE \
         && openssl pkcs12 -export -in c.pem -inkey k.pem -out open.p12 -passout pass: -certpbe NONE -keypbe NONE -nomac \
         && rm k.pem c.pem && chmod 600 *.p12",
    );
    let private = out(&d, "wg genkey");
    let psk = out(&d, "wg genpsk");
    let public = out(&d, &format!("echo {private} | wg pubkey"));
    let peer = out(&d, "wg genkey | wg pubkey");
    d.write(
        "old/wireguard/wg0.conf",
        format!(
            "[Interface]\nAddress = 10.0.0.1/24\nPrivateKey = {private}\nListenPort = 51820\n\n[Peer]\nPublicKey = {peer}\nPresharedKey = {psk}\nAllowedIPs = 10.0.0.2/32\n"
        ),
    );
    sh(&d, "chmod 600 old/wireguard/wg0.conf");
    let spki = out(
        &d,
        "openssl pkcs12 -in old/ssl/open.p12 -nocerts -nodes -passin pass: | openssl pkey -pubout -outform DER | sha256sum | cut -d' ' -f1",
    );
    let cert_sha = out(
        &d,
        "openssl pkcs12 -in old/ssl/open.p12 -nokeys -passin pass: | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f",
    );
    let secrets = Secrets(vec![
        b"Sesame-771".to_vec(),
        private.clone().into_bytes(),
        psk.clone().into_bytes(),
    ]);
    let o = rehost(&d, &["keys", "scan", "old", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    let v = json(&o);
    let at = |p: &str| -> Vec<&serde_json::Value> {
        v["scans"][0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["path"].as_str().unwrap().ends_with(p))
            .collect()
    };
    // Sealed as openssl seals by default: nothing in the clear, a password needed.
    let sealed = at("/sealed.p12");
    assert_eq!(sealed.len(), 1, "{v}");
    assert_eq!(sealed[0]["kind"], "pkcs12");
    let p = &sealed[0]["pkcs12"];
    assert_eq!(
        (
            &p["password_needed"],
            &p["mac"],
            &p["encrypted_keys"],
            &p["encrypted_parts"],
            &p["certificates"]
        ),
        (&true.into(), &true.into(), &1.into(), &1.into(), &0.into()),
        "{p}"
    );
    // Certificates in the clear: read, with the tool's fingerprint; the key still sealed.
    let clear = at("/certs-clear.p12");
    assert_eq!(clear.len(), 2, "{v}");
    assert_eq!(clear[0]["pkcs12"]["certificates"], 1);
    assert_eq!(clear[1]["kind"], "certificate");
    assert_eq!(clear[1]["certificate"]["sha256"], cert_sha.as_str());
    // Its private key is the one open.p12 holds in the clear, not the sealed bundle beside it.
    assert!(
        clear[1]["private_key"]
            .as_str()
            .unwrap()
            .ends_with("/open.p12"),
        "{v}"
    );
    // No password at all: the key is in the clear, identified as the tool says.
    let open = at("/open.p12");
    assert_eq!(open.len(), 3, "{v}");
    assert_eq!(open[0]["pkcs12"]["password_needed"], false);
    assert_eq!(open[0]["pkcs12"]["mac"], false);
    let key = open.iter().find(|k| k["kind"] == "pkcs8-private").unwrap();
    assert_eq!(key["spki_sha256"], spki.as_str());
    // WireGuard: the public key as `wg pubkey` prints it; the preshared key by its keyed digest.
    let wg = at("/wg0.conf");
    let w = wg
        .iter()
        .find(|k| k["kind"] == "wireguard-private")
        .unwrap();
    assert_eq!(w["wireguard_public"], public.as_str(), "{w}");
    assert!(wg.iter().any(|k| k["kind"] == "key-file"), "{v}");

    // A certificate expiring within 30 days: a warning, not a failure.
    sh(
        &d,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -out old/ssl/soon.crt -subj /CN=soon -days 5 2>/dev/null",
    );
    let o = rehost(&d, &["keys", "scan", "old/ssl"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("warning: certificate expires at ")
            && (o.stdout.contains(", in 4 day(s): renew it")
                || o.stdout.contains(", in 5 day(s): renew it")),
        "{}",
        o.stdout
    );

    // Compared with a copy, then with the WireGuard key replaced and a bundle re-made.
    sh(&d, "cp -a old new");
    let o = rehost(&d, &["keys", "compare", "old", "new"]);
    assert_eq!(o.code, 0, "{}", o.all());
    secrets.assert_absent("stdout", o.stdout.as_bytes());
    assert!(
        o.stdout.contains("warning (new)  ") && o.stdout.contains("/soon.crt: certificate expires"),
        "{}",
        o.stdout
    );
    let other = out(&d, "wg genkey");
    d.write(
        "new/wireguard/wg0.conf",
        format!("[Interface]\nPrivateKey = {other}\n[Peer]\nPresharedKey = {psk}\n"),
    );
    sh(
        &d,
        "chmod 600 new/wireguard/wg0.conf && cd new/ssl \
         && openssl pkcs12 -in sealed.p12 -passin pass:Sesame-771 -nodes -out /dev/stdout 2>/dev/null > ../all.pem \
         && openssl pkcs12 -export -in ../all.pem -out sealed.p12 -passout pass:Sesame-771 && rm ../all.pem",
    );
    let o = rehost(&d, &["keys", "compare", "old", "new", "--json"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o);
    let verdict = |kind: &str| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kind"] == kind)
            .map(|k| k["verdict"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(verdict("wireguard-private"), ["missing", "extra"], "{v}");
    assert_eq!(
        verdict("key-file"),
        ["present"],
        "the same preshared key: {v}"
    );
    // A bundle made again is another file (new salts), though it holds the same key.
    assert!(verdict("pkcs12").contains(&"missing".to_owned()), "{v}");
}
