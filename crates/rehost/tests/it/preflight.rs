//! The pre-flight (issue 9, item 2): before the first step, `rehost run` opens every host its
//! steps use and checks what they need; `rehost check --hosts` does the same and nothing else.
//! Before, a missing source, a missing rsync, a full disk or a dead host was found mid-run,
//! possibly after the old service was stopped.

use crate::support::*;
use rehost_test::TestDir;

/// A plan that stops the old service first, then copies: the stop must not happen when the
/// copy cannot.
fn stop_then_copy(extra: &str, method: &str) -> String {
    format!(
        r#"
[[data]]
id = "files"
from = "old:/srv/files"
to = "new:/srv/files"

[[services]]
id = "app"
host = "old"

{extra}

[[steps]]
id = "stop-old"
do = "run"
host = "old"
command = "touch stopped"
stops = ["app"]

[[steps]]
id = "copy"
do = "sync"
data = "files"
method = "{method}"

[[steps]]
id = "check"
do = "verify-tree"
data = "files"

[[steps]]
id = "start-new"
do = "run"
host = "new"
command = "true"
starts = ["app"]
"#
    )
}

fn stopped(d: &TestDir) -> bool {
    d.join("test-old/stopped").exists()
}

#[test]
fn a_missing_source_stops_the_run_before_its_first_step() {
    let d = TestDir::new();
    write_plan(&d, &stop_then_copy("", "builtin"));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        !stopped(&d),
        "the old service was stopped before the pre-flight"
    );
    assert!(
        o.stderr.contains("host `old`: data set `files`") && o.stderr.contains("does not exist"),
        "{}",
        o.all()
    );
    // The same from `check --hosts`, for the day before.
    let c = rehost(&d, &["check", "plan.toml", "--hosts", "--env", "test"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(
        c.stdout
            .contains("pre-flight: host `old`: data set `files`"),
        "{}",
        c.all()
    );
    assert!(!stopped(&d));
    // Recorded in the journal, and the run starts once the source is there.
    d.write("test-old/srv/files/a", "a");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("pre-flight: 2 host(s) reachable"),
        "{}",
        o.all()
    );
    let journal = std::fs::read_to_string(d.join(".rehost/plan/test/journal")).unwrap();
    assert_eq!(journal.matches("\"preflight\"").count(), 2, "{journal}");
}

#[test]
fn a_missing_rsync_is_found_before_the_window() {
    let d = TestDir::new();
    write_plan(&d, &stop_then_copy("", "rsync"));
    d.write("test-old/srv/files/a", "a");
    // A PATH with a shell and touch, but no rsync.
    let tools = d.join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in ["sh", "touch"] {
        let at = rehost_test::require_tool(tool);
        std::os::unix::fs::symlink(at, tools.join(tool)).unwrap();
    }
    let o = rehost_test::run_env(
        bin(),
        &["run", "plan.toml", "--env", "test"],
        d.path(),
        None,
        &[("PATH", tools.as_os_str())],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("rsync does not run there"), "{}", o.all());
    assert!(o.stderr.contains("method = \"builtin\""), "{}", o.all());
    assert!(!stopped(&d));
}

#[test]
fn a_destination_without_room_is_found_before_the_window() {
    rehost_test::require_tool("mount");
    let d = TestDir::new();
    write_plan(&d, &stop_then_copy("", "builtin"));
    d.write("test-old/srv/files/big", vec![7u8; 3 << 20]);
    let dst = d.join("test-new/srv");
    std::fs::create_dir_all(&dst).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&dst)
        .status()
        .unwrap();
    assert!(
        st.success(),
        "mounting a small tmpfs needs root (CI runs as root)"
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    let _ = std::process::Command::new("umount").arg(&dst).status();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("host `new`: data set `files`")
            && o.stderr.contains("needs 3.0 MiB more"),
        "{}",
        o.all()
    );
    assert!(!stopped(&d));
}

#[test]
fn an_unreachable_host_is_found_before_the_first_step() {
    let d = TestDir::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let plan = plan(&stop_then_copy("", "builtin")).replace(
        "new = { local = true, root = \"test-new\" }",
        &format!("new = {{ ssh = \"root@127.0.0.1\", port = {port} }}"),
    );
    d.write("plan.toml", plan);
    d.write("test-old/srv/files/a", "a");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("host `new`") || o.stderr.contains("host new"),
        "{}",
        o.all()
    );
    assert!(!stopped(&d));
}
