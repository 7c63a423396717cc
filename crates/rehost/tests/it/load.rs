//! Load during a rehearsal (issue 24): a command load started and stopped at its steps, and
//! rehost's PostgreSQL write load against two real clusters on loopback, its acknowledged
//! writes looked for on the new side after the copy.

use crate::support::*;
use rehost_test::TestDir;
use rehost_test::postgres::{Postgres, tool};
use std::time::Duration;

/// A rehearsal that copies database `app` from `old` to `new` twice (`pg_dump --clean |
/// psql`) while the loads run: `pre-copy`, a pause, `stop-app`, `final-copy`, `settle`. The
/// write load stops after `stop_writes_after`; a command load appends to `ticks` from before
/// `pre-copy` until after `stop-app`.
fn plan(d: &TestDir, old: &Postgres, new: &Postgres, stop_writes_after: &str) -> String {
    let copy = format!(
        "{} --clean --if-exists -h 127.0.0.1 -U postgres -p {} app | {} -q -h 127.0.0.1 -U postgres -p {} -d app >/dev/null",
        tool("pg_dump").display(),
        old.port(),
        tool("psql").display(),
        new.port()
    );
    format!(
        r#"
[migration]
title = "Database under load"
initiated_by = ["IT security officer"]
implemented_by = "Administrator"

[hosts.old]
local = true
root = "prod-old"

[hosts.new]
local = true
root = "prod-new"

[environments.test]
old = {{ local = true, root = "test-old" }}
new = {{ local = true, root = "test-new" }}

[environments.test.databases]
app = {{ from_port = {old_port}, to_port = {new_port} }}

[[environments.test.load]]
id = "ticker"
start_before = "pre-copy"
stop_after = "stop-app"
command = "while :; do echo tick >> {ticks}; sleep 0.05; done"

[[environments.test.load]]
id = "acks"
start_before = "pre-copy"
stop_after = "{stop_writes_after}"
writes = "postgresql"
database = "app"

[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "app"
user = "postgres"
from_port = 1
to_port = 2

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
id = "stop-app"
do = "run"
host = "old"
command = "true"

[[steps]]
id = "final-copy"
do = "run"
host = "new"
command = "{copy}"

[[steps]]
id = "settle"
do = "wait"
duration = "1500ms"
"#,
        old_port = old.port(),
        new_port = new.port(),
        ticks = d.join("ticks").display(),
    )
}

fn clusters() -> (Postgres, Postgres) {
    let (old, new) = (Postgres::start(), Postgres::start());
    for pg in [&old, &new] {
        pg.sql("postgres", "CREATE DATABASE app");
    }
    old.sql(
        "app",
        "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'a'), (2, 'b');",
    );
    (old, new)
}

/// The records of the test environment's journal, as JSON values, in order.
fn records(d: &TestDir) -> Vec<serde_json::Value> {
    journal_records(d, "test")
}

use crate::support::record_pos as pos;

/// The write load stopped before the final copy: every acknowledged write is on the new side,
/// checked there; the command load ran from before `pre-copy` to after `stop-app` (journal
/// order) and was really ended (the file it appends to stops growing).
#[test]
fn writes_stopped_before_the_final_copy_are_all_found_and_the_command_load_ran_its_span() {
    let (old, new) = clusters();
    let d = TestDir::new();
    d.write("plan.toml", plan(&d, &old, &new, "stop-app"));
    // The concept shows the loads, the command as written here (nothing to redact).
    let c = rehost(&d, &["concept", "plan.toml"]);
    assert!(
        c.stdout.contains("Load applied during a rehearsal"),
        "{}",
        c.all()
    );
    assert!(
        c.stdout
            .contains("| test | acks | rehost's PostgreSQL write load on database `app`"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("`while :; do echo tick"), "{}", c.stdout);

    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("load `acks`: started before step `pre-copy`"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("load `ticker`: stopped after step `stop-app`"),
        "{}",
        o.stdout
    );

    let rs = records(&d);
    let step = |kind: &str, id: &str| pos(&rs, kind, |r| r["id"] == id);
    let load = |kind: &str, id: &str| pos(&rs, kind, |r| r["id"] == id);
    // Started before the start step, stopped after the stop step and before the next.
    assert!(load("load_started", "ticker") < step("step_started", "pre-copy"));
    assert!(load("load_started", "acks") < step("step_started", "pre-copy"));
    assert!(load("load_stopped", "ticker") > step("step_finished", "stop-app"));
    assert!(load("load_stopped", "ticker") < step("step_started", "final-copy"));
    assert!(load("load_stopped", "acks") < step("step_started", "final-copy"));
    let stopped = &rs[load("load_stopped", "ticker")];
    assert_eq!(stopped["after"], "stop-app", "{stopped:#}");
    // Ended by the stop: SIGTERM to its process group (the shell loop and its sleep).
    assert_eq!(stopped["signal"], 15, "{stopped:#}");
    let ms = stopped["elapsed_ms"].as_u64().unwrap();
    assert!(
        ms >= 1000,
        "the ticker ran {ms} ms, across the 1 s wait: {stopped:#}"
    );
    let ticks = d.read("ticks").lines().count();
    assert!(ticks >= 5, "{ticks} ticks");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        d.read("ticks").lines().count(),
        ticks,
        "the ticker still runs"
    );

    // The write load: acknowledged, errors counted, its acks file kept with its digest.
    let acks = &rs[load("load_stopped", "acks")];
    let acked = acks["acknowledged"].as_u64().unwrap();
    assert!(acked >= 10, "{acks:#}");
    let file = acks["acks"]["file"].as_str().unwrap();
    let kept = d.read(&format!(".rehost/plan/test/{file}"));
    assert_eq!(kept.lines().count() as u64, acked);
    // The old side holds every acknowledged id.
    let on_old: u64 = old
        .sql("app", "SELECT count(*) FROM rehost_load.acks")
        .parse()
        .unwrap();
    assert!(
        on_old >= acked,
        "{on_old} rows on the old side, {acked} acknowledged"
    );

    let check = &rs[load("load_checked", "acks")];
    assert_eq!(check["acknowledged"].as_u64(), Some(acked), "{check:#}");
    assert_eq!(check["found"].as_u64(), Some(acked), "{check:#}");
    assert_eq!(check["missing_total"], 0, "{check:#}");
    assert!(check.get("error").is_none(), "{check:#}");
    assert!(
        check["new_side"]
            .as_str()
            .unwrap()
            .contains(&format!("port={}", new.port())),
        "{check:#}"
    );
    assert!(load("load_checked", "acks") < pos(&rs, "run_finished", |_| true));

    let st = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(
        st.stdout.contains(&format!(
            "load `acks`: {acked} acknowledged, {acked} found on new:"
        )) && st.stdout.contains(", 0 missing"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout
            .contains("load `ticker`: stopped after step `stop-app` after "),
        "{}",
        st.stdout
    );

    // `status --verify` checks the kept output and acks files against their digests.
    let v = rehost(&d, &["status", "plan.toml", "--env", "test", "--verify"]);
    assert_eq!(v.code, 0, "{}", v.all());

    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(r.code, 0, "{}\n{}", r.all(), d.read("out/report.md"));
    let md = d.read("out/report.md");
    assert!(md.contains("### Load"), "{md}");
    assert!(
        md.contains(&format!(
            "Write load `acks`: no acknowledged write lost. {acked} write(s) acknowledged"
        )),
        "{md}"
    );
    assert!(md.contains("rows changed rather than inserted"), "{md}");
    assert!(md.contains("`while :; do echo tick"), "{md}");
    let report: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    let items = report["verdict"]["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "no_acknowledged_write_lost"),
        "{items:#?}"
    );
}

/// The write load left running through the final copy: the writes acknowledged after the copy
/// are missing on the new side, named by id, and the verdict fails.
#[test]
fn writes_acknowledged_after_the_final_copy_are_reported_missing_and_fail_the_verdict() {
    let (old, new) = clusters();
    let d = TestDir::new();
    d.write("plan.toml", plan(&d, &old, &new, "settle"));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = records(&d);
    let check = &rs[pos(&rs, "load_checked", |r| r["id"] == "acks")];
    let acked = check["acknowledged"].as_u64().unwrap();
    let missing = check["missing_total"].as_u64().unwrap();
    assert!(missing > 0, "{check:#}");
    assert_eq!(
        check["found"].as_u64().unwrap() + missing,
        acked,
        "{check:#}"
    );
    let named: Vec<u64> = check["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(named.len() as u64, missing.min(20), "{check:#}");
    // Each named id is on the old side and not on the new one.
    let first = named[0];
    assert_eq!(
        old.sql(
            "app",
            &format!("SELECT count(*) FROM rehost_load.acks WHERE id = {first}")
        ),
        "1"
    );
    assert_eq!(
        new.sql(
            "app",
            &format!("SELECT count(*) FROM rehost_load.acks WHERE id = {first}")
        ),
        "0"
    );
    let st = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(
        st.stdout
            .contains(&format!("{missing} missing (first: {first}")),
        "{}",
        st.stdout
    );
    assert!(
        o.stdout.contains(&format!("{missing} missing")),
        "{}",
        o.stdout
    );

    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let md = d.read("out/report.md");
    assert!(
        md.contains(&format!(
            "Write load `acks`: {missing} of {acked} acknowledged write(s) MISSING"
        )),
        "{md}"
    );
    assert!(md.contains(&format!("ids {first}")), "{md}");
    assert!(!md.contains("no acknowledged write lost"), "{md}");
    let report: serde_json::Value = serde_json::from_str(&d.read("out/report.json")).unwrap();
    assert_eq!(
        report["verdict"]["level"], "failed",
        "{:#}",
        report["verdict"]
    );
    assert!(
        report["verdict"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "acknowledged_writes_lost"),
        "{:#}",
        report["verdict"]
    );
}

/// A command load that appends a line to `ticks` every 50 ms from before `first` to after
/// `last`, on this machine or through `host`.
fn ticker(d: &TestDir, first: &str, last: &str, host: Option<&str>) -> String {
    format!(
        "[[environments.test.load]]\nid = \"ticker\"\nstart_before = \"{first}\"\nstop_after = \"{last}\"\ncommand = \"while :; do echo tick >> {}; sleep 0.05; done\"\n{}",
        d.join("ticks").display(),
        host.map(|h| format!("host = \"{h}\"\n"))
            .unwrap_or_default()
    )
}

/// Asserts the ticker no longer runs: `ticks` stops growing.
fn ticker_ended(d: &TestDir) {
    let ticks = d.read("ticks").lines().count();
    assert!(ticks >= 3, "{ticks} ticks: the load did not run");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        d.read("ticks").lines().count(),
        ticks,
        "the ticker still runs"
    );
}

/// A step that fails while a load runs (a command through a plan host): the load is stopped
/// (before any rollback), recorded with why, and ended.
#[test]
fn a_load_is_stopped_when_a_step_fails() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}[[steps]]\nid = \"warm\"\ndo = \"wait\"\nduration = \"500ms\"\n\n[[steps]]\nid = \"breaks\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"exit 3\"\n\n[[steps]]\nid = \"never\"\ndo = \"wait\"\nduration = \"1s\"\n",
            ticker(&d, "warm", "never", Some("old"))
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let rs = records(&d);
    let stopped = pos(&rs, "load_stopped", |r| r["id"] == "ticker");
    assert!(stopped > pos(&rs, "step_finished", |r| r["id"] == "breaks"));
    assert!(stopped < pos(&rs, "run_finished", |_| true));
    assert_eq!(
        rs[stopped]["reason"], "stopped when step `breaks` failed",
        "{:#}",
        rs[stopped]
    );
    assert!(rs[stopped].get("after").is_none(), "{:#}", rs[stopped]);
    ticker_ended(&d);
}

/// Ctrl-C during a step while a load runs: the run exits 130 and the load is stopped,
/// recorded, and ended.
#[test]
fn a_load_is_stopped_when_the_run_is_interrupted() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"touch ../started; sleep 30\"\n",
            ticker(&d, "slow", "slow", None)
        ),
    );
    let mut child = std::process::Command::new(bin())
        .args(["run", "plan.toml", "--env", "test"])
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !d.join("started").exists() || !d.join("ticks").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the step did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let rs = records(&d);
    let stopped = &rs[pos(&rs, "load_stopped", |r| r["id"] == "ticker")];
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .starts_with("the run stopped"),
        "{stopped:#}"
    );
    ticker_ended(&d);
}

