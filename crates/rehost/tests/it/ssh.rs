//! `rehost run` on hosts reached over ssh: two real sshd instances on loopback stand in for the
//! old and the new server; the agent is the rehost binary under test.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;
use std::time::{Duration, Instant};

#[test]
fn run_steps_execute_on_each_ssh_host() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        ssh_plan(
            &old,
            &new,
            &format!(
                "[[steps]]\nid = \"on-old\"\ndo = \"run\"\nhost = \"old\"\n\
                 argv = [\"sh\", \"-c\", \"echo from old; echo old > {out}/old-ran\"]\n\n\
                 [[steps]]\nid = \"on-new\"\ndo = \"run\"\nhost = \"new\"\n\
                 command = \"echo from new; echo new > {out}/new-ran\"\n"
            ),
        ),
    );
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("old-ran").trim(), "old");
    assert_eq!(d.read("new-ran").trim(), "new");
    assert!(o.all().contains("from old"), "{}", o.all());
    assert!(o.all().contains("from new"), "{}", o.all());
    // Each host got the agent once.
    for s in [&old, &new] {
        assert!(s.cache_dir().join("rehost").read_dir().unwrap().count() == 1);
    }
}

#[test]
fn killing_sshd_mid_run_is_a_clear_error_and_the_run_resumes() {
    let (mut old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        ssh_plan(
            &old,
            &new,
            &format!(
                "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\n\
                 command = \"echo x >> {out}/attempts; echo $$ > {out}/pid; touch {out}/started; sleep 2; touch {out}/finished\"\n"
            ),
        ),
    );
    let bin = bin().to_owned();
    let dir = d.path().to_owned();
    let run = std::thread::spawn(move || rehost_test::run(&bin, &["run", "plan.toml"], &dir, None));
    let t = Instant::now();
    while !d.join("started").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    old.kill();
    let o = run.join().unwrap();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.all().contains("host old"), "{}", o.all());
    assert!(o.all().contains("connection was lost"), "{}", o.all());
    // Once the step's shell is gone, nothing is left to finish it.
    wait_gone(&d.read("pid"), "the step's shell outlived the connection");
    assert!(
        !d.join("finished").exists(),
        "the step went on after the connection was lost"
    );

    old.restart();
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(d.join("finished").exists());
    assert_eq!(d.read("attempts").lines().count(), 2);
}

