//! `rehost run` and `rehost status`: execution, the journal, resume after kill -9, plan
//! changes, the window, rollback, the lock.

use crate::support::*;
use rehost_test::TestDir;
use std::time::{Duration, Instant};

/// Starts rehost in the background (stdout discarded, stderr piped).
fn spawn_rehost(d: &TestDir, args: &[&str]) -> std::process::Child {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls until a step has created `name` in the plan's directory.
fn wait_for_file(d: &TestDir, name: &str) {
    let t = Instant::now();
    while !d.join(name).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{name} did not appear: the step did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `run` step on `old` that appends `line` to `log` in the plan's directory.
fn append(id: &str, line: &str) -> String {
    format!(
        "[[steps]]\nid = \"{id}\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"sh\", \"-c\", \"echo {line} >> ../log\"]\n"
    )
}

fn log_lines(d: &TestDir) -> Vec<String> {
    d.read("log").lines().map(str::to_owned).collect()
}

#[test]
fn a_rehearsal_runs_every_step_on_the_test_hosts_only() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}[[steps]]\nid = \"mark\"\ndo = \"run\"\nhost = \"new\"\ncommand = \"touch here; pwd > where\"\n",
            append("a", "a")
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("[1/2] a"), "{}", o.stdout);
    assert!(
        o.stdout.contains("rehost run finished: all 2 steps done"),
        "{}",
        o.stdout
    );
    assert!(d.join("test-new/here").exists());
    assert!(
        !d.join("prod-new").exists(),
        "a rehearsal must not touch production hosts"
    );
    assert!(
        !d.join("prod-old").exists(),
        "a rehearsal must not touch production hosts"
    );
    assert_eq!(
        d.read("test-new/where").trim(),
        d.join("test-new").canonicalize().unwrap().to_string_lossy()
    );
    // Running again does nothing.
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("already finished"), "{}", o.stdout);
    assert_eq!(log_lines(&d), ["a"]);
}

#[test]
fn status_shows_each_step_and_who_confirmed() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "[[steps]]\nid = \"ok\"\ndo = \"manual\"\ntext = \"check the backups\"\n{}",
            append("a", "a")
        ),
    );
    let o = rehost_stdin(
        &d,
        &[
            "run",
            "plan.toml",
            "--env",
            "test",
            "--confirm-as",
            "Alice Admin",
        ],
        "yes\n",
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("check the backups"));
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert_eq!(s.code, 0);
    assert!(s.stdout.contains("1. done         ok"), "{}", s.stdout);
    assert!(
        s.stdout.contains("confirmed by Alice Admin"),
        "{}",
        s.stdout
    );
    let j = rehost(&d, &["status", "plan.toml", "--env", "test", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["steps"][0]["status"], "done");
    assert_eq!(v["steps"][0]["confirmed_by"], "Alice Admin");
    assert_eq!(v["steps"][1]["exit_code"], 0);
    // Production has not started.
    let p = rehost(&d, &["status", "plan.toml"]);
    assert!(p.stdout.contains("not started"), "{}", p.stdout);
}

#[test]
fn manual_steps_are_confirmed_on_stdin_or_stop_resumably() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "[[steps]]\nid = \"m\"\ndo = \"manual\"\ntext = \"do it\"\n{}",
            append("a", "a")
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("step `m` was not confirmed"),
        "{}",
        o.stderr
    );
    assert!(log_lines(&d).is_empty());
    let o = rehost_stdin(
        &d,
        &["run", "plan.toml", "--env", "test", "--confirm-as", "Bob"],
        "yes\n",
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("confirmed by Bob"), "{}", o.stdout);
    assert_eq!(log_lines(&d), ["a"]);
}

#[test]
fn yes_confirms_and_is_recorded() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"m\"\ndo = \"manual\"\ntext = \"do it\"\n",
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--yes"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let journal = d.read(".rehost/plan/test/journal");
    assert!(journal.contains("\"what\":\"yes\""), "{journal}");
    assert!(journal.contains("(--yes)"), "{journal}");
}

