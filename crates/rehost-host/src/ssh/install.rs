//! Getting the agent onto a host. The agent is content-addressed by the BLAKE3 hash of its
//! (unpacked) binary: `${XDG_CACHE_HOME:-~/.cache}/rehost/agent-<blake3>/rehost`, directories
//! 0700. It travels compressed when rehost ships it gzip'd (`scripts/build-agent`), is unpacked
//! by `gzip -dc` on the host, checked with `sha256sum` against the local SHA-256 before it is
//! renamed into place, and checked again before every start, so a torn or tampered copy is
//! never run. Only the login's own cache is used (no symlink, no other owner, not writable by
//! group or others), and the agent is started through the descriptor it was hashed from.
//!
//! One round trip does the common case: [`BOOT_SCRIPT`] checks the digest and `exec`s the
//! agent; only when that fails does it report the host (architecture, C library, cache
//! directory) so that rehost can pick the agent for that architecture and upload it.

use super::elf;
use crate::HostError;
use crate::error::NoAgent;
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// An agent binary as rehost ships it: a file here (the binary itself or gzip'd) and the
/// digests and needs of the binary it holds.
#[derive(Clone, Debug)]
pub struct AgentBinary {
    pub path: PathBuf,
    /// The file is gzip'd; it is uploaded as it is and unpacked on the host.
    pub compressed: bool,
    /// BLAKE3 of the unpacked binary: its name on the host.
    pub blake3: String,
    /// SHA-256 of the unpacked binary: checked on the host with `sha256sum`.
    pub sha256: String,
    /// Bytes sent over the connection.
    pub size: u64,
    /// Bytes of the unpacked binary.
    pub unpacked_size: u64,
    /// What the binary needs from a host, if it is an ELF executable.
    pub needs: Option<elf::Needs>,
}

