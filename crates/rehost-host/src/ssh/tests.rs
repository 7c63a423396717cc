//! Unit tests of the ssh module's parsers: `ssh -G` output, host key messages, the probe.

use super::config::EffectiveConfig;
use super::elf;
use super::hostkey::{Problem, classify, parse_offered};
use super::install::parse_probe;

#[test]
fn effective_config_is_parsed_from_ssh_g() {
    let c = EffectiveConfig::parse(
        "user root\nhostname 127.0.0.1\nport 2222\nstricthostkeychecking ask\n\
         userknownhostsfile ~/.ssh/known_hosts ~/.ssh/known_hosts2\nserveraliveinterval 0\n",
    );
    assert_eq!(c.hostname, "127.0.0.1");
    assert_eq!(c.port, 2222);
    assert!(c.strict_is_default());
    assert_eq!(c.known_hosts[0], "~/.ssh/known_hosts");
    let c = EffectiveConfig::parse("stricthostkeychecking accept-new\n");
    assert!(!c.strict_is_default(), "the user's own choice is respected");
}

#[test]
fn host_key_failures_are_recognised() {
    assert_eq!(
        classify(
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n"
        ),
        Some(Problem::Unknown)
    );
    assert_eq!(
        classify(
            "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nThe fingerprint for the ED25519 key sent by the remote host is\nSHA256:abc.\nHost key verification failed.\n"
        ),
        Some(Problem::Changed)
    );
    assert_eq!(classify("Connection refused"), None);
}

#[test]
fn probe_output_is_parsed() {
    let p = parse_probe(
        "some motd\nrehost-probe\narch=x86_64\nlibc=glibc 2.17\ncache=/root/.cache/rehost\n",
    )
    .unwrap();
    assert_eq!(p.arch, "x86_64");
    assert_eq!(p.libc, "glibc 2.17");
    assert_eq!(p.cache, "/root/.cache/rehost");
    assert_eq!(parse_probe("bash: rehost: Permission denied\n"), None);
}

#[test]
fn host_glibc_versions_are_read_from_either_probe() {
    assert_eq!(elf::host_glibc("glibc 2.17"), Some((2, 17)));
    assert_eq!(elf::host_glibc("ldd (GNU libc) 2.36"), Some((2, 36)));
    assert_eq!(elf::host_glibc("musl libc (x86_64)"), None);
    assert_eq!(elf::normalize_arch("arm64"), "aarch64");
}

/// The test binary itself is a dynamic ELF for this machine that needs some glibc.
#[test]
fn elf_needs_of_this_binary() {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let n = elf::needs(&exe).expect("an ELF file");
    assert_eq!(n.arch, elf::normalize_arch(std::env::consts::ARCH));
    let (major, minor) = n.glibc.expect("a glibc build");
    assert!(major == 2 && minor >= 2, "{major}.{minor}");
    assert_eq!(elf::needs(b"#!/bin/sh\n"), None);
}

#[test]
fn offered_key_is_read_from_ssh_v() {
    let stderr = "debug1: Connecting to 127.0.0.1 [127.0.0.1] port 2222.\n\
                  debug1: Server host key: ssh-ed25519 SHA256:8nH7NM5FC5WdDn569TcSflbf6OYM+ysgfDClON6wJtI\n\
                  No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n";
    assert_eq!(
        parse_offered(stderr),
        vec!["ED25519 SHA256:8nH7NM5FC5WdDn569TcSflbf6OYM+ysgfDClON6wJtI".to_owned()]
    );
}

#[test]
fn refusals_are_parsed() {
    assert_eq!(
        super::install::parse_refusal(
            "motd\nrehost-refused\n/home/a/.cache/rehost\nis a symlink\n"
        ),
        Some(("/home/a/.cache/rehost".into(), "is a symlink".into()))
    );
    assert_eq!(
        super::install::parse_refusal("rehost-probe\narch=x86_64\n"),
        None
    );
}

/// The agent's file swapped between its digest check and its start (issue 18): the boot
/// script hashed the path and then started the path again, so whatever stood there a moment
/// later ran. A `sha256sum` that swaps the file right after hashing it makes the race
/// certain; the script must still start what it hashed, through its descriptor.
#[test]
fn the_boot_script_starts_the_file_it_hashed_not_the_path_again() {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    let real_sha = rehost_test::require_tool("sha256sum");
    let t = tempfile::tempdir().unwrap();
    let dir = |p: &std::path::Path| {
        std::fs::create_dir_all(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    let cache = t.path().join("cache");
    let d = cache.join("rehost/agent-abc");
    dir(&cache);
    dir(&cache.join("rehost"));
    dir(&d);
    let genuine = b"#!/bin/sh\necho genuine \"$@\"\n";
    let exe = |p: &std::path::Path, body: &[u8]| {
        std::fs::write(p, body).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    exe(&d.join("rehost"), genuine);
    exe(&d.join(".evil"), b"#!/bin/sh\necho evil\n");
    let bin = t.path().join("bin");
    dir(&bin);
    exe(
        &bin.join("sha256sum"),
        format!(
            "#!/bin/sh\n{} \"$@\"\nmv -f '{d}/.evil' '{d}/rehost'\n",
            real_sha.display(),
            d = d.display()
        )
        .as_bytes(),
    );
    let sha: String = sha2::Sha256::digest(genuine)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", super::install::BOOT_SCRIPT, "sh", "abc", &sha])
        .env("XDG_CACHE_HOME", &cache)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "genuine agent",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The swap happened: the path now holds the other file, which never ran.
    assert_eq!(
        std::fs::read(d.join("rehost")).unwrap(),
        b"#!/bin/sh\necho evil\n"
    );
}

/// The boot script's descriptor is the one the agent closes.
#[test]
fn the_boot_descriptor_is_the_one_the_script_uses() {
    let fd = super::BOOT_FD;
    assert!(super::install::BOOT_SCRIPT.contains(&format!("command exec {fd}< \"$f\"")));
    assert!(super::install::BOOT_SCRIPT.contains(&format!("exec /proc/self/fd/{fd} agent")));
}
