//! The `retire-old` step kind: the old service checked stopped and disabled, the old data kept
//! read-only (every write bit removed, walked again), each change kept as evidence, and a
//! rollback that sets back only what is still as the step left it.

use crate::support::*;
use rehost_test::TestDir;
use std::os::unix::fs::{PermissionsExt, symlink};

/// The old service (`running` and `enabled` are files in the old host's root, its working
/// directory), its data set, a stop step and the retire step, then `{after}`.
fn body(retire_extra: &str, after: &str) -> String {
    format!(
        r#"
[[services]]
id = "app"
host = "old"
health = "test -e running"
stop = "rm -f running"

[[data]]
id = "files"
from = "old:/srv/data"
to = "new:/srv/data"

[[steps]]
id = "stop-old"
do = "stop"
service = "app"

[[steps]]
id = "retire"
do = "retire-old"
service = "app"
disable = "rm -f enabled"
enable = "touch enabled"
disabled_check = "test ! -e enabled"
{retire_extra}
{after}
"#
    )
}

const DATA: &str = "data = \"files\"\nretention = \"30d\"";

fn mode(d: &TestDir, rel: &str) -> u32 {
    std::fs::symlink_metadata(d.join(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn set(d: &TestDir, rel: &str, m: u32) {
    std::fs::set_permissions(d.join(rel), std::fs::Permissions::from_mode(m)).unwrap();
}

/// The old host: the service running and enabled, a tree with a symlink to a file outside it.
fn old_host(d: &TestDir) {
    d.write("test-old/running", "");
    d.write("test-old/enabled", "");
    d.write("test-old/srv/data/a.txt", "a\n");
    d.write("test-old/srv/data/sub/b.txt", "b\n");
    d.write("test-old/outside.conf", "x\n");
    set(d, "test-old/srv/data/a.txt", 0o664);
    set(d, "test-old/srv/data/sub/b.txt", 0o640);
    set(d, "test-old/outside.conf", 0o666);
    symlink(
        d.join("test-old/outside.conf"),
        d.join("test-old/srv/data/link"),
    )
    .unwrap();
}

fn journal_result(d: &TestDir, step: &str) -> serde_json::Value {
    d.read(".rehost/plan/test/journal")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.split('\t').next()?).ok())
        .rfind(|v| v["type"] == "step_finished" && v["id"] == step)
        .unwrap_or_else(|| panic!("no step_finished of `{step}` in the journal"))
}

#[test]
fn the_old_side_is_stopped_disabled_and_read_only_each_change_kept() {
    let d = TestDir::new();
    old_host(&d);
    write_plan(&d, &body(DATA, ""));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(!d.join("test-old/enabled").exists(), "disable ran");
    assert_eq!(mode(&d, "test-old/srv/data/a.txt"), 0o444);
    assert_eq!(mode(&d, "test-old/srv/data/sub/b.txt"), 0o440);
    assert_eq!(mode(&d, "test-old/srv/data/sub") & 0o222, 0);
    assert_eq!(mode(&d, "test-old/srv/data") & 0o222, 0);
    assert_eq!(
        mode(&d, "test-old/outside.conf"),
        0o666,
        "a symlink is not followed"
    );
    assert!(
        o.stdout.contains("walked again: none writable"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("not prevented: root (or CAP_DAC_OVERRIDE) can still write"),
        "{}",
        o.stdout
    );

    let r = journal_result(&d, "retire");
    let data = &r["result_data"];
    assert_eq!(data["kind"], "retire-old", "{r}");
    assert_eq!(data["disabled_check_exit"], 0, "{r}");
    assert_eq!(data["disable_exit"], 0, "{r}");
    assert_eq!(
        data["stopped"][0], "health command ended with exit status 1",
        "{r}"
    );
    let ro = &data["read_only"];
    // srv/data, sub, a.txt, sub/b.txt
    assert_eq!(ro["changed"], 4, "{r}");
    assert_eq!(ro["symlinks"], 1, "{r}");
    assert_eq!(ro["still_writable"], 0, "{r}");
    assert_eq!(ro["retention_secs"], 30 * 86400, "{r}");
    // The kept changes are evidence: present, with the digest the journal holds.
    let kept = std::fs::read(d.join(".rehost/plan/test/evidence/retire.1-modes.jsonl")).unwrap();
    assert_eq!(
        blake3::hash(&kept).to_hex().as_str(),
        ro["modes"]["blake3"].as_str().unwrap()
    );
    let text = String::from_utf8(kept).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"path\":\"a.txt\"") && l.contains("\"before\":436")),
        "{text}"
    );

    // During the retention `status --recheck` walks the tree again: still read-only, then a
    // write bit given back is found, named, journaled and in the report's verdict.
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("the old tree old:/srv/data made read-only by `retire` is still read-only: 4 entr(y/ies) walked, none with a write bit"),
        "{}",
        o.stdout
    );
    set(&d, "test-old/srv/data/sub/b.txt", 0o660);
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(
        o.stdout.contains("is WRITABLE AGAIN during its retention")
            && o.stdout
                .contains("1 entr(y/ies) with a write bit: sub/b.txt"),
        "{}",
        o.stdout
    );
    let journal = d.read(".rehost/plan/test/journal");
    assert_eq!(
        journal.matches("\"type\":\"read_only_rechecked\"").count(),
        2,
        "{journal}"
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(
        md.contains("had 1 entr(y/ies) with a write bit again"),
        "{md}"
    );
    assert!(md.contains("was still read-only"), "{md}");
}