#[test]
fn json_events_stream_for_machines() {
    let d = TestDir::new();
    write_plan(&d, &append("a", "hello"));
    let o = rehost(&d, &["run", "plan.toml", "--env", "test", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let events: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "preflight",
            "step_started",
            "step_finished",
            "run_finished",
            // The head to record, and whether it is signed (issue 18).
            "journal_head"
        ]
    );
    assert_eq!(events[3]["result"], "done");
}

#[test]
fn a_production_run_with_findings_needs_accept_findings() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "[[data]]\nid = \"d\"\nfrom = \"old:/a\"\nto = \"new:/a\"\n{}",
            append("a", "a")
        ),
    );
    let o = rehost(&d, &["run", "plan.toml"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--accept-findings"), "{}", o.stderr);
    assert!(log_lines(&d).is_empty());
    // A rehearsal shows findings but goes ahead.
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("unverified-data"));
    let o = rehost(&d, &["run", "plan.toml", "--accept-findings"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        d.read(".rehost/plan/production/journal")
            .contains("accept-findings")
    );
    assert!(d.join("prod-old").exists());
}

#[test]
fn a_plan_with_errors_is_refused() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"a\"\ndo = \"run\"\nhost = \"nowhere\"\nargv = [\"true\"]\n",
    );
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stderr_has("names host `nowhere`")
        .code(2);
    snap!(ran);
    assert!(!d.join(".rehost").exists());
}

#[test]
fn an_unknown_environment_is_refused() {
    let d = TestDir::new();
    write_plan(&d, &append("a", "a"));
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "staging"])
        .stderr_has("no environment `staging`")
        .code(2);
    snap!(ran);
}

#[test]
fn a_failed_step_stops_and_the_run_resumes_there() {
    let d = TestDir::new();
    let body = format!(
        "{}[[steps]]\nid = \"gate\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"test\", \"-e\", \"../go\"]\n{}",
        append("a", "a"),
        append("b", "b")
    );
    write_plan(&d, &body);
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stderr_has("step `gate` (plan line 26) failed")
        .stderr_has("run again to retry from this step")
        .code(2);
    snap!(ran, "failed");
    d.write("go", "");
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stdout_has("resuming at step 2 of 3")
        .success();
    snap!(ran, "resumed");
    assert_eq!(log_lines(&d), ["a", "b"]);
}

#[test]
fn timeouts_end_the_command() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"sleep 30\"\ntimeout = \"300ms\"\n",
    );
    let t = Instant::now();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(o.stderr.contains("timed out after 300ms"), "{}", o.stderr);
}