/// Waits (10 s at most) until the process `pid` (as a step wrote it) has ended; panics with
/// `what` if it does not.
fn wait_gone(pid: &str, what: &str) {
    let pid: i32 = pid.trim().parse().unwrap();
    let t = Instant::now();
    // A zombie has exited: only a live process counts.
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    }) {
        assert!(t.elapsed() < Duration::from_secs(10), "{what} (pid {pid})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ctrl-C at the terminal signals the whole foreground process group. The ssh processes must
/// not die with it: rehost cancels the step in order, the agent ends the remote command, and
/// the run is interrupted (130), not "connection lost".
#[test]
fn ctrl_c_interrupts_a_remote_step_cleanly() {
    use std::os::unix::process::CommandExt;
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        ssh_plan(
            &old,
            &new,
            &format!(
                "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\n\
                 command = \"echo $$ > {out}/pid; touch {out}/started; sleep 3; touch {out}/finished\"\n"
            ),
        ),
    );
    let child = std::process::Command::new(bin())
        .args(["run", "plan.toml"])
        .current_dir(d.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !d.join("started").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) only sends a signal, here to the test's own child group.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(130), "{all}");
    assert!(!all.contains("connection was lost"), "{all}");
    wait_gone(&d.read("pid"), "the remote command outlived the interrupt");
    assert!(
        !d.join("finished").exists(),
        "the remote command outlived the interrupt"
    );
}

/// A plan whose two ssh hosts keep their paths under `old-root` and `new-root` in `d`.
fn plan_with_roots(old: &Sshd, new: &Sshd, d: &TestDir, steps: &str) -> String {
    let with_root = |name: &str, sshd: &Sshd, root: &str| {
        format!(
            "{}root = \"{}\"\n",
            ssh_host(name, sshd),
            d.join(root).display()
        )
    };
    ssh_plan(old, new, steps)
        .replace(&ssh_host("old", old), &with_root("old", old, "old-root"))
        .replace(&ssh_host("new", new), &with_root("new", new, "new-root"))
}

/// The `verify-tree` step on two ssh hosts: each side is walked and hashed on its own host by
/// the agent, both at once, and only the manifests cross the connection.
#[test]
fn verify_tree_step_compares_two_ssh_hosts() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    for root in ["old-root", "new-root"] {
        d.write(&format!("{root}/srv/files/a.txt"), "alpha\n");
        d.write(&format!("{root}/srv/files/dir/name with spaces"), "b\n");
    }
    // Same mtimes on both sides, as a faithful copy has.
    let st = std::process::Command::new("cp")
        .args(["-a", "old-root/srv/files/.", "new-root/srv/files/"])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(st.success());
    let steps = "[[data]]\nid = \"files\"\nfrom = \"old:/srv/files\"\nto = \"new:/srv/files\"\n\n\
                 [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n";
    d.write("plan.toml", plan_with_roots(&old, &new, &d, steps));
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("verified complete and correct"),
        "{}",
        o.stdout
    );

    // A changed byte on the new host fails the gate; the run stays resumable.
    let d2 = TestDir::new();
    for root in ["old-root", "new-root"] {
        d2.write(&format!("{root}/srv/files/a.txt"), "alpha\n");
    }
    d2.write("new-root/srv/files/a.txt", "alphA\n");
    d2.write("plan.toml", plan_with_roots(&old, &new, &d2, steps));
    let o = rehost(&d2, &["run", "plan.toml", "--ignore-window"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("new:/srv/files differs from old:/srv/files"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("content"), "{}", o.stderr);
}

/// `rehost verify tree` with a `HOST:PATH` location gives the same result as locally.
#[test]
fn verify_tree_across_ssh_equals_local() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    d.write("a/x.txt", "x\n");
    d.write("a/dir/y", "why\n");
    d.write("a/odd name; $(id)", "z\n");
    let st = std::process::Command::new("cp")
        .args(["-a", "a", "b"])
        .current_dir(d.path())
        .status()
        .unwrap();
    assert!(st.success());
    d.write("b/dir/y", "whY\n");
    let a = d.join("a").display().to_string();
    let b = d.join("b").display().to_string();
    let cfg = sshd.ssh_config().display().to_string();
    let local = rehost(&d, &["verify", "tree", &a, &b, "--json"]);
    let remote_b = format!("{}:{b}", sshd.destination());
    let remote = rehost(
        &d,
        &[
            "verify",
            "tree",
            &a,
            &remote_b,
            "--json",
            "--ssh-config",
            &cfg,
        ],
    );
    assert_eq!(local.code, 1, "{}", local.all());
    assert_eq!(remote.code, 1, "{}", remote.all());
    let findings = |o: &rehost_test::Output| {
        let v: serde_json::Value =
            serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.all()));
        v["findings"].clone()
    };
    assert_eq!(findings(&local), findings(&remote));
    assert!(findings(&remote).to_string().contains("dir/y"));
}

/// A manifest of a remote tree, written here, verifies the same tree later.
#[test]
fn manifest_of_a_remote_tree_is_written_here() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    d.write("t/one", "1\n");
    d.write("t/sub/two", "2\n");
    let cfg = sshd.ssh_config().display().to_string();
    let loc = format!("{}:{}", sshd.destination(), d.join("t").display());
    let o = rehost(
        &d,
        &["manifest", &loc, "-o", "t.manifest", "--ssh-config", &cfg],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(d.read("t.manifest").starts_with("#rehost-manifest 1"));
    let o = rehost(&d, &["verify", "tree", "t.manifest", "t"]);
    assert_eq!(o.code, 0, "{}", o.all());
    // Regression: a saved manifest against a remote tree walked the manifest file as a tree.
    let verify = |d: &TestDir| {
        rehost(
            d,
            &["verify", "tree", "t.manifest", &loc, "--ssh-config", &cfg],
        )
    };
    let o = verify(&d);
    assert_eq!(o.code, 0, "{}", o.all());
    d.write("t/sub/two", "changed\n");
    let o = verify(&d);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(o.stdout.contains("sub/two"), "{}", o.stdout);
}

/// `sync` from a local host to an ssh host (rsync here, over the plan's ssh settings), then
/// `verify-tree` across: the data arrives complete, deletions included.
#[test]
fn sync_to_an_ssh_host_then_verify() {
    rehost_test::require_tool("rsync");
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    local_to_ssh_sync_plan(&old, &new, &d);
    synced_and_verified(&d, "with rsync on old");
}

