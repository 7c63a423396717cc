//! Key files named by service configurations: nginx, Apache, PostgreSQL, sshd, OpenVPN and
//! HAProxy. A configuration is recognised by its path on the host (`/etc/nginx/…`,
//! `postgresql.conf`, `sshd_config` and `sshd_config.d/`, …), read line by line, and each
//! directive that names a key, a certificate or a key file becomes a [`Reference`]: the
//! configuration's line, the path as written, and the path on the host it means (a relative
//! one taken the way the service takes it). The host scan then looks the file up there and
//! links what it finds to the reference; a named file that does not exist is a problem.
//! OpenVPN's inline blocks (`<key>…</key>`) are key material in the configuration itself.

use crate::{Encoding, Key, Kind};
use serde::{Deserialize, Serialize};

/// A configuration line longer than this is not read.
const MAX_LINE: usize = 4096;
/// The most references kept of one configuration.
const MAX_REFERENCES: usize = 4096;

/// A service whose configuration names key files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Nginx,
    Apache,
    Postgresql,
    Sshd,
    Openvpn,
    Haproxy,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Nginx => "nginx",
            Service::Apache => "apache",
            Service::Postgresql => "postgresql",
            Service::Sshd => "sshd",
            Service::Openvpn => "openvpn",
            Service::Haproxy => "haproxy",
        }
    }
}

/// A directive of a configuration that names a file holding key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `nginx`, `apache`, `postgresql`, `sshd`, `openvpn`, `haproxy`.
    pub service: String,
    /// The directive as the service spells it (`ssl_certificate_key`, `HostKey`, `crt`).
    pub directive: String,
    /// Its line in the configuration.
    pub line: u32,
    /// The path as written.
    pub target: String,
    /// The path on the host it means (absolute), when it can be said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Whether the file exists on the host: `Some(false)` is a problem. `None`: not looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<bool>,
    /// What became of it when it was not read, or what it holds when that is not a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Reference {
    /// `nginx ssl_certificate_key /etc/ssl/private/site.key`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.service,
            self.directive,
            self.resolved.as_deref().unwrap_or(&self.target)
        )
    }

    /// Whether the file it names is read as symmetric material (a keyed digest) when it holds
    /// no key or certificate: OpenVPN's static keys, nginx's passphrase file.
    pub fn symmetric(&self) -> bool {
        matches!(
            self.directive.as_str(),
            "tls-auth" | "tls-crypt" | "tls-crypt-v2" | "secret" | "ssl_password_file"
        )
    }
}

/// Which service's configuration the file at `path` (its path on the host) is.
pub fn config_service(path: &str) -> Option<Service> {
    let parts: Vec<&str> = path.split('/').collect();
    let name = *parts.last()?;
    let dirs = &parts[..parts.len() - 1];
    let under = |d: &str| dirs.contains(&d);
    if name == "postgresql.conf" || name == "postgresql.auto.conf" {
        return Some(Service::Postgresql);
    }
    if name == "sshd_config" || dirs.last() == Some(&"sshd_config.d") {
        return Some(Service::Sshd);
    }
    if under("nginx") {
        return Some(Service::Nginx);
    }
    if under("apache2") || under("httpd") {
        return Some(Service::Apache);
    }
    if under("openvpn") && (name.ends_with(".conf") || name.ends_with(".ovpn")) {
        return Some(Service::Openvpn);
    }
    if under("haproxy") && name.ends_with(".cfg") {
        return Some(Service::Haproxy);
    }
    None
}

/// The directory of `path` (`/` for a top-level file).
fn dir_of(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((d, _)) => d,
    }
}

/// The deepest ancestor directory of `path` named one of `names` (nginx's prefix, Apache's
/// ServerRoot), else `path`'s directory.
fn ancestor<'a>(path: &'a str, names: &[&str]) -> &'a str {
    let mut best = None;
    let mut at = 0;
    for (i, c) in path.char_indices() {
        if c == '/' {
            let seg = &path[at..i];
            if names.contains(&seg) {
                best = Some(&path[..i]);
            }
            at = i + 1;
        }
    }
    best.unwrap_or_else(|| dir_of(path))
}

fn join(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("{}/{p}", base.trim_end_matches('/'))
    }
}

