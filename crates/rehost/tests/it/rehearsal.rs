//! The whole transition rehearsed under load (issue 24, "Done when"): a real PostgreSQL
//! database moved between two hosts reached over sshd on loopback, each with a root of its own,
//! while rehost's write load writes to the old side: synced, drained, switched (a `rehost hold`
//! relay in front of the servers), verified (database, keys, configuration), every
//! acknowledged write looked for on the new side, and the downtime clients saw measured by a
//! prober that logs in as the application does. A second run is SIGKILLed inside the downtime
//! and resumed: it is measured and checked the same way.
//!
//! The clients' view: the application's role `app` may log in on the old server until
//! `close-old` and on the new one from `open-new`; the probe logs in as `app` on each side, so
//! the measured downtime is the time between those steps as clients saw it. The servers listen
//! on 127.0.0.1 on two ports; the environment's host addresses (`old.test`, `new.test`) only
//! pick the port in the probe's command.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::postgres::{Postgres, tool};
use rehost_test::sshd::Sshd;
use std::time::{Duration, Instant};

/// Two hosts over sshd, two PostgreSQL clusters, a relay in front of the old one, and the
/// files of the old host under its root.
struct Rig {
    d: TestDir,
    so: Sshd,
    sn: Sshd,
    old: Postgres,
    new: Postgres,
    hold: Hold,
    hold_state: std::path::PathBuf,
}

fn rig() -> Rig {
    let d = TestDir::new();
    let (so, sn) = (Sshd::start(), Sshd::start());
    let (old, new) = (Postgres::start(), Postgres::start());
    // The application's role: it logs in on the old server; on the new one it exists (the
    // dump's grants name it) but may not log in until the switch opens it.
    old.sql("postgres", "CREATE ROLE app LOGIN; CREATE DATABASE app");
    new.sql("postgres", "CREATE ROLE app NOLOGIN; CREATE DATABASE app");
    old.sql(
        "app",
        "CREATE TABLE orders (id int PRIMARY KEY, item text, placed timestamptz DEFAULT now());
         INSERT INTO orders (id, item) SELECT g, 'item-' || g FROM generate_series(1, 2000) g;
         GRANT SELECT ON orders TO app;",
    );
    // The old host's configuration and TLS key, under its root.
    d.write(
        "old-root/etc/billing/billing.conf",
        format!(
            "# billing\ndb_host = 127.0.0.1\ndb_port = {}\nworkers = 4\n",
            old.port()
        ),
    );
    std::fs::create_dir_all(d.join("old-root/etc/ssl/private")).unwrap();
    std::fs::create_dir_all(d.join("new-root")).unwrap();
    let openssl = rehost_test::require_tool("openssl");
    let st = std::process::Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=billing.test",
            "-days",
            "365",
            "-keyout",
            "old-root/etc/ssl/private/billing.key",
            "-out",
            "old-root/etc/ssl/billing.crt",
        ])
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    // The probe's command picks each side's port by the side's address.
    d.write("port-old.test", old.port().to_string());
    d.write("port-new.test", new.port().to_string());
    let hold_state = hold_state_dir(&d);
    let hold = Hold::start(&d, &hold_state, &format!("127.0.0.1:{}", old.port()));
    Rig {
        d,
        so,
        sn,
        old,
        new,
        hold,
        hold_state,
    }
}