/// The sync tests' data and plan: `old` is this machine under old-root, `new` is reached over
/// ssh; a stale file on `new` must go; `copy` syncs (method auto), `verify` checks.
fn local_to_ssh_sync_plan(old: &Sshd, new: &Sshd, d: &TestDir) {
    d.write("old-root/srv/files/a.txt", "alpha\n");
    d.write("old-root/srv/files/dir/name with spaces", "b\n");
    d.write("new-root/srv/files/stale", "gone after the sync\n");
    let steps = "[[data]]\nid = \"files\"\nfrom = \"old:/srv/files\"\nto = \"new:/srv/files\"\n\n\
                 [[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"files\"\n\n\
                 [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n";
    let plan = plan_with_roots(old, new, d, steps).replace(
        &format!(
            "{}root = \"{}\"\n",
            ssh_host("old", old),
            d.join("old-root").display()
        ),
        &format!(
            "[hosts.old]\nlocal = true\nroot = \"{}\"\n",
            d.join("old-root").display()
        ),
    );
    d.write("plan.toml", plan);
}

/// Runs the plan of the sync tests and checks that the step said `how`, the copy is there
/// (the stale file gone) and the verify-tree step passed.
fn synced_and_verified(d: &TestDir, how: &str) {
    let o = rehost(d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains(how), "{}", o.stdout);
    assert!(
        o.stdout.contains("verified complete and correct"),
        "{}",
        o.stdout
    );
    assert_eq!(d.read("new-root/srv/files/dir/name with spaces"), "b\n");
    assert!(!d.join("new-root/srv/files/stale").exists());
}

/// `method = "auto"` with no rsync on one end (here this machine, whose PATH offers ssh and
/// nothing else) falls back to the built-in transfer, and the data still verifies.
#[test]
fn auto_sync_without_rsync_on_one_end_uses_the_builtin_transfer() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    local_to_ssh_sync_plan(&old, &new, &d);
    let only_ssh = d.join("only-ssh");
    std::fs::create_dir(&only_ssh).unwrap();
    std::os::unix::fs::symlink(rehost_test::require_tool("ssh"), only_ssh.join("ssh")).unwrap();
    let o = rehost_test::run_env(
        bin(),
        &["run", "plan.toml", "--json"],
        d.path(),
        None,
        &[("PATH", only_ssh.as_os_str())],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("host old has no rsync"), "{}", o.stdout);
    assert!(o.stdout.contains("(built-in transfer)"), "{}", o.stdout);
    assert_eq!(d.read("new-root/srv/files/dir/name with spaces"), "b\n");
    assert!(!d.join("new-root/srv/files/stale").exists());
}

/// The built-in transfer between two ssh hosts (for servers without rsync): content read by
/// the old host's agent, written and checked by the new host's, then verified.
#[test]
fn builtin_sync_between_two_ssh_hosts_then_verify() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    d.write("old-root/srv/files/a.txt", "alpha\n");
    d.write("old-root/srv/files/dir/name with spaces", "b\n");
    d.write("old-root/srv/files/big", "x".repeat(9 << 20));
    d.write("new-root/srv/files/stale", "gone after the sync\n");
    std::fs::hard_link(
        d.join("old-root/srv/files/a.txt"),
        d.join("old-root/srv/files/a-again.txt"),
    )
    .unwrap();
    let steps = "[[data]]\nid = \"files\"\nfrom = \"old:/srv/files\"\nto = \"new:/srv/files\"\n\n\
                 [[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"files\"\nmethod = \"builtin\"\n\n\
                 [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n";
    d.write("plan.toml", plan_with_roots(&old, &new, &d, steps));
    synced_and_verified(&d, "(built-in transfer)");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(d.join(p)).unwrap().ino();
    assert_eq!(
        ino("new-root/srv/files/a.txt"),
        ino("new-root/srv/files/a-again.txt")
    );
}

/// `--ssh-config` reaches hosts whose plan entry names no config, as `ssh -F` would.
#[test]
fn ssh_config_flag_applies_to_plan_hosts() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let out = d.path().display().to_string();
    let steps = format!(
        "[[steps]]\nid = \"hello\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"touch\", \"{out}/hello\"]\n"
    );
    // Both fixtures' configs name their host alias; use old's for the flag and drop it from the plan.
    let plan = ssh_plan(&old, &new, &steps).replace(
        &format!("ssh_config = \"{}\"\n", old.ssh_config().display()),
        "",
    );
    d.write("plan.toml", plan);
    let without = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(
        without.code,
        2,
        "the alias means nothing without the config: {}",
        without.all()
    );
    let cfg = old.ssh_config().display().to_string();
    let o = rehost(&d, &["run", "plan.toml", "--ssh-config", &cfg]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(d.join("hello").exists());
}

