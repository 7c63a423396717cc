//! Key material made by the real tools (`ssh-keygen`, `openssl`), with the fingerprints the
//! tools themselves print and the secrets that must never appear in anything rehost writes.

use std::path::Path;
use std::process::Command;

/// One file of key material and what the tools say of it.
#[derive(Clone, Debug)]
pub struct Made {
    /// Relative to the directory it was made in.
    pub path: String,
    /// rehost's kind name (`ssh-private`, `pkcs8-private`, …).
    pub kind: &'static str,
    /// `SHA256:…` as `ssh-keygen -lf` prints it.
    pub ssh_sha256: Option<String>,
    /// SHA-256 of `openssl pkey -pubout -outform DER` (or of a certificate's public key),
    /// lowercase hex.
    pub spki_sha256: Option<String>,
    /// A certificate's own SHA-256 (`openssl x509 -fingerprint -sha256`), lowercase hex.
    pub cert_sha256: Option<String>,
}

/// What must never appear in an output: private keys' PEM body lines, pieces of raw DER
/// private keys (raw and as hex), passphrases.
#[derive(Clone, Debug, Default)]
pub struct Secrets(pub Vec<Vec<u8>>);

impl Secrets {
    /// Fails naming the secret's source when `haystack` holds one of them.
    pub fn assert_absent(&self, what: &str, haystack: &[u8]) {
        for s in &self.0 {
            assert!(
                !haystack.windows(s.len()).any(|w| w == s.as_slice()),
                "{what} holds secret material ({} bytes starting {:?})",
                s.len(),
                String::from_utf8_lossy(&s[..s.len().min(6)])
            );
        }
    }
}

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-ec"])
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `openssl pkey … -pubout -outform DER | sha256sum` of a key file (`pass` for an encrypted
/// one).
pub fn spki_sha256(dir: &Path, file: &str, pass: Option<&str>) -> String {
    let passin = pass
        .map(|p| format!("-passin pass:{p}"))
        .unwrap_or_default();
    first_word(&sh(
        dir,
        &format!("openssl pkey -in '{file}' {passin} -pubout -outform DER | sha256sum"),
    ))
}

/// The SPKI digest of an OpenSSH public key, through `ssh-keygen -e -m PKCS8` (RSA, ECDSA).
pub fn ssh_public_spki_sha256(dir: &Path, pub_file: &str) -> String {
    first_word(&sh(
        dir,
        &format!(
            "ssh-keygen -e -m PKCS8 -f '{pub_file}' | openssl pkey -pubin -outform DER | sha256sum"
        ),
    ))
}

fn cert_spki_sha256(dir: &Path, file: &str) -> String {
    first_word(&sh(
        dir,
        &format!(
            "openssl x509 -in '{file}' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum"
        ),
    ))
}

fn cert_sha256(dir: &Path, file: &str) -> String {
    let out = sh(
        dir,
        &format!("openssl x509 -in '{file}' -noout -fingerprint -sha256"),
    );
    out.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

/// `SHA256:…` of `ssh-keygen -lf FILE`.
pub fn ssh_sha256(dir: &Path, file: &str) -> String {
    sh(dir, &format!("ssh-keygen -lf '{file}'"))
        .split_whitespace()
        .nth(1)
        .expect("ssh-keygen -lf prints a fingerprint")
        .to_owned()
}

/// Lowercase hex of `b`.
pub fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or_default().to_owned()
}

/// The secrets of a private key file: its PEM body lines, or pieces of its raw DER.
fn secrets_of(dir: &Path, file: &str, out: &mut Secrets) {
    let bytes = std::fs::read(dir.join(file)).expect("read the key file");
    if bytes.starts_with(b"-----BEGIN") {
        for line in String::from_utf8_lossy(&bytes).lines() {
            let line = line.trim();
            if line.len() >= 16 && !line.starts_with("-----") && !line.contains(':') {
                out.0.push(line.as_bytes().to_vec());
            }
        }
    } else {
        for chunk in bytes[8..].chunks(24).filter(|c| c.len() == 24) {
            out.0.push(chunk.to_vec());
            out.0.push(
                chunk
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .into_bytes(),
            );
        }
    }
}

/// The passphrases the material uses.
pub const PASSPHRASES: &[&str] = &["correct-horse-7fq", "Tr0ub4dor-x9z"];

/// Makes every kind of key material in `dir` (created): OpenSSH ed25519, rsa and ecdsa keys
/// with and without a passphrase and their `.pub`; RSA, EC and Ed25519 keys from openssl in
/// PKCS#1, PKCS#8 and SEC1, PEM and DER; encrypted PKCS#8 alone and beside its public key; a
/// self-signed certificate with its key and a CA-signed one. Needs `ssh-keygen` and `openssl`.
pub fn make_all(dir: &Path) -> (Vec<Made>, Secrets) {
    crate::require_tool("ssh-keygen");
    crate::require_tool("openssl");
    std::fs::create_dir_all(dir.join("ssh")).unwrap();
    std::fs::create_dir_all(dir.join("ssl/private")).unwrap();
    let mut made = Vec::new();
    let mut secrets = Secrets::default();
    for p in PASSPHRASES {
        secrets.0.push(p.as_bytes().to_vec());
    }
    let mut private = |made: &mut Vec<Made>, m: Made| {
        secrets_of(dir, &m.path, &mut secrets);
        made.push(m);
    };
    let ssh = |made: &mut Vec<Made>,
               private: &mut dyn FnMut(&mut Vec<Made>, Made),
               name: &str,
               args: &str,
               pass: &str| {
        let f = format!("ssh/{name}");
        sh(
            dir,
            &format!("ssh-keygen -q {args} -N '{pass}' -C test@example -f '{f}'"),
        );
        let fp = ssh_sha256(dir, &format!("{f}.pub"));
        private(
            made,
            Made {
                path: f.clone(),
                kind: "ssh-private",
                ssh_sha256: Some(fp.clone()),
                spki_sha256: None,
                cert_sha256: None,
            },
        );
        made.push(Made {
            path: format!("{f}.pub"),
            kind: "ssh-public",
            ssh_sha256: Some(fp),
            spki_sha256: None,
            cert_sha256: None,
        });
    };
    ssh(&mut made, &mut private, "id_ed25519", "-t ed25519", "");
    ssh(&mut made, &mut private, "id_rsa", "-t rsa -b 2048", "");
    ssh(&mut made, &mut private, "id_ecdsa", "-t ecdsa -b 256", "");
    ssh(
        &mut made,
        &mut private,
        "ed25519_pass",
        "-t ed25519",
        PASSPHRASES[0],
    );
    ssh(
        &mut made,
        &mut private,
        "rsa_pass",
        "-t rsa -b 2048",
        PASSPHRASES[1],
    );
    ssh(
        &mut made,
        &mut private,
        "ecdsa384_pass",
        "-t ecdsa -b 384",
        PASSPHRASES[0],
    );

    let pk = |made: &mut Vec<Made>,
              private: &mut dyn FnMut(&mut Vec<Made>, Made),
              path: &str,
              kind: &'static str,
              script: &str| {
        sh(dir, script);
        let spki = spki_sha256(dir, path, None);
        private(
            made,
            Made {
                path: path.into(),
                kind,
                ssh_sha256: None,
                spki_sha256: Some(spki),
                cert_sha256: None,
            },
        );
    };
    let rsa = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048";
    let ec = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256";
    let ed = "openssl genpkey -algorithm ED25519";
    pk(
        &mut made,
        &mut private,
        "ssl/private/rsa8.pem",
        "pkcs8-private",
        &format!("{rsa} -out ssl/private/rsa8.pem"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/rsa1.pem",
        "pkcs1-private",
        &format!("{rsa} | openssl pkey -traditional -out ssl/private/rsa1.pem"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/rsa8.der",
        "pkcs8-private",
        &format!("{rsa} | openssl pkcs8 -topk8 -nocrypt -outform DER -out ssl/private/rsa8.der"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/rsa1.der",
        "pkcs1-private",
        &format!("{rsa} | openssl pkey -traditional -outform DER -out ssl/private/rsa1.der"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/ec8.pem",
        "pkcs8-private",
        &format!("{ec} -out ssl/private/ec8.pem"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/ec-sec1.pem",
        "sec1-private",
        &format!("{ec} | openssl ec -out ssl/private/ec-sec1.pem 2>/dev/null"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/ec-sec1.der",
        "sec1-private",
        &format!("{ec} | openssl ec -outform DER -out ssl/private/ec-sec1.der 2>/dev/null"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/ed.pem",
        "pkcs8-private",
        &format!("{ed} -out ssl/private/ed.pem"),
    );
    pk(
        &mut made,
        &mut private,
        "ssl/private/ed.der",
        "pkcs8-private",
        &format!("{ed} -outform DER -out ssl/private/ed.der"),
    );

    // Encrypted PKCS#8: alone (unidentified), and beside its public key (identified by it).
    let pass = PASSPHRASES[1];
    sh(
        dir,
        &format!("{rsa} | openssl pkey -aes256 -passout pass:{pass} -out ssl/private/alone.key"),
    );
    private(
        &mut made,
        Made {
            path: "ssl/private/alone.key".into(),
            kind: "pkcs8-encrypted",
            ssh_sha256: None,
            spki_sha256: None,
            cert_sha256: None,
        },
    );
    sh(
        dir,
        &format!(
            "{ec} | openssl pkey -aes256 -passout pass:{pass} -out ssl/private/app.key && openssl pkey -in ssl/private/app.key -passin pass:{pass} -pubout -out ssl/private/app.pub"
        ),
    );
    let app = spki_sha256(dir, "ssl/private/app.key", Some(pass));
    private(
        &mut made,
        Made {
            path: "ssl/private/app.key".into(),
            kind: "pkcs8-encrypted",
            ssh_sha256: None,
            spki_sha256: Some(app.clone()),
            cert_sha256: None,
        },
    );
    made.push(Made {
        path: "ssl/private/app.pub".into(),
        kind: "public-key",
        ssh_sha256: None,
        spki_sha256: Some(app),
        cert_sha256: None,
    });

    // A self-signed certificate with its key, and a CA-signed one. Valid for a year: a
    // certificate expiring within 30 days is warned of, and one made for exactly 30 days
    // crosses that line a second after it is made, so two scans of it disagreed by the second
    // they ran in (a fresh CI run: the local scan had no warning, the ssh one had).
    sh(
        dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ssl/private/site.key -out ssl/site.crt -subj /CN=site.example -days 365 2>/dev/null",
    );
    let site = cert_spki_sha256(dir, "ssl/site.crt");
    private(
        &mut made,
        Made {
            path: "ssl/private/site.key".into(),
            kind: "pkcs8-private",
            ssh_sha256: None,
            spki_sha256: Some(site.clone()),
            cert_sha256: None,
        },
    );
    made.push(Made {
        path: "ssl/site.crt".into(),
        kind: "certificate",
        ssh_sha256: None,
        spki_sha256: Some(site),
        cert_sha256: Some(cert_sha256(dir, "ssl/site.crt")),
    });
    sh(
        dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ca.key -out ssl/ca.crt -subj '/CN=Test CA/O=Example' -days 365 2>/dev/null \
        && openssl req -new -newkey rsa:2048 -nodes -keyout ssl/private/leaf.key -out leaf.csr -subj /CN=leaf.example 2>/dev/null \
        && openssl x509 -req -in leaf.csr -CA ssl/ca.crt -CAkey ca.key -CAcreateserial -out ssl/leaf.crt -days 60 2>/dev/null \
        && rm -f leaf.csr ssl/ca.srl && mv ca.key ssl/private/ca.key",
    );
    for (f, kind) in [
        ("ssl/private/leaf.key", "pkcs8-private"),
        ("ssl/private/ca.key", "pkcs8-private"),
    ] {
        let spki = spki_sha256(dir, f, None);
        private(
            &mut made,
            Made {
                path: f.into(),
                kind,
                ssh_sha256: None,
                spki_sha256: Some(spki),
                cert_sha256: None,
            },
        );
    }
    for f in ["ssl/ca.crt", "ssl/leaf.crt"] {
        made.push(Made {
            path: f.into(),
            kind: "certificate",
            ssh_sha256: None,
            spki_sha256: Some(cert_spki_sha256(dir, f)),
            cert_sha256: Some(cert_sha256(dir, f)),
        });
    }
    sh(
        dir,
        "chmod 600 ssl/private/* ssh/id_* ssh/*_pass && chmod 644 ssh/*.pub",
    );
    (made, secrets)
}

/// GnuPG keys made by `gpg`, and what `gpg --with-colons --with-keygrip -K` says of them.
#[derive(Clone, Debug, Default)]
pub struct Gpg {
    /// The `fpr` of every secret key and subkey, uppercase hex.
    pub fingerprints: Vec<String>,
    /// Each `grp` (keygrip) with the `fpr` of its key: the agent's key file names.
    pub keygrips: Vec<(String, String)>,
    /// The keygrips of RSA keys.
    pub rsa_keygrips: Vec<String>,
    /// The keygrips of the keys protected by a passphrase (the RSA key and its subkey, the
    /// NIST P-256 key).
    pub protected_keygrips: Vec<String>,
    /// Each key's algorithm field as `sec`/`ssb` say it (`rsa3072`, `ed25519`, `cv25519`,
    /// `nistp256`), by keygrip.
    pub curves: Vec<(String, String)>,
}

/// Makes GnuPG keys in `dir/gnupg` (a GNUPGHOME, mode 0700): an RSA key (gpg's default, with
/// an encryption subkey) protected by `PASSPHRASES[0]`, an Ed25519 signing key with a
/// Curve25519 encryption subkey without one, and a NIST P-256 key protected by
/// `PASSPHRASES[0]`; and exports of the secret keys in `dir/export/secret.asc` (armored: all
/// three) and `secret.gpg` (binary: the RSA key), mode 0600. The gpg-agent it started is
/// stopped. Needs `gpg`.
pub fn make_gpg(dir: &Path) -> (Gpg, Secrets) {
    crate::require_tool("gpg");
    crate::require_tool("gpgconf");
    std::fs::create_dir_all(dir.join("export")).unwrap();
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let pass = PASSPHRASES[0];
    let g = format!(
        "GNUPGHOME='{}' gpg --batch --no-tty --quiet --pinentry-mode loopback",
        home.display()
    );
    sh(
        dir,
        &format!(
            "{g} --passphrase '{pass}' --quick-gen-key 'RSA Test <rsa@example.org>' default default never 2>/dev/null \
             && {g} --passphrase '' --quick-gen-key 'Ed Test <ed@example.org>' ed25519 sign never 2>/dev/null \
             && ed=$({g} --with-colons -K 'Ed Test' | awk -F: '/^fpr/ {{ print $10; exit }}') \
             && {g} --passphrase '' --quick-add-key \"$ed\" cv25519 encr never 2>/dev/null \
             && {g} --passphrase '{pass}' --quick-gen-key 'P256 Test <p256@example.org>' nistp256 sign never 2>/dev/null \
             && {g} --passphrase '{pass}' --export-secret-keys --armor 'RSA Test' > export/secret.asc \
             && {g} --passphrase '' --export-secret-keys --armor 'Ed Test' >> export/secret.asc \
             && {g} --passphrase '{pass}' --export-secret-keys --armor 'P256 Test' >> export/secret.asc \
             && {g} --passphrase '{pass}' --export-secret-keys 'RSA Test' > export/secret.gpg \
             && chmod 600 export/secret.asc export/secret.gpg"
        ),
    );
    let colons = sh(
        dir,
        &format!("{g} --with-colons --with-keygrip -K 2>/dev/null"),
    );
    let _ = Command::new("gpgconf")
        .args(["--kill", "gpg-agent"])
        .env("GNUPGHOME", &home)
        .status();
    let mut out = Gpg::default();
    let (mut rsa, mut algo, mut protected) = (false, String::new(), false);
    for line in colons.lines() {
        let f: Vec<&str> = line.split(':').collect();
        match f[0] {
            "sec" | "ssb" => {
                rsa = f.get(3) == Some(&"1");
                let curve = f.get(16).copied().unwrap_or_default();
                algo = if rsa {
                    format!("rsa{}", f.get(2).copied().unwrap_or_default())
                } else {
                    curve.to_owned()
                };
                // The RSA key and the P-256 key were given a passphrase.
                protected = rsa || curve == "nistp256";
            }
            "fpr" => {
                out.fingerprints.push(f[9].to_owned());
            }
            "grp" => {
                let fpr = out.fingerprints.last().cloned().unwrap_or_default();
                out.keygrips.push((f[9].to_owned(), fpr));
                out.curves.push((f[9].to_owned(), algo.clone()));
                if rsa {
                    out.rsa_keygrips.push(f[9].to_owned());
                }
                if protected {
                    out.protected_keygrips.push(f[9].to_owned());
                }
            }
            _ => {}
        }
    }
    let algos: Vec<&str> = out.curves.iter().map(|(_, a)| a.as_str()).collect();
    assert!(
        ["ed25519", "cv25519", "nistp256"]
            .iter()
            .all(|a| algos.contains(a)),
        "gpg made an Ed25519, a Curve25519 and a NIST P-256 key: {colons}"
    );
    assert!(
        out.fingerprints.len() >= 3 && out.keygrips.len() == out.fingerprints.len(),
        "gpg made its keys: {colons}"
    );
    let mut secrets = Secrets::default();
    secrets.0.push(pass.as_bytes().to_vec());
    secrets_of(dir, "export/secret.asc", &mut secrets);
    secrets_of(dir, "export/secret.gpg", &mut secrets);
    for (grip, _) in &out.keygrips {
        secrets_of(
            dir,
            &format!("gnupg/private-keys-v1.d/{grip}.key"),
            &mut secrets,
        );
    }
    (out, secrets)
}

/// One keytab entry as `klist -kte` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeytabEntry {
    pub principal: String,
    pub kvno: u32,
    pub enctype: String,
}

/// Makes a Kerberos keytab at `dir/FILE` with `ktutil` (mode 0600): a key derived from a
/// password (`PASSPHRASES[1]`) and one given in hex; returns what `klist -kte` lists and the
/// secrets (the password, the hex key, its bytes). Needs `ktutil` and `klist` (krb5-user).
pub fn make_keytab(dir: &Path, file: &str) -> (Vec<KeytabEntry>, Secrets) {
    crate::require_tool("ktutil");
    crate::require_tool("klist");
    const HEX: &str = "00112233445566778899aabbccddeeff";
    // ktutil reads each answer from its terminal or stdin one prompt at a time: the lines are
    // fed with pauses, or the first prompt swallows them all.
    let lines = [
        "addent -password -p host/db.example@EXAMPLE.ORG -k 3 -e aes256-cts-hmac-sha1-96".into(),
        PASSPHRASES[1].to_owned(),
        "addent -key -p HTTP/web.example@EXAMPLE.ORG -k 7 -e aes128-cts-hmac-sha1-96".into(),
        HEX.to_owned(),
        format!("wkt {file}"),
    ];
    let feed: String = lines
        .iter()
        .map(|l| format!("echo '{l}'; sleep 0.3; "))
        .collect();
    sh(
        dir,
        &format!("({feed}) | ktutil >/dev/null && chmod 600 '{file}'"),
    );
    let listed = sh(dir, &format!("klist -kte '{file}'"));
    let mut entries = Vec::new();
    for line in listed.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let [kvno, _, _, principal, enctype] = &w[..]
            && let Ok(kvno) = kvno.parse()
        {
            entries.push(KeytabEntry {
                principal: (*principal).to_owned(),
                kvno,
                enctype: enctype.trim_matches(['(', ')']).to_owned(),
            });
        }
    }
    assert_eq!(entries.len(), 2, "klist -kte lists both: {listed}");
    let mut secrets = Secrets::default();
    secrets.0.push(PASSPHRASES[1].as_bytes().to_vec());
    secrets.0.push(HEX.as_bytes().to_vec());
    secrets.0.push(HEX.to_uppercase().into_bytes());
    secrets.0.push(
        (0..16)
            .map(|i| u8::from_str_radix(&HEX[2 * i..2 * i + 2], 16).unwrap())
            .collect(),
    );
    // The password-derived key, as klist -K shows it (hex) and as bytes.
    let with_keys = sh(dir, &format!("klist -kteK '{file}'"));
    for hex in with_keys.split("(0x").skip(1) {
        let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
        if hex.len() >= 32 && hex != HEX {
            secrets.0.push(hex.clone().into_bytes());
            secrets.0.push(
                (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
            );
        }
    }
    assert!(
        secrets.0.len() >= 6,
        "klist -K shows the derived key: {with_keys}"
    );
    (entries, secrets)
}
