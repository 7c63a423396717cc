//! Getting the agent onto a host: the local rehost binary is content-addressed by its BLAKE3
//! hash (`${XDG_CACHE_HOME:-~/.cache}/rehost/agent-<blake3>/rehost`, directories 0700),
//! uploaded once with an atomic rename, and checked with `sha256sum` on the host against the
//! local SHA-256 before every use, so a torn or tampered copy is never run.

use crate::HostError;
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The local agent binary and its hashes.
#[derive(Clone, Debug)]
pub struct AgentBinary {
    pub path: PathBuf,
    pub blake3: String,
    pub sha256: String,
}

impl AgentBinary {
    /// Hashes the binary (once per process and path: the binary does not change under us).
    pub fn load(path: &Path) -> Result<AgentBinary, HostError> {
        static CACHE: OnceLock<Mutex<Vec<AgentBinary>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(b) = cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|b| b.path == path)
        {
            return Ok(b.clone());
        }
        let err = |source| HostError::AgentBinary {
            path: path.to_owned(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(err)?;
        let mut b3 = blake3::Hasher::new();
        let mut sha = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(err)?;
            if n == 0 {
                break;
            }
            b3.update(&buf[..n]);
            sha.update(&buf[..n]);
        }
        let bin = AgentBinary {
            path: path.to_owned(),
            blake3: b3.finalize().to_hex().to_string(),
            sha256: hex(&sha.finalize()),
        };
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bin.clone());
        Ok(bin)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the host reported before installation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    pub arch: String,
    pub libc: String,
    /// Absolute path of the agent's directory on the host.
    pub dir: String,
    /// SHA-256 of the agent already there, if any.
    pub sha256: Option<String>,
}

/// One line, so that even a csh login shell passes it to `sh` intact. `$1` is the BLAKE3 hash.
pub const PROBE_SCRIPT: &str = r#"c="${XDG_CACHE_HOME:-$HOME/.cache}/rehost"; d="$c/agent-$1"; echo "arch=$(uname -m)"; echo "libc=$( (getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1) | head -n 1)"; echo "dir=$d"; if [ -f "$d/rehost" ]; then chmod 700 "$c" "$d"; echo "sha256=$(sha256sum < "$d/rehost" | cut -d " " -f 1)"; fi"#;

/// Reads the binary from stdin into a temporary name and renames it into place, so concurrent
/// or interrupted uploads never leave a partial `rehost`. Agents of other rehost versions
/// uploaded more than 30 days ago are removed (a version still in use uploads itself again).
/// Prints the installed file's SHA-256.
pub const UPLOAD_SCRIPT: &str = r#"set -e; umask 077; c="${XDG_CACHE_HOME:-$HOME/.cache}/rehost"; d="$c/agent-$1"; mkdir -p "$d"; chmod 700 "$c" "$d"; t="$d/.upload.$$"; cat > "$t"; chmod 700 "$t"; mv -f "$t" "$d/rehost"; find "$c" -maxdepth 1 -name 'agent-*' ! -name "agent-$1" -mtime +30 -exec rm -rf {} + 2>/dev/null || true; sha256sum < "$d/rehost" | cut -d " " -f 1"#;

pub fn parse_probe(out: &str) -> Probe {
    let mut p = Probe::default();
    for line in out.lines() {
        match line.split_once('=') {
            Some(("arch", v)) => p.arch = v.trim().to_owned(),
            Some(("libc", v)) => p.libc = v.trim().to_owned(),
            Some(("dir", v)) => p.dir = v.to_owned(),
            Some(("sha256", v)) if !v.trim().is_empty() => p.sha256 = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    p
}

/// Whether a host's `uname -m` can run a binary built for `local` (Rust's arch name).
pub fn arch_matches(remote: &str, local: &str) -> bool {
    remote == local
        || matches!(
            (local, remote),
            ("aarch64", "arm64") | ("x86", "i686") | ("x86", "i586") | ("x86", "i386")
        )
}