#[test]
fn a_rollback_gives_back_the_modes_still_as_it_left_them_and_enables_the_service() {
    let d = TestDir::new();
    old_host(&d);
    // After the retire step somebody changes a.txt's mode; then a step fails and rolls back.
    let after = r#"
[[steps]]
id = "chmod-by-hand"
do = "run"
host = "old"
command = "chmod 600 srv/data/a.txt"

[[steps]]
id = "boom"
do = "run"
host = "old"
command = "exit 3"
on_failure = "rollback"
"#;
    write_plan(&d, &body(DATA, after));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        d.join("test-old/enabled").exists(),
        "enable ran: {}",
        o.all()
    );
    assert_eq!(
        mode(&d, "test-old/srv/data/sub/b.txt"),
        0o640,
        "{}",
        o.all()
    );
    assert_eq!(mode(&d, "test-old/srv/data") & 0o200, 0o200);
    assert_eq!(
        mode(&d, "test-old/srv/data/a.txt"),
        0o600,
        "a change made since is not undone"
    );
    let all = o.all();
    assert!(
        all.contains("a.txt: mode 0600, not the 0444 rehost set: changed since, left as found"),
        "{all}"
    );
    assert!(all.contains("`enable` exited 0 on host old"), "{all}");
    assert!(
        all.contains("NOT rolled back: every rollback that ran failed"),
        "a partial undo is not a rollback: {all}"
    );
}

#[test]
fn a_rollback_with_nothing_changed_since_gives_back_every_mode() {
    let d = TestDir::new();
    old_host(&d);
    let after = "[[steps]]\nid = \"boom\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"exit 3\"\non_failure = \"rollback\"\n";
    write_plan(&d, &body(DATA, after));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let all = o.all();
    assert!(
        all.contains("4 mode(s) set back under old:/srv/data, each still as the step left it; `enable` exited 0 on host old"),
        "{all}"
    );
    assert!(all.contains("rolled back 1 step(s)"), "{all}");
    // Rolled back: no tree stands read-only, nothing to re-check.
    let o = rehost(&d, &["status", "plan.toml", "--env", "test", "--recheck"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.all().contains("nothing to re-check"), "{}", o.all());
    assert_eq!(mode(&d, "test-old/srv/data/a.txt"), 0o664);
    assert_eq!(mode(&d, "test-old/srv/data/sub/b.txt"), 0o640);
    assert!(d.join("test-old/enabled").exists());
}

#[test]
fn a_service_still_running_fails_the_step_and_nothing_is_changed() {
    let d = TestDir::new();
    old_host(&d);
    // No stop step: the service still answers its health command.
    let plan = body(DATA, "").replace(
        "[[steps]]\nid = \"stop-old\"\ndo = \"stop\"\nservice = \"app\"\n",
        "",
    );
    write_plan(&d, &plan);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all()
            .contains("service `app` still answers on host old: its health command exited 0"),
        "{}",
        o.all()
    );
    assert!(d.join("test-old/enabled").exists(), "not disabled");
    assert_eq!(mode(&d, "test-old/srv/data/a.txt"), 0o664);
}

#[test]
fn a_service_that_would_start_at_boot_fails_the_step_before_any_mode_changes() {
    let d = TestDir::new();
    old_host(&d);
    // `disable` that does not disable.
    let plan = body(DATA, "").replace("disable = \"rm -f enabled\"", "disable = \"true\"");
    write_plan(&d, &plan);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all().contains("service `app` would start again at the next boot: `disabled_check` ended with exit status 1 on host old after `disable` exited 0"),
        "{}",
        o.all()
    );
    assert_eq!(mode(&d, "test-old/srv/data/a.txt"), 0o664);
}

