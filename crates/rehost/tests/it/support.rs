//! Helpers shared by the integration tests.

use rehost_test::cli::Test;
use rehost_test::sshd::Sshd;
use rehost_test::{Output, TestDir};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rehost"))
}

pub fn rehost(dir: &TestDir, args: &[&str]) -> Output {
    rehost_test::run(bin(), args, dir.path(), None)
}

pub fn rehost_stdin(dir: &TestDir, args: &[&str], stdin: &str) -> Output {
    rehost_test::run(bin(), args, dir.path(), Some(stdin))
}

/// A test of the rehost binary (the fluent builder of `rehost_test::cli`) in a directory of
/// its own.
pub fn test() -> Test<'static> {
    Test::new(bin())
}

/// A test of the rehost binary in `dir`, which outlives it (for the commands that follow).
pub fn test_in(dir: &TestDir) -> Test<'_> {
    Test::in_dir(bin(), dir)
}

/// `plan.toml` for a [`Test`]: the standard [`HEAD`] and `body`.
pub trait WithPlan: Sized {
    fn plan(self, body: &str) -> Self;
}

impl WithPlan for Test<'_> {
    fn plan(self, body: &str) -> Self {
        self.file("plan.toml", plan(body))
    }
}

/// The name of the test function this is expanded in (closures skipped).
macro_rules! test_name {
    () => {{
        fn f() {}
        fn type_name_of<T>(_: T) -> &'static str {
            std::any::type_name::<T>()
        }
        type_name_of(f)
            .trim_end_matches("::f")
            .rsplit("::")
            .find(|part| *part != "{{closure}}")
            .unwrap_or_default()
    }};
}
pub(crate) use test_name;

/// Asserts a snapshot (insta, under `tests/it/snapshots/`) with the filters of
/// `rehost_test::snapshot`: `snap!(ran)` the exit code and both streams of a `Ran`, named
/// after the test (`it__MODULE__TEST.snap`); `snap!(ran, "name")` the same, for a test with
/// several (`it__MODULE__TEST-name.snap`); `snap!(ran, "name", text)` another text (a file the
/// command wrote) with the filters of that command's directory.
macro_rules! snap {
    ($ran:expr) => {{
        let ran = &$ran;
        rehost_test::snapshot::check(&ran.settings(), || insta::assert_snapshot!(ran.shown()));
    }};
    ($ran:expr, $name:expr) => {{
        let ran = &$ran;
        let name = format!("{}-{}", crate::support::test_name!(), $name);
        rehost_test::snapshot::check(&ran.settings(), || {
            insta::assert_snapshot!(name, ran.shown())
        });
    }};
    ($ran:expr, $name:expr, $text:expr) => {{
        let ran = &$ran;
        let name = format!("{}-{}", crate::support::test_name!(), $name);
        rehost_test::snapshot::check(&ran.settings(), || insta::assert_snapshot!(name, $text));
    }};
}
pub(crate) use snap;

/// A plan with no findings: window, budget, test environment. `{steps}` and `{extra}` are
/// filled in by the test.
pub const HEAD: &str = r#"
[migration]
title = "Test migration"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = { start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }
max_downtime = "15m"

[hosts.old]
local = true
root = "prod-old"

[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = { local = true, root = "test-old" }
new = { local = true, root = "test-new" }
"#;

pub fn plan(body: &str) -> String {
    format!("{HEAD}\n{body}")
}

/// Writes `plan.toml` with the standard head and the given body.
pub fn write_plan(dir: &TestDir, body: &str) {
    dir.write("plan.toml", plan(body));
}

/// `rehost verify db --json` output, parsed.
pub fn db_json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()))
}

