//! Integration tests of hosts: a real sshd on loopback (from `rehost_test::sshd`), the real
//! rehost binary as agent. sshd needs root; CI runs as root.

mod hostile;
mod ssh;
mod transfer;

use rehost_host::{HostError, SshHost, SshSpec};
use rehost_test::sshd::Sshd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    // An agent built from older sources speaks an older protocol: say so rather than fail
    // in puzzling ways. (`cargo test --workspace` builds the binary first.)
    let built = mtime(&bin);
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for src in ["rehost-host/src", "rehost-tree/src", "rehost/src"] {
        let newest = newest_mtime(&crates.join(src));
        assert!(
            newest <= built,
            "{} is older than the sources in crates/{src}: run `cargo build -p rehost` first",
            bin.display()
        );
    }
    bin
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let t = if p.is_dir() {
                newest_mtime(&p)
            } else {
                mtime(&p)
            };
            newest = newest.max(t);
        }
    }
    newest
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
