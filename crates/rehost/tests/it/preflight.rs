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
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stderr_has("host `old`: data set `files`")
        .stderr_has("does not exist")
        .code(2);
    snap!(ran, "run");
    assert!(
        !stopped(&d),
        "the old service was stopped before the pre-flight"
    );
    // The same from `check --hosts`, for the day before.
    let ran = test_in(&d)
        .args(["check", "plan.toml", "--hosts", "--env", "test"])
        .stdout_has("pre-flight: host `old`: data set `files`")
        .code(2);
    snap!(ran, "check_hosts");
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
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .env("PATH", &tools)
        .stderr_has("rsync does not run there")
        .stderr_has("method = \"builtin\"")
        .code(2);
    snap!(ran);
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

/// Issue 18: a plan whose later steps touch resources the old pre-flight did not look at; the
/// stop comes first, so a mid-window failure would leave the service down.
fn stop_then(steps: &str) -> String {
    format!(
        r#"
[[services]]
id = "app"
host = "old"

[[steps]]
id = "stop-old"
do = "run"
host = "old"
command = "touch stopped"
stops = ["app"]
{steps}
[[steps]]
id = "start-new"
do = "run"
host = "new"
command = "true"
starts = ["app"]
"#
    )
}

/// The plan line of `[[steps]]` whose id is `id`: the line before the id's, so the id's
/// index from 0.
fn step_line(plan: &str, id: &str) -> usize {
    plan.lines()
        .position(|l| l == format!("id = \"{id}\""))
        .unwrap()
}

/// `check --hosts` and `run` both stop at the pre-flight naming `want` (and the step's plan
/// line), and nothing ran.
fn caught_before_the_first_step(d: &TestDir, env: &[(&str, &std::ffi::OsStr)], want: &[&str]) {
    let c = rehost_test::run_env(
        bin(),
        &["check", "plan.toml", "--hosts", "--env", "test"],
        d.path(),
        None,
        env,
    );
    assert_eq!(c.code, 2, "{}", c.all());
    for w in want {
        assert!(
            c.stdout.contains(w),
            "check --hosts: want {w:?}\n{}",
            c.all()
        );
    }
    let o = rehost_test::run_env(
        bin(),
        &["run", "plan.toml", "--env", "test"],
        d.path(),
        None,
        env,
    );
    assert_eq!(o.code, 2, "{}", o.all());
    for w in want {
        assert!(o.stderr.contains(w), "run: want {w:?}\n{}", o.all());
    }
    assert!(
        !stopped(d),
        "a step ran before the pre-flight stopped the run"
    );
}

#[test]
fn a_missing_program_is_found_before_the_first_step() {
    let d = TestDir::new();
    let steps = "\n[[steps]]\nid = \"dump\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"LANG=C no-such-dumper-4711 --all > /tmp/x\"\nrollback = \"no-such-undo-4711\"\n";
    write_plan(&d, &stop_then(steps));
    let line = step_line(&d.read("plan.toml"), "dump");
    caught_before_the_first_step(
        &d,
        &[],
        &[
            &format!(
                "host `old`: program `no-such-dumper-4711` is not found there (command -v, in the host's shell and PATH): step `dump` (plan line {line}) would fail"
            ),
            &format!(
                "program `no-such-undo-4711` is not found there (command -v, in the host's shell and PATH): step `dump` (plan line {line}) (rollback) would fail"
            ),
        ],
    );
    // A step before it that names the program (it may install it): a warning, not a stop.
    let install = "\n[[steps]]\nid = \"install\"\ndo = \"manual\"\ntext = \"apt-get install no-such-dumper-4711 no-such-undo-4711\"\n";
    let e = TestDir::new();
    write_plan(&e, &stop_then(&format!("{install}{steps}")));
    let c = rehost(&e, &["check", "plan.toml", "--hosts", "--env", "test"]);
    assert!(
        c.stdout.contains("warning: host `old`: program `no-such-dumper-4711` is not found there yet; step `install` before step `dump`"),
        "{}",
        c.all()
    );
    assert!(!c.stdout.contains("pre-flight: host"), "{}", c.all());
    // Once the program is there (first on PATH), the run goes ahead.
    let tools = d.join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    for p in ["no-such-dumper-4711", "no-such-undo-4711"] {
        std::os::unix::fs::symlink(rehost_test::require_tool("true"), tools.join(p)).unwrap();
    }
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap());
    let o = rehost_test::run_env(
        bin(),
        &["run", "plan.toml", "--env", "test"],
        d.path(),
        None,
        &[("PATH", std::ffi::OsStr::new(&path))],
    );
    assert_eq!(o.code, 0, "{}", o.all());
}