#[test]
fn rollback_runs_in_reverse_order_before_the_point_of_no_return() {
    let d = TestDir::new();
    let step = |id: &str| {
        format!(
            "[[steps]]\nid = \"{id}\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"sh\", \"-c\", \"echo do-{id} >> ../log\"]\nrollback = [\"sh\", \"-c\", \"echo undo-{id} | tee -a ../log\"]\n"
        )
    };
    let body = format!(
        "{}{}[[steps]]\nid = \"note\"\ndo = \"wait\"\nduration = \"1ms\"\n{}[[steps]]\nid = \"boom\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"false\"]\n{}",
        step("a"),
        step("b"),
        step("c"),
        step("after")
    );
    let text = plan(&body).replace(
        "max_downtime = \"15m\"",
        "max_downtime = \"15m\"\non_failure = \"rollback\"\npoint_of_no_return = \"after\"",
    );
    d.write("plan.toml", &text);
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stderr_has("rolled back 3 step(s)")
        .code(2);
    snap!(ran, "run");
    assert_eq!(
        log_lines(&d),
        ["do-a", "do-b", "do-c", "undo-c", "undo-b", "undo-a"]
    );
    let ran = test_in(&d)
        .args(["status", "plan.toml", "--env", "test"])
        .stdout_has("rolled back  a")
        .success();
    snap!(ran, "status");
    // The report of a run that failed and rolled back.
    let ran = test_in(&d)
        .args(["report", "plan.toml", "--env", "test", "--format", "md"])
        .args(["-o", "out"])
        .stdout_has("Verdict: FAILED")
        .code(1);
    snap!(ran, "report_md", ran.dir().read("out/report.md"));
    // Each rollback's output is kept as evidence, like a step's, and named in the journal.
    let journal = d.read(".rehost/plan/test/journal");
    for (file, line) in [
        ("0004-c.rollback-1.log", "out undo-c"),
        ("0001-a.rollback-1.log", "out undo-a"),
    ] {
        assert!(journal.contains(&format!("output/{file}")), "{journal}");
        let kept = d.read(&format!(".rehost/plan/test/output/{file}"));
        assert_eq!(kept.trim_end(), line);
    }

    // Past the point of no return, nothing is rolled back.
    let d = TestDir::new();
    let text = plan(&format!(
        "{}{}[[steps]]\nid = \"boom\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"false\"]\n",
        step("a"),
        step("pnr")
    ))
    .replace(
        "max_downtime = \"15m\"",
        "max_downtime = \"15m\"\non_failure = \"rollback\"\npoint_of_no_return = \"pnr\"",
    );
    d.write("plan.toml", &text);
    // The point of no return asks for its id to be typed before it runs.
    let ran = test_in(&d)
        .args(["run", "plan.toml", "--env", "test"])
        .stdin("pnr\n")
        .stderr_has("past the point of no return")
        .code(2);
    snap!(ran, "past_the_point_of_no_return");
    assert_eq!(log_lines(&d), ["do-a", "do-pnr"]);
}

#[test]
fn steps_that_need_the_window_wait_for_it() {
    let d = TestDir::new();
    let body = format!(
        "{}{}",
        append("a", "a"),
        append("w", "w").replace("argv", "needs_window = true\nargv")
    );
    // The rehearsal's own window, in the future.
    let text = plan(&body).replace(
        "[environments.test]\n",
        "[environments.test]\nwindow = { start = \"2098-01-01T00:00:00Z\", end = \"2099-01-01T00:00:00Z\" }\n",
    );
    d.write("plan.toml", &text);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("step `w` needs the maintenance window (2098-01-01T00:00:00Z to"),
        "{}",
        o.stderr
    );
    assert_eq!(log_lines(&d), ["a"]);
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--ignore-window"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(log_lines(&d), ["a", "w"]);
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(
        s.stdout.contains("ignore-window: step `w` started at"),
        "{}",
        s.stdout
    );
}

/// Issue 10, item 4: a rehearsal days before the window needed `--ignore-window`, recorded as
/// a decision as if something were wrong. The migration's window is production's.
#[test]
fn a_rehearsal_is_not_bound_by_the_production_window() {
    let d = TestDir::new();
    let body = append("w", "w").replace("argv", "needs_window = true\nargv");
    let text = plan(&body).replace("2020-01-01T00:00:00Z", "2098-01-01T00:00:00Z");
    d.write("plan.toml", &text);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(log_lines(&d), ["w"]);
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(!s.stdout.contains("decision"), "{}", s.stdout);
    // Production still waits for its window.
    let o = rehost(&d, &["run", "plan.toml", "--accept-findings"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("step `w` needs the maintenance window (2098-01-01T00:00:00Z to"),
        "{}",
        o.stderr
    );
    assert_eq!(log_lines(&d), ["w"]);
}

#[test]
fn a_changed_plan_is_refused_unless_accepted() {
    let d = TestDir::new();
    let gate = "[[steps]]\nid = \"gate\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"false\"]\n";
    write_plan(
        &d,
        &format!("{}{gate}{}", append("a", "a"), append("b", "b")),
    );
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 2);
    // The operator edits the plan: the gate now passes, and b appends something else.
    write_plan(
        &d,
        &format!(
            "{}{}{}",
            append("a", "a"),
            gate.replace("false", "true"),
            append("b", "B")
        ),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains(
            "the plan changed since this run began: step `gate` changed, step `b` changed"
        ),
        "{}",
        o.stderr
    );
    assert_eq!(log_lines(&d), ["a"]);
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--accept-plan-change"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(log_lines(&d), ["a", "B"]);
    assert!(
        d.read(".rehost/plan/test/journal")
            .contains("accept-plan-change")
    );
}

