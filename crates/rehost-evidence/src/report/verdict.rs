//! The verdict: every item that makes it what it is, one function per kind of item, worst
//! first, and the headline.

use super::*;
use Level::*;

/// The verdict of a run: its items in a fixed order of concerns, sorted worst first (stably:
/// within a level, in the order below).
pub(super) fn verdict(
    plan: &Plan,
    run: &Run,
    downtime: &Downtime,
    plan_section: &PlanSection,
    comparison: &[Comparison],
) -> Verdict {
    let mut items = Vec::new();
    // A state directory that does not verify comes before everything: what it says may not hold.
    tampered(run, &mut items);
    // Verifications first: they are the proof.
    for s in plan.steps.iter().filter(|s| is_verification(&s.kind)) {
        let last = latest(run, &s.id);
        not_verified_keys(s, last, &mut items);
        verification_outcome(run, s, last, &mut items);
    }
    not_finished(run, &mut items);
    old_side(run, &mut items);
    read_only_rechecks(run, &mut items);
    acknowledged_writes(run, &mut items);
    still_down(downtime, &mut items);
    over_budget(downtime, &mut items);
    step_statuses(plan, run, &mut items);
    outside_window(downtime, &mut items);
    decisions(run, &mut items);
    rollbacks(run, &mut items);
    retried_steps(run, &mut items);
    preflights(run, &mut items);
    journal_torn(run, &mut items);
    plan_changed(plan_section, &mut items);
    warnings(run, &mut items);
    rehearsals_failed(comparison, &mut items);
    items.sort_by_key(|i| match i.level {
        Failed => 0,
        Attention => 1,
        Clean => 2,
    });
    let level = items.first().map_or(Clean, |i| i.level);
    let headline = headline(plan, downtime, level, &items);
    Verdict {
        level,
        headline,
        items,
    }
}

fn item(level: Level, kind: &str, step: Option<&str>, text: String) -> VerdictItem {
    VerdictItem {
        level,
        kind: kind.into(),
        step: step.map(String::from),
        text,
    }
}

/// `tampered`: each problem the integrity check found.
fn tampered(run: &Run, items: &mut Vec<VerdictItem>) {
    if let Some(i) = &run.integrity {
        for p in &i.problems {
            items.push(item(
                Failed,
                "tampered",
                None,
                format!("The state directory does not verify: {p}"),
            ));
        }
    }
}

/// `not_verified` / `excluded`: what the plan names and the data set's excludes leave out is
/// never verified: said, and a failure where the step claims to verify it.
fn not_verified_keys(s: &Step, last: Option<&Attempt>, items: &mut Vec<VerdictItem>) {
    let Some((a, v)) = last.and_then(|a| a.verification.as_ref().map(|v| (a, v))) else {
        return;
    };
    for x in &v.not_verified {
        let claimed = s
            .effects
            .contains(&rehost_plan::Effect::Verifies(x.key.clone()));
        items.push(item(
            if claimed { Failed } else { Attention },
            if claimed { "not_verified" } else { "excluded" },
            Some(&s.id),
            format!(
                "Verification `{}` (attempt {}) did not verify {} of key `{}`: data set `{}` excludes it (`{}`){}.",
                s.id,
                a.attempt,
                x.path,
                x.key,
                v.data_set,
                x.exclude,
                if claimed {
                    ", yet the step says it verifies the key"
                } else {
                    ""
                }
            ),
        ));
    }
}