/// The plan: production's hosts are local stand-ins; the rehearsal's are the two sshd hosts.
/// `pause` is an extra step inside the downtime (the killed run stops there).
fn plan(r: &Rig, pause: &str) -> String {
    let d = &r.d;
    let psql = tool("psql").display().to_string();
    let pg_dump = tool("pg_dump").display().to_string();
    let (p_old, p_new) = (r.old.port(), r.new.port());
    let copy = format!(
        "{pg_dump} --clean --if-exists -h 127.0.0.1 -U postgres -p {p_old} app | {psql} -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -p {p_new} -d app >/dev/null"
    );
    let env_host = |sshd: &Sshd, root: &str, address: &str| {
        format!(
            "{{ ssh = \"{}\", ssh_config = \"{}\", root = \"{}\", address = \"{address}\" }}",
            sshd.destination(),
            sshd.ssh_config().display(),
            d.join(root).display()
        )
    };
    let hold = r.hold.listen;
    format!(
        r#"
[migration]
title = "Billing database to its new server"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"
window = {{ start = "2020-01-01T00:00:00Z", end = "2099-01-01T00:00:00Z" }}
max_downtime = "15m"

[hosts.old]
local = true
root = "prod-old"

[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = {old_env}
new = {new_env}

[environments.test.endpoints]
"{hold}" = "{hold}"
"127.0.0.1:{p_new}" = "127.0.0.1:{p_new}"

[environments.test.databases]
app = {{ from_port = {p_old}, to_port = {p_new} }}

[[environments.test.load]]
id = "acks"
start_before = "pre-sync"
stop_after = "stop-writes"
writes = "postgresql"
database = "app"

# The last client: a report through the relay that runs past the stop of the application;
# the drain waits for it.
[[environments.test.load]]
id = "last-report"
start_before = "under-load"
stop_after = "drain"
command = "{psql} -X -q -h 127.0.0.1 -p {hold_port} -U app -d app -c 'SELECT pg_sleep(2.5)'"

[[services]]
id = "billing-db"
host = "old"
new_host = "new"
ports = [{p_old}]
probe = {{ command = "{psql} -X -q -h 127.0.0.1 -p $(cat {dir}/port-{{host}}) -U app -d app -c 'SELECT 1 FROM orders LIMIT 1'", interval = "100ms", timeout = "3s" }}

[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "app"
user = "postgres"
from_port = 1
to_port = 2

[[data]]
id = "etc"
from = "old:/etc"
to = "new:/etc"

[[keys]]
id = "tls"
host = "old"
kind = "tls"
paths = ["/etc/ssl/private/billing.key", "/etc/ssl/billing.crt"]

[[steps]]
id = "pre-sync"
do = "sync"
data = "etc"
phase = "bulk"
method = "builtin"

[[steps]]
id = "pre-copy"
do = "run"
host = "new"
command = "{copy}"

[[steps]]
id = "under-load"
do = "wait"
duration = "1s"

[[steps]]
id = "stop-writes"
do = "run"
host = "old"
command = "true"

[[steps]]
id = "drain"
do = "drain"
service = "billing-db"
timeout = "30s"

[[steps]]
id = "close-old"
do = "run"
host = "old"
command = "{psql} -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -p {p_old} -d postgres -c 'ALTER ROLE app NOLOGIN' -c \"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'app'\""
stops = ["billing-db"]
{pause}
[[steps]]
id = "final-copy"
do = "run"
host = "new"
command = "{copy}"

[[steps]]
id = "final-sync"
do = "sync"
data = "etc"
phase = "final"
method = "builtin"

[[steps]]
id = "verify-etc"
do = "verify-tree"
data = "etc"

[[steps]]
id = "verify-app"
do = "verify-db"
database = "app"

[[steps]]
id = "verify-keys"
do = "verify-keys"
keys = ["tls"]
to = "new"
search = ["/etc/ssl"]

[[steps]]
id = "repoint-config"
do = "run"
host = "new"
command = "sed -i 's/^db_port = {p_old}$/db_port = {p_new}/' {new_root}/etc/billing/billing.conf"

[[steps]]
id = "verify-config"
do = "verify-config"
old = "old:/etc/billing/billing.conf"
new = "new:/etc/billing/billing.conf"
format = "equals"
rewrite = [{{ from = "{p_old}", to = "{p_new}" }}]

[[steps]]
id = "open-new"
do = "run"
host = "new"
command = "{psql} -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -p {p_new} -d postgres -c 'ALTER ROLE app LOGIN'"
starts = ["billing-db"]

[[steps]]
id = "switch"
do = "switch"
hold = "{hold}"
to = "127.0.0.1:{p_new}"
state_dir = "{state}"
timeout = "3s"

[[steps]]
id = "settle"
do = "wait"
duration = "600ms"
"#,
        old_env = env_host(&r.so, "old-root", "old.test"),
        new_env = env_host(&r.sn, "new-root", "new.test"),
        hold_port = hold.port(),
        dir = d.path().display(),
        new_root = d.join("new-root").display(),
        state = r.hold_state.display(),
    )
}

/// What the relay forwards to now: the port of the server that answers through it.
fn served_through(r: &Rig) -> String {
    let out = std::process::Command::new(tool("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
            "-d",
            "app",
        ])
        .args(["-p", &r.hold.listen.port().to_string()])
        .args(["-c", "SELECT current_setting('port')"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Asserts what every finished rehearsal of this plan shows: each step done, every
/// acknowledged write found on the new side, the drain, the switch, the verifications, and a
/// measured downtime in the status and the report, whose exit code is `report_code`. Returns
/// the measured milliseconds.
fn assert_rehearsed(r: &Rig, report_code: i32) -> u64 {
    let d = &r.d;
    let rs = journal_records(d, "test");
    // The write load: acknowledged writes, all found on the new side.
    let check = &rs[record_pos(&rs, "load_checked", |x| x["id"] == "acks")];
    let acked = check["acknowledged"].as_u64().unwrap();
    assert!(acked >= 10, "{check:#}");
    eprintln!("write load: {acked} acknowledged, all found on new");
    assert_eq!(check["found"].as_u64(), Some(acked), "{check:#}");
    assert_eq!(check["missing_total"], 0, "{check:#}");
    assert!(check.get("error").is_none(), "{check:#}");
    // On the new server, found there by the test as well.
    let on_new: u64 = r
        .new
        .sql("app", "SELECT count(*) FROM rehost_load.acks")
        .parse()
        .unwrap();
    assert!(
        on_new >= acked,
        "{on_new} rows on new, {acked} acknowledged"
    );
    // The drain saw the last report through the relay and waited for it to leave.
    let drain = &rs[record_pos(&rs, "step_finished", |x| x["id"] == "drain")];
    let data = &drain["result_data"];
    assert_eq!(data["drained"], true, "{drain:#}");
    assert!(
        data["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["first_seen_ms"] == 0 && c["left_ms"].as_u64().unwrap() >= 500),
        "the last report was not waited for: {drain:#}"
    );
    // The relay forwards to the new server, and the application may log in there.
    assert_eq!(served_through(r), r.new.port().to_string());

    let st = rehost(d, &["status", "plan.toml", "--env", "test", "--json"]);
    let st: serde_json::Value =
        serde_json::from_str(&st.stdout).unwrap_or_else(|e| panic!("{e}: {}", st.all()));
    let m = &st["downtime"]["measured"];
    let ms = m["total_ms"].as_u64().unwrap();
    // Clients reached neither server from `close-old` until `open-new` (the final copy, the
    // sync and four verifications lie between them): in one run the measured downtime covers
    // that span, as the journal times it, to within a sample on each side (100 ms each, and
    // some slack).
    let at = |id: &str| {
        let f = &rs[record_pos(&rs, "step_finished", |x| x["id"] == id)];
        f["at"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let span = at("open-new")
        .duration_since(at("close-old"))
        .as_millis()
        .max(0) as u64;
    // (A run killed in between leaves a gap no prober saw, named as not measured: there the
    // span is only an upper bound.)
    assert!(ms > 0, "{m:#}");
    if m["runs"] == 1 {
        assert!(
            ms + 300 >= span,
            "measured {ms} ms, but close-old to open-new took {span} ms: {m:#}"
        );
    }
    let last = m["outages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["service"], "billing-db", "{m:#}");
    assert_eq!(last["ended"], true, "the new side answered: {m:#}");

    let rep = rehost(d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    let md = d.read("out/report.md");
    assert_eq!(rep.code, report_code, "{}\n{md}", rep.all());
    let report: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    assert_eq!(
        report["downtime"]["measured"]["total_ms"].as_u64(),
        Some(ms)
    );
    assert_eq!(report["downtime"]["budget_basis"], "measured");
    assert_eq!(report["downtime"]["within_budget"], true);
    assert!(md.contains("| Downtime measured by the probes |"), "{md}");
    assert!(
        md.contains(&format!(
            "Write load `acks`: no acknowledged write lost. {acked} write(s) acknowledged"
        )),
        "{md}"
    );
    let items = report["verdict"]["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "no_acknowledged_write_lost"),
        "{items:#?}"
    );
    // Database, keys, configuration and tree verified, each by its own step.
    let text = rehost(d, &["status", "plan.toml", "--env", "test"]).stdout;
    for step in [
        "verify-app",
        "verify-keys",
        "verify-config",
        "verify-etc",
        "switch",
    ] {
        let f = &rs[record_pos(&rs, "step_finished", |x| x["id"] == step)];
        assert_eq!(f["result"], "done", "{step}: {f:#}\n{text}");
    }
    ms
}

/// The rehearsal run through from start to end.
#[test]
fn a_postgresql_rehearsal_over_ssh_under_write_load_loses_no_acknowledged_write() {
    let r = rig();
    r.d.write("plan.toml", plan(&r, ""));
    let t0 = Instant::now();
    let o = rehost(&r.d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let took = t0.elapsed();
    for line in [
        "database `app` verified on new: equal",
        "found on `new` by fingerprint",
        "load `acks`: started before step `pre-sync`",
    ] {
        assert!(o.stdout.contains(line), "{line}: {}", o.stdout);
    }
    let ms = assert_rehearsed(&r, 0);
    eprintln!(
        "rehearsal over ssh under load: {:.1} s, measured downtime {ms} ms",
        took.as_secs_f64()
    );
}

/// The same rehearsal SIGKILLed inside the downtime (the old server closed, the new one not
/// yet open) and resumed: the resumed run is probed again, finishes, checks the write load the
/// killed run had stopped, and the downtime is measured across both runs.
#[test]
fn a_rehearsal_killed_inside_the_downtime_and_resumed_is_measured_the_same_way() {
    let r = rig();
    let marker = r.d.join("paused");
    let pause = format!(
        "\n[[steps]]\nid = \"pause\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"if [ -e {m} ]; then exit 0; fi; touch {m}; sleep 60\"\n",
        m = marker.display()
    );
    r.d.write("plan.toml", plan(&r, &pause));
    let mut child = std::process::Command::new(bin())
        .args(["run", "plan.toml", "--env", "test"])
        .current_dir(r.d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the run never reached the pause"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Long enough inside the downtime for the 100 ms samples to see both sides closed.
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let rs = journal_records(&r.d, "test");
    assert!(
        !rs.iter().any(|x| x["type"] == "load_checked"),
        "the killed run got to its end: {rs:#?}"
    );

    let o = rehost(
        &r.d,
        &["run", "plan.toml", "--env", "test", "--retry-interrupted"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    // The one point to review: the flag that ran the interrupted step again.
    let ms = assert_rehearsed(&r, 1);
    let md = r.d.read("out/report.md");
    assert!(
        md.contains("finished, with 1 point(s) to review")
            && md.contains("Decided by flag `--retry-interrupted`"),
        "{md}"
    );
    // The killed run had stopped the write load; the resumed one checked it.
    assert!(
        o.stdout.contains("acknowledged writes looked for on new:"),
        "{}",
        o.stdout
    );
    let st = rehost(&r.d, &["status", "plan.toml", "--env", "test", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let m = &st["downtime"]["measured"];
    assert_eq!(m["runs"], 2, "{m:#}");
    // The killed run left no summary: said, not hidden.
    assert_eq!(m["unfinished"], true, "{m:#}");
    eprintln!("killed and resumed: measured downtime {ms} ms over 2 probed runs");
}