#[test]
fn a_torn_last_record_is_recovered_with_a_warning() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}[[steps]]\nid = \"gate\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"test\", \"-e\", \"../go\"]\n",
            append("a", "a")
        ),
    );
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 2);
    let j = d.join(".rehost/plan/test/journal");
    let mut bytes = std::fs::read(&j).unwrap();
    bytes.extend_from_slice(b"{\"type\":\"step_started\",\"at\":\"2026");
    std::fs::write(&j, &bytes).unwrap();
    d.write("go", "");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("dropped a torn last record"),
        "{}",
        o.stdout
    );
    assert_eq!(log_lines(&d), ["a"]);
}

#[test]
fn a_corrupted_journal_refuses_to_continue() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}[[steps]]\nid = \"gate\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"test\", \"-e\", \"../go\"]\n{}",
            append("a", "a"),
            append("b", "b")
        ),
    );
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 2);
    let j = d.join(".rehost/plan/test/journal");
    let text = std::fs::read_to_string(&j).unwrap();
    // Change the first step's result inside an early record; the checksum no longer matches.
    let tampered = text.replacen("\"id\":\"a\"", "\"id\":\"A\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&j, tampered).unwrap();
    d.write("go", "");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("is corrupt at line 3: checksum mismatch"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("Nothing was run"), "{}", o.stderr);
    assert_eq!(log_lines(&d), ["a"]);
}

#[test]
fn two_runs_at_once_are_refused() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"touch ../started; sleep 3\"\n",
    );
    let mut first = spawn_rehost(&d, &["run", "plan.toml", "--env", "test"]);
    wait_for_file(&d, "started");
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("another `rehost run` of this plan (test) is running (pid"),
        "{}",
        o.stderr
    );
    assert!(first.wait().unwrap().success());
}