fn unquote(s: &str) -> &str {
    let s = s.trim().trim_end_matches(';').trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// The references of a configuration of `service` at `path` (its path on the host), the keys
/// of its OpenVPN inline blocks (with `digest_key` for static keys), and what could not be read
/// (by line number, never content).
pub fn parse_config(
    service: Service,
    path: &str,
    bytes: &[u8],
    digest_key: &[u8; 32],
) -> (Vec<Key>, Vec<String>) {
    let mut refs: Vec<(String, u32, String, String)> = Vec::new();
    let mut errors = Vec::new();
    let mut keys = Vec::new();
    let base = match service {
        Service::Nginx => ancestor(path, &["nginx"]).to_owned(),
        Service::Apache => ancestor(path, &["apache2", "httpd"]).to_owned(),
        Service::Sshd => ancestor(path, &["ssh"]).to_owned(),
        _ => dir_of(path).to_owned(),
    };
    let mut base = base;
    // (tag, first line, lines) of an OpenVPN inline block being read.
    let mut inline: Option<(String, u32, Vec<u8>)> = None;
    for (i, raw) in bytes.split(|&c| c == b'\n').enumerate() {
        let n = (i + 1) as u32;
        if let Some((tag, _, body)) = inline.as_mut() {
            if raw.trim_ascii() == format!("</{tag}>").as_bytes() {
                let (tag, first, body) = inline.take().unwrap_or_default();
                inline_block(&tag, first, &body, digest_key, &mut keys, &mut errors);
            } else if body.len() < crate::MAX_DER as usize * 4 {
                body.extend_from_slice(raw);
                body.push(b'\n');
            }
            continue;
        }
        if raw.len() > MAX_LINE {
            errors.push(format!(
                "{} configuration line {n} is longer than {MAX_LINE} bytes: not read",
                service.name()
            ));
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if refs.len() >= MAX_REFERENCES {
            errors.push(format!(
                "{} configuration has more than {MAX_REFERENCES} key references: the rest not read",
                service.name()
            ));
            break;
        }
        let (word, rest) = match service {
            Service::Postgresql => match line.split_once(|c: char| c == '=' || c.is_whitespace()) {
                Some((k, v)) => (k.trim(), v.trim().trim_start_matches('=').trim()),
                None => continue,
            },
            _ => match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (line, ""),
            },
        };
        // PostgreSQL's value: quoted up to its closing quote, else up to blanks or a comment.
        let value = |v: &str| -> String {
            let v = v.trim();
            match v.strip_prefix('\'') {
                Some(q) => q.split('\'').next().unwrap_or_default().to_owned(),
                None => v
                    .split(|c: char| c.is_whitespace() || c == '#')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }
        };
        let first = |v: &str| -> String {
            unquote(v.split_whitespace().next().unwrap_or_default()).to_owned()
        };
        let wanted: Option<(String, String)> = match service {
            Service::Nginx => [
                "ssl_certificate",
                "ssl_certificate_key",
                "ssl_trusted_certificate",
                "ssl_client_certificate",
                "ssl_password_file",
            ]
            .contains(&word)
            .then(|| (word.to_owned(), first(rest))),
            Service::Apache => [
                "SSLCertificateFile",
                "SSLCertificateKeyFile",
                "SSLCertificateChainFile",
                "SSLCACertificateFile",
            ]
            .iter()
            .find(|d| d.eq_ignore_ascii_case(word))
            .map(|d| ((*d).to_owned(), first(rest))),
            Service::Postgresql => {
                if word == "data_directory" {
                    base = value(rest);
                    None
                } else {
                    [
                        "ssl_cert_file",
                        "ssl_key_file",
                        "ssl_ca_file",
                        "ssl_crl_file",
                    ]
                    .contains(&word)
                    .then(|| (word.to_owned(), value(rest)))
                }
            }
            Service::Sshd => ["HostKey", "HostCertificate"]
                .iter()
                .find(|d| d.eq_ignore_ascii_case(word))
                .map(|d| ((*d).to_owned(), first(rest))),
            Service::Openvpn => {
                if let Some(tag) = word.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                    if !tag.starts_with('/') {
                        inline = Some((tag.to_owned(), n, Vec::new()));
                    }
                    None
                } else {
                    [
                        "key",
                        "cert",
                        "ca",
                        "tls-auth",
                        "tls-crypt",
                        "tls-crypt-v2",
                        "secret",
                        "pkcs12",
                    ]
                    .contains(&word)
                    .then(|| (word.to_owned(), first(rest)))
                    .filter(|(_, v)| v != "[inline]" && !v.is_empty())
                }
            }
            Service::Haproxy => {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() == Some(&"crt-base") {
                    if let Some(b) = words.get(1) {
                        base = unquote(b).to_owned();
                    }
                    None
                } else if words.first() == Some(&"bind") {
                    for (j, w) in words.iter().enumerate() {
                        if (*w == "crt" || *w == "ca-file")
                            && let Some(v) = words.get(j + 1)
                        {
                            refs.push(((*w).to_owned(), n, unquote(v).to_owned(), base.clone()));
                        }
                    }
                    None
                } else {
                    None
                }
            }
        };
        if let Some((directive, target)) = wanted
            && !target.is_empty()
        {
            refs.push((directive, n, target, base.clone()));
        }
    }
    if let Some((tag, first, _)) = inline {
        errors.push(format!(
            "openvpn inline block <{tag}> from line {first} is not closed"
        ));
    }
    for (directive, line, target, base) in refs {
        let (resolved, note) = if target.contains('$') || target.starts_with("data:") {
            (
                None,
                Some("names a variable or inline data: not resolved".into()),
            )
        } else if service == Service::Postgresql && !target.starts_with('/') && base.is_empty() {
            (
                None,
                Some("relative to a data directory not known here".into()),
            )
        } else {
            (Some(join(&base, &target)), None)
        };
        keys.push(Key {
            kind: Kind::KeyReference,
            encoding: Encoding::Text,
            algorithm: service.name().into(),
            bits: None,
            encrypted: false,
            spki_sha256: None,
            ssh_sha256: None,
            unknown: None,
            certificate: None,
            luks: None,
            crypttab: None,
            key_file: None,
            reference: Some(Reference {
                service: service.name().into(),
                directive,
                line,
                target,
                resolved,
                found: None,
                note,
            }),
            pkcs12: None,
            wireguard_public: None,
            openpgp: None,
            keytab: None,
        });
    }
    (keys, errors)
}

/// An OpenVPN inline block: PEM keys and certificates as everywhere; a static key
/// (`<tls-auth>`, `<tls-crypt>`, `<secret>`) as symmetric material by its keyed digest.
fn inline_block(
    tag: &str,
    first: u32,
    body: &[u8],
    digest_key: &[u8; 32],
    keys: &mut Vec<Key>,
    errors: &mut Vec<String>,
) {
    if matches!(tag, "tls-auth" | "tls-crypt" | "tls-crypt-v2" | "secret") {
        keys.push(crate::key_file(body, digest_key));
        return;
    }
    let (k, e) = crate::parse_as(crate::Sniff::Pem, body);
    keys.extend(k);
    errors.extend(
        e.into_iter()
            .map(|e| format!("openvpn inline block <{tag}> at line {first}: {e}")),
    );
}
