//! Hosts over ssh: the agent, its installation, host keys, quoting, lost connections.

use super::{open, rehost_bin, spec};
use rehost_host::{
    CommandSpec, Host, HostError, LocalHost, ManifestOptions, OutputStream, Program, RunOutcome,
    SshSpec,
};
use rehost_test::sshd::Sshd;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn run(host: &dyn Host, spec: &CommandSpec) -> Result<(RunOutcome, Vec<String>), HostError> {
    let mut lines = Vec::new();
    let cancel = AtomicBool::new(false);
    let out = host.run(spec, &cancel, &mut |s, l| {
        let tag = match s {
            OutputStream::Stdout => "out",
            OutputStream::Stderr => "err",
        };
        lines.push(format!("{tag}: {}", String::from_utf8_lossy(l)))
    })?;
    Ok((out, lines))
}

fn argv(args: &[&str]) -> CommandSpec {
    CommandSpec::new(Program::Argv(args.iter().map(|s| s.to_string()).collect()))
}

/// A tree with the names that break naive tools: spaces, quotes, newlines, non-UTF-8, a
/// symlink, an empty directory, odd modes.
fn weird_tree(root: &Path) {
    let w = |p: &str, data: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("etc/nginx/nginx.conf", "worker_processes 4;\n");
    w("data/with space/it's \"quoted\".txt", "q");
    w("data/new\nline", "n");
    w("data/$(touch pwned)", "x");
    std::fs::write(root.join(OsStr::from_bytes(b"data/\xff\xfe-latin1")), "l").unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("../etc/nginx/nginx.conf", root.join("data/link")).unwrap();
    std::fs::set_permissions(
        root.join("etc/nginx/nginx.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
}

#[test]
fn agent_tree_listing_over_ssh_equals_local() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    weird_tree(dir.path());
    let path = dir.path().as_os_str().as_bytes();
    let cancel = AtomicBool::new(false);

    let local = LocalHost::new("local", None)
        .list_tree(path, &cancel)
        .unwrap();
    let host = open("old", &spec(&sshd)).unwrap();
    let remote = host.list_tree(path, &cancel).unwrap();

    assert_eq!(local.len(), 11, "{local:#?}");
    assert!(
        local
            .iter()
            .any(|e| e.path.as_bytes() == b"data/\xff\xfe-latin1")
    );
    assert_eq!(remote, local);
    assert!(!dir.path().join("data/pwned").exists());

    // A tree whose own path is not UTF-8 is named exactly in the request.
    let odd = dir.path().join(OsStr::from_bytes(b"odd-\xe9"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(odd.join("f"), "x").unwrap();
    let odd = odd.as_os_str().as_bytes();
    assert_eq!(
        host.list_tree(odd, &cancel).unwrap(),
        LocalHost::new("local", None)
            .list_tree(odd, &cancel)
            .unwrap()
    );
}

#[test]
fn listing_a_missing_tree_is_an_error_naming_host_and_path() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let err = host
        .list_tree(b"/nonexistent/rehost", &AtomicBool::new(false))
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("host old"), "{msg}");
    assert!(msg.contains("/nonexistent/rehost"), "{msg}");
    // The session survives a failed request.
    let (out, _) = run(&host, &argv(&["true"])).unwrap();
    assert_eq!(out.exit.code, Some(0));
}

#[test]
fn run_steps_on_two_hosts_with_different_roots_concurrently() {
    let (a, b) = (Sshd::start(), Sshd::start());
    let (root_a, root_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old = open(
        "old",
        &SshSpec {
            root: Some(root_a.path().to_owned()),
            ..spec(&a)
        },
    )
    .unwrap();
    let new = open(
        "new",
        &SshSpec {
            root: Some(root_b.path().to_owned()),
            ..spec(&b)
        },
    )
    .unwrap();
    // Both wait (up to 60 s) until both have left a mark: run one after the other, the first
    // would wait alone and fail.
    let meet = tempfile::tempdir().unwrap();
    let step = CommandSpec::new(Program::Shell(format!(
        "pwd; echo \"root=$REHOST_ROOT\"; echo step > marker; d='{}'; touch \"$d/$$\"; i=0; \
         while [ \"$(ls \"$d\" | wc -l)\" -lt 2 ]; do i=$((i+1)); \
         if [ $i -gt 600 ]; then exit 1; fi; sleep 0.1; done; echo done >&2",
        meet.path().display()
    )));
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| run(&old, &step).unwrap());
        let tb = s.spawn(|| run(&new, &step).unwrap());
        (ta.join().unwrap(), tb.join().unwrap())
    });
    for ((out, lines), root) in [(ra, root_a.path()), (rb, root_b.path())] {
        assert_eq!(out.exit.code, Some(0));
        assert_eq!(
            lines,
            vec![
                format!("out: {}", root.display()),
                format!("out: root={}", root.display()),
                "err: done".to_owned(),
            ]
        );
        assert!(root.join("marker").exists());
    }
    assert_eq!(old.resolve("/etc/x"), root_a.path().join("etc/x"));
}