#[test]
fn an_interrupted_non_idempotent_step_waits_for_the_operator() {
    let d = TestDir::new();
    write_plan(&d, &append("a", "a"));
    // Fake an interruption: the journal says `a` started, nothing says it ended.
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 0);
    let j = d.join(".rehost/plan/test/journal");
    let text = std::fs::read_to_string(&j).unwrap();
    // run_started, preflight, step_started.
    let kept: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&j, kept).unwrap();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("step `a` (run) started but did not finish"),
        "{}",
        o.stderr
    );
    assert_eq!(log_lines(&d), ["a"]);
    let o = rehost(
        &d,
        &["run", "plan.toml", "--env", "test", "--skip-interrupted"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(log_lines(&d), ["a"]);
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(s.stdout.contains("skip-interrupted"), "{}", s.stdout);
}

/// kill -9 at random points of a run, then resume, deciding about interrupted steps as an
/// operator would (by looking at the host); every non-idempotent step runs exactly once.
#[test]
fn kill_9_at_random_points_then_resume_runs_each_step_exactly_once() {
    let d = TestDir::new();
    let n = 12;
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\ndo = \"run\"\nhost = \"old\"\nargv = [\"sh\", \"-c\", \"echo s{i} >> ../log; sleep 0.02\"]\n"
        ));
        if i % 4 == 3 {
            body.push_str(&format!(
                "[[steps]]\nid = \"w{i}\"\ndo = \"wait\"\nduration = \"30ms\"\n"
            ));
        }
    }
    write_plan(&d, &body);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    let mut rand = move |max: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % max
    };
    let mut kills = 0;
    let mut extra: Vec<&str> = Vec::new();
    for round in 0..200 {
        let mut args = vec!["run", "plan.toml", "--env", "test"];
        args.append(&mut extra);
        let mut child = spawn_rehost(&d, &args);
        // Up to 200 ms: a debug build under load takes tens of milliseconds to open the
        // journal, lock the hosts and run the pre-flight before its first step. A fixed sleep
        // on purpose: a random point of the run to kill it at is what this test varies.
        let delay = Duration::from_millis(rand(200));
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap();
        let status = match finished {
            Some(s) => s,
            None => {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                kills += 1;
                child.wait().unwrap()
            }
        };
        let mut err = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        if status.code() == Some(0) {
            assert!(round > 0);
            break;
        }
        // Let an orphaned step command finish before looking at the host.
        wait_until_no_process_works_in(&d);
        if let Some(rest) = err
            .split("step `")
            .nth(1)
            .filter(|_| err.contains("started but did not finish"))
        {
            let id = rest.split('`').next().unwrap().to_owned();
            extra.push(if log_lines(&d).contains(&id) {
                "--skip-interrupted"
            } else {
                "--retry-interrupted"
            });
        } else {
            assert!(
                status.code().is_none() || err.is_empty() || err.contains("dropped a torn"),
                "unexpected: {err}"
            );
        }
        assert!(round < 199, "the run never finished");
    }
    let expected: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    assert_eq!(log_lines(&d), expected, "after {kills} kills");
    assert!(kills > 0, "the test must kill at least once");
}

#[test]
fn a_rehearsal_measures_the_downtime_against_the_budget() {
    let body = r#"
[[services]]
id = "app"
host = "old"
[[steps]]
id = "stop"
do = "run"
host = "old"
argv = ["true"]
stops = ["app"]
[[steps]]
id = "copy"
do = "wait"
duration = "300ms"
[[steps]]
id = "start"
do = "run"
host = "new"
argv = ["true"]
starts = ["app"]
"#;
    let d = TestDir::new();
    write_plan(&d, body);
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("of the 15m budget"), "{}", o.stdout);
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    // At least the 300 ms wait; more on a loaded machine (it read 0.4 s under load).
    let secs: f64 = s
        .stdout
        .split("downtime declared by the steps ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no downtime in {}", s.stdout));
    assert!((0.3..5.0).contains(&secs), "{}", s.stdout);

    let d = TestDir::new();
    d.write(
        "plan.toml",
        plan(body).replace("max_downtime = \"15m\"", "max_downtime = \"100ms\""),
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("warning: the downtime declared by the steps, "),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("exceeded the budget of 100ms"),
        "{}",
        o.stdout
    );
}

#[test]
fn ctrl_c_ends_the_step_records_it_interrupted_and_exits_130() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"touch ../started; sleep 30; touch ../finished\"\n",
    );
    let mut child = spawn_rehost(&d, &["run", "plan.toml", "--env", "test"]);
    let t = Instant::now();
    wait_for_file(&d, "started");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the sleep must have been ended"
    );
    assert!(!d.join("finished").exists());
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(s.stdout.contains("INTERRUPTED  slow"), "{}", s.stdout);
}

/// Waits (10 s at most) until no process has its working directory in `d`: a step command
/// orphaned by a killed rehost runs in the host's root there.
fn wait_until_no_process_works_in(d: &TestDir) {
    let root = std::fs::canonicalize(d.path()).unwrap();
    let t = Instant::now();
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|e| {
                std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(&root))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "processes {left:?} still work in {}",
            root.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn alive(pid: &str) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid.trim().parse().unwrap(), 0) == 0 }
}

