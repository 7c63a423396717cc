//! The agent's cache on a host (issue 18): only the login's own cache is used, and what runs is
//! the file that was hashed. Each planted state was run before (its SHA-256 matched, so the
//! check passed through a symlink, another user's file or a directory others may write); now
//! each is refused with the path and the way to clear it, and nothing is started from it.

use super::{open, spec};
use rehost_host::HostError;
use rehost_test::sshd::Sshd;
use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
use std::path::{Path, PathBuf};

const NOBODY: u32 = 65534;

/// Uploads the agent to `sshd` and returns its path there.
fn installed(sshd: &Sshd) -> PathBuf {
    let host = open("old", &spec(sshd)).unwrap();
    let path = PathBuf::from(&host.agent_install().remote_path);
    assert!(path.is_file(), "{path:?}");
    host.shutdown();
    path
}

/// Opening `sshd` fails with the cache refusal for `path`, whose reason contains `why`.
fn refused(sshd: &Sshd, path: &Path, why: &str) {
    let err = match open("old", &spec(sshd)) {
        Ok(host) => panic!(
            "the agent was started from {} ({:?})",
            path.display(),
            host.agent_install()
        ),
        Err(e) => e,
    };
    let msg = err.to_string();
    match &err {
        HostError::AgentCacheRefused {
            host,
            path: p,
            reason,
            ..
        } => {
            assert_eq!(host, "old");
            assert_eq!(Path::new(p), path, "{msg}");
            assert!(reason.contains(why), "{msg}");
        }
        other => panic!("expected a refusal of {}: {other}", path.display()),
    }
    assert!(
        msg.contains(&format!("rm -rf '{}'", path.display())) && msg.contains("not run"),
        "{msg}"
    );
}

/// Agent processes of `sshd` started through the boot script's descriptor.
fn agents_started_through_the_descriptor(sshd: &Sshd) -> usize {
    sshd.pids()
        .iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"/proc/self/fd/9\0agent\0"))
        })
        .count()
}

/// A copy of the genuine agent (same digest) in a directory of uid 65534.
fn planted_copy(sshd: &Sshd, agent: &Path) -> PathBuf {
    let dir = sshd.dir().join("planted");
    std::fs::create_dir(&dir).unwrap();
    let copy = dir.join("rehost");
    std::fs::copy(agent, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(&copy, Some(NOBODY), Some(NOBODY)).unwrap();
    chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    copy
}

#[test]
fn the_agent_is_started_through_the_descriptor_it_was_hashed_from() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    assert!(
        agents_started_through_the_descriptor(&sshd) >= 1,
        "no agent runs as /proc/self/fd/9"
    );
    // The agent closed that descriptor: commands it runs do not inherit the binary.
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut fds = String::new();
    let spec =
        rehost_host::CommandSpec::new(rehost_host::Program::Shell("ls -l /proc/self/fd/".into()));
    rehost_host::Host::run(&host, &spec, &cancel, &mut |_, line| {
        fds.push_str(&String::from_utf8_lossy(line));
        fds.push('\n');
    })
    .unwrap();
    assert!(
        !fds.contains("agent-"),
        "a command inherited the agent: {fds}"
    );
}

#[test]
fn a_symlink_planted_for_the_agent_is_refused_and_never_run() {
    let sshd = Sshd::start();
    let agent = installed(&sshd);
    let copy = planted_copy(&sshd, &agent);
    std::fs::remove_file(&agent).unwrap();
    symlink(&copy, &agent).unwrap();
    refused(&sshd, &agent, "is a symlink");
    assert!(agent.is_symlink(), "the planted link was touched");
    // Doing what the message says clears it: the agent is uploaded anew and started.
    std::fs::remove_file(&agent).unwrap();
    let host = open("old", &spec(&sshd)).unwrap();
    assert!(host.agent_install().uploaded);
    assert!(!agent.is_symlink() && agent.is_file());
}

#[test]
fn an_agent_owned_by_another_user_is_refused_and_never_run() {
    let sshd = Sshd::start();
    let agent = installed(&sshd);
    chown(&agent, Some(NOBODY), Some(NOBODY)).unwrap();
    refused(&sshd, &agent, "is owned by uid 65534, not by uid 0");
    // Group-writable, though ours: refused as well.
    chown(&agent, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o720)).unwrap();
    refused(
        &sshd,
        &agent,
        "has mode 720: group or others may write to it",
    );
}