/// `retried`, `verification_failed` or `not_verified`: what the verification's latest attempt
/// found, or why it has no result.
fn verification_outcome(run: &Run, s: &Step, last: Option<&Attempt>, items: &mut Vec<VerdictItem>) {
    match last.and_then(|a| a.verification.as_ref().map(|v| (a, v))) {
        Some((a, v)) if v.exit_code == 0 => {
            if run
                .attempts
                .iter()
                .any(|b| b.id == s.id && b.verification.as_ref().is_some_and(|v| v.exit_code != 0))
            {
                items.push(item(
                    Attention,
                    "retried",
                    Some(&s.id),
                    format!(
                        "Verification `{}` failed in an earlier attempt and passed in attempt {}.",
                        s.id, a.attempt
                    ),
                ));
            }
        }
        Some((a, v)) => {
            let classes: Vec<String> = v.by_class.iter().map(|(c, n)| format!("{n} {c}")).collect();
            let classes = if classes.is_empty() {
                String::new()
            } else {
                format!(" ({})", classes.join(", "))
            };
            let (kind, what) = if v.exit_code == 1 {
                ("verification_failed", "found differences")
            } else {
                ("not_verified", "could not verify everything")
            };
            items.push(item(
                Failed,
                kind,
                Some(&s.id),
                format!(
                    "Verification `{}` (attempt {}) {what}: {} finding(s){classes} between {} and {}.",
                    s.id,
                    a.attempt,
                    v.findings_total,
                    v.source,
                    v.destination
                ),
            ));
        }
        None => {
            let why = match last {
                // Done, yet no result this rehost reads: a newer rehost's, or none recorded.
                Some(a) if a.result.as_deref() == Some("done") => format!(
                    "attempt {} finished, but its result is not one this rehost reads (written by a newer rehost?), so nothing it compared is counted",
                    a.attempt
                ),
                Some(a) => match a.detail.as_deref() {
                    Some(d) => format!("it did not complete: {d}"),
                    None => "it did not complete".into(),
                },
                None => "it did not run".into(),
            };
            items.push(item(
                Failed,
                "not_verified",
                Some(&s.id),
                format!("Verification `{}` has no result: {why}.", s.id),
            ));
        }
    }
}

/// `not_finished`: the run did not start, did not end, or stopped.
fn not_finished(run: &Run, items: &mut Vec<VerdictItem>) {
    if run.invocations.is_empty() {
        items.push(item(
            Failed,
            "not_finished",
            None,
            "The run has not started: the journal records no run.".into(),
        ));
        return;
    }
    match &run.finished {
        None => items.push(item(
            Failed,
            "not_finished",
            None,
            format!(
                "The run did not finish: the journal ends at {} without an end record.",
                when(run.last_at.as_deref().unwrap_or("?"))
            ),
        )),
        Some(f) if !f.ok => items.push(item(
            Failed,
            "not_finished",
            None,
            format!("The run stopped at {}: {}", when(&f.at), f.summary),
        )),
        Some(_) => {}
    }
}