fn wait_dead(pid: &str) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Issue 9 item 5: a step that starts a daemon in the background (`pg_ctl start`, `nohup svc
/// &`) lost it: everything left in the step's process group was killed when the step ended.
/// Now what a step that ended by itself started keeps running, even while it holds the step's
/// output open; a timeout still ends the whole group.
#[test]
fn a_step_may_start_a_daemon_and_a_timeout_still_ends_everything() {
    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[steps]]
id = "start-daemon"
do = "run"
host = "new"
command = "sleep 300 & echo $! > daemon.pid; echo started"
"#,
    );
    let t = std::time::Instant::now();
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "the run waited for the daemon"
    );
    let pid = d.read("test-new/daemon.pid");
    let was_alive = alive(&pid);
    // SAFETY: ends the daemon this test started.
    unsafe { libc::kill(pid.trim().parse().unwrap(), libc::SIGKILL) };
    assert!(
        was_alive,
        "the daemon the step started was killed when the step ended"
    );

    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[steps]]
id = "hangs"
do = "run"
host = "new"
timeout = "1s"
command = "sleep 300 & echo $! > daemon.pid; sleep 300"
"#,
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_ne!(o.code, 0, "{}", o.all());
    let pid = d.read("test-new/daemon.pid");
    assert!(
        wait_dead(&pid),
        "a timed-out step left its background process running"
    );
}

/// Regression: `expect_status = [0x10]` was read as the decimal digits "0x10", failed to
/// parse and was dropped, so an exit status of 16 failed the step.
#[test]
fn expect_status_honours_the_radix() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"hex\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"exit 16\"\nexpect_status = [0, 0x10]\n\
         [[steps]]\nid = \"octal\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"exit 8\"\nexpect_status = 0o10\n\
         [[steps]]\nid = \"binary\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"exit 5\"\nexpect_status = [0b101]\n",
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 0, "{}", o.all());
    write_plan(
        &d,
        "[[steps]]\nid = \"big\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"true\"\nexpect_status = [0x1_0000_0000]\n",
    );
    let o = rehost(&d, &["check", "plan.toml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.all().contains("out of range"), "{}", o.all());
}

/// Regression: `ports = [0x1F90]` was refused as out of range (the digits were parsed as
/// decimal); it is port 8080.
#[test]
fn service_ports_honour_the_radix() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[services]]\nid = \"web\"\nhost = \"old\"\nports = [0x1F90, 0o1273, 0b1010000]\n",
    );
    let o = rehost(&d, &["concept", "plan.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("8080, 699, 80"), "{}", o.stdout);
}

/// Issue 10 item 8: `status --json | head` panicked on the broken pipe; a mistyped `--state`
/// said "not started" with exit 0; an interrupted step showed the previous attempt's failure;
/// a failure with nothing to roll back said "rolled back 0 step(s)".
#[test]
fn smaller_status_and_rollback_messages() {
    let d = TestDir::new();
    write_plan(&d, &append("a", "a"));
    assert_eq!(rehost(&d, &["run", "plan.toml", "--env", "test"]).code, 0);
    // A reader that goes away after the first line.
    let mut child = std::process::Command::new(bin())
        .args(["status", "plan.toml", "--env", "test", "--json"])
        .current_dir(d.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");

    let o = rehost(
        &d,
        &["status", "plan.toml", "--env", "test", "--state", "nowhere"],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("no state directory at nowhere"),
        "{}",
        o.all()
    );

    let d = TestDir::new();
    write_plan(
        &d,
        r#"
[[steps]]
id = "first"
do = "run"
host = "old"
command = "false"
on_failure = "rollback"
"#,
    );
    let o = rehost(&d, &["run", "plan.toml", "--env", "test"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("nothing was rolled back"), "{}", o.all());
    assert!(!o.stderr.contains("rolled back 0"), "{}", o.all());
}

/// Regression: Ctrl-C at a manual step's prompt did not stop the read, and the next Enter
/// confirmed the step as the current user. Typed at a real (pseudo-)terminal.
#[test]
fn ctrl_c_at_the_prompt_is_a_refusal_and_exits_130() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "[[steps]]\nid = \"m\"\ndo = \"manual\"\ntext = \"do it\"\n{}",
            append("a", "a")
        ),
    );
    let mut pty =
        rehost_test::pty::Pty::spawn(bin(), &["run", "plan.toml", "--env", "test"], d.path());
    pty.wait_for("Confirm step `m`");
    pty.write(b"\x03");
    // Ctrl-C ends rehost; if it is still reading after a while, the Enter that used to
    // confirm the step.
    let status = match pty.wait_until_exit(Duration::from_secs(5)) {
        Some(status) => status,
        None => {
            pty.write(b"\n");
            pty.wait()
        }
    };
    assert_eq!(status.code(), Some(130), "{}", pty.output());
    assert!(!d.join("log").exists(), "no later step may run");
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    // Issue 18: an unanswered prompt is not an interrupted step (see confirm.rs).
    assert!(
        s.stdout.contains("waiting for confirmation m"),
        "{}",
        s.stdout
    );
    assert!(!s.stdout.contains("confirmed by"), "{}", s.stdout);
}

