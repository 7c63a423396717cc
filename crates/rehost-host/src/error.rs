//! Errors from reaching hosts and running work on them.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("failed to start `{program}` on host {host}: {source}")]
    Spawn {
        host: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to wait for `{program}` on host {host}: {source}")]
    Wait {
        host: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to use root directory {} of host {host}: {source}", root.display())]
    Root {
        host: String,
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "host {host} (root {}) is in use by another rehost run ({holder}); wait for it to end, or end it",
        root.display()
    )]
    Busy {
        host: String,
        root: PathBuf,
        holder: String,
    },
    #[error("failed to lock host {host} for this run: {message}")]
    Lock { host: String, message: String },
    #[error("host {host}: {what} are not supported yet")]
    Unsupported { host: String, what: String },
    #[error("empty command for host {host}: give `argv` or `command`")]
    EmptyCommand { host: String },
    #[error("failed to read {} on host {host}: {source}", path.display())]
    Read {
        host: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {} on host {host}: {source}", path.display())]
    Write {
        host: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} on host {host} is not a directory", path.display())]
    NotADirectory { host: String, path: PathBuf },
    #[error("failed to create directory {} on host {host}: {source}", path.display())]
    CreateDir {
        host: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Work on two trees of this machine at once, in this process (a verification or a
    /// transfer between two local hosts): the tree crate's message says what failed.
    #[error(transparent)]
    InProcess(rehost_tree::TreeError),
    #[error("failed to walk tree {} on host {host}: {source}", path.display())]
    Tree {
        host: String,
        path: PathBuf,
        #[source]
        source: rehost_tree::TreeError,
    },
    #[error(
        "failed to use ssh destination `{destination}` of host {host}: it must not be empty or start with `-`"
    )]
    BadDestination { host: String, destination: String },
    #[error("failed to read the ssh configuration for host {host} ({destination}): {message}")]
    SshConfig {
        host: String,
        destination: String,
        message: String,
    },
    #[error("failed to create a private control directory for host {host}: {source}")]
    ControlDir {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to connect to host {host} ({destination}): {message}")]
    Connect {
        host: String,
        destination: String,
        message: String,
    },
    #[error(transparent)]
    HostKey(Box<HostKeyFailure>),
    #[error("failed to read the agent binary {}: {source}", path.display())]
    AgentBinary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to install the rehost agent on host {host}: {message}")]
    AgentInstall { host: String, message: String },
    #[error(
        "failed to start the rehost agent on host {host}: {path} {reason}, so it was not run; remove it as the login user on that host (`rm -rf '{path}'`) and run again (rehost uploads its agent anew)"
    )]
    AgentCacheRefused {
        host: String,
        path: String,
        reason: String,
    },
    #[error(transparent)]
    AgentCannotRun(Box<AgentCannotRun>),
    #[error(transparent)]
    NoAgent(Box<NoAgent>),
    #[error(
        "failed to agree with the agent on host {host}: it speaks protocol {agent} (rehost {version}), this rehost {ours}"
    )]
    AgentVersion {
        host: String,
        agent: u32,
        version: String,
        ours: u32,
    },
    #[error(
        "failed to finish {in_flight} on host {host}: the connection was lost ({detail}); its outcome is unknown"
    )]
    ConnectionLost {
        host: String,
        in_flight: String,
        detail: String,
    },
    #[error("failed to talk to the agent on host {host}: {message}")]
    Protocol { host: String, message: String },
    /// A request failed on the host; the agent's message already names the host.
    #[error("{message}")]
    Remote {
        host: String,
        what: String,
        message: String,
    },
}

/// A host key that ssh refused (boxed in [`HostError::HostKey`] to keep errors small).
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to verify the host key of host {host} ({destination}): {problem}; the host offers {fingerprints}. \
     If that is the host's real key (compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on it), accept it with: {accept}"
)]
pub struct HostKeyFailure {
    pub host: String,
    pub destination: String,
    /// "its key is not in known_hosts" or "its key has CHANGED since it was recorded".
    pub problem: String,
    pub fingerprints: String,
    pub accept: String,
}

/// The agent binary cannot run on the host (boxed in [`HostError::AgentCannotRun`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to run the rehost agent on host {host} (architecture {arch}, C library {libc}; the agent is built for {local_arch}): {detail}. \
     Build an agent for that host with `scripts/build-agent {arch}` (in rehost's source tree) and put it beside rehost or point REHOST_AGENT_BINARY at it"
)]
pub struct AgentCannotRun {
    pub host: String,
    pub arch: String,
    pub libc: String,
    pub local_arch: String,
    pub detail: String,
}

/// No agent for the host's architecture (boxed in [`HostError::NoAgent`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to find a rehost agent for {}: there is no {looked}, and {own} cannot run there ({why}). \
     Build one with `scripts/build-agent {arch}` (in rehost's source tree) and put it beside rehost, or point REHOST_AGENT_BINARY at it",
    who(.host, .arch, .libc)
)]
pub struct NoAgent {
    /// The plan's name for the host; empty when no host is meant (`rehost agent --print-path`).
    pub host: String,
    /// The host's `uname -m`.
    pub arch: String,
    pub libc: String,
    /// The shipped agent's path that was looked for.
    pub looked: String,
    /// The running rehost.
    pub own: String,
    /// Why the running rehost cannot run there.
    pub why: String,
}

/// "host old (`uname -m`: x86_64, C library glibc 2.17)", or the architecture alone.
fn who(host: &str, arch: &str, libc: &str) -> String {
    if host.is_empty() {
        format!("hosts whose `uname -m` is {arch}")
    } else {
        format!("host {host} (`uname -m`: {arch}, C library {libc})")
    }
}