/// `still_down`: the last outage has not ended.
fn still_down(downtime: &Downtime, items: &mut Vec<VerdictItem>) {
    if let Some(o) = downtime.outages.last().filter(|o| o.up_at.is_none()) {
        items.push(item(
            Failed,
            "still_down",
            None,
            format!(
                "The service has been down since {}: {} stopped {} and this run has not started it again.",
                when(&o.down_at),
                o.how_down(),
                o.services
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
}

/// `over_budget`: the downtime exceeded the plan's budget — the measured one where services
/// were probed (what clients saw), else the one the steps declare.
fn over_budget(downtime: &Downtime, items: &mut Vec<VerdictItem>) {
    if downtime.within_budget == Some(false) {
        let text = match &downtime.measured {
            Some(m) => format!(
                "The downtime measured by the probes, {} (clients reached neither side of {}), exceeded the budget of {}.",
                human_ms(m.total_ms),
                m.outages
                    .iter()
                    .map(|o| format!("`{}`", o.service))
                    .collect::<Vec<_>>()
                    .join(", "),
                human_ms(downtime.budget_ms.unwrap_or(0))
            ),
            None => format!(
                "The downtime declared by the steps, {}, exceeded the budget of {} (no service has a probe: not measured).",
                human_ms(downtime.declared_ms.unwrap_or(0)),
                human_ms(downtime.budget_ms.unwrap_or(0))
            ),
        };
        items.push(item(Failed, "over_budget", None, text));
    }
}

/// `step_failed`, `rolled_back`, `not_finished` (waiting for confirmation, not done) and
/// `skipped`: each step's state at the end of the journal.
fn step_statuses(plan: &Plan, run: &Run, items: &mut Vec<VerdictItem>) {
    let mut not_run = Vec::new();
    for s in &run.steps {
        let is_verify = plan.step(&s.id).is_some_and(|p| is_verification(&p.kind));
        let detail = latest(run, &s.id)
            .and_then(|a| a.detail.clone())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        match s.status.as_str() {
            "failed" if !is_verify => items.push(item(
                Failed,
                "step_failed",
                Some(&s.id),
                format!("Step `{}` failed{detail}", s.id),
            )),
            "interrupted" => items.push(item(
                Failed,
                "step_failed",
                Some(&s.id),
                format!("Step `{}` started and did not finish.", s.id),
            )),
            "rolled_back" => items.push(item(
                Failed,
                "rolled_back",
                Some(&s.id),
                format!("Step `{}` was rolled back.", s.id),
            )),
            // Not a failure: nobody answered the prompt, and the next run asks again.
            "waiting_for_confirmation" => items.push(item(
                Failed,
                "not_finished",
                Some(&s.id),
                format!(
                    "Step `{}` is waiting for confirmation: nobody confirmed it when it was asked{}; the next `rehost run` asks again.",
                    s.id,
                    latest(run, &s.id)
                        .and_then(|a| a.finished.as_deref())
                        .map(|at| format!(" (until {})", when(at)))
                        .unwrap_or_default()
                ),
            )),
            "superseded" | "pending" if !run.invocations.is_empty() => {
                not_run.push(format!("`{}`", s.id))
            }
            "skipped" => items.push(item(
                Attention,
                "skipped",
                Some(&s.id),
                format!("Step `{}` was skipped{detail}", s.id),
            )),
            _ => {}
        }
    }
    if !not_run.is_empty() {
        items.push(item(
            Failed,
            "not_finished",
            None,
            format!("Not done: {}.", not_run.join(", ")),
        ));
    }
}

/// `outside_window`: an outage began or ended outside the maintenance window.
fn outside_window(downtime: &Downtime, items: &mut Vec<VerdictItem>) {
    if downtime.within_window == Some(false) {
        items.push(item(
            Attention,
            "outside_window",
            None,
            format!(
                "The downtime ({}) was not entirely inside the maintenance window ({} to {}).",
                downtime
                    .outages
                    .iter()
                    .map(|o| format!(
                        "{} to {}",
                        when(&o.down_at),
                        when(o.up_at.as_deref().unwrap_or("?"))
                    ))
                    .collect::<Vec<_>>()
                    .join("; "),
                downtime.window_start.as_deref().unwrap_or("?"),
                downtime.window_end.as_deref().unwrap_or("?")
            ),
        ));
    }
}

/// `decision`: each decision taken by a flag.
fn decisions(run: &Run, items: &mut Vec<VerdictItem>) {
    for d in &run.decisions {
        items.push(item(
            Attention,
            "decision",
            None,
            format!(
                "Decided by flag `--{}` by {} at {}: {}",
                d.what,
                d.by,
                when(&d.at),
                d.detail
            ),
        ));
    }
}

/// `` `a`, `b` and `c` ``, or `nothing`.
fn ids(v: &[String]) -> String {
    match v.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!(
            "{} and `{last}`",
            rest.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some((last, _)) => format!("`{last}`"),
        None => "nothing".into(),
    }
}

/// `rolled_back`: each rollback, with every step it sent round again (not only the superseded
/// ones: the rolled-back steps and the failed one run again too) and whether they did.
fn rollbacks(run: &Run, items: &mut Vec<VerdictItem>) {
    for rb in run.rollbacks.iter().filter(|rb| !rb.failed.is_empty()) {
        let undone: Vec<String> = rb
            .steps
            .iter()
            .filter(|s| s.ok)
            .map(|s| s.id.clone())
            .collect();
        let not_undone: Vec<String> = rb
            .steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.id.clone())
            .collect();
        let mut text = format!("After step `{}` failed, the rollback", rb.failed);
        if rb.steps.is_empty() {
            text.push_str(" had nothing to undo");
        } else {
            text.push_str(&format!(" undid {}", ids(&undone)));
        }
        if !not_undone.is_empty() {
            text.push_str(&format!(" (the rollback of {} FAILED)", ids(&not_undone)));
        }
        let pending: Vec<String> = rb
            .again
            .iter()
            .filter(|id| !rb.ran_again.contains(id))
            .cloned()
            .collect();
        if pending.is_empty() {
            text.push_str(&format!("; ran again: {}.", ids(&rb.again)));
        } else if rb.ran_again.is_empty() {
            text.push_str(&format!("; to run again, not run yet: {}.", ids(&rb.again)));
        } else {
            text.push_str(&format!(
                "; ran again: {}; to run again, not run yet: {}.",
                ids(&rb.ran_again),
                ids(&pending)
            ));
        }
        items.push(item(Attention, "rolled_back", Some(&rb.failed), text));
    }
}

/// `retried`: a step that failed once and is done now (a verification's says so already).
fn retried_steps(run: &Run, items: &mut Vec<VerdictItem>) {
    for id in failed_steps(run) {
        let fine = run
            .steps
            .iter()
            .any(|s| s.id == id && matches!(s.status.as_str(), "done"));
        let verify_retried = items
            .iter()
            .any(|i| i.kind == "retried" && i.step.as_deref() == Some(&id));
        if fine && !verify_retried {
            items.push(item(
                Attention,
                "retried",
                Some(&id),
                format!("Step `{id}` failed in an earlier attempt and was done later."),
            ));
        }
    }
}

/// `preflight`: each pre-flight that found problems.
fn preflights(run: &Run, items: &mut Vec<VerdictItem>) {
    for p in run.preflights.iter().filter(|p| !p.problems.is_empty()) {
        items.push(item(
            Attention,
            "preflight",
            None,
            format!(
                "The pre-flight at {} found {} problem(s); that invocation did not start.",
                when(&p.at),
                p.problems.len()
            ),
        ));
    }
}

/// `journal_torn`: the journal's last line was cut off.
fn journal_torn(run: &Run, items: &mut Vec<VerdictItem>) {
    if let Some(t) = &run.torn {
        items.push(item(Attention, "journal_torn", None, t.clone()));
    }
}

/// `plan_changed`: the plan text shown is not the one the run recorded.
fn plan_changed(plan_section: &PlanSection, items: &mut Vec<VerdictItem>) {
    if let Some(d) = &plan_section.run_digest
        && *d != plan_section.text_digest
    {
        items.push(item(
            Attention,
            "plan_changed",
            None,
            format!(
                "The plan text shown ({}) is not the one the run recorded: its digest is {}, the run's {d}.",
                plan_section.origin, plan_section.text_digest
            ),
        ));
    }
}

/// `warning`: each warning the run recorded.
fn warnings(run: &Run, items: &mut Vec<VerdictItem>) {
    for w in &run.warnings {
        items.push(item(
            Attention,
            "warning",
            None,
            format!("Warning at {}: {}", when(&w.at), w.text),
        ));
    }
}

/// `rehearsal_failed`: the steps that failed at least once in a rehearsal beside this run.
fn rehearsals_failed(comparison: &[Comparison], items: &mut Vec<VerdictItem>) {
    for c in comparison {
        if !c.failed.is_empty() && c.env != "production" {
            items.push(item(
                Attention,
                "rehearsal_failed",
                None,
                format!(
                    "In the rehearsal `{}`, these steps failed at least once: {}.",
                    c.env,
                    c.failed
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
}

/// `lost_writes` / `old_side_unchanged` / `old_side_not_rechecked`: each re-check of an old
/// side a `watch-old` step kept (at the end of the run, or by `rehost status --recheck`):
/// what reached the old server after its final state was taken, by path; unchanged only where
/// the comparison ran and found nothing, with what it did not compare.
fn old_side(run: &Run, items: &mut Vec<VerdictItem>) {
    for r in &run.records {
        let rehost_journal::Record::OldSideRechecked {
            at,
            step,
            source,
            unchanged,
            changes_total,
            changes,
            error,
            not_compared,
            ..
        } = r
        else {
            continue;
        };
        if let Some(e) = error {
            items.push(item(
                Attention,
                "old_side_not_rechecked",
                Some(step),
                format!(
                    "The old side {source} watched by `{step}` could not be re-checked at {}: {e}. Whether writes reached it after its final state was taken is not known.",
                    when(at)
                ),
            ));
        } else if *unchanged {
            items.push(item(
                Clean,
                "old_side_unchanged",
                Some(step),
                format!(
                    "The old side {source} was re-checked at {} and is unchanged since `{step}` took its final state (not compared: {not_compared}).",
                    when(at)
                ),
            ));
        } else {
            let shown: Vec<String> = changes
                .iter()
                .take(10)
                .map(|c| format!("{} ({})", c.path, c.class))
                .collect();
            let more = if *changes_total > shown.len() as u64 {
                format!(" and {} more", *changes_total - shown.len() as u64)
            } else {
                String::new()
            };
            items.push(item(
                Failed,
                "lost_writes",
                Some(step),
                format!(
                    "Writes reached the old server after its final state was taken: lost writes. The re-check of {source} at {} found {changes_total} change(s) since `{step}` took it: {}{more} (not compared: {not_compared}).",
                    when(at),
                    shown.join(", ")
                ),
            ));
        }
    }
}

/// `old_data_read_only` / `old_data_writable_again` / `old_data_not_rechecked`: each re-check
/// (`rehost status --recheck`) of an old tree a `retire-old` step made read-only for its
/// retention. Read-only only where the walk ran and found no write bit.
fn read_only_rechecks(run: &Run, items: &mut Vec<VerdictItem>) {
    for r in &run.records {
        let rehost_journal::Record::ReadOnlyRechecked {
            at,
            step,
            source,
            read_only,
            entries,
            writable_total,
            writable,
            until,
            error,
            ..
        } = r
        else {
            continue;
        };
        let (level, kind, text) = match error {
            Some(e) => (
                Attention,
                "old_data_not_rechecked",
                format!(
                    "The old tree {source} made read-only by `{step}` could not be re-checked at {}: {e}.",
                    when(at)
                ),
            ),
            None if *read_only => (
                Clean,
                "old_data_read_only",
                format!(
                    "The old tree {source} made read-only by `{step}` was still read-only at {}: {entries} entries walked, none with a write bit (retention until {until}; root can write without one).",
                    when(at)
                ),
            ),
            None => (
                Attention,
                "old_data_writable_again",
                format!(
                    "The old tree {source} made read-only by `{step}` had {writable_total} entr(y/ies) with a write bit again at {}, during its retention (until {until}): {}.",
                    when(at),
                    writable
                        .iter()
                        .take(10)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        items.push(item(level, kind, Some(step), text));
    }
}

/// `acknowledged_writes_lost` / `no_acknowledged_write_lost` / `acknowledged_writes_not_checked`:
/// each write load's acknowledged writes looked for on the new side. None lost only when the
/// check ran there and found every one.
fn acknowledged_writes(run: &Run, items: &mut Vec<VerdictItem>) {
    for l in run.loads.iter().filter(|l| l.kind == "writes") {
        let text = super::load::writes_text(l);
        let (level, kind) = match &l.check {
            Some(c) if c.error.is_none() && c.acknowledged == 0 => {
                (Attention, "acknowledged_writes_not_checked")
            }
            Some(c) if c.error.is_none() && c.missing_total == 0 => {
                (Clean, "no_acknowledged_write_lost")
            }
            Some(c) if c.error.is_none() => (Failed, "acknowledged_writes_lost"),
            _ => (Attention, "acknowledged_writes_not_checked"),
        };
        items.push(item(level, kind, None, text));
    }
}

/// The verdict in one line: the worst item, how many to review, or what a clean run did.
fn headline(plan: &Plan, downtime: &Downtime, level: Level, items: &[VerdictItem]) -> String {
    match level {
        Failed => items[0].text.trim_end_matches('.').to_owned(),
        Attention => format!(
            "finished, with {} point(s) to review",
            items.iter().filter(|i| !matches!(i.level, Clean)).count()
        ),
        Clean => {
            let verifications = plan
                .steps
                .iter()
                .filter(|s| is_verification(&s.kind))
                .count();
            let (figure, how) = match &downtime.measured {
                Some(m) => (Some(m.total_ms), "measured"),
                None => (downtime.declared_ms, "declared by the steps"),
            };
            let down = match (figure, downtime.budget_ms) {
                (Some(d), Some(b)) => {
                    format!(
                        "; downtime {} ({how}) within the budget of {}",
                        human_ms(d),
                        human_ms(b)
                    )
                }
                (Some(d), None) => format!("; downtime {} ({how})", human_ms(d)),
                _ => String::new(),
            };
            format!(
                "all {} steps done, {} verification(s) passed, nothing decided by flag{down}",
                plan.steps.len(),
                verifications
            )
        }
    }
}