/// The pre-flight checks what the loads need before the first step: a command load's program
/// on its host, the write load's database answering on its old side; a problem names the load
/// and its plan line, and nothing runs.
#[test]
fn the_preflight_checks_what_the_loads_need() {
    let d = TestDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write_plan(
        &d,
        &format!(
            r#"
[environments.test.databases]
app = {{ port = {port} }}

[[environments.test.load]]
id = "bench"
start_before = "first"
stop_after = "first"
command = "no-such-bench-tool-rehost -T 60"
host = "old"

[[environments.test.load]]
id = "acks"
start_before = "first"
stop_after = "first"
writes = "postgresql"
database = "app"

[[databases]]
id = "app"
engine = "postgresql"
from = "old"
to = "new"
database = "app"
user = "postgres"
port = 1

[[steps]]
id = "first"
do = "run"
host = "old"
command = "touch ../ran"
"#
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let text = o.all();
    // The load's `[[environments.test.load]]` line, just above its `id`.
    let line = |needle: &str| {
        d.read("plan.toml")
            .lines()
            .position(|l| l.contains(needle))
            .unwrap()
    };
    assert!(
        text.contains("no-such-bench-tool-rehost")
            && text.contains(&format!(
                "load `bench` (plan line {})",
                line("id = \"bench\"")
            )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "load `acks` (plan line {})",
            line("id = \"acks\"")
        )),
        "{text}"
    );
    assert!(
        !d.join("ran").exists(),
        "a step ran after a failed pre-flight"
    );
    assert!(!d.read(".rehost/plan/test/journal").contains("load_started"));
}

/// A run interrupted while a load runs, then resumed: the resumed run starts the load again
/// before the step it resumes at (its steps span it), with files of its own, and stops it
/// after its stop step.
#[test]
fn a_resumed_run_starts_the_loads_its_next_step_falls_in() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}[[steps]]\nid = \"a\"\ndo = \"wait\"\nduration = \"100ms\"\n\n[[steps]]\nid = \"b\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"if [ -e ../started ]; then exit 0; fi; touch ../started; sleep 30\"\n\n[[steps]]\nid = \"c\"\ndo = \"wait\"\nduration = \"300ms\"\n",
            ticker(&d, "a", "c", None)
        ),
    );
    let mut child = std::process::Command::new(bin())
        .args(["run", "plan.toml", "--env", "test"])
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !d.join("started").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "step b did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));

    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--retry-interrupted"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = records(&d);
    let started: Vec<usize> = (0..rs.len())
        .filter(|&i| rs[i]["type"] == "load_started")
        .collect();
    assert_eq!(started.len(), 2, "{rs:#?}");
    assert_eq!(rs[started[0]]["before"], "a");
    assert_eq!(rs[started[1]]["before"], "b");
    let stops: Vec<&serde_json::Value> =
        rs.iter().filter(|r| r["type"] == "load_stopped").collect();
    assert_eq!(stops.len(), 2, "{rs:#?}");
    assert!(stops[0].get("after").is_none(), "{:#}", stops[0]);
    assert_eq!(stops[1]["after"], "c", "{:#}", stops[1]);
    let second = pos(&rs, "step_started", |r| r["id"] == "b" && r["attempt"] == 2);
    assert!(started[1] < second, "{rs:#?}");
    ticker_ended(&d);
}

