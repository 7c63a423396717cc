//! Integration tests of hosts: a real sshd on loopback (from `rehost_test::sshd`), the real
//! rehost binary as agent. sshd needs root; CI runs as root.

mod agent_cache;
mod flood;
mod hostile;
mod hostile_end;
mod hostile_retire;
mod ssh;
mod transfer;

use rehost_host::{HostError, SshHost, SshSpec};
use rehost_test::sshd::Sshd;
use std::path::{Path, PathBuf};

/// The agent uploaded: the shipped one (`scripts/build-agent`), never this test build.
pub fn rehost_bin() -> PathBuf {
    rehost_test::shipped_agent()
}

pub fn spec(sshd: &Sshd) -> SshSpec {
    SshSpec {
        destination: sshd.destination().to_owned(),
        ssh_config: Some(sshd.ssh_config()),
        ..Default::default()
    }
}

pub fn open(name: &str, spec: &SshSpec) -> Result<SshHost, HostError> {
    SshHost::open(name, spec, &rehost_bin())
}