#[test]
fn agent_is_uploaded_once_then_reused_and_rechecked() {
    let sshd = Sshd::start();
    // Another version's agent, uploaded long ago, and one uploaded recently.
    let stale = sshd.cache_dir().join("rehost/agent-0ld");
    let recent = sshd.cache_dir().join("rehost/agent-recent");
    for d in [&stale, &recent] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("rehost"), "old").unwrap();
    }
    let touched = std::process::Command::new("touch")
        .args(["-d", "40 days ago"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(touched.success());

    let first = open("old", &spec(&sshd)).unwrap();
    let install = first.agent_install().clone();
    assert!(install.uploaded);
    assert!(!stale.exists(), "a stale agent was kept");
    assert!(recent.exists(), "a recent agent was removed");
    assert!(
        install
            .remote_path
            .starts_with(sshd.cache_dir().to_str().unwrap()),
        "{install:?}"
    );
    let path = Path::new(&install.remote_path);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    first.close();
    drop(first);

    let second = open("old", &spec(&sshd)).unwrap();
    assert!(!second.agent_install().uploaded);
    // Started without a probe: the path as the host's shell expands it.
    let name = install.remote_path.rsplit('/').nth(1).unwrap();
    assert!(
        second
            .agent_install()
            .remote_path
            .ends_with(&format!("/{name}/rehost")),
        "{:?}",
        second.agent_install()
    );
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
    assert_eq!(run(&second, &argv(&["true"])).unwrap().0.exit.code, Some(0));
    drop(second);

    // A corrupted copy is never run: the hash check replaces it. (Unlink first: the last
    // session's agent may still be exiting, and a running binary cannot be written.)
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, b"#!/bin/sh\necho tampered\n").unwrap();
    let third = open("old", &spec(&sshd)).unwrap();
    assert!(third.agent_install().uploaded);
    // What runs on the host is the shipped agent, unpacked: its digest, and stripped.
    let shipped = rehost_host::ssh::AgentBinary::load(&rehost_bin()).unwrap();
    let on_host = std::fs::read(path).unwrap();
    assert_eq!(blake3::hash(&on_host).to_hex().to_string(), shipped.blake3);
    assert!(shipped.compressed && shipped.size < shipped.unpacked_size);
    assert!(
        on_host.len() < 16 << 20,
        "{} bytes: not stripped?",
        on_host.len()
    );
}

/// `ssh-keygen -lf` is the trusted peer for the fingerprint in the message.
fn fingerprint(pubkey_file: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pubkey_file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

#[test]
fn changed_host_key_is_refused_with_fingerprint_and_remedy() {
    let mut sshd = Sshd::start();
    drop(open("old", &spec(&sshd)).unwrap());
    sshd.change_host_key();
    let Err(err) = open("old", &spec(&sshd)) else {
        panic!("a changed host key was accepted")
    };
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, HostError::HostKey(_)), "{msg}");
    assert!(msg.contains("host old"), "{msg}");
    assert!(msg.contains("CHANGED"), "{msg}");
    let fp = fingerprint(&sshd.dir().join("host_ed25519.pub"));
    assert!(msg.contains(&fp), "{fp} not in {msg}");
    assert!(msg.contains("ssh-keygen -R"), "{msg}");
    assert!(!msg.contains("PRIVATE"), "{msg}");
}