impl AgentBinary {
    /// Reads and hashes the binary (once per process and path: the binary does not change
    /// under us). A gzip file is unpacked in memory to hash what will run on the host.
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
        let raw = std::fs::read(path).map_err(err)?;
        let compressed = raw.starts_with(&[0x1f, 0x8b]);
        let unpacked = if compressed {
            let mut out = Vec::with_capacity(raw.len() * 3);
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(err)?;
            out
        } else {
            raw
        };
        let bin = AgentBinary {
            path: path.to_owned(),
            compressed,
            blake3: blake3::hash(&unpacked).to_hex().to_string(),
            sha256: hex(&sha2::Sha256::digest(&unpacked)),
            size: std::fs::metadata(path).map_err(err)?.len(),
            unpacked_size: unpacked.len() as u64,
            needs: elf::needs(&unpacked),
        };
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bin.clone());
        Ok(bin)
    }

    /// Where the agent lives on a host, before the shell expands it.
    pub fn remote_path(&self) -> String {
        format!(
            "${{XDG_CACHE_HOME:-$HOME/.cache}}/rehost/agent-{}/rehost",
            self.blake3
        )
    }

    /// Whether this binary can run on a host with this `uname -m` and C library: the same
    /// machine, and static or needing no newer glibc than the host has.
    pub fn runs_on(&self, arch: &str, libc: &str) -> Result<(), String> {
        // Not ELF (a script, another format): nothing to tell; starting it will.
        let Some(needs) = &self.needs else {
            return Ok(());
        };
        if elf::normalize_arch(&needs.arch) != elf::normalize_arch(arch) {
            return Err(format!("it is built for {}", needs.arch));
        }
        match (needs.glibc, elf::host_glibc(libc)) {
            (None, _) => Ok(()),
            (Some(n), Some(h)) if n <= h => Ok(()),
            (Some((a, b)), Some(_)) => Err(format!("it needs glibc {a}.{b}")),
            (Some((a, b)), None) => Err(format!(
                "it needs glibc {a}.{b} and the host's C library is {}",
                if libc.is_empty() { "unknown" } else { libc }
            )),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the agent for a host comes from.
#[derive(Clone, Debug)]
pub enum AgentSource {
    /// This file for every host (`REHOST_AGENT_BINARY`, tests, benchmarks).
    File(PathBuf),
    /// `rehost-agent-<arch>.gz` (or without `.gz`) beside the rehost binary `exe`, as
    /// `scripts/build-agent` and a release lay it out; else `exe` itself where it can run.
    Beside { exe: PathBuf },
}

impl AgentSource {
    /// The agent for a host with this `uname -m` and C library (`None`: not known yet, as
    /// for `rehost agent --print-path`).
    pub fn for_host(
        &self,
        host: &str,
        arch: &str,
        libc: Option<&str>,
    ) -> Result<AgentBinary, HostError> {
        let exe = match self {
            AgentSource::File(p) => return AgentBinary::load(p),
            AgentSource::Beside { exe } => exe,
        };
        let arch = elf::normalize_arch(arch);
        let dir = exe.parent().unwrap_or(Path::new("."));
        let shipped = dir.join(format!("rehost-agent-{arch}.gz"));
        for p in [shipped.clone(), dir.join(format!("rehost-agent-{arch}"))] {
            if p.is_file() {
                return AgentBinary::load(&p);
            }
        }
        // No shipped agent: the running rehost, where it can run on the host.
        let own = AgentBinary::load(exe)?;
        let why = match libc {
            Some(libc) => own.runs_on(arch, libc),
            None => own.runs_on(arch, "glibc 999.0"),
        };
        match why {
            Ok(()) => Ok(own),
            Err(why) => Err(HostError::NoAgent(Box::new(NoAgent {
                host: host.to_owned(),
                arch: arch.to_owned(),
                libc: libc.unwrap_or("unknown").to_owned(),
                looked: shipped.display().to_string(),
                own: exe.display().to_string(),
                why,
            }))),
        }
    }
}

/// What the host reported when its agent could not be started as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    pub arch: String,
    pub libc: String,
    /// Absolute path of rehost's cache directory on the host.
    pub cache: String,
}

/// The exit status of [`BOOT_SCRIPT`] when there was no agent to start.
pub const PROBED: i32 = 97;
/// The first line of [`BOOT_SCRIPT`]'s report on stderr.
pub const PROBE_MARK: &str = "rehost-probe";
/// The exit status of [`BOOT_SCRIPT`] and [`UPLOAD_SCRIPT`] when the cache is refused.
pub const REFUSED: i32 = 96;
/// The first line of a refusal on stderr, followed by the path and the reason.
pub const REFUSED_MARK: &str = "rehost-refused";
/// The descriptor `BOOT_SCRIPT` opens the agent on and starts it through; the agent closes
/// it (`agent::serve`), so the commands it runs do not inherit it.
pub const BOOT_FD: i32 = 9;

/// Shell functions both scripts use: `no PATH WHY` refuses (on stderr, exit [`REFUSED`]);
/// `ow FILE NAME` refuses NAME unless FILE (followed) is owned by the login and not writable by
/// group or others; `ck PATH` refuses a symlink, then does `ow`.
macro_rules! cache_checks {
    () => {
        r#"u=$(id -u); c="${XDG_CACHE_HOME:-$HOME/.cache}/rehost"; d="$c/agent-$1"; f="$d/rehost"; no() { printf '%s\n' rehost-refused "$1" "$2" >&2; exit 96; }; ow() { m=$(stat -L -c %u:%a -- "$1") || no "$2" "cannot be examined"; [ "${m%%:*}" = "$u" ] || no "$2" "is owned by uid ${m%%:*}, not by uid $u who logs in"; [ $(( 0${m#*:} & 022 )) = 0 ] || no "$2" "has mode ${m#*:}: group or others may write to it"; }; ck() { if [ -L "$1" ]; then no "$1" "is a symlink"; fi; ow "$1" "$1"; }; "#
    };
}

/// Starts the agent `agent-$1/rehost` if its SHA-256 is `$2`; otherwise reports the host on
/// stderr (after [`PROBE_MARK`]) and exits [`PROBED`]. One line, so that even a csh login shell
/// passes it to `sh` intact.
///
/// What is there must be the login's own: the cache directory, the agent's directory and the
/// file are refused (exit [`REFUSED`], naming the path) when a symlink, owned by another uid
/// or writable by group or others. The file is then opened once, on descriptor [`BOOT_FD`],
/// checked again through that descriptor (a regular file, the login's, not writable by
/// others), hashed from it and started through it (`/proc/self/fd/9`, the shell's
/// `fexecve`): what runs is the very file that was hashed, whatever happens to the path in
/// between.
pub const BOOT_SCRIPT: &str = concat!(
    cache_checks!(),
    r#"if [ -e "$f" ] || [ -L "$f" ]; then ck "$c"; ck "$d"; ck "$f"; [ -f "$f" ] || no "$f" "is not a regular file"; command exec 9< "$f" || no "$f" "cannot be opened"; [ -r /proc/self/fd/9 ] || no /proc/self/fd "is missing: the agent is started through the descriptor it was checked on (mount /proc)"; [ -f /proc/self/fd/9 ] || no "$f" "is not a regular file"; ow /proc/self/fd/9 "$f"; if [ "$(sha256sum <&9 | cut -d " " -f 1)" = "$2" ]; then exec /proc/self/fd/9 agent; fi; exec 9<&-; fi; { echo rehost-probe; echo "arch=$(uname -m)"; echo "libc=$( (getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1) | head -n 1)"; echo "cache=$c"; } >&2; exit 97"#
);

/// Reads the agent from stdin (`$2`: `gzip` to unpack it, `cat` as it is) into a new file of
/// a random name (`mktemp`: hosts sharing a home directory never write the same one), checks
/// its SHA-256 against `$3` and only then renames it into place, so concurrent, interrupted or
/// corrupted uploads never leave a `rehost` to run. Directories are created 0700 and refused
/// like [`BOOT_SCRIPT`] refuses them (never `chmod`ed through a symlink). Agents of other
/// rehost versions uploaded more than 30 days ago are removed (a version still in use uploads
/// itself again). Prints the SHA-256 it found.
pub const UPLOAD_SCRIPT: &str = concat!(
    "set -e; umask 077; ",
    cache_checks!(),
    r#"if [ ! -L "$c" ]; then mkdir -p "$c"; fi; ck "$c"; if [ ! -L "$d" ] && [ ! -d "$d" ]; then mkdir "$d"; fi; ck "$d"; if [ -d "$f" ] && [ ! -L "$f" ]; then no "$f" "is a directory"; fi; t=$(mktemp "$d/.upload.XXXXXXXXXX"); if [ "$2" = gzip ]; then gzip -dc > "$t"; else cat > "$t"; fi; s=$(sha256sum < "$t" | cut -d " " -f 1); echo "$s"; if [ "$s" != "$3" ]; then rm -f "$t"; exit 98; fi; chmod 700 "$t"; mv -f "$t" "$f"; find "$c" -maxdepth 1 -name 'agent-*' ! -name "agent-$1" -mtime +30 -exec rm -rf {} + 2>/dev/null || true"#
);

/// The path and reason of a refusal by [`BOOT_SCRIPT`] or [`UPLOAD_SCRIPT`], if `stderr`
/// holds one.
pub fn parse_refusal(stderr: &str) -> Option<(String, String)> {
    let mut lines = stderr.lines().skip_while(|l| l.trim() != REFUSED_MARK);
    lines.next()?;
    let path = lines.next()?.to_owned();
    let reason = lines.next().unwrap_or("was refused").to_owned();
    Some((path, reason))
}

/// The host's report, if `stderr` is one.
pub fn parse_probe(stderr: &str) -> Option<Probe> {
    let mut lines = stderr.lines().skip_while(|l| l.trim() != PROBE_MARK);
    lines.next()?;
    let mut p = Probe::default();
    for line in lines {
        match line.split_once('=') {
            Some(("arch", v)) => p.arch = v.trim().to_owned(),
            Some(("libc", v)) => p.libc = v.trim().to_owned(),
            Some(("cache", v)) => p.cache = v.to_owned(),
            _ => {}
        }
    }
    Some(p)
}