/// The findings as `class kind name key` lines.
pub fn db_findings(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = f["key"]
                .as_array()
                .map(|k| {
                    let vals: Vec<&str> =
                        k.iter().map(|p| p[1].as_str().unwrap_or("NULL")).collect();
                    format!(" {}", vals.join(","))
                })
                .unwrap_or_default();
            format!(
                "{} {} {}{key}",
                f["class"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// `[hosts.NAME]` reached over ssh through `sshd`'s client config.
pub fn ssh_host(name: &str, sshd: &Sshd) -> String {
    format!(
        "[hosts.{name}]\nssh = \"{}\"\nssh_config = \"{}\"\n",
        sshd.destination(),
        sshd.ssh_config().display()
    )
}

/// A plan with no findings whose hosts `old` and `new` are ssh hosts, then `body`.
pub fn ssh_plan(old: &Sshd, new: &Sshd, body: &str) -> String {
    format!(
        r#"
[migration]
title = "Test migration over ssh"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"

{}
{}
[environments.test]
old = {{ local = true, root = "test-old" }}
new = {{ local = true, root = "test-new" }}

{body}"#,
        ssh_host("old", old),
        ssh_host("new", new)
    )
}

/// The database `app` moved from old to new, reached on those ports with `user` and the
/// password in `password_file`, and the `verify-db` step that checks it.
pub fn verify_db_body(engine: &str, user: &str, ports: (u16, u16), password_file: &Path) -> String {
    format!(
        r#"
[[databases]]
id = "app"
engine = "{engine}"
from = "old"
to = "new"
database = "app"
user = "{user}"
from_port = {}
to_port = {}
password_file = "{}"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"
"#,
        ports.0,
        ports.1,
        password_file.display()
    )
}

/// A plan body with two `run` steps around a built-in sync of `files` and its verification:
/// a run keeps step outputs and both manifests (the archive and signing tests).
pub const TWO_RUNS_A_COPY_AND_ITS_VERIFICATION: &str = r#"
[[data]]
id = "files"
from = "old:/srv/files"
to = "new:/srv/files"

[[steps]]
id = "a"
do = "run"
host = "old"
command = "echo out-a"

[[steps]]
id = "copy"
do = "sync"
data = "files"
method = "builtin"

[[steps]]
id = "verify"
do = "verify-tree"
data = "files"

[[steps]]
id = "b"
do = "run"
host = "new"
command = "echo out-b"
"#;

/// A free loopback address (a port nothing listens on at the moment).
pub fn free_loopback_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// The records of environment `env`'s journal in `d` (`.rehost/plan/ENV/journal`), as JSON
/// values, in order.
pub fn journal_records(d: &TestDir, env: &str) -> Vec<serde_json::Value> {
    d.read(&format!(".rehost/plan/{env}/journal"))
        .lines()
        .map(|l| serde_json::from_str(l.split('\t').next().unwrap()).unwrap())
        .collect()
}

/// The index of the first record of `kind` for which `pick` holds.
pub fn record_pos(
    rs: &[serde_json::Value],
    kind: &str,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> usize {
    rs.iter()
        .position(|r| r["type"] == kind && pick(r))
        .unwrap_or_else(|| panic!("no {kind} record: {rs:#?}"))
}

/// A `rehost hold` process, stopped (SIGTERM) when dropped.
pub struct Hold {
    child: Option<Child>,
    pub listen: SocketAddr,
    log: PathBuf,
}

impl Hold {
    pub fn start(dir: &TestDir, state: &Path, upstream: &str) -> Hold {
        let listen = free_loopback_addr();
        let log = dir.join(&format!("hold-{}.log", listen.port()));
        let child = Command::new(bin())
            .args([
                "hold",
                "--listen",
                &listen.to_string(),
                "--upstream",
                upstream,
            ])
            .arg("--state-dir")
            .arg(state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start rehost hold");
        let mut h = Hold {
            child: Some(child),
            listen,
            log,
        };
        // Ready: the control socket is there and the hold said it relays (its port is bound
        // before: a client would wait in the backlog). No probe connection: it would be
        // relayed, and counted by a switch.
        let sock = state.join(format!("hold-127.0.0.1-{}.sock", listen.port()));
        let until = Instant::now() + Duration::from_secs(20);
        while !(sock.exists() && h.log().contains("rehost hold: relaying")) {
            if let Some(st) = h.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rehost hold exited ({st}): {}", h.log());
            }
            assert!(Instant::now() < until, "rehost hold not ready: {}", h.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        h
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            rehost_test::stop_child(c, libc::SIGTERM, Duration::from_secs(2));
        }
    }
}

/// A private state directory for holds (0700, ours).
pub fn hold_state_dir(d: &TestDir) -> PathBuf {
    let p = d.join("hold-state");
    std::fs::create_dir(&p).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    p
}
