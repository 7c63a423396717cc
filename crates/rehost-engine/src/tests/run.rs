//! The run loop's behaviour, in process.

use super::fake_host::Script;
use super::*;
use rehost_journal::StepResult;
use rehost_journal::state::{StepStatus, status};
use std::time::Duration;

fn ids(calls: &[String]) -> Vec<&str> {
    calls.iter().map(|c| c.as_str()).collect()
}

fn finished(records: &[Record]) -> Vec<(String, StepResult)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::StepFinished { id, result, .. } => Some((id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_step_interrupted_midway_is_recorded_and_the_next_step_never_starts() {
    let s = Scenario::new(&plan(&format!(
        "{}{}{}",
        run_step("a", ""),
        run_step("b", ""),
        run_step("c", "")
    )))
    .script("b", Script::CancelledMidway);
    let ran = s.run(s.options());
    assert!(
        matches!(&ran.result, Err(EngineError::Cancelled { step }) if step == "b"),
        "{:?}",
        ran.result
    );
    assert_eq!(ids(&ran.calls), ["new: a", "new: b"]);
    let records = s.records("production");
    assert_eq!(
        finished(&records),
        [
            ("a".to_owned(), StepResult::Done),
            ("b".to_owned(), StepResult::Interrupted)
        ]
    );
    // An interruption is not the end of the run: resuming is still possible.
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::RunFinished { .. }))
    );
    assert!(ran.events.iter().any(|e| matches!(
        e,
        Event::StepFinished { id, result: StepResult::Interrupted, .. } if id == "b"
    )));
}

