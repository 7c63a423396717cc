//! A rehearsal cannot reach production: hosts are compared by what they are (ssh's resolved
//! name, host keys, machine ids, canonical roots), not by how the plan spells them.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::sshd::Sshd;

/// An ssh config for reaching `sshd` by any name (`127.0.0.1`, `localhost`), with known_hosts
/// in the test directory holding its key under the names given.
fn any_name_config(d: &TestDir, sshd: &Sshd, names: &[&str]) -> String {
    let known: String = names
        .iter()
        .map(|n| format!("[{n}]:{} {}\n", sshd.port(), sshd.host_public_key()))
        .collect();
    d.write("known_hosts", known);
    d.write(
        "ssh_config",
        format!(
            "Host *\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  BatchMode yes\n  \
             LogLevel ERROR\n",
            key = sshd.dir().join("client_ed25519").display(),
            kh = d.join("known_hosts").display()
        ),
    );
    d.join("ssh_config").display().to_string()
}

fn plan_with(prod_old: &str, test_old: &str, out: &str) -> String {
    format!(
        r#"
[migration]
title = "Isolation"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"

[hosts.old]
{prod_old}
[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = {{ {test_old} }}
new = {{ local = true, root = "test-new" }}

[[steps]]
id = "write"
do = "run"
host = "old"
command = "touch {out}/wrote"
"#
    )
}

/// Issue 10, item 3: a test host written `root@127.0.0.1` passed the check against a
/// production host written differently that was the same sshd, and the rehearsal wrote into
/// production.
#[test]
fn a_rehearsal_host_that_is_a_production_host_by_another_name_is_refused() {
    let sshd = Sshd::start();
    let d = TestDir::new();
    let cfg = any_name_config(&d, &sshd, &["127.0.0.1", "localhost"]);
    let port = sshd.port();
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        plan_with(
            &format!("ssh = \"root@localhost\"\nport = {port}\nssh_config = \"{cfg}\""),
            &format!("ssh = \"root@127.0.0.1\", port = {port}, ssh_config = \"{cfg}\""),
            &out,
        ),
    );
    let c = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(
        c.stdout.contains(
            "environment `test` maps host `old` to production host `old`: both present host key SHA256:"
        ),
        "{}",
        c.stdout
    );
    // The run checks again (by the keys, before anything runs), even without `check`.
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains(
            "rehearsal host `old` of environment `test` is production host `old`: both present host key SHA256:"
        ),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("Nothing ran"), "{}", o.stderr);
    assert!(
        !d.join("wrote").exists(),
        "the rehearsal reached production"
    );
}

/// The same machine told by its /etc/machine-id: an ssh rehearsal host on this machine (no
/// root: all of it) against a local production host. Nothing in the plan's spelling shows it;
/// the run asks the host once it is open.
#[test]
fn a_rehearsal_ssh_host_on_this_machine_meets_a_local_production_host() {
    assert!(
        std::path::Path::new("/etc/machine-id").exists(),
        "/etc/machine-id is missing: run `bash .ci/install-deps` (it creates one)"
    );
    let sshd = Sshd::start();
    let d = TestDir::new();
    let cfg = any_name_config(&d, &sshd, &["127.0.0.1"]);
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        plan_with(
            "local = true\nroot = \"prod-old\"",
            &format!(
                "ssh = \"root@127.0.0.1\", port = {}, ssh_config = \"{cfg}\"",
                sshd.port()
            ),
            &out,
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("rehearsal host `old` of environment `test` is production host `old`: both are this machine (its /etc/machine-id is this machine's"),
        "{}",
        o.stderr
    );
    assert!(
        !d.join("wrote").exists(),
        "the rehearsal reached production"
    );

    // Under a root of its own, apart from production's, the same host may rehearse.
    let root = d.join("test-old").display().to_string();
    d.write(
        "plan.toml",
        plan_with(
            "local = true\nroot = \"prod-old\"",
            &format!(
                "ssh = \"root@127.0.0.1\", port = {}, ssh_config = \"{cfg}\", root = \"{root}\"",
                sshd.port()
            ),
            &out,
        ),
    );
    std::fs::create_dir_all(d.join("test-old")).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(d.join("wrote").exists());
}

/// Local roots that overlap (one inside the other, or the same through a symlink) are refused
/// by `check` and by the run.
#[test]
fn overlapping_local_roots_are_refused() {
    let d = TestDir::new();
    let out = d.path().display().to_string();
    d.write(
        "plan.toml",
        plan_with(
            "local = true\nroot = \"prod-old\"",
            "local = true, root = \"prod-old/rehearsal\"",
            &out,
        ),
    );
    let c = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(
        c.stdout.contains(
            "environment `test` maps host `old` to production host `old`: both are this machine"
        ),
        "{}",
        c.stdout
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("is production host `old`: both are this machine"),
        "{}",
        o.stderr
    );
    assert!(!d.join("wrote").exists());

    // The same directory under another name.
    std::fs::create_dir_all(d.join("prod-old")).unwrap();
    std::os::unix::fs::symlink(d.join("prod-old"), d.join("alias")).unwrap();
    d.write(
        "plan.toml",
        plan_with(
            "local = true\nroot = \"prod-old\"",
            "local = true, root = \"alias\"",
            &out,
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("is production host `old`"),
        "{}",
        o.stderr
    );
    assert!(!d.join("wrote").exists());
}

/// A plan with a PostgreSQL database on the local hosts of `support::HEAD` (production and the
/// rehearsal on this machine, under different roots) and `extra` after it.
fn db_plan(extra: &str, out: &str) -> String {
    plan(&format!(
        r#"
[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "app"
from_port = 5432
to_port = 5433
{extra}
[[steps]]
id = "write"
do = "run"
host = "old"
command = "touch {out}/wrote"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"
"#
    ))
}

/// Issue 18: a rehearsal never connects to production's database. On one machine the roots
/// keep the trees apart but not a database server: the same port is production's server.
/// `check` names the database and the way out; `run --env` refuses before anything runs; an
/// environment that places the database on its own port is accepted.
#[test]
fn a_rehearsal_database_on_productions_server_is_refused() {
    let d = TestDir::new();
    let out = d.path().display().to_string();
    d.write("plan.toml", db_plan("", &out));
    let c = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(
        c.stdout.contains(
            "environment `test` reaches production's database: `app` from host `old` is `app` from production host `old`: both are this machine (a local host; a local host), and both connect to the server on port 5432"
        ),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains(
            "give the rehearsal its own database server: [environments.test.databases.app]"
        ),
        "{}",
        c.stdout
    );
    let r = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(
            "environment `test` would reach production's database: database `app` from rehearsal host `old` is database `app` from production host `old`"
        ),
        "{}",
        r.stderr
    );
    assert!(!d.join("wrote").exists(), "a step ran");

    // Its own ports: no meeting (the run itself then fails at verify-db: nothing listens).
    d.write(
        "plan.toml",
        db_plan(
            "[environments.test.databases.app]\nfrom_port = 6432\nto_port = 6433\n",
            &out,
        ),
    );
    let c = rehost(&d, &["check", "plan.toml"]);
    assert!(
        !c.stdout.contains("rehearsal-touches-production"),
        "{}",
        c.all()
    );
}