#[test]
fn unknown_host_key_is_refused_with_fingerprint_and_accept_command() {
    let sshd = Sshd::start();
    std::fs::write(sshd.known_hosts(), "").unwrap();
    let Err(err) = open("old", &spec(&sshd)) else {
        panic!("an unknown host key was accepted")
    };
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("not in known_hosts"), "{msg}");
    let fp = fingerprint(&sshd.dir().join("host_ed25519.pub"));
    assert!(msg.contains(&fp), "{fp} not in {msg}");
    assert!(msg.contains("StrictHostKeyChecking=accept-new"), "{msg}");
    // rehost itself added nothing to known_hosts.
    assert_eq!(std::fs::read_to_string(sshd.known_hosts()).unwrap(), "");
}

const HOSTILE: &[&str] = &[
    "with space",
    "it's",
    "\"double\"",
    "$(touch /tmp/rehost-pwned-ssh)",
    "`touch /tmp/rehost-pwned-ssh`",
    "a; touch /tmp/rehost-pwned-ssh",
    "new\nline",
    "*",
    "$HOME",
    "-n",
    "",
];

#[test]
fn argument_injection_is_inert_through_the_agent() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let mut args = vec!["printf", "[%s]\\n"];
    args.extend(HOSTILE);
    let (out, lines) = run(&host, &argv(&args)).unwrap();
    assert_eq!(out.exit.code, Some(0));
    let printed = lines.join("\n");
    let expected: Vec<String> = HOSTILE
        .iter()
        .map(|a| format!("[{a}]"))
        .collect::<Vec<_>>()
        .join("\n")
        .lines()
        .map(|l| format!("out: {l}"))
        .collect();
    assert_eq!(printed, expected.join("\n"));
    assert!(!Path::new("/tmp/rehost-pwned-ssh").exists());
}

#[test]
fn argument_injection_is_inert_in_direct_ssh_exec_including_non_utf8() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let mut args: Vec<&OsStr> = vec![OsStr::new("printf"), OsStr::new("%s\\0")];
    args.extend(HOSTILE.iter().map(OsStr::new));
    args.push(OsStr::from_bytes(b"\xff\xfe;not utf-8"));
    let out = host.exec(&args, b"").unwrap();
    assert!(out.status.success(), "{out:?}");
    let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
    let want: Vec<&[u8]> = args[2..]
        .iter()
        .map(|a| a.as_bytes())
        .chain([&b""[..]])
        .collect();
    assert_eq!(got, want);
    assert!(!Path::new("/tmp/rehost-pwned-ssh").exists());
}

fn pid_alive(pid: i32) -> bool {
    // A zombie has exited: only a live process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

fn wait_gone(pid: i32) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn timeout_ends_the_remote_process_group() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut cmd = CommandSpec::new(Program::Shell(format!(
        "sleep 60 & echo $! > '{}'; wait",
        pidfile.display()
    )));
    cmd.timeout = Some(Duration::from_millis(500));
    let (out, _) = run(&host, &cmd).unwrap();
    assert!(out.timed_out, "{out:?}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_gone(pid),
        "the remote `sleep` (pid {pid}) outlived its timeout"
    );
}

