//! The agent rehost uploads to ssh hosts: built for old servers (glibc 2.17), shipped gzip'd
//! beside the binary, shown by `rehost agent --print-path`, and what the ssh tests run.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::path::Path;
use std::process::Command;

/// The shipped agent, unpacked into `dir`, and its SHA-256 (`gzip -dc`, `sha256sum`: the
/// tools the host uses).
fn unpacked(dir: &TestDir) -> (std::path::PathBuf, String) {
    let agent = rehost_test::shipped_agent();
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&agent)
        .output()
        .unwrap();
    assert!(out.status.success(), "gzip -dc {}", agent.display());
    dir.write("agent", out.stdout);
    let sum = Command::new("sha256sum")
        .arg(dir.join("agent"))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    (
        dir.join("agent"),
        sum.split_whitespace().next().unwrap().to_owned(),
    )
}

/// Regression: the agent was the build host's binary, linked against its recent glibc, so it
/// did not start on RHEL/CentOS 7, Debian 9 or Ubuntu 16.04. `objdump -T` is the peer.
#[test]
fn the_shipped_agent_needs_no_glibc_newer_than_2_17_and_is_stripped() {
    rehost_test::require_tool("objdump");
    let d = TestDir::new();
    let (agent, _) = unpacked(&d);
    let out = Command::new("objdump")
        .arg("-T")
        .arg(&agent)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let statik = stderr.contains("not a dynamic object");
    assert!(out.status.success() || statik, "{stderr}");
    let mut newest = (0u32, 0u32);
    for word in text.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
        if let Some(v) = word.strip_prefix("GLIBC_")
            && let Some((a, b)) = v.split_once('.')
        {
            let b = b.split('.').next().unwrap_or("0");
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                newest = newest.max((a, b));
            }
        }
    }
    assert!(
        statik || newest > (0, 0),
        "no glibc symbol versions in objdump -T:\n{text}"
    );
    assert!(
        newest <= (2, 17),
        "the agent needs GLIBC_{}.{}",
        newest.0,
        newest.1
    );
    // Stripped: no symbol table (`readelf -S` lists every section; .symtab is what strip takes).
    let sections = Command::new(rehost_test::require_tool("readelf"))
        .arg("-S")
        .arg(&agent)
        .output()
        .unwrap();
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(sections.contains(".text"), "readelf -S:\n{sections}");
    assert!(!sections.contains(".symtab"), "not stripped:\n{sections}");
    // And not bloated: 12.7 MB on 2026-12-07 (docs/benchmarks.md, The agent).
    let size = std::fs::metadata(&agent).unwrap().len();
    assert!(size < 16 << 20, "{size} bytes: the agent grew past 16 MiB");
    let zipped = std::fs::metadata(rehost_test::shipped_agent())
        .unwrap()
        .len();
    assert!(
        zipped < size / 2,
        "{zipped} of {size} bytes: not compressed?"
    );
}

/// What an administrator approves: the file, its size, its digest and where it goes.
#[test]
fn print_path_shows_the_shipped_agent_its_digest_and_where_it_goes() {
    let d = TestDir::new();
    let (_, sha256) = unpacked(&d);
    let o = rehost(&d, &["agent", "--print-path"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let shipped = rehost_test::shipped_agent();
    assert!(
        o.stdout.contains(&shipped.display().to_string()),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("gzip"), "{}", o.stdout);
    assert!(o.stdout.contains("glibc 2.17"), "{}", o.stdout);
    assert!(o.stdout.contains(&sha256), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("${XDG_CACHE_HOME:-$HOME/.cache}/rehost/agent-"),
        "{}",
        o.stdout
    );
}

/// No agent for a host's architecture: the error names `uname -m` and the command that
/// builds one.
#[test]
fn a_missing_agent_for_an_architecture_names_it_and_the_build_command() {
    let d = TestDir::new();
    let o = rehost(&d, &["agent", "--print-path", "--arch", "aarch64"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("`uname -m` is aarch64"), "{}", o.stderr);
    assert!(
        o.stderr.contains("scripts/build-agent aarch64"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("rehost-agent-aarch64.gz"), "{}", o.stderr);
}

/// rehost uploads the shipped agent (not itself) and unpacks it on the host.
#[test]
fn ssh_hosts_run_the_shipped_agent() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let (agent, _) = unpacked(&d);
    d.write("t/one", "1\n");
    let loc = format!("{}:{}", sshd.destination(), d.join("t").display());
    let cfg = sshd.ssh_config().display().to_string();
    let o = rehost(
        &d,
        &["manifest", &loc, "-o", "t.manifest", "--ssh-config", &cfg],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let cache = sshd.cache_dir().join("rehost");
    let installed: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path().join("rehost"))
        .collect();
    assert_eq!(installed.len(), 1, "{installed:?}");
    assert_eq!(
        std::fs::read(&installed[0]).unwrap(),
        std::fs::read(Path::new(&agent)).unwrap(),
        "the host runs something other than the shipped agent"
    );
}