/// A run SIGKILLed while the write load runs, then resumed: the killed run's load gets its
/// `load_stopped` (saying so) with the ids read back from its acks file, and they are looked
/// for on the new side with the resumed run's own load. Before, only the loads stopped in the
/// invocation that ended the run were checked: the killed run's writes were never looked for.
#[test]
fn a_write_load_of_a_killed_run_is_read_back_and_checked_by_the_resumed_run() {
    let (old, new) = clusters();
    let d = TestDir::new();
    d.write("plan.toml", plan(&d, &old, &new, "stop-app"));
    let mut child = std::process::Command::new(bin())
        .args(["run", "plan.toml", "--env", "test"])
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the load acknowledged a few writes, during `under-load`.
    let acks = d.join(".rehost/plan/test/output/load-acks.1.acks");
    let t = std::time::Instant::now();
    while std::fs::read_to_string(&acks)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no write acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let killed_acks = d.read(".rehost/plan/test/output/load-acks.1.acks");
    let rs = records(&d);
    assert!(!rs.iter().any(|r| r["type"] == "load_stopped"), "{rs:#?}");

    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--retry-interrupted"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    let rs = records(&d);
    let stopped = &rs[pos(&rs, "load_stopped", |r| {
        r["id"] == "acks" && r["reason"].as_str().unwrap().contains("killed")
    })];
    let n = stopped["acknowledged"].as_u64().unwrap();
    assert!(n >= 5, "{stopped:#}");
    // At least what the test read before the resume: every complete line.
    assert!(n >= killed_acks.lines().count() as u64 - 1, "{stopped:#}");
    assert_eq!(stopped["acks"]["file"], "output/load-acks.1.acks");
    let checks: Vec<&serde_json::Value> =
        rs.iter().filter(|r| r["type"] == "load_checked").collect();
    assert_eq!(
        checks.len(),
        2,
        "the killed run's load and the resumed run's: {rs:#?}"
    );
    assert!(
        checks.iter().any(|c| c["acknowledged"].as_u64() == Some(n)),
        "{checks:#?}"
    );
    for c in &checks {
        assert_eq!(c["missing_total"], 0, "{c:#}");
        assert_eq!(c["found"], c["acknowledged"], "{c:#}");
    }
    // `status --verify`: the acks file the read-back names matches its digest.
    let v = rehost(&d, &["status", "plan.toml", "--env", "test", "--verify"]);
    assert_eq!(v.code, 0, "{}", v.all());
}