#[test]
fn cancel_ends_the_remote_process_group() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let cancel = AtomicBool::new(false);
    let mut pid = None;
    let out = host
        .run(
            &CommandSpec::new(Program::Shell("sleep 60 & echo $!; wait".into())),
            &cancel,
            &mut |_, l| {
                pid = std::str::from_utf8(l)
                    .ok()
                    .and_then(|s| s.parse::<i32>().ok());
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .unwrap();
    assert!(out.cancelled, "{out:?}");
    let pid = pid.expect("the command printed its child's pid");
    assert!(
        wait_gone(pid),
        "the remote `sleep` (pid {pid}) outlived cancellation"
    );
    // The session is reusable after a cancelled request.
    assert_eq!(run(&host, &argv(&["true"])).unwrap().0.exit.code, Some(0));
}

#[test]
fn killing_sshd_mid_command_is_a_clear_error_and_ends_the_command() {
    let mut sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let pidfile = dir.path().join("pid");
    let cmd = CommandSpec::new(Program::Shell(format!(
        "echo $$ > '{}'; echo started; sleep 2; touch '{}'",
        pidfile.display(),
        done.display()
    )));
    let cancel = AtomicBool::new(false);
    let mut killed = false;
    let err = host
        .run(&cmd, &cancel, &mut |_, line| {
            if line == b"started" && !killed {
                killed = true;
                sshd.kill();
            }
        })
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, HostError::ConnectionLost { .. }), "{msg}");
    assert!(msg.contains("host old"), "{msg}");
    // The program, never the command line (it may carry credentials; issue 8, item 6).
    assert!(msg.contains("running `sh -c …`"), "{msg}");
    assert!(!msg.contains("echo started"), "{msg}");
    assert!(msg.contains("connection was lost"), "{msg}");
    // Nothing was left running to finish the step behind our back: once the command's shell
    // is gone, `done` was not made.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_gone(pid),
        "the command's shell (pid {pid}) outlived the connection"
    );
    assert!(
        !done.exists(),
        "the command went on after the connection was lost"
    );
    // Later requests fail fast, naming the host.
    let again = run(&host, &argv(&["true"])).unwrap_err().to_string();
    assert!(again.contains("host old"), "{again}");
}

#[test]
fn an_agent_that_cannot_run_names_arch_and_libc() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("rehost");
    // What a too-new glibc requirement looks like on an older host.
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"$0: /lib/x86_64-linux-gnu/libc.so.6: version \\`GLIBC_2.99' not found\" >&2\nexit 1\n",
    )
    .unwrap();
    let Err(err) = rehost_host::SshHost::open("old", &spec(&sshd), &fake) else {
        panic!("a broken agent was accepted")
    };
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, HostError::AgentCannotRun(_)), "{msg}");
    assert!(msg.contains(std::env::consts::ARCH), "{msg}");
    assert!(msg.contains("glibc"), "{msg}");
    assert!(msg.contains("REHOST_AGENT_BINARY"), "{msg}");
    assert!(msg.contains("scripts/build-agent"), "{msg}");
}

#[test]
fn bad_destination_is_refused_before_running_ssh() {
    let err = open(
        "old",
        &SshSpec {
            destination: "-oProxyCommand=touch /tmp/rehost-pwned-dest".into(),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(err, HostError::BadDestination { .. }), "{err}");
}

#[test]
fn requests_on_one_host_run_concurrently_over_one_master() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    // A rendezvous rather than a stopwatch: each command leaves a mark and waits (up to 60 s)
    // for all four marks, so run one after another the first would wait alone and fail.
    let meet = tempfile::tempdir().unwrap();
    let step = CommandSpec::new(Program::Shell(format!(
        "d='{}'; touch \"$d/$$\"; i=0; while [ \"$(ls \"$d\" | wc -l)\" -lt 4 ]; do \
         i=$((i+1)); if [ $i -gt 600 ]; then echo alone; exit 1; fi; sleep 0.1; done; echo ok",
        meet.path().display()
    )));
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| run(&host, &step).unwrap()))
            .collect();
        for r in runs {
            let (out, lines) = r.join().unwrap();
            assert_eq!(out.exit.code, Some(0));
            assert_eq!(lines, vec!["out: ok".to_owned()]);
        }
    });
    // Everything went over the one master connection: sshd authenticated one client.
    let log = std::fs::read_to_string(sshd.dir().join("sshd.log")).unwrap();
    assert_eq!(log.matches("Accepted publickey").count(), 1, "{log}");
}