#[test]
fn resume_after_an_interrupted_step_needs_a_recorded_decision_unless_it_is_idempotent() {
    let mut s = Scenario::new(&plan(&format!(
        "{}{}{}",
        run_step("a", ""),
        run_step("b", ""),
        run_step("c", "")
    )))
    .script("b", Script::CancelledMidway);
    assert!(s.run(s.options()).result.is_err());
    // The signal is gone; `b` now runs to its end.
    s.script.clear();

    // `b` is not idempotent: it may have half happened, so nothing runs without a decision.
    let ran = s.run(s.options());
    assert!(
        matches!(&ran.result, Err(EngineError::Interrupted { step, .. }) if step == "b"),
        "{:?}",
        ran.result
    );
    assert!(ran.calls.is_empty(), "{:?}", ran.calls);

    // --retry-interrupted: `b` runs again (a was done and is not), then `c`; recorded.
    let ran = s.run(RunOptions {
        retry_interrupted: true,
        ..s.options()
    });
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: b", "new: c"]);
    let decisions = s.decisions("production");
    assert!(
        decisions.contains(&(
            "retry-interrupted".into(),
            "ada".into(),
            "step `b` runs again".into()
        )),
        "{decisions:?}"
    );
    let attempts: Vec<u32> = s
        .records("production")
        .iter()
        .filter_map(|r| match r {
            Record::StepStarted { id, attempt, .. } if id == "b" => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);

    // An idempotent step interrupted runs again by itself, with a warning.
    let mut s2 = Scenario::new(&plan(&format!(
        "{}{}",
        run_step("a", ""),
        run_step("d", "idempotent = true")
    )))
    .script("d", Script::CancelledMidway);
    s2.run(s2.options());
    s2.script.clear();
    let ran = s2.run(s2.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: d"]);
    assert!(ran.events.iter().any(|e| matches!(
        e,
        Event::Warning { message } if message.contains("step `d` was interrupted")
    )));
}

#[test]
fn skip_interrupted_records_the_step_as_skipped_by_the_operator() {
    let mut s = Scenario::new(&plan(&format!(
        "{}{}",
        run_step("a", ""),
        run_step("b", "")
    )))
    .script("a", Script::CancelledMidway);
    s.run(s.options());
    s.script.clear();
    let ran = s.run(RunOptions {
        skip_interrupted: true,
        ..s.options()
    });
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: b"]);
    let records = s.records("production");
    assert!(finished(&records).contains(&("a".to_owned(), StepResult::Skipped)));
    assert!(
        s.decisions("production")
            .iter()
            .any(|(what, by, _)| what == "skip-interrupted" && by == "ada")
    );
}

#[test]
fn rollback_runs_in_reverse_order_of_completion_and_the_next_run_starts_at_the_earliest() {
    let steps = format!(
        "{}{}{}{}{}",
        run_step("a", "rollback = \"undo-a\""),
        run_step("b", ""),
        run_step("c", "rollback = \"undo-c\""),
        run_step("d", "rollback = \"undo-d\""),
        run_step("e", "")
    );
    let mut s = Scenario::new(&plan(&steps)).script("d", Script::Exit(3, vec!["no".into()]));
    // `undo-d` contains `d`: script the rollbacks first so they succeed.
    s.script
        .insert(0, ("undo".into(), Script::Exit(0, Vec::new())));
    let ran = s.run(s.options());
    let Err(EngineError::StepFailed { step, reason, .. }) = &ran.result else {
        panic!("{:?}", ran.result)
    };
    assert_eq!(step, "d");
    assert!(
        reason.contains("rolled back 3 step(s) in reverse order"),
        "{reason}"
    );
    assert!(reason.contains("`b`"), "b runs again: {reason}");
    // The failed step's rollback first, then the finished ones, last finished first.
    assert_eq!(
        ids(&ran.calls),
        [
            "new: a",
            "new: b",
            "new: c",
            "new: d",
            "new: undo-d",
            "new: undo-c",
            "new: undo-a"
        ]
    );
    let rolled: Vec<String> = s
        .records("production")
        .iter()
        .filter_map(|r| match r {
            Record::RolledBack { id, ok: true, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rolled, ["d", "c", "a"]);
    let ids_: Vec<String> = s.plan.steps.iter().map(|s| s.id.clone()).collect();
    let state = status(&s.records("production"), &ids_);
    assert_eq!(state.steps[1].status, StepStatus::Superseded);
    assert_eq!(state.next(), Some(0));

    // Fixed: the next run starts again at `a` and runs everything after it, `b` included.
    s.script.retain(|(c, _)| c != "d");
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(
        ids(&ran.calls),
        ["new: a", "new: b", "new: c", "new: d", "new: e"]
    );
}

#[test]
fn past_the_point_of_no_return_nothing_is_rolled_back() {
    let text = plan(&format!(
        "{}{}",
        run_step("a", "rollback = \"undo-a\""),
        run_step("b", "")
    ))
    .replace(
        "on_failure = \"rollback\"",
        "on_failure = \"rollback\"\npoint_of_no_return = \"a\"",
    );
    let s = Scenario::new(&text).script("b", Script::Exit(1, Vec::new()));
    let ran = s.run(s.options());
    let Err(EngineError::StepFailed { reason, .. }) = &ran.result else {
        panic!("{:?}", ran.result)
    };
    assert!(reason.contains("past the point of no return"), "{reason}");
    assert_eq!(ids(&ran.calls), ["new: a", "new: b"]);
    // Typing the point of no return's id is a recorded decision.
    assert!(
        s.decisions("production")
            .iter()
            .any(|(what, by, _)| what == "point-of-no-return" && by == "grace")
    );
}

/// A plan whose step `in` needs the window 22:00–02:00 (UTC); `test` may have its own.
fn window_plan(test_window: Option<&str>) -> String {
    let mut text = plan(&format!(
        "{}{}",
        run_step("before", ""),
        run_step("in", "needs_window = true")
    ))
    .replace(
        "on_failure = \"rollback\"",
        "on_failure = \"rollback\"\nwindow = { start = \"2026-12-05T22:00:00Z\", end = \"2026-12-06T02:00:00Z\" }",
    );
    if let Some(w) = test_window {
        text = text.replace(
            "[environments.test]\n",
            &format!("[environments.test]\nwindow = {w}\n"),
        );
    }
    text
}

#[test]
fn outside_the_window_a_step_that_needs_it_does_not_start() {
    let s = Scenario::new(&window_plan(None));
    // 12:00, ten hours before the window.
    let ran = s.run(s.options());
    let Err(EngineError::OutsideWindow { step, now, .. }) = &ran.result else {
        panic!("{:?}", ran.result)
    };
    assert_eq!(step, "in");
    assert_eq!(now, "2026-12-05T12:00:00Z");
    assert_eq!(ids(&ran.calls), ["new: before"]);

    // Inside it, it runs, and no decision is recorded.
    s.clock.advance(Duration::from_secs(11 * 3600));
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: in"]);
    assert!(
        !s.decisions("production")
            .iter()
            .any(|(w, _, _)| w == "ignore-window")
    );
}

#[test]
fn ignore_window_starts_the_step_and_records_who_and_when() {
    let s = Scenario::new(&window_plan(None));
    let ran = s.run(RunOptions {
        ignore_window: true,
        ..s.options()
    });
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    let d = s.decisions("production");
    assert!(
        d.contains(&(
            "ignore-window".into(),
            "ada".into(),
            "step `in` started at 2026-12-05T12:00:00Z, outside the window 2026-12-05T22:00:00Z to 2026-12-06T02:00:00Z".into()
        )),
        "{d:?}"
    );
}

#[test]
fn a_rehearsal_is_bound_by_its_own_window_not_productions() {
    let test = |options: RunOptions| RunOptions {
        env: Some("test".into()),
        state_dir: options.state_dir.with_file_name("test"),
        ..options
    };
    // No window of its own: production's does not apply, and nothing is recorded.
    let s = Scenario::new(&window_plan(None));
    let ran = s.run(test(s.options()));
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert!(
        !s.decisions("test")
            .iter()
            .any(|(w, _, _)| w == "ignore-window")
    );

    // Its own window, 10:00–11:00: at 12:00 it is refused though production's is no better.
    let s = Scenario::new(&window_plan(Some(
        "{ start = \"2026-12-05T10:00:00Z\", end = \"2026-12-05T11:00:00Z\" }",
    )));
    let ran = s.run(test(s.options()));
    assert!(
        matches!(&ran.result, Err(EngineError::OutsideWindow { start, .. }) if start == "2026-12-05T10:00:00Z"),
        "{:?}",
        ran.result
    );
    // …and at 10:30 it runs, though that is outside production's window.
    let s = Scenario::new(&window_plan(Some(
        "{ start = \"2026-12-05T10:00:00Z\", end = \"2026-12-05T13:00:00Z\" }",
    )));
    let ran = s.run(test(s.options()));
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
}

#[test]
fn yes_confirms_manual_steps_without_asking_and_is_recorded() {
    let s = Scenario::new(&plan(
        "\n[[steps]]\nid = \"check\"\ndo = \"manual\"\ntext = \"look\"\n",
    ));
    // The confirmer would refuse: --yes never asks it.
    let ran = s.run_as(
        RunOptions {
            yes: true,
            confirm_as: Some("lin".into()),
            ..s.options()
        },
        Answer(Err("nobody is there".into())),
    );
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert!(s.decisions("production").contains(&(
        "yes".into(),
        "lin".into(),
        "every manual step confirmed without asking".into()
    )));
    let confirmed: Vec<Option<String>> = s
        .records("production")
        .into_iter()
        .filter_map(|r| match r {
            Record::StepFinished { confirmed_by, .. } => Some(confirmed_by),
            _ => None,
        })
        .collect();
    assert_eq!(confirmed, [Some("lin (--yes)".to_owned())]);
}

#[test]
fn a_changed_plan_is_refused_on_resume_unless_accepted_and_the_acceptance_is_recorded() {
    let mut s = Scenario::new(&plan(&format!(
        "{}{}",
        run_step("a", ""),
        run_step("b", "")
    )))
    .script("b", Script::Exit(1, Vec::new()));
    assert!(s.run(s.options()).result.is_err());
    s.script.clear();
    s.set_plan(&plan(&format!(
        "{}{}",
        run_step("a", ""),
        run_step("b", "timeout = \"5m\"")
    )));
    let ran = s.run(s.options());
    assert!(
        matches!(&ran.result, Err(EngineError::PlanChanged { changes }) if changes == "step `b` changed"),
        "{:?}",
        ran.result
    );
    assert!(ran.calls.is_empty());
    let ran = s.run(RunOptions {
        accept_plan_change: true,
        ..s.options()
    });
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: b"]);
    assert!(s.decisions("production").contains(&(
        "accept-plan-change".into(),
        "ada".into(),
        "step `b` changed".into()
    )));
    assert!(
        s.records("production")
            .iter()
            .any(|r| matches!(r, Record::PlanAccepted { by, .. } if by == "ada"))
    );
}

#[test]
fn a_wait_runs_on_the_clock() {
    let s = Scenario::new(&plan(
        "\n[[steps]]\nid = \"settle\"\ndo = \"wait\"\nduration = \"2h\"\n",
    ));
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert!(s.clock.advanced() >= Duration::from_secs(2 * 3600));
    // Progress every ten seconds of the clock's time.
    let progress = ran
        .events
        .iter()
        .filter(|e| matches!(e, Event::Progress { id, .. } if id == "settle"))
        .count();
    assert!(progress >= 700, "{progress} progress events in 2 h");
}

#[test]
fn a_signal_during_a_wait_interrupts_it_and_the_wait_runs_again_on_resume() {
    let mut s = Scenario::new(&plan(&format!(
        "\n[[steps]]\nid = \"settle\"\ndo = \"wait\"\nduration = \"2h\"\n{}",
        run_step("after", "")
    )));
    // The first progress report comes ten seconds into the wait.
    s.cancel_on = Some(|e| matches!(e, Event::Progress { id, .. } if id == "settle"));
    let ran = s.run(s.options());
    assert!(
        matches!(&ran.result, Err(EngineError::Cancelled { step }) if step == "settle"),
        "{:?}",
        ran.result
    );
    assert!(
        s.clock.advanced() < Duration::from_secs(60),
        "{:?}",
        s.clock.advanced()
    );
    assert!(ran.calls.is_empty(), "nothing after the wait started");
    assert!(
        finished(&s.records("production")).contains(&("settle".into(), StepResult::Interrupted))
    );
    // A wait is idempotent: it runs again, whole, without a decision.
    s.cancel_on = None;
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: after"]);
}

#[test]
fn health_checks_on_the_clock_until_the_steps_timeout() {
    let s = Scenario::new(&plan(
        "\n[[services]]\nid = \"web\"\nhost = \"new\"\nhealth = \"probe-web\"\n\n[[steps]]\nid = \"up\"\ndo = \"health\"\nservice = \"web\"\ntimeout = \"30s\"\non_failure = \"stop\"\n",
    ))
    .script("probe-web", Script::Exit(7, Vec::new()));
    let ran = s.run(s.options());
    let Err(EngineError::StepFailed { step, reason, .. }) = &ran.result else {
        panic!("{:?}", ran.result)
    };
    assert_eq!(step, "up");
    assert!(
        reason.contains("service `web` was not healthy on host new within 30s: its health command ended with exit status 7"),
        "{reason}"
    );
    // One check a second of the clock's time, on the service's host.
    assert!(s.clock.advanced() >= Duration::from_secs(30));
    assert!(ran.calls.len() >= 25, "{} checks", ran.calls.len());
    assert!(
        ran.calls.iter().all(|c| c == "new: probe-web"),
        "{:?}",
        ran.calls
    );
}

/// Issue 21: a drain lists the connections once a second of the run's clock until none
/// remains, and fails at its timeout naming the client still connected.
#[test]
fn a_drain_polls_on_the_clock_until_the_clients_leave_or_its_timeout() {
    let text = plan(
        "\n[[services]]\nid = \"db\"\nhost = \"old\"\nports = [5432]\n\n[[steps]]\nid = \"drain\"\ndo = \"drain\"\nservice = \"db\"\ntimeout = \"30s\"\non_failure = \"stop\"\n",
    );
    // The client leaves after 5 s: the drain succeeds within a listing of it.
    let s = Scenario::new(&text).script("connections", Script::Connected(Duration::from_secs(5)));
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    let advanced = s.clock.advanced();
    assert!(
        advanced >= Duration::from_secs(5) && advanced < Duration::from_secs(7),
        "{advanced:?}"
    );
    assert!(
        ran.calls.iter().all(|c| c == "old: connections"),
        "{:?}",
        ran.calls
    );
    assert!((5..=7).contains(&ran.calls.len()), "{:?}", ran.calls);

    // It stays: the step fails at its timeout, naming it.
    let s =
        Scenario::new(&text).script("connections", Script::Connected(Duration::from_secs(3600)));
    let ran = s.run(s.options());
    let Err(EngineError::StepFailed { step, reason, .. }) = &ran.result else {
        panic!("{:?}", ran.result)
    };
    assert_eq!(step, "drain");
    assert!(
        reason.contains("1 client(s) still connected to service `db` (port 5432) on host old after 30s; end these by hand on the clients, then run again: 10.0.0.7:40000 (process 7 app) to port 5432"),
        "{reason}"
    );
    assert!(s.clock.advanced() >= Duration::from_secs(30));
    assert!(s.clock.advanced() < Duration::from_secs(32));
}

/// Issue 21: a signal while a `terminate` drain ends its clients does not lose what it did:
/// the step is recorded as interrupted, with the clients it ended (proven by the listing made
/// before the interruption was seen) as its result, and the run stops there.
#[test]
fn a_drain_interrupted_while_ending_records_what_it_ended() {
    let text = plan(
        "\n[[services]]\nid = \"db\"\nhost = \"old\"\nports = [5432]\n\n[[steps]]\nid = \"drain\"\ndo = \"drain\"\nservice = \"db\"\ntimeout = \"5s\"\nterminate = true\non_failure = \"stop\"\n",
    );
    let mut s =
        Scenario::new(&text).script("connections", Script::Connected(Duration::from_secs(3600)));
    // The signal comes as the ending begins.
    s.cancel_on = Some(
        |e| matches!(e, Event::Progress { message, .. } if message.starts_with("ending the 1 connection(s)")),
    );
    let ran = s.run(s.options());
    assert!(
        matches!(&ran.result, Err(EngineError::Cancelled { step }) if step == "drain"),
        "{:?}",
        ran.result
    );
    assert!(
        ran.calls.iter().any(|c| c == "old: end_connections"),
        "{:?}",
        ran.calls
    );
    let records = s.records("production");
    assert_eq!(
        finished(&records),
        [("drain".to_owned(), StepResult::Interrupted)]
    );
    let (detail, data) = records
        .iter()
        .find_map(|r| match r {
            Record::StepFinished {
                detail,
                result_data: Some(rehost_journal::step_data::StepData::Drain(d)),
                ..
            } => Some((detail.clone().unwrap_or_default(), d.clone())),
            _ => None,
        })
        .expect("the interrupted drain's record keeps its result");
    assert!(
        detail.starts_with("interrupted while ending the connections; what the listing made before the interruption showed: ended 1 client(s) of service `db`"),
        "{detail}"
    );
    assert!(data.terminate && data.drained, "{data:?}");
    let ended = data.clients[0].ended.as_ref().expect("its ending recorded");
    assert_eq!(ended.result, "ended");
    assert_eq!(ended.mechanism.as_deref(), Some("sock_destroy"));
}

/// Issue 18: a prompt nobody answered is not a failure nor an interruption. Ctrl-C at the point
/// of no return's prompt records the step waiting for confirmation; the next run asks again,
/// with no flag, and runs it once confirmed.
#[test]
fn ctrl_c_at_the_point_of_no_return_leaves_the_step_waiting_for_confirmation() {
    let text = plan(&format!("{}{}", run_step("a", ""), run_step("b", ""))).replace(
        "on_failure = \"rollback\"",
        "on_failure = \"rollback\"\npoint_of_no_return = \"b\"",
    );
    let mut s = Scenario::new(&text);
    s.cancel_on = Some(|e| matches!(e, Event::Instructions { id, .. } if id == "b"));
    let ran = s.run_as(s.options(), Answer(Err("interrupted at the prompt".into())));
    assert!(
        matches!(&ran.result, Err(EngineError::CancelledBefore { step }) if step == "b"),
        "{:?}",
        ran.result
    );
    assert_eq!(ids(&ran.calls), ["new: a"]);
    let records = s.records("production");
    assert_eq!(
        finished(&records),
        [
            ("a".to_owned(), StepResult::Done),
            ("b".to_owned(), StepResult::NotConfirmed)
        ]
    );
    let ids_: Vec<String> = s.plan.steps.iter().map(|s| s.id.clone()).collect();
    let state = status(&records, &ids_);
    assert_eq!(state.steps[1].status, StepStatus::WaitingForConfirmation);

    s.cancel_on = None;
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: b"]);
    let records = s.records("production");
    let state = status(&records, &ids_);
    assert_eq!(state.steps[1].status, StepStatus::Done);
    // The prompt nobody answered was attempt 1 (`status` and the report count it): this is 2.
    assert_eq!(state.steps[1].attempts, 2);
    let started: Vec<u32> = records
        .iter()
        .filter_map(|r| match r {
            Record::StepStarted { id, attempt, .. } if id == "b" => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(started, [2]);
}

/// A manual step left at its prompt by a killed rehost (started, never finished) only asked:
/// the next run asks again without --retry-interrupted.
#[test]
fn a_manual_step_killed_at_its_prompt_asks_again_without_a_flag() {
    let text = plan(&format!(
        "\n[[steps]]\nid = \"m\"\ndo = \"manual\"\ntext = \"check\"\n{}",
        run_step("a", "")
    ));
    let s = Scenario::new(&text);
    let ran = s.run_as(s.options(), Answer(Err("the operator declined".into())));
    assert!(
        matches!(&ran.result, Err(EngineError::NotConfirmed { step, .. }) if step == "m"),
        "{:?}",
        ran.result
    );
    // A later run was killed while it asked: its start is the journal's last record.
    {
        let dir = s.dir.path().join("state").join("production");
        let state = crate::open_state_dir(&dir, false).unwrap().unwrap();
        let (mut journal, _) = Journal::open(&state).unwrap();
        journal
            .append(Record::StepStarted {
                at: "2026-12-05T12:00:01Z".into(),
                id: "m".into(),
                attempt: 2,
            })
            .unwrap();
    }
    let ids_: Vec<String> = s.plan.steps.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        status(&s.records("production"), &ids_).steps[0].status,
        StepStatus::Interrupted
    );
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert!(ran.events.iter().any(|e| matches!(
        e,
        Event::Warning { message } if message.contains("step `m` was waiting for confirmation")
    )));
    assert!(
        s.decisions("production")
            .iter()
            .all(|(what, _, _)| what != "retry-interrupted")
    );
}

/// Issue 18: the pre-flight looks for every step's program on its host, in one command per
/// host, before the first step; the steps' own scripts do not answer it.
#[test]
fn the_preflight_looks_for_each_programs_once_per_host_before_the_first_step() {
    let s = Scenario::new(&plan(&format!(
        "{}{}{}",
        run_step("a", ""),
        run_step("b", ""),
        run_step("a", "").replace("id = \"a\"", "id = \"a2\"")
    )))
    .script("b", Script::CancelledMidway);
    let ran = s.run(s.options());
    assert_eq!(ran.preflight_calls.len(), 1, "{:?}", ran.preflight_calls);
    assert!(
        ran.preflight_calls[0]
            .starts_with("new: : rehost pre-flight; for p in 'a' 'b'; do command -v"),
        "{:?}",
        ran.preflight_calls
    );
    assert_eq!(ids(&ran.calls), ["new: a", "new: b"]);
}

/// `--until b`: a and b run, c waits; the stop is a decision, not the run's end, and the next
/// run resumes at c. An `--until` already behind the run runs nothing; an unknown one is
/// refused before anything is opened.
#[test]
fn until_stops_after_the_named_step_and_the_next_run_resumes_after_it() {
    let s = Scenario::new(&plan(&format!(
        "{}{}{}",
        run_step("a", ""),
        run_step("b", ""),
        run_step("c", "")
    )));
    let until = |id: &str| RunOptions {
        until: Some(id.into()),
        ..s.options()
    };
    let ran = s.run(until("b"));
    assert_eq!(
        ran.result.unwrap(),
        RunOutcome::Stopped { after: "b".into() }
    );
    assert_eq!(ids(&ran.calls), ["new: a", "new: b"]);
    let records = s.records("production");
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::RunFinished { .. }))
    );
    // The event says stopped, not finished.
    assert!(
        ran.events
            .iter()
            .any(|e| matches!(e, Event::RunStopped { after, left: 1, .. } if after == "b")),
        "{:?}",
        ran.events
    );
    assert!(
        !ran.events
            .iter()
            .any(|e| matches!(e, Event::RunFinished { .. }))
    );
    let decisions = s.decisions("production");
    assert!(
        decisions.iter().any(|(what, _, detail)| what == "until"
            && detail.contains("stopped after step `b`; 1 step(s) left")),
        "{decisions:?}"
    );

    let ran = s.run(until("a"));
    assert_eq!(
        ran.result.unwrap(),
        RunOutcome::Stopped { after: "a".into() }
    );
    assert!(ran.calls.is_empty(), "{:?}", ran.calls);

    let ran = s.run(until("nope"));
    assert!(
        matches!(&ran.result, Err(EngineError::UnknownUntil(u)) if u == "nope"),
        "{:?}",
        ran.result
    );

    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);
    assert_eq!(ids(&ran.calls), ["new: c"]);
}