/// Regression: SIGHUP (the operator's terminal went away) killed rehost and left the step's
/// command running. It is handled like SIGTERM: the command is ended, the step recorded.
#[test]
fn sighup_ends_the_step_records_it_interrupted_and_exits_130() {
    let d = TestDir::new();
    write_plan(
        &d,
        "[[steps]]\nid = \"slow\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"echo $$ > ../pid; touch ../started; exec sleep 30\"\n",
    );
    let mut child = spawn_rehost(&d, &["run", "plan.toml", "--env", "test"]);
    wait_for_file(&d, "started");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let pid: i32 = d.read("pid").trim().parse().unwrap();
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the step's command (pid {pid}) was left running");
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(s.stdout.contains("INTERRUPTED  slow"), "{}", s.stdout);
}

/// A second Ctrl-C ends rehost at once: it does not wait for a command that ignores SIGTERM
/// to be killed (2 s later) and recorded; the step stays started, which `status` shows as
/// interrupted.
#[test]
fn a_second_ctrl_c_ends_rehost_at_once() {
    let d = TestDir::new();
    // The command outlives SIGTERM (its short sleeps die of it, the loop goes on for 5 s) and
    // notes that it got one: then rehost is ending it, and the second Ctrl-C comes.
    write_plan(
        &d,
        "[[steps]]\nid = \"stubborn\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"trap 'touch ../termed' TERM; touch ../started; i=0; while [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\"\n",
    );
    let mut child = spawn_rehost(&d, &["run", "plan.toml", "--env", "test"]);
    wait_for_file(&d, "started");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_for_file(&d, "termed");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let journal = d.read(".rehost/plan/test/journal");
    assert!(!journal.contains("step_finished"), "{journal}");
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(s.stdout.contains("INTERRUPTED  stubborn"), "{}", s.stdout);
}

/// `rehost run | head`, or a pager quit early: the output pipe closes while the run goes on.
/// The run must finish every step (the journal is its record), not panic half-way on the
/// broken pipe; what it could not print is dropped.
#[test]
fn a_run_whose_output_pipe_closes_finishes_every_step_without_a_panic() {
    use std::io::Read;
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "{}{}{}",
            append("a", "a"),
            append("b", "b"),
            append("c", "c")
        ),
    );
    let mut child = std::process::Command::new(bin())
        .args(["run", "plan.toml", "--env", "test"])
        .current_dir(d.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before rehost writes its first line.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(log_lines(&d), ["a", "b", "c"]);
    let journal = d.read(".rehost/plan/test/journal");
    assert!(journal.contains(r#""type":"run_finished""#), "{journal}");
}