#[test]
fn user_config_cannot_hijack_rehost_sessions() {
    let sshd = Sshd::start();
    // Settings an administrator may well have for interactive use.
    let mut config = std::fs::read_to_string(sshd.ssh_config()).unwrap();
    config.push_str(
        "  ControlMaster yes\n  ControlPath /nonexistent/%C\n  ControlPersist 10m\n  \
         RemoteCommand echo hijacked\n  RequestTTY yes\n",
    );
    std::fs::write(sshd.ssh_config(), config).unwrap();
    let host = open("old", &spec(&sshd)).unwrap();
    let (out, lines) = run(&host, &argv(&["echo", "mine"])).unwrap();
    assert_eq!(out.exit.code, Some(0));
    assert_eq!(lines, vec!["out: mine".to_owned()]);
}

fn text(m: &rehost_tree::Manifest) -> String {
    let mut out = Vec::new();
    m.write_to(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn manifests_over_ssh_equal_local_ones_and_compare_equal() {
    let (a, b) = (Sshd::start(), Sshd::start());
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    weird_tree(ta.path());
    weird_tree(tb.path());
    let old = open("old", &spec(&a)).unwrap();
    let new = open("new", &spec(&b)).unwrap();
    let cancel = AtomicBool::new(false);
    let options = ManifestOptions {
        excludes: vec!["*.tmp".into()],
        ..Default::default()
    };
    let pa = ta.path().as_os_str().as_bytes();
    let pb = tb.path().as_os_str().as_bytes();

    let local = LocalHost::new("local", None)
        .manifest(pa, &options, &cancel, &mut |_| {})
        .unwrap();
    // Both sides walk and hash at the same time, each on its own host.
    let (ma, mb) =
        rehost_host::manifest_pair((&old, pa), (&new, pb), &options, &cancel, &mut |_| {});
    let (ma, mb) = (ma.unwrap(), mb.unwrap());
    // Equal as manifest files (the format the evidence keeps).
    assert_eq!(text(&ma), text(&local));
    assert_eq!(ma.entries.len(), local.entries.len());
    assert_eq!(ma.excludes, vec!["*.tmp".to_owned()]);
    assert!(ma.entries.iter().any(|e| e.digest.is_some()));
    let report = rehost_tree::compare(&ma, &mb, &Default::default());
    assert!(
        report.findings.iter().all(|f| f.class.ignorable()),
        "{:#?}",
        report.findings
    );

    // A changed byte on one side is found.
    std::fs::write(
        tb.path().join("etc/nginx/nginx.conf"),
        "worker_processes 8;\n",
    )
    .unwrap();
    let mb = new.manifest(pb, &options, &cancel, &mut |_| {}).unwrap();
    let report = rehost_tree::compare(&ma, &mb, &Default::default());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path.as_ref() == b"etc/nginx/nginx.conf"),
        "{:#?}",
        report.findings
    );
}

#[test]
fn incremental_manifests_trust_the_hosts_own_cache() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let t = tempfile::tempdir().unwrap();
    weird_tree(t.path());
    // Files changed within a second of a cached walk's start are never trusted (racy ctime).
    // A fixed sleep on purpose: the clock must move past the tree's last change.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let p = t.path().as_os_str().as_bytes();
    let cancel = AtomicBool::new(false);
    let options = ManifestOptions {
        incremental: true,
        ..Default::default()
    };
    let first = host.manifest(p, &options, &cancel, &mut |_| {}).unwrap();
    assert!(first.rehashed > 0);
    assert_eq!(first.trusted, 0);
    // The cache is kept on the host (under its XDG_CACHE_HOME), not on this side.
    assert!(
        sshd.cache_dir()
            .join("rehost/manifests")
            .read_dir()
            .unwrap()
            .count()
            == 1
    );
    let second = host.manifest(p, &options, &cancel, &mut |_| {}).unwrap();
    assert_eq!(second.rehashed, 0);
    assert_eq!(second.trusted, first.rehashed);
    assert_eq!(text(&second), text(&first));
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);

    // A damaged cache on the host: everything is read again, and the warning names the host.
    let cache = sshd
        .cache_dir()
        .join("rehost/manifests")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(cache.extension().unwrap(), "rmc");
    let mut bytes = std::fs::read(&cache).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&cache, &bytes).unwrap();
    let third = host.manifest(p, &options, &cancel, &mut |_| {}).unwrap();
    assert_eq!((third.rehashed, third.trusted), (first.rehashed, 0));
    assert_eq!(text(&third), text(&first));
    assert_eq!(third.warnings.len(), 1, "{:?}", third.warnings);
    assert!(
        third.warnings[0].starts_with("old: failed to use the verification cache"),
        "{:?}",
        third.warnings
    );
}