#[test]
fn the_plan_says_what_retire_old_needs() {
    let d = TestDir::new();
    let plan = body("data = \"files\"", "").replace("disabled_check = \"test ! -e enabled\"\n", "");
    write_plan(&d, &plan);
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.all().contains("needs `disabled_check`"), "{}", o.all());
    assert!(o.all().contains("needs `retention`"), "{}", o.all());
}

/// Over ssh the agent walks the old tree, removes the write bits and walks it again; the
/// rollback's restore goes through it too.
#[test]
fn over_ssh_the_agent_keeps_the_old_tree_read_only_and_gives_it_back() {
    use rehost_test::sshd::Sshd;
    let (old, new) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    d.write("old-root/srv/data/a.txt", "a\n");
    d.write("old-root/srv/data/sub/b.txt", "b\n");
    d.write("old-root/enabled", "");
    set(&d, "old-root/srv/data/a.txt", 0o664);
    let root = d.join("old-root").display().to_string();
    let with_root = |name: &str, sshd: &Sshd, root: &str| {
        format!(
            "{}root = \"{}\"\n",
            ssh_host(name, sshd),
            d.join(root).display()
        )
    };
    let boom = "[[steps]]\nid = \"boom\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"test -e GO\"\non_failure = \"rollback\"\n";
    let plan = ssh_plan(&old, &new, &body(DATA, boom))
        .replace("test -e running", &format!("test -e {root}/running"))
        .replace("rm -f enabled", &format!("rm -f {root}/enabled"))
        .replace("touch enabled", &format!("touch {root}/enabled"))
        .replace("test ! -e enabled", &format!("test ! -e {root}/enabled"))
        .replace("test -e GO", &format!("test -e {root}/GO"))
        .replace(&ssh_host("old", &old), &with_root("old", &old, "old-root"))
        .replace(&ssh_host("new", &new), &with_root("new", &new, "new-root"));
    d.write("plan.toml", &plan);
    let o = rehost(&d, &["run", "plan.toml", "--accept-findings"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let all = o.all();
    assert!(
        all.contains("old:/srv/data made read-only, to stay so for the retention, until"),
        "{all}"
    );
    assert!(
        all.contains("4 mode(s) set back under old:/srv/data, each still as the step left it"),
        "{all}"
    );
    assert_eq!(mode(&d, "old-root/srv/data/a.txt"), 0o664);
    assert!(d.join("old-root/enabled").exists());

    // Run again with the failing step passing: the tree stays read-only.
    d.write("old-root/GO", "");
    let o = rehost(&d, &["run", "plan.toml", "--accept-findings"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(mode(&d, "old-root/srv/data/a.txt"), 0o444);
    assert_eq!(mode(&d, "old-root/srv/data/sub") & 0o222, 0);
    assert!(!d.join("old-root/enabled").exists());
}

/// The ports are checked in the host's kernel: a socket still listening on one fails the step
/// naming it; where the environment gives the old host an address, a socket bound to another
/// address of the same machine (the new host's, in a rehearsal on one machine) does not count.
#[test]
fn a_port_still_listening_on_the_old_host_fails_the_step_naming_the_socket() {
    let d = TestDir::new();
    old_host(&d);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let plan = body("", "").replace(
        "stop = \"rm -f running\"\n",
        &format!("stop = \"rm -f running\"\nports = [{port}]\n"),
    );
    write_plan(&d, &plan);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.all().contains(&format!(
            "service `app` is still listening on host old: 127.0.0.1:{port}"
        )),
        "{}",
        o.all()
    );
    assert!(d.join("test-old/enabled").exists(), "nothing disabled");

    // The old host at 127.0.0.2: the socket on 127.0.0.1 is another host's.
    let full = crate::support::plan(&plan).replace(
        "old = { local = true, root = \"test-old\" }",
        "old = { local = true, root = \"test-old\", address = \"127.0.0.2\" }",
    );
    assert!(full.contains("127.0.0.2"));
    d.write("plan.toml", &full);
    std::fs::remove_dir_all(d.join(".rehost")).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(&format!(
            "port {port}: no listening socket on 127.0.0.2 or a wildcard address (the host's kernel)"
        )),
        "{}",
        o.stdout
    );
    drop(listener);
}
