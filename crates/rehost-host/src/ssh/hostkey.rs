//! Host key failures: recognising them in ssh's stderr and turning them into an error that
//! names the fingerprint offered and the command that accepts it. Keys are never accepted by
//! rehost itself.

use super::config::EffectiveConfig;
use crate::HostError;
use crate::error::HostKeyFailure;
use std::ffi::OsString;
use std::process::{Command, Stdio};

/// What ssh said about the host key, if the failure was about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Unknown,
    Changed,
}

/// Classifies ssh's stderr.
pub fn classify(stderr: &str) -> Option<Problem> {
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("Host key for") && stderr.contains("has changed")
    {
        Some(Problem::Changed)
    } else if stderr.contains("Host key verification failed")
        || stderr.contains("host key is known for")
    {
        Some(Problem::Unknown)
    } else {
        None
    }
}

/// `SHA256:…` fingerprints that appear in ssh's own message (it prints the offered key's
/// fingerprint when the key changed).
fn fingerprints_in(stderr: &str) -> Vec<String> {
    stderr
        .split_whitespace()
        .filter(|w| w.starts_with("SHA256:"))
        .map(|w| w.trim_end_matches('.').to_owned())
        .collect()
}

/// The key the server offered in the failed handshake, as `ssh -v` reports it
/// (`debug1: Server host key: ssh-ed25519 SHA256:…`). Goes through the user's whole
/// configuration (jump hosts, `HostKeyAlias`, ports), unlike `ssh-keyscan`. Never accepts it:
/// the same strict options are passed, and the connection fails at the same point.
fn offered(args: &[OsString], destination: &str) -> Vec<String> {
    let Ok(out) = Command::new("ssh")
        .args(args)
        .args([
            "-v",
            "-T",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "--",
        ])
        .arg(destination)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    parse_offered(&String::from_utf8_lossy(&out.stderr))
}

/// `debug1: Server host key: ssh-ed25519 SHA256:abc` → `ED25519 SHA256:abc`.
pub fn parse_offered(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split_once("Server host key: ")?.1;
            let mut words = rest.split_whitespace();
            let ty = words.next()?;
            let fp = words.next()?;
            // Named as `ssh-keygen -l` names them: ED25519, RSA, ECDSA.
            let ty = if ty.starts_with("ecdsa-") {
                "ECDSA".to_owned()
            } else {
                ty.trim_start_matches("ssh-").to_uppercase()
            };
            Some(format!("{ty} {fp}"))
        })
        .collect()
}

/// Asks the server for its keys (`ssh-keyscan`) and fingerprints them (`ssh-keygen -lf -`).
/// Returns lines like `ED25519 SHA256:…`. Public keys only: nothing secret is involved.
fn scan(cfg: &EffectiveConfig) -> Vec<String> {
    let Ok(scan) = Command::new("ssh-keyscan")
        .args(["-T", "5", "-p", &cfg.port.to_string(), "--", &cfg.hostname])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let Ok(mut keygen) = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return Vec::new();
    };
    if let Some(mut stdin) = keygen.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(&scan.stdout);
    }
    let Ok(out) = keygen.wait_with_output() else {
        return Vec::new();
    };
    // `256 SHA256:abc [127.0.0.1]:2222 (ED25519)` → `ED25519 SHA256:abc`
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let fp = fields.get(1)?;
            let ty = fields.last()?.trim_matches(|c| c == '(' || c == ')');
            Some(format!("{ty} {fp}"))
        })
        .collect()
}

/// Builds the host key error for a failed connection, or `None` when the failure was not
/// about the host key.
pub fn error(
    host: &str,
    destination: &str,
    ssh_args: &[OsString],
    ssh_args_hint: &str,
    cfg: &EffectiveConfig,
    stderr: &str,
) -> Option<HostError> {
    let problem = classify(stderr)?;
    let mut fps = offered(ssh_args, destination);
    if fps.is_empty() {
        fps = fingerprints_in(stderr);
    }
    if fps.is_empty() {
        fps = scan(cfg);
    }
    let fingerprints = if fps.is_empty() {
        "a key rehost could not fingerprint (ssh-keyscan got no answer)".to_owned()
    } else {
        fps.join(", ")
    };
    let known_hosts = cfg
        .known_hosts
        .first()
        .cloned()
        .unwrap_or_else(|| "~/.ssh/known_hosts".to_owned());
    let pattern = if cfg.port == 22 {
        cfg.hostname.clone()
    } else {
        format!("[{}]:{}", cfg.hostname, cfg.port)
    };
    let accept_new =
        format!("ssh {ssh_args_hint}-o StrictHostKeyChecking=accept-new {destination} true");
    let (problem, accept) = match problem {
        Problem::Unknown => (
            "its key is not in known_hosts".to_owned(),
            format!("`{accept_new}`"),
        ),
        Problem::Changed => (
            "its key has CHANGED since it was recorded (a reinstalled host, or someone in between)"
                .to_owned(),
            format!("`ssh-keygen -R '{pattern}' -f {known_hosts}` then `{accept_new}`"),
        ),
    };
    Some(HostError::HostKey(Box::new(HostKeyFailure {
        host: host.to_owned(),
        destination: destination.to_owned(),
        problem,
        fingerprints,
        accept,
    })))
}