#[test]
fn a_group_writable_cache_directory_is_refused() {
    let sshd = Sshd::start();
    let agent = installed(&sshd);
    let cache = agent.parent().unwrap().parent().unwrap().to_owned();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o775)).unwrap();
    refused(
        &sshd,
        &cache,
        "has mode 775: group or others may write to it",
    );
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    open("old", &spec(&sshd)).unwrap();
}

#[test]
fn an_agent_directory_planted_as_a_symlink_is_refused() {
    let sshd = Sshd::start();
    let agent = installed(&sshd);
    let copy = planted_copy(&sshd, &agent);
    let dir = agent.parent().unwrap().to_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    symlink(copy.parent().unwrap(), &dir).unwrap();
    lchown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    refused(&sshd, &dir, "is a symlink");
}

/// Nothing cached yet, and the cache directory is another user's symlink: the upload refuses
/// it too, and writes nothing through it.
#[test]
fn an_upload_into_a_planted_cache_directory_is_refused() {
    let sshd = Sshd::start();
    let theirs = sshd.dir().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let cache = sshd.cache_dir().join("rehost");
    symlink(&theirs, &cache).unwrap();
    refused(&sshd, &cache, "is a symlink");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
    let meta = std::fs::metadata(&theirs).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o755,
        "chmod through the link"
    );
}

/// Two machines sharing a home directory (issue 18): their agents kept the manifest cache of
/// the same path in one file, and took each other's run lock where the lock directory is in
/// the home. Two agents with one `XDG_CACHE_HOME` and lock directory, on "two machines" (two
/// host names, through a UTS namespace each), keep a cache each and lock independently.
#[test]
fn machines_sharing_a_home_directory_keep_their_caches_and_locks_apart() {
    use rehost_host::agent::{AgentConn, Request};
    use rehost_host::{Bytes, ManifestOptions};
    let unshare = rehost_test::require_tool("unshare");
    let t = tempfile::tempdir().unwrap();
    let agent = super::flood::unpacked_agent(t.path());
    let home = t.path().join("home");
    let tree = t.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), "content").unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let start = |machine: &str| {
        let child = std::process::Command::new(&unshare)
            .args([
                "-u",
                "sh",
                "-c",
                "hostname \"$0\" && exec \"$1\" agent",
                machine,
            ])
            .arg(&agent)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("REHOST_LOCK_DIR", home.join("locks"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        AgentConn::start(child, machine, None, std::time::Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e:?}"))
            .0
    };
    let mut sessions = Vec::new();
    for machine in ["web-a", "web-b"] {
        let mut conn = start(machine);
        let manifest = Request::Manifest {
            path: Bytes::from(tree.as_path()),
            options: ManifestOptions {
                incremental: true,
                ..ManifestOptions::default()
            },
        };
        conn.request(&manifest, &cancel, &mut |_| {})
            .unwrap_or_else(|e| panic!("{e:?}"));
        let lock = Request::Lock {
            holder: format!("run on {machine}"),
        };
        conn.request(&lock, &cancel, &mut |_| {})
            .unwrap_or_else(|e| panic!("{machine} could not take its own lock: {e:?}"));
        sessions.push(conn);
    }
    let caches = std::fs::read_dir(home.join(".cache/rehost/manifests"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rmc"))
        .count();
    assert_eq!(caches, 2, "one manifest cache per machine");
}

/// The host's lock directory planted by another user (uid 65534) on an ssh host: the run's
/// lock request fails naming the directory and how to remove it (issue 18), through the agent.
#[test]
fn a_planted_lock_directory_on_an_ssh_host_is_refused_naming_it() {
    use rehost_host::{Host, Request};
    let sshd = Sshd::start();
    let locks = sshd.dir().join("locks");
    std::fs::create_dir(&locks).unwrap();
    std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&locks, Some(NOBODY), Some(NOBODY)).unwrap();
    let host = open("new", &spec(&sshd)).unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let err = host
        .request(
            &Request::Lock {
                holder: "pid 1".into(),
            },
            &cancel,
            &mut |_| {},
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("host new")
            && msg.contains(&format!("{} is owned by uid 65534", locks.display()))
            && msg.contains(&format!("rm -rf '{}'", locks.display()))
            && msg.contains("REHOST_LOCK_DIR"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(&locks).unwrap().count(), 0);
}