/// Issue 10, item 7: between two ssh hosts rsync runs on the old host, which needs its own ssh
/// access to the new one. Without it the only message was ssh's raw "Could not resolve
/// hostname"; now the step says what is missing and why, and offers the built-in relay, which
/// then copies the data with no trust between the servers.
#[test]
fn rsync_between_two_ssh_hosts_without_access_says_what_is_missing() {
    rehost_test::require_tool("rsync");
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    d.write("old-root/srv/files/a.txt", "alpha\n");
    let steps = "[[data]]\nid = \"files\"\nfrom = \"old:/srv/files\"\nto = \"new:/srv/files\"\n\n\
                 [[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"files\"\nmethod = \"rsync\"\n\n\
                 [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n";
    d.write("plan.toml", plan_with_roots(&old, &new, &d, steps));
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    for part in [
        "rsync runs on host old and copies to host new over ssh from there, with old's own ssh setup, not this machine's",
        "old must resolve `rehost-test-sshd`",
        "That failed: ssh: Could not resolve hostname rehost-test-sshd",
        "write method = \"builtin\" in step `copy`: the built-in transfer relays through rehost and needs no trust between the servers",
    ] {
        assert!(o.stderr.contains(part), "{part}\n{}", o.all());
    }
    d.write(
        "plan.toml",
        plan_with_roots(&old, &new, &d, &steps.replace("\"rsync\"", "\"builtin\"")),
    );
    let o = rehost(&d, &["run", "plan.toml", "--accept-plan-change"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("new-root/srv/files/a.txt"), "alpha\n");
}

/// Issue 10, item 7: rsync to an ssh destination whose parent directory is missing failed,
/// where the local and built-in paths create it.
#[test]
fn rsync_to_an_ssh_destination_creates_missing_parents() {
    rehost_test::require_tool("rsync");
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    local_to_ssh_sync_plan(&old, &new, &d);
    let text = d.read("plan.toml").replace(
        "to = \"new:/srv/files\"",
        "to = \"new:/deep/missing/files\"",
    );
    d.write("plan.toml", text);
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(d.read("new-root/deep/missing/files/a.txt"), "alpha\n");
    assert!(
        o.stdout.contains("verified complete and correct"),
        "{}",
        o.stdout
    );
}

/// The ssh processes whose command line names this file (a test sshd's own ssh config).
fn ssh_processes_using(config: &std::path::Path) -> Vec<String> {
    let needle = config.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmd.windows(needle.len()).any(|w| w == needle)
            && cmd.windows(17).any(|w| w == b"ControlMaster=yes")
        {
            found.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    found
}

/// Issue 10 item 8: after `kill -9` of rehost, its ssh control masters lived on.
#[test]
fn control_masters_end_when_rehost_is_killed() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        ssh_plan(
            &old,
            &new,
            &format!(
                "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\n\
                 command = \"touch {out}/started; sleep 20\"\n"
            ),
        ),
    );
    let mut child = std::process::Command::new(bin())
        .args(["run", "plan.toml"])
        .current_dir(d.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !d.join("started").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !ssh_processes_using(&old.ssh_config()).is_empty(),
        "no control master found while the run was running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    loop {
        let left = ssh_processes_using(&old.ssh_config());
        if left.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "control masters outlived rehost: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 18: after a built-in sync, a verification over ssh trusted digests that the sync's walk
/// had read (each host keeps its last walk of a tree), and said "trusted unchanged since the last
/// verification" where no verification had run. It names the sync's walk instead.
#[test]
fn a_verification_after_a_builtin_sync_says_it_trusted_the_syncs_digests() {
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    d.write("old-root/srv/files/a.txt", "alpha\n");
    d.write("old-root/srv/files/b.txt", "beta\n");
    // A file changed within a second of a walk is read again, never trusted (the racy-ctime
    // rule): wait until the source's last change is more than a second old.
    let changed = std::fs::metadata(d.join("old-root/srv/files/b.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while changed.elapsed().unwrap_or_default() < std::time::Duration::from_millis(1500) {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock does not move"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let steps = "[[data]]\nid = \"files\"\nfrom = \"old:/srv/files\"\nto = \"new:/srv/files\"\n\n\
                 [[steps]]\nid = \"copy\"\ndo = \"sync\"\ndata = \"files\"\nmethod = \"builtin\"\n\n\
                 [[steps]]\nid = \"verify\"\ndo = \"verify-tree\"\ndata = \"files\"\n";
    d.write("plan.toml", plan_with_roots(&old, &new, &d, steps));
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(
            "trusted unchanged since the walk of the built-in transfer in sync `copy` (attempt 1), whose digests are not a verification's: 2"
        ),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("last verification"), "{}", o.stdout);
    let r = rehost(&d, &["report", "plan.toml", "-o", "out"]);
    assert_ne!(r.code, 2, "{}", r.all());
    let md = d.read("out/report.md");
    assert!(
        md.contains("| The trusted digests were read by | the walk of the built-in transfer in sync `copy` (attempt 1)"),
        "{md}"
    );
}