#[test]
fn a_cancelled_manifest_is_an_error_not_a_manifest() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).unwrap();
    let t = tempfile::tempdir().unwrap();
    weird_tree(t.path());
    let p = t.path().as_os_str().as_bytes();
    let err = host
        .manifest(
            p,
            &ManifestOptions::default(),
            &AtomicBool::new(true),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("host old"), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // The session goes on.
    let m = host
        .manifest(
            p,
            &ManifestOptions::default(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(m.entries.len(), 12);
}

/// The ControlMaster socket's directory was 0755 though the docs say 0700 (issue 8, item 9):
/// whoever can reach the socket can use the session.
#[test]
fn control_master_directory_is_private() {
    let sshd = Sshd::start();
    let host = open("old", &spec(&sshd)).expect("open");
    let mode = std::fs::metadata(host.control_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o700, "{mode:o}");
}

/// One run per server (issue 8, item 5): the agent session holds the host's run lock until it
/// ends; a second session (another run, whatever its state directory) is refused, naming the
/// holder.
#[test]
fn an_ssh_host_is_locked_for_one_run_at_a_time() {
    use rehost_host::Request;
    let sshd = Sshd::start();
    let cancel = AtomicBool::new(false);
    let lock = |h: &dyn Host, holder: &str| {
        h.request(
            &Request::Lock {
                holder: holder.into(),
            },
            &cancel,
            &mut |_| {},
        )
    };
    let first = open("new", &spec(&sshd)).unwrap();
    lock(&first, "pid 1 on admin, user root").unwrap();
    let second = open("new", &spec(&sshd)).unwrap();
    let msg = lock(&second, "pid 2").unwrap_err().to_string();
    assert!(
        msg.contains(
            "host new (root /) is in use by another rehost run (pid 1 on admin, user root)"
        ),
        "{msg}"
    );
    first.close();
    drop(first);
    // The first session ended: the host is free.
    let t0 = std::time::Instant::now();
    while lock(&second, "pid 2").is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the lock was not released"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cipher the connection to `sshd` negotiated, from its DEBUG1 log.
fn negotiated_ciphers(sshd: &Sshd) -> Vec<String> {
    let log = std::fs::read_to_string(sshd.dir().join("sshd.log")).unwrap();
    log.lines()
        .filter_map(|l| l.split_once("kex: client->server cipher: "))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn connection_prefers_aes_gcm_unless_the_user_chose_ciphers() {
    let has_aes = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "aes"));
    let sshd = Sshd::start_with("LogLevel DEBUG1\n");
    let host = open("new", &spec(&sshd)).unwrap();
    let (out, _) = run(&host, &argv(&["true"])).unwrap();
    assert_eq!(out.exit.code, Some(0));
    drop(host);
    let want = if has_aes {
        "aes128-gcm@openssh.com"
    } else {
        "chacha20-poly1305@openssh.com"
    };
    assert_eq!(negotiated_ciphers(&sshd), [want]);

    // A list in the user's config is theirs: rehost adds no preference of its own.
    let sshd = Sshd::start_with("LogLevel DEBUG1\n");
    let mut config = std::fs::read_to_string(sshd.ssh_config()).unwrap();
    config.push_str("  Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com\n");
    std::fs::write(sshd.ssh_config(), config).unwrap();
    let host = open("new", &spec(&sshd)).unwrap();
    let (out, _) = run(&host, &argv(&["true"])).unwrap();
    assert_eq!(out.exit.code, Some(0));
    drop(host);
    assert_eq!(negotiated_ciphers(&sshd), ["chacha20-poly1305@openssh.com"]);
}