#[test]
fn a_health_name_that_does_not_resolve_is_found_before_the_first_step() {
    rehost_test::require_tool("getent");
    let d = TestDir::new();
    let plan = stop_then(
        "\n[[steps]]\nid = \"healthy\"\ndo = \"health\"\nservice = \"web\"\n",
    )
    .replace(
        "[[services]]\nid = \"app\"",
        "[[services]]\nid = \"web\"\nhost = \"new\"\nhealth = \"test -n https://nonexistent.invalid/health\"\n\n[[services]]\nid = \"app\"",
    );
    write_plan(&d, &plan);
    let line = step_line(&d.read("plan.toml"), "healthy");
    caught_before_the_first_step(
        &d,
        &[],
        &[&format!(
            "host `new`: name `nonexistent.invalid` does not resolve there (getent hosts: not found): step `healthy` (plan line {line}) would fail"
        )],
    );
}

/// A fake `systemctl` that knows one unit, `app.service`, as `systemctl cat` answers: the
/// test machine may run no systemd, and the check asks only `systemctl cat`.
fn fake_systemctl(d: &TestDir) -> String {
    let tools = d.join("fake-bin");
    std::fs::create_dir_all(&tools).unwrap();
    let fake = tools.join("systemctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = cat ] || exit 3\nshift; [ \"$1\" = -- ] && shift\n\
         [ \"$1\" = app.service ] && { echo '# /etc/systemd/system/app.service'; exit 0; }\n\
         echo \"No files found for $1.\" >&2; exit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", tools.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_service_unit_that_does_not_exist_is_found_before_the_first_step() {
    let d = TestDir::new();
    let plan = stop_then("\n[[steps]]\nid = \"start-web\"\ndo = \"start\"\nservice = \"web\"\nhost = \"new\"\n")
        .replace(
            "[[services]]\nid = \"app\"",
            "[[services]]\nid = \"web\"\nhost = \"old\"\nstart = \"systemctl start app.service wbe.service\"\nstop = \"systemctl stop app.service\"\n\n[[services]]\nid = \"app\"",
        );
    write_plan(&d, &plan);
    let line = step_line(&d.read("plan.toml"), "start-web");
    let path = fake_systemctl(&d);
    caught_before_the_first_step(
        &d,
        &[("PATH", std::ffi::OsStr::new(&path))],
        &[&format!(
            "host `new`: systemd unit `wbe.service` does not exist there (systemctl cat: No files found for wbe.service.): step `start-web` (plan line {line}) would fail"
        )],
    );
    // A PATH without systemctl: said so, not "no such unit".
    let tools = d.join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in ["sh", "touch"] {
        std::os::unix::fs::symlink(rehost_test::require_tool(tool), tools.join(tool)).unwrap();
    }
    caught_before_the_first_step(
        &d,
        &[("PATH", tools.as_os_str())],
        &["host `new` has no systemctl (no systemd)"],
    );
}

/// A `verify-db` step late in the plan: its database unreachable or missing is found before
/// the stop, from the host that runs the client.
#[test]
fn a_database_that_does_not_answer_is_found_before_the_first_step() {
    rehost_test::require_tool("psql");
    let pg = rehost_test::postgres::Postgres::start();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db_to = |from_db: &str, from_port: u16, to_db: &str| {
        format!(
            "\n[[databases]]\nid = \"app\"\nengine = \"postgresql\"\nfrom = \"old\"\nto = \"new\"\nfrom_database = \"{from_db}\"\nto_database = \"{to_db}\"\nuser = \"postgres\"\nfrom_port = 1\nto_port = 2\n\n[environments.test.databases.app]\nfrom_port = {from_port}\nto_port = {}\n\n[[steps]]\nid = \"verify-app\"\ndo = \"verify-db\"\ndatabase = \"app\"\n",
            pg.port()
        )
    };
    // The rehearsal's own ports (production's, 1 and 2, are never connected to by a rehearsal).
    let db = |from_db: &str, from_port: u16| db_to(from_db, from_port, "postgres");
    // Nobody listens on the old side's port.
    let d = TestDir::new();
    write_plan(&d, &stop_then(&db("postgres", closed)));
    let line = step_line(&d.read("plan.toml"), "verify-app");
    caught_before_the_first_step(
        &d,
        &[],
        &[
            "host `old`: database `app` (from side) does not answer: ",
            &format!(": step `verify-app` (plan line {line}) would fail"),
        ],
    );
    // The server answers, the database does not exist on it.
    let d = TestDir::new();
    write_plan(&d, &stop_then(&db("nonexistent_db", pg.port())));
    caught_before_the_first_step(
        &d,
        &[],
        &[
            "host `old`: database `app` (from side) does not answer: ",
            "\"nonexistent_db\" does not exist",
        ],
    );
    // Both answer: the run goes ahead.
    let d = TestDir::new();
    write_plan(&d, &stop_then(&db("postgres", pg.port())));
    let c = rehost(&d, &["check", "plan.toml", "--hosts", "--env", "test"]);
    assert!(c.stdout.contains("databases checked"), "{}", c.all());
    assert!(!c.stdout.contains("pre-flight: host"), "{}", c.all());
    // The copy's database not there yet (a restore before the step makes it): a warning.
    let d = TestDir::new();
    write_plan(
        &d,
        &stop_then(&db_to("postgres", pg.port(), "restored_later")),
    );
    let c = rehost(&d, &["check", "plan.toml", "--hosts", "--env", "test"]);
    assert!(
        c.stdout
            .contains("warning: host `new`: database `app` does not exist there yet (")
            && c.stdout.contains("a step before step `verify-app`"),
        "{}",
        c.all()
    );
    assert!(!c.stdout.contains("pre-flight: host"), "{}", c.all());
}

/// Over ssh, the same checks run on the host through its agent: a program missing there, a
/// database port closed there, a health name that does not resolve there.
#[test]
fn over_ssh_a_missing_program_a_closed_database_port_and_an_unresolvable_name_are_found_before_the_first_step()
 {
    use rehost_test::sshd::Sshd;
    rehost_test::require_tool("getent");
    let (so, sn) = (Sshd::start(), Sshd::start());
    let d = TestDir::new();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let marker = d.join("ssh-stopped");
    let body = format!(
        r#"
[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "app"
user = "postgres"
port = {closed}

[[services]]
id = "web"
host = "new"
health = "test -n https://nonexistent.invalid/health"

[[steps]]
id = "stop-old"
do = "run"
host = "old"
command = "touch {}"

[[steps]]
id = "dump"
do = "run"
host = "old"
command = "no-such-dumper-4711 --all"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"

[[steps]]
id = "healthy"
do = "health"
service = "web"
"#,
        marker.display()
    );
    d.write("plan.toml", ssh_plan(&so, &sn, &body));
    let plan = d.read("plan.toml");
    let line = |id| step_line(&plan, id);
    let want = [
        format!(
            "host `old`: program `no-such-dumper-4711` is not found there (command -v, in the host's shell and PATH): step `dump` (plan line {}) would fail",
            line("dump")
        ),
        "host `old`: database `app` (from side) does not answer: ".to_owned(),
        format!(
            "step `verify-app` (plan line {}) would fail",
            line("verify-app")
        ),
        "host `new`: database `app` (to side) does not answer: ".to_owned(),
        format!(
            "host `new`: name `nonexistent.invalid` does not resolve there (getent hosts: not found): step `healthy` (plan line {}) would fail",
            line("healthy")
        ),
    ];
    let c = rehost(&d, &["check", "plan.toml", "--hosts"]);
    assert_eq!(c.code, 2, "{}", c.all());
    let o = rehost(&d, &["run", "plan.toml", "--accept-findings"]);
    assert_eq!(o.code, 2, "{}", o.all());
    for w in &want {
        assert!(
            c.stdout.contains(w.as_str()),
            "check --hosts: want {w:?}\n{}",
            c.all()
        );
        assert!(
            o.stderr.contains(w.as_str()),
            "run: want {w:?}\n{}",
            o.all()
        );
    }
    assert!(
        !marker.exists(),
        "a step ran before the pre-flight stopped the run"
    );
}

/// A source the plan says a step makes (`created_by`) is not checked before that step, by
/// design: `check --hosts` says so as a note, and the run does not journal it as a warning, so
/// the report does not ask a reviewer to look at what the plan declared (the demo's verdict
/// read "REVIEW NEEDED" for its own `created_by`).
#[test]
fn a_source_made_by_a_step_is_a_note_not_a_point_to_review() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[data]]
id = "files"
from = "old:/srv/files"
to = "new:/srv/files"
created_by = "make"

[[steps]]
id = "make"
do = "run"
host = "old"
command = "mkdir -p srv/files && echo x > srv/files/a"

[[steps]]
id = "copy"
do = "sync"
data = "files"
method = "builtin"

[[steps]]
id = "check"
do = "verify-tree"
data = "files"
"#,
    );
    let c = rehost(&d, &["check", "plan.toml", "--hosts", "--env", "test"]);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.stdout
            .lines()
            .any(|l| l.starts_with("note: host `old`: data set `files`: ")
                && l.ends_with("does not exist yet; step `make` creates it (created_by)")),
        "{}",
        c.all()
    );
    assert!(!c.stdout.contains("warning:"), "{}", c.all());
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let r = rehost(
        &d,
        &["report", "plan.toml", "--env", "test", "--format", "md"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let md = d.read(".rehost/plan/test/report.md");
    assert!(!md.contains("created\\_by"), "{md}");
    assert!(!md.contains("Review:"), "{md}");
}
