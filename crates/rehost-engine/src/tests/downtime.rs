//! Downtime counts every outage the clients saw, rolled-back attempts included.

use super::fake_host::Script;
use super::*;
use rehost_journal::downtime::downtime;
use std::time::Duration;

/// A service `web` stopped on `old`, its data copied, started on `new`, then a smoke test;
/// the stop and the start have rollbacks.
fn cutover() -> String {
    plan(
        r#"
[[services]]
id = "web"
host = "old"
stop = "stop-old-web"
start = "start-new-web"

[[steps]]
id = "stop-web"
do = "stop"
service = "web"
rollback = "start-old-web"

[[steps]]
id = "copy"
do = "run"
host = "new"
command = "copy"

[[steps]]
id = "start-web"
do = "start"
service = "web"
host = "new"
rollback = "stop-new-web"

[[steps]]
id = "smoke"
do = "run"
host = "new"
command = "smoke"
"#,
    )
}

/// Issue 18: a production run with a rollback and a resume reported 8.9 s of downtime while
/// clients saw about 38 s: only the last stop → start counted. Every outage counts: the
/// rolled-back attempt's (stop → start, then the start's rollback → the stop's rollback) and
/// the resumed one's.
#[test]
fn downtime_counts_the_rolled_back_attempt_and_the_resumed_one() {
    let secs = Duration::from_secs;
    let mut s = Scenario::new(&cutover())
        .script("smoke", Script::Exit(1, vec!["smoke test failed".into()]))
        .script("copy", Script::Takes(secs(10)))
        .script("start-new-web", Script::Takes(secs(2)))
        .script("stop-new-web", Script::Takes(secs(1)))
        .script("start-old-web", Script::Takes(secs(3)));
    let ran = s.run(s.options());
    assert!(
        matches!(&ran.result, Err(EngineError::StepFailed { step, .. }) if step == "smoke"),
        "{:?}",
        ran.result
    );
    // The operator fixes the cause: a minute with the old service serving again.
    s.clock.advance(secs(60));
    s.script.retain(|(p, _)| p != "smoke");
    let ran = s.run(s.options());
    assert_eq!(ran.result.unwrap(), RunOutcome::Finished);

    let down = downtime(&s.records("production"), &s.plan);
    let lengths: Vec<Option<u64>> = down.outages.iter().map(|o| o.ms).collect();
    // 1: stop (t=0) → start-web done (copy 10 s + start 2 s). 2: the rollback of start-web
    // (t=12) → the rollback of stop-web done (1 s + 3 s). 3: after the resume (t=76), stop →
    // start-web done (10 s + 2 s).
    assert_eq!(lengths, [Some(12_000), Some(4_000), Some(12_000)]);
    assert_eq!(down.total_ms, Some(28_000));
    let how: Vec<(String, Option<String>)> = down
        .outages
        .iter()
        .map(|o| (o.how_down(), o.how_up()))
        .collect();
    assert_eq!(
        how,
        [
            ("step `stop-web`".into(), Some("step `start-web`".into())),
            (
                "the rollback of `start-web`".into(),
                Some("the rollback of `stop-web`".into())
            ),
            ("step `stop-web`".into(), Some("step `start-web`".into())),
        ]
    );
    assert!(down.still_down().is_none());
    // The run's own summary gives the same figure.
    let summary = ran
        .events
        .iter()
        .find_map(|e| match e {
            Event::RunFinished { summary, .. } => Some(summary.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        summary.contains("downtime 28s in 3 outages (lasting 12s, 4s and 12s)"),
        "{summary}"
    );
}

/// A stop with no rollback leaves the service down across the failed run and its resume: one
/// outage, the operator's minute included.
#[test]
fn an_outage_that_no_rollback_ended_spans_the_resume() {
    let secs = Duration::from_secs;
    let mut s = Scenario::new(&cutover().replace("rollback = \"start-old-web\"\n", ""))
        .script("copy", Script::Exit(1, Vec::new()))
        .script("start-new-web", Script::Takes(secs(2)));
    assert!(s.run(s.options()).result.is_err());
    let down = downtime(&s.records("production"), &s.plan);
    assert_eq!(down.outages.len(), 1);
    assert_eq!(
        down.still_down().map(|o| o.services.clone()),
        Some(vec!["web".to_string()])
    );
    assert_eq!(down.total_ms, None, "no total while the service is down");

    s.clock.advance(secs(60));
    s.script.clear();
    s.script
        .push(("start-new-web".into(), Script::Takes(secs(2))));
    assert_eq!(s.run(s.options()).result.unwrap(), RunOutcome::Finished);
    let down = downtime(&s.records("production"), &s.plan);
    let lengths: Vec<Option<u64>> = down.outages.iter().map(|o| o.ms).collect();
    assert_eq!(lengths, [Some(62_000)]);
    assert_eq!(down.total_ms, Some(62_000));
}
