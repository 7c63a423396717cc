//! Confirmations mean a person confirmed (issue 10, item 2). Before: `--confirm-as` confirmed
//! every manual step without asking and unrecorded; an Enter typed during a long step answered
//! the next prompts; any answer was taken as the confirmer's name (`y` became a person).

use crate::support::*;
use rehost_test::TestDir;
use std::time::Duration;

fn manual_then_log() -> String {
    r#"
[[steps]]
id = "check"
do = "manual"
text = "check the backups"

[[steps]]
id = "after"
do = "run"
host = "old"
command = "echo after >> ../log"
"#
    .into()
}

#[test]
fn confirm_as_names_the_person_and_the_prompt_still_asks_yes_or_no() {
    let d = TestDir::new();
    write_plan(&d, &manual_then_log());
    let args = [
        "run",
        "plan.toml",
        "--env",
        "test",
        "--confirm-as",
        "Alice Admin",
    ];
    // No answer: nothing is confirmed, however --confirm-as is set.
    let o = rehost(&d, &args);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("was not confirmed"), "{}", o.all());
    assert!(!d.join("log").exists());
    // An answer that is neither yes nor no is asked again, never taken as a name.
    let o = rehost_stdin(&d, &args, "Bob\ny\n");
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("answer yes or no"), "{}", o.all());
    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(
        s.stdout.contains("confirmed by Alice Admin"),
        "{}",
        s.stdout
    );
    assert!(!s.stdout.contains("confirmed by Bob") && !s.stdout.contains("confirmed by y"));
    // Where the operator sat is in the journal.
    let j = std::fs::read_to_string(d.join(".rehost/plan/test/journal")).unwrap();
    assert!(
        j.contains("\"operator_host\"") && j.contains("\"terminal\""),
        "{j}"
    );
}

#[test]
fn the_point_of_no_return_asks_for_its_id() {
    let d = TestDir::new();
    d.write(
        "plan.toml",
        plan(&manual_then_log()).replace(
            "max_downtime = \"15m\"",
            "max_downtime = \"15m\"\npoint_of_no_return = \"after\"",
        ),
    );
    // `yes` is not enough for the point of no return, and the run step waits for its id.
    let o = rehost_stdin(&d, &["run", "plan.toml", "--env", "test"], "yes\nyes\nno\n");
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("Type `after` to confirm"), "{}", o.all());
    assert!(
        !d.join("log").exists(),
        "the point of no return ran without its id"
    );
    let o = rehost_stdin(&d, &["run", "plan.toml", "--env", "test"], "after\n");
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(d.join("log").exists());
    let j = std::fs::read_to_string(d.join(".rehost/plan/test/journal")).unwrap();
    assert!(j.contains("point-of-no-return"), "{j}");
}

/// Keys typed during a long step are discarded before the next prompt: an Enter pressed during
/// the bulk copy confirmed the drain and the DNS switch in 0.0 s each.
#[test]
fn keys_typed_during_a_step_do_not_answer_the_next_prompt() {
    let d = TestDir::new();
    write_plan(
        &d,
        &format!(
            "[[steps]]\nid = \"long\"\ndo = \"run\"\nhost = \"old\"\ncommand = \"touch ../long; sleep 1\"\n{}",
            manual_then_log()
        ),
    );
    let mut pty =
        rehost_test::pty::Pty::spawn(bin(), &["run", "plan.toml", "--env", "test"], d.path());
    let t = std::time::Instant::now();
    while !d.join("long").exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "{}", pty.output());
        std::thread::sleep(Duration::from_millis(10));
    }
    pty.write(b"yes\n");
    pty.wait_for("Confirm step `check`");
    // The prompt is still reading (the typed-ahead `yes` did not answer it) if an answer that
    // is neither yes nor no is asked again; had the `yes` answered it, this never appears.
    pty.write(b"maybe\n");
    pty.wait_for("answer yes or no");
    assert!(
        !d.join("log").exists(),
        "typed-ahead input confirmed the step: {}",
        pty.output()
    );
    pty.write(b"yes\n");
    let status = pty.wait();
    assert_eq!(status.code(), Some(0), "{}", pty.output());
    assert!(d.join("log").exists());
}

/// Issue 18: Ctrl-C at a confirmation prompt, then `run` again, demanded `--retry-interrupted`
/// and reports called the step "failed". An unanswered prompt is not a failure: the step waits
/// for confirmation (status, report) and the next run asks again, without any flag.
#[test]
fn ctrl_c_at_the_prompt_leaves_the_step_waiting_and_the_next_run_asks_again() {
    let d = TestDir::new();
    write_plan(&d, &manual_then_log());
    let mut pty =
        rehost_test::pty::Pty::spawn(bin(), &["run", "plan.toml", "--env", "test"], d.path());
    pty.wait_for("Confirm step `check`");
    pty.write(b"\x03");
    let status = pty.wait();
    assert_eq!(status.code(), Some(130), "{}", pty.output());
    assert!(
        pty.output().contains("waiting for confirmation"),
        "{}",
        pty.output()
    );

    let s = rehost(&d, &["status", "plan.toml", "--env", "test"]);
    assert!(
        s.stdout.contains("waiting for confirmation check"),
        "{}",
        s.stdout
    );
    assert!(
        !s.stdout.contains("INTERRUPTED") && !s.stdout.contains("FAILED"),
        "{}",
        s.stdout
    );
    let j = rehost(&d, &["status", "plan.toml", "--env", "test", "--json"]);
    assert!(
        j.stdout
            .contains("\"status\": \"waiting_for_confirmation\""),
        "{}",
        j.stdout
    );
    let r = rehost(&d, &["report", "plan.toml", "--env", "test", "-o", "out"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let md = d.read("out/report.md");
    assert!(
        md.contains("Step `check` is waiting for confirmation"),
        "{md}"
    );
    assert!(md.contains("| waiting for confirmation |"), "{md}");
    assert!(
        !md.contains("failed") && !md.contains("did not finish."),
        "an unanswered prompt is no failure: {md}"
    );

    // The next run asks again, with no flag, and goes on once answered.
    let o = rehost_stdin(&d, &["run", "plan.toml", "--env", "test"], "yes\n");
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("Confirm step `check`"), "{}", o.all());
    assert!(!o.all().contains("--retry-interrupted"), "{}", o.all());
    assert!(d.join("log").exists());
}
