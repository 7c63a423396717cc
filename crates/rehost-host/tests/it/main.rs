//! Integration tests of hosts: a real sshd on loopback (from `rehost_test::sshd`), the real
//! rehost binary as agent. sshd needs root; CI runs as root.

mod ssh;

use rehost_host::{HostError, SshHost, SshSpec};
use rehost_test::sshd::Sshd;
use std::path::PathBuf;

/// The rehost binary uploaded as agent: `REHOST_TEST_BIN`, or `rehost` next to this test's
/// `deps/` directory (built by `cargo build` / `cargo test --workspace`).
pub fn rehost_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REHOST_TEST_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("rehost");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p rehost` before these tests (or set REHOST_TEST_BIN)",
        bin.display()
    );
    bin
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
