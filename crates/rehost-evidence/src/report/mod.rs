//! The report of a run: built from the state directory (the journal, the evidence it names)
//! and the plan, as a typed model ([`Report`], the JSON) and as a [`Document`] (HTML, Markdown).
//!
//! Deterministic: the same state directory gives the same bytes, wherever it is copied. No time
//! but the journal's appears, and files are named relative to the state directory.

pub mod model;
pub mod read;

use crate::doc::{Bar, BarState, Block, Document, Level, Timeline, human_ms};
pub use model::*;
pub use read::{PlanText, load_run, plan_text_for};
use rehost_plan::{Plan, StepKind};

/// What a report is made from.
pub struct Input<'a> {
    pub plan: &'a Plan,
    /// The plan file's name (no directory: the report must not depend on where it lies).
    pub plan_file: String,
    pub plan_text: PlanText,
    pub run: Run,
    /// The runs of the plan's other environments that have a journal.
    pub others: Vec<Run>,
}

/// A journal time for people: `2026-12-05 21:03:11.482 UTC` (the JSON keeps the exact text).
pub fn when(at: &str) -> String {
    match at.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        Err(_) => at.to_owned(),
    }
}

fn ms_between(a: &str, b: &str) -> Option<u64> {
    let a: jiff::Timestamp = a.parse().ok()?;
    let b: jiff::Timestamp = b.parse().ok()?;
    u64::try_from(b.as_millisecond() - a.as_millisecond()).ok()
}

/// The step kinds that prove data: their results are verifications (`KindSpec::verifies`).
fn is_verification(kind: &StepKind) -> bool {
    rehost_plan::spec(kind).verifies
}

fn is_manual(plan: &Plan, id: &str) -> bool {
    plan.step(id)
        .is_some_and(|s| matches!(s.kind, StepKind::Manual { .. }))
}

/// The latest attempt of a step that a rollback did not supersede.
fn latest<'r>(run: &'r Run, id: &str) -> Option<&'r Attempt> {
    run.attempts
        .iter()
        .rev()
        .find(|a| a.id == id && !a.superseded)
}

pub fn build(input: Input) -> Report {
    let plan = input.plan;
    let m = &plan.migration;
    let run = input.run;
    let rehearsal = run.env != "production";
    let window = plan.window_for(rehearsal.then_some(run.env.as_str()));
    let outages = &run.downtime.outages;
    let mut downtime = Downtime {
        measured_ms: run.downtime.total_ms,
        outages: outages.clone(),
        budget_ms: m.max_downtime.map(|d| d.as_millis() as u64),
        window_start: window.map(|w| w.start_text.clone()),
        window_end: window.map(|w| w.end_text.clone()),
        down_at: outages.first().map(|o| o.down_at.clone()),
        up_at: outages.last().and_then(|o| o.up_at.clone()),
        ..Downtime::default()
    };
    if let (Some(d), Some(b)) = (downtime.measured_ms, downtime.budget_ms) {
        downtime.within_budget = Some(d <= b);
    }
    // Every outage inside the window: each one's start and end.
    if let Some(w) = window
        && downtime.measured_ms.is_some()
    {
        downtime.within_window = Some(outages.iter().all(|o| {
            let inside = |t: &str| t.parse::<jiff::Timestamp>().is_ok_and(|t| w.contains(t));
            inside(&o.down_at) && o.up_at.as_deref().is_some_and(inside)
        }));
    }
    let checklist: Vec<ChecklistStep> = plan
        .steps
        .iter()
        .map(|s| ChecklistStep {
            index: s.index + 1,
            id: s.id.clone(),
            title: s.label().to_owned(),
            does: short_does(&s.kind),
            host: s.host.clone(),
            manual: matches!(s.kind, StepKind::Manual { .. }),
            needs_window: s.needs_window,
            point_of_no_return: m
                .point_of_no_return
                .as_ref()
                .is_some_and(|p| p.value == s.id),
        })
        .collect();
    let text_digest = rehost_plan::digest(&input.plan_text.text);
    let plan_section = PlanSection {
        run_digest: run.plan_digest.clone(),
        text_digest,
        origin: input.plan_text.origin.clone(),
        // Whole, not line by line: a command continued on the next line (`--password \`,
        // a TOML multi-line string) keeps what tells its secret apart.
        text: rehost_plan::redact(&input.plan_text.text),
    };
    let comparison = input
        .others
        .iter()
        .map(|o| compare(plan, o))
        .collect::<Vec<_>>();
    let verdict = verdict(plan, &run, &downtime, &plan_section, &comparison);
    Report {
        schema: SCHEMA,
        schema_version: SCHEMA_VERSION,
        rehost_version: run
            .invocations
            .last()
            .map(|i| i.version.clone())
            .unwrap_or_default(),
        migration: Migration {
            title: m.title.clone(),
            purpose: m.purpose.clone(),
            initiated_by: m.initiated_by.clone(),
            implemented_by: m.implemented_by.clone(),
            plan_file: input.plan_file,
        },
        env: run.env.clone(),
        rehearsal,
        verdict,
        downtime,
        run,
        checklist,
        plan: plan_section,
        comparison,
    }
}

/// What a step does, in one short line (a command's first line, redacted, cut at 80
/// characters; the full text is in the plan below).
fn short_does(kind: &StepKind) -> String {
    let d = rehost_plan::describe(kind);
    match d.command() {
        Some(command) => {
            let full = rehost_plan::redact(command).replace('`', "'");
            let first = full.lines().next().unwrap_or_default();
            let mut short: String = first.chars().take(80).collect();
            if short.len() < full.len() {
                short.push('…');
            }
            format!("run `{short}`")
        }
        None => crate::concept::render(&d),
    }
}

fn compare(plan: &Plan, o: &Run) -> Comparison {
    Comparison {
        env: o.env.clone(),
        finished: o.finished.clone(),
        downtime_ms: o.downtime_ms,
        steps: plan
            .steps
            .iter()
            .map(|s| {
                let a = latest(o, &s.id);
                ComparedStep {
                    id: s.id.clone(),
                    result: a.and_then(|a| a.result.clone()),
                    elapsed_ms: a.and_then(|a| a.elapsed_ms),
                    attempts: o.attempts.iter().filter(|a| a.id == s.id).count() as u32,
                }
            })
            .collect(),
        failed: failed_steps(o),
    }
}

fn failed_steps(run: &Run) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for a in &run.attempts {
        let bad = matches!(a.result.as_deref(), Some("failed" | "interrupted"))
            || a.verification.as_ref().is_some_and(|v| v.exit_code != 0);
        if bad && !v.contains(&a.id) {
            v.push(a.id.clone());
        }
    }
    v
}

fn item(level: Level, kind: &str, step: Option<&str>, text: String) -> VerdictItem {
    VerdictItem {
        level,
        kind: kind.into(),
        step: step.map(String::from),
        text,
    }
}

fn verdict(
    plan: &Plan,
    run: &Run,
    downtime: &Downtime,
    plan_section: &PlanSection,
    comparison: &[Comparison],
) -> Verdict {
    use Level::*;
    let mut items = Vec::new();
    // A state directory that does not verify comes before everything: what it says may not hold.
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
    // Verifications first: they are the proof.
    for s in &plan.steps {
        if !is_verification(&s.kind) {
            continue;
        }
        let last = latest(run, &s.id);
        // What the plan names and the data set's excludes leave out is never verified: said,
        // and a failure where the step claims to verify it.
        if let Some((a, v)) = last.and_then(|a| a.verification.as_ref().map(|v| (a, v))) {
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
        match last.and_then(|a| a.verification.as_ref().map(|v| (a, v))) {
            Some((a, v)) if v.exit_code == 0 => {
                if run.attempts.iter().any(|b| {
                    b.id == s.id && b.verification.as_ref().is_some_and(|v| v.exit_code != 0)
                }) {
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
                let classes: Vec<String> =
                    v.by_class.iter().map(|(c, n)| format!("{n} {c}")).collect();
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
    if run.invocations.is_empty() {
        items.push(item(
            Failed,
            "not_finished",
            None,
            "The run has not started: the journal records no run.".into(),
        ));
    } else {
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
    if downtime.within_budget == Some(false) {
        items.push(item(
            Failed,
            "over_budget",
            None,
            format!(
                "The downtime of {} exceeded the budget of {}.",
                human_ms(downtime.measured_ms.unwrap_or(0)),
                human_ms(downtime.budget_ms.unwrap_or(0))
            ),
        ));
    }
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
    // Each rollback, with every step it sent round again (not only the superseded ones: the
    // rolled-back steps and the failed one run again too) and whether they did.
    let ids = |v: &[String]| match v.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!(
            "{} and `{last}`",
            rest.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some((last, _)) => format!("`{last}`"),
        None => "nothing".into(),
    };
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
    if let Some(t) = &run.torn {
        items.push(item(Attention, "journal_torn", None, t.clone()));
    }
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
    for w in &run.warnings {
        items.push(item(
            Attention,
            "warning",
            None,
            format!("Warning at {}: {}", when(&w.at), w.text),
        ));
    }
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
    items.sort_by_key(|i| match i.level {
        Failed => 0,
        Attention => 1,
        Clean => 2,
    });
    let level = items.first().map_or(Clean, |i| i.level);
    let verifications = plan
        .steps
        .iter()
        .filter(|s| is_verification(&s.kind))
        .count();
    let headline = match level {
        Failed => items[0].text.trim_end_matches('.').to_owned(),
        Attention => format!("finished, with {} point(s) to review", items.len()),
        Clean => {
            let down = match (downtime.measured_ms, downtime.budget_ms) {
                (Some(d), Some(b)) => {
                    format!(
                        "; downtime {} within the budget of {}",
                        human_ms(d),
                        human_ms(b)
                    )
                }
                (Some(d), None) => format!("; downtime {}", human_ms(d)),
                _ => String::new(),
            };
            format!(
                "all {} steps done, {} verification(s) passed, nothing decided by flag{down}",
                plan.steps.len(),
                verifications
            )
        }
    };
    Verdict {
        level,
        headline,
        items,
    }
}

/// The report as pretty JSON (the schema in docs/report.md).
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize") + "\n"
}

/// Text shown as code in a cell or paragraph (a backtick inside cannot end the span).
fn code_span(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("—").to_owned()
}

fn kept(k: &Kept) -> String {
    match k.bytes {
        Some(n) => format!("`{}` ({n} bytes, BLAKE3 `{}`)", k.file, k.blake3),
        None => format!(
            "`{}` (could not be read when this report was made; the journal recorded BLAKE3 `{}`)",
            k.file, k.blake3
        ),
    }
}

fn result_word(a: &Attempt) -> String {
    let mut w = a
        .result
        .clone()
        .unwrap_or_else(|| "running or killed".into());
    if a.superseded {
        w.push_str(", superseded");
    }
    match a.rolled_back {
        Some(true) => w.push_str(", rolled back"),
        Some(false) => w.push_str(", rollback failed"),
        None => {}
    }
    w.replace('_', " ")
}

/// The report as a document, verdict first.
pub fn document(r: &Report, plan: &Plan) -> Document {
    let run = &r.run;
    let mut b = Vec::new();
    let h = |level: u8, text: &str| Block::Heading {
        level,
        text: text.into(),
    };
    let p = |text: String| Block::Paragraph { text };
    let table = |head: &[&str], rows: Vec<Vec<String>>| Block::Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
    };
    b.push(h(1, &format!("Migration report: {}", r.migration.title)));
    b.push(Block::Verdict {
        level: r.verdict.level,
        headline: r.verdict.headline.clone(),
        // A failed verdict's headline is its first item: not repeated below it.
        items: r
            .verdict
            .items
            .iter()
            .skip(usize::from(r.verdict.level == Level::Failed))
            .map(|i| {
                let mark = match i.level {
                    Level::Failed => "Failed",
                    Level::Attention => "Review",
                    Level::Clean => "OK",
                };
                format!("{mark}: {}", i.text)
            })
            .collect(),
    });
    let what = if r.rehearsal {
        format!("Rehearsal in the environment `{}`", r.env)
    } else {
        "Production run".into()
    };
    let mut intro = format!(
        "{what} of the plan `{}`, following BSI IT-Grundschutz M 2.319.",
        r.migration.plan_file
    );
    if let Some(i) = run.invocations.first() {
        let from = match (&i.operator_host, &i.terminal) {
            (Some(h), Some(t)) => format!(" (from {h}, terminal {t})"),
            (Some(h), None) => format!(" (from {h})"),
            (None, Some(t)) => format!(" (terminal {t})"),
            (None, None) => String::new(),
        };
        intro.push_str(&format!(
            " Started at {} by {}{from} with rehost {}",
            when(&i.at),
            i.user,
            i.version
        ));
        // Each invocation of `rehost run` that reached the steps began with a pre-flight.
        if run.preflights.len() > 1 {
            intro.push_str(&format!(
                "; {} invocations of `rehost run` (a pre-flight each)",
                run.preflights.len()
            ));
        }
        intro.push('.');
    }
    if let Some(f) = &run.finished {
        intro.push_str(&format!(
            " {} at {}: {}.",
            if f.ok { "Finished" } else { "Stopped" },
            when(&f.at),
            f.summary
        ));
    }
    b.push(p(intro));
    b.push(table(
        &["Role", "Who"],
        vec![
            vec![
                "Initiated by".into(),
                or_dash(Some(&r.migration.initiated_by.join(", "))),
            ],
            vec![
                "Implemented by".into(),
                or_dash(Some(&r.migration.implemented_by.join(", "))),
            ],
            vec![
                "Ran as".into(),
                or_dash(Some(
                    &run.invocations
                        .iter()
                        .map(|i| i.user.clone())
                        .fold(Vec::<String>::new(), |mut v, u| {
                            if !v.contains(&u) {
                                v.push(u);
                            }
                            v
                        })
                        .join(", "),
                )),
            ],
        ],
    ));
    let mut journal = format!(
        "The journal holds {} record(s); every time in this report is from it, and files are named relative to the state directory.",
        run.journal_records
    );
    if let Some(head) = &run.journal_head {
        journal.push_str(&format!(
            " The head of its hash chain is `{head}`: with this digest kept outside the state directory (the change ticket, a copy of this report), `rehost status {} {}--verify --head {head}` shows whether the journal changed since.",
            r.migration.plan_file,
            if r.rehearsal {
                format!("--env {} ", r.env)
            } else {
                String::new()
            }
        ));
    }
    if let Some(i) = &run.integrity
        && i.problems.is_empty()
    {
        journal.push_str(&format!(
            " When the report was made, the hash chain of all {} records was intact and all {} kept files matched their digests.",
            i.records, i.files
        ));
    }
    // What the chain proves, and what vouches for it beyond that.
    if let Some(i) = &run.integrity {
        journal.push_str(&match &i.signature {
            Some(s) if s.covers_all => {
                let with: Vec<&str> = s
                    .kinds
                    .iter()
                    .map(|k| match k.as_str() {
                        "ssh" => "an SSH signature in `journal.head.sig`",
                        _ => "a BLAKE3 keyed hash (an HMAC) in `journal.head.mac`",
                    })
                    .collect();
                format!(
                    " The head is signed with a key kept outside the state directory ({}, over `journal.head`). This report does not hold the key and has not checked the signature: `rehost status --verify --allowed-signers FILE` (or `--hmac-key FILE`) does, and a good signature proves the records were not rewritten by someone who could only write the state directory.",
                    if with.is_empty() {
                        "no signature file is there".to_owned()
                    } else {
                        with.join(" and ")
                    }
                )
            }
            Some(s) if !s.in_journal => " `journal.head` signs a head that no record of the journal has: the journal was rewritten after it was signed, and nothing vouches for it.".to_owned(),
            Some(s) => format!(
                " `journal.head` signs the head of {} record(s), not the journal's last: for the records after it, the hash chain proves consistency, not authenticity.",
                s.records
            ),
            None => " The head is not signed, so the hash chain proves consistency, not authenticity: the records and the files they name agree with each other, but anyone who could write the state directory could have rewritten a record and recomputed the chain. Keep the head outside the state directory, or sign runs with `--sign-key` or `--hmac-key`.".to_owned(),
        });
    }
    b.push(p(journal));

    // A section with nothing in it is left out (a heading over "none" reads as a section
    // someone forgot to fill); what the journal does not hold is said here, once.
    let verifications: Vec<&Attempt> = run
        .attempts
        .iter()
        .filter(|a| a.verification.is_some())
        .collect();
    let mut absent = Vec::new();
    if run.attempts.is_empty() {
        absent.push("no step attempt (so no timeline)");
    }
    if verifications.is_empty() {
        absent.push("no verification result");
    }
    if run.decisions.is_empty() {
        absent.push("no decision taken by a flag (nothing accepted, skipped or confirmed by one)");
    }
    if run.preflights.is_empty() {
        absent.push("no pre-flight");
    }
    if !absent.is_empty() {
        let list = match absent.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => absent.join(""),
        };
        b.push(p(format!(
            "The journal records {list}; the report has no section for {}.",
            if absent.len() == 1 { "it" } else { "them" }
        )));
    }

    b.push(h(2, "Downtime and window"));
    let d = &r.downtime;
    let yes_no = |v: Option<bool>| match v {
        Some(true) => "yes".to_string(),
        Some(false) => "NO".to_string(),
        None => "—".to_string(),
    };
    let measured = match (d.measured_ms, d.outages.len()) {
        (Some(ms), 1) => human_ms(ms),
        (Some(ms), n) => format!("{} in {n} outages (each below)", human_ms(ms)),
        (None, 0) => "not measured: no step that stops a service has run".into(),
        (None, _) => "not measured: the service is still down (below)".into(),
    };
    let mut rows = vec![
        vec!["Downtime measured".into(), measured],
        vec![
            "Downtime budget".into(),
            d.budget_ms.map_or("not set".into(), human_ms),
        ],
        vec!["Within the budget".into(), yes_no(d.within_budget)],
    ];
    // Each outage, rolled-back attempts included: what took the service down and what brought
    // it back.
    for (i, o) in d.outages.iter().enumerate() {
        let label = if d.outages.len() == 1 {
            "Outage".to_string()
        } else {
            format!("Outage {}", i + 1)
        };
        let up = match (&o.up_at, o.how_up()) {
            (Some(at), Some(how)) => format!("serving again at {} ({how})", when(at)),
            _ => "NOT serving again".into(),
        };
        rows.push(vec![
            label,
            format!(
                "{}: down at {} ({}), {up}",
                o.ms.map_or("still down".into(), human_ms),
                when(&o.down_at),
                o.how_down()
            ),
        ]);
    }
    b.push(table(
        &["Item", "Value"],
        rows.into_iter().chain([
            vec![
                "Maintenance window".into(),
                match (&d.window_start, &d.window_end) {
                    (Some(s), Some(e)) => format!("{s} to {e}"),
                    _ if r.rehearsal => {
                        "none for this environment (a rehearsal is not bound by the production window)".into()
                    }
                    _ => "not set".into(),
                },
            ],
            vec!["Downtime inside the window".into(), yes_no(d.within_window)],
        ]).collect(),
    ));

    if !run.attempts.is_empty() {
        b.push(h(2, "Timeline"));
        b.push(p(
            "Each attempt of each step, in the order the journal recorded them; manual steps with who confirmed them. Hatched bars are attempts a rollback superseded or undid.".into(),
        ));
        b.push(Block::Timeline(timeline(r, plan)));
    }

    b.push(h(2, "Steps"));
    let rows = r
        .checklist
        .iter()
        .map(|c| {
            let attempts: Vec<&Attempt> = run.attempts.iter().filter(|a| a.id == c.id).collect();
            let last = attempts.last();
            let status = run
                .steps
                .iter()
                .find(|s| s.id == c.id)
                .map(|s| s.status.replace('_', " "))
                .unwrap_or_default();
            let mut label = if c.title == c.id {
                format!("`{}`", c.id)
            } else {
                format!("{} `{}`", c.title, c.id)
            };
            if c.point_of_no_return {
                label.push_str(" — point of no return");
            }
            vec![
                c.index.to_string(),
                label,
                c.does.clone(),
                status,
                attempts.len().to_string(),
                last.and_then(|a| a.elapsed_ms)
                    .map(human_ms)
                    .unwrap_or_default(),
                last.and_then(|a| {
                    a.confirmed_by
                        .clone()
                        .map(|by| format!("{by} at {}", when(a.finished.as_deref().unwrap_or("?"))))
                })
                .unwrap_or_default(),
                attempts
                    .iter()
                    .filter_map(|a| {
                        a.output.as_ref().map(|o| {
                            if attempts.len() > 1 {
                                format!("attempt {}: {}", a.attempt, kept(o))
                            } else {
                                kept(o)
                            }
                        })
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        })
        .collect();
    b.push(table(
        &[
            "#",
            "Step",
            "Does",
            "Result",
            "Attempts",
            "Took",
            "Confirmed by",
            "Output kept in",
        ],
        rows,
    ));
    let details: Vec<String> = run
        .attempts
        .iter()
        .filter(|a| a.detail.is_some() || a.exit_code.is_some_and(|c| c != 0))
        .map(|a| {
            format!(
                "`{}` attempt {} ({}): {}",
                a.id,
                a.attempt,
                result_word(a),
                a.detail.as_deref().unwrap_or("no detail")
            )
        })
        .collect();
    if !details.is_empty() {
        b.push(h(3, "What each attempt reported"));
        b.push(Block::List { items: details });
    }

    if !verifications.is_empty() {
        b.push(h(2, "Verifications"));
    }
    for a in verifications {
        let v = a.verification.as_ref().expect("filtered");
        let mut outcome = match v.exit_code {
            // The step's exit code covers the exercise too; the comparison is the findings.
            _ if v.exercise.is_some() && v.findings_total == 0 => "complete and correct",
            0 => "complete and correct",
            1 => "DIFFERENCES FOUND",
            _ => "NOT FULLY VERIFIED",
        }
        .to_owned();
        // A database's or files' verdict names its scope: what it holds for, what was not
        // compared (a tree's names its excludes and what they leave out, below).
        if v.kind != VerificationKind::Tree {
            outcome.push_str(&match &v.not_compared {
                Some(n) if n.is_empty() => String::new(),
                // Table names come from the databases: no backtick may open a code span.
                Some(n) => format!("; not compared: {}", n.join("; ").replace('`', "'")),
                None => "; not compared: not recorded by the rehost that ran it".into(),
            });
        }
        if let Some(x) = &v.exercise {
            outcome.push_str(&format!("; exercise: {}", exercise_outcome(x)));
        }
        b.push(h(
            3,
            &format!(
                "`{}` attempt {}: `{}` — {outcome}{}",
                a.id,
                a.attempt,
                v.data_set,
                if a.superseded { " (superseded)" } else { "" }
            ),
        ));
        let mut rows = vec![
            vec!["Original (A)".into(), v.source.clone()],
            vec!["Copy (B)".into(), v.destination.clone()],
        ];
        if let Some(t) = &v.tree {
            rows.extend([
                vec![
                    "Entries A / B".into(),
                    format!("{} / {}", t.entries_a, t.entries_b),
                ],
                vec![
                    "Bytes A / B".into(),
                    format!("{} / {}", t.bytes_a, t.bytes_b),
                ],
                vec!["Equal entries".into(), t.equal.to_string()],
                vec![
                    "Files hashed now / trusted unchanged from an earlier walk".into(),
                    format!("{} / {}", t.files_read, t.trusted),
                ],
            ]);
        }
        // Issue 18: say which check the trusted digests rest on (a verification, or only the
        // built-in transfer's walk).
        if let Some(t) = v.tree.as_ref().filter(|t| t.trusted > 0) {
            rows.push(vec![
                "The trusted digests were read by".into(),
                t.trusted_from.clone().unwrap_or_else(|| {
                    "an earlier walk of the same tree (this journal does not say which)".into()
                }),
            ]);
        }
        if let Some(db) = &v.database {
            rows.extend([
                vec![
                    "Server versions A / B".into(),
                    format!("{} / {}", db.old_version, db.new_version),
                ],
                vec![
                    "Tables, rows compared".into(),
                    format!("{}, {}", db.tables, db.rows),
                ],
                vec![
                    "Sequences, other objects".into(),
                    format!("{}, {}", db.sequences, db.objects),
                ],
            ]);
        }
        if v.kind == VerificationKind::Files {
            rows.push(vec![
                "Files compared".into(),
                v.paths
                    .iter()
                    .map(|x| code_span(x))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
            if !v.absent.is_empty() {
                rows.push(vec![
                    "Absent on A (nothing to compare with)".into(),
                    v.absent
                        .iter()
                        .map(|x| code_span(x))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]);
            }
        }
        if v.kind == VerificationKind::Keys {
            rows.push(vec![
                "Searched on B".into(),
                if v.paths.is_empty() {
                    "nothing".into()
                } else {
                    v.paths
                        .iter()
                        .map(|x| code_span(x))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ]);
            for k in &v.keys {
                rows.push(vec![
                    format!("Key `{}`: {} {} {}", k.key, k.kind, k.algorithm, k.verdict),
                    format!(
                        "{}; A: {}; B: {}{}",
                        code_span(&k.fingerprint),
                        k.old
                            .iter()
                            .map(|x| code_span(x))
                            .collect::<Vec<_>>()
                            .join(", "),
                        if k.new.is_empty() {
                            "not found".into()
                        } else {
                            k.new
                                .iter()
                                .map(|x| code_span(x))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        k.not_after
                            .as_ref()
                            .map(|t| format!("; valid until {t}"))
                            .unwrap_or_default()
                    ),
                ]);
            }
        }
        if let Some(x) = &v.exercise {
            exercise_rows(x, &mut rows);
        }
        rows.push(vec!["Findings".into(), {
            let classes: Vec<String> = v.by_class.iter().map(|(c, n)| format!("{n} {c}")).collect();
            if classes.is_empty() {
                v.findings_total.to_string()
            } else {
                format!("{} ({})", v.findings_total, classes.join(", "))
            }
        }]);
        if let Some(o) = &a.output {
            rows.push(vec!["Full list of findings".into(), kept(o)]);
        }
        for (side, m) in ["Manifest of A", "Manifest of B"].iter().zip(&v.manifests) {
            rows.push(vec![side.to_string(), kept(m)]);
        }
        if v.kind == VerificationKind::Tree {
            rows.push(vec![
                "Privileged entries in B (setuid, setgid, file capabilities, devices)".into(),
                v.privileged_total.to_string(),
            ]);
            rows.push(vec![
                "Excluded by the data set (not compared)".into(),
                if v.excludes.is_empty() {
                    "nothing".into()
                } else {
                    v.excludes
                        .iter()
                        .map(|x| code_span(x))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ]);
        }
        b.push(table(&["Item", "Value"], rows));
        if !v.findings.is_empty() {
            b.push(p(format!(
                "The first {} of {} finding(s):",
                v.findings.len(),
                v.findings_total
            )));
            b.push(table(
                &["Class", "Path or object", "A", "B"],
                v.findings
                    .iter()
                    .map(|f| {
                        vec![
                            f.class.clone(),
                            format!("`{}`", f.path.replace('`', "'")),
                            f.a.clone().unwrap_or_default(),
                            f.b.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            ));
        }
        if let Some(x) = &v.exercise {
            exercise_tables(x, &mut b);
        }
        if !v.not_verified.is_empty() {
            b.push(p(format!(
                "Not verified: {} path(s) the plan names lie under the data set but its excludes leave them out, so no sync carried them and this verification did not compare them:",
                v.not_verified.len()
            )));
            b.push(table(
                &["Path", "Named by", "Excluded by"],
                v.not_verified
                    .iter()
                    .map(|x| {
                        vec![
                            code_span(&x.path),
                            format!("key {}", code_span(&x.key)),
                            code_span(&x.exclude),
                        ]
                    })
                    .collect(),
            ));
        }
        if !v.privileged.is_empty() {
            b.push(p(format!(
                "The copy holds {} entr{} that carry privilege on the new host; the old side decided them, as it would with rsync -a. Check that each belongs (the first {}; all are in the manifest of B):",
                v.privileged_total,
                if v.privileged_total == 1 { "y" } else { "ies" },
                v.privileged.len()
            )));
            b.push(table(
                &["Path", "What"],
                v.privileged
                    .iter()
                    .map(|x| vec![format!("`{}`", x.path.replace('`', "'")), x.what.clone()])
                    .collect(),
            ));
        }
        if !v.warnings.is_empty() {
            b.push(Block::List {
                items: v.warnings.clone(),
            });
        }
    }

    if !run.decisions.is_empty() {
        b.push(h(2, "Decisions"));
        b.push(table(
            &["At", "Decision", "By", "What"],
            run.decisions
                .iter()
                .map(|d| {
                    vec![
                        when(&d.at),
                        format!("`--{}`", d.what),
                        d.by.clone(),
                        d.detail.clone(),
                    ]
                })
                .collect(),
        ));
    }

    if !run.rollbacks.is_empty() || !run.supersessions.is_empty() {
        b.push(h(2, "Rollbacks"));
        let mut items = Vec::new();
        for rb in &run.rollbacks {
            items.push(format!(
                "At {}, after step `{}` failed: {}",
                when(&rb.at),
                rb.failed,
                rb.steps
                    .iter()
                    .map(|s| format!(
                        "`{}` {}{}",
                        s.id,
                        if s.ok {
                            "rolled back"
                        } else {
                            "NOT rolled back"
                        },
                        s.output
                            .as_ref()
                            .map(|o| format!(" (output {})", kept(o)))
                            .unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        for s in &run.supersessions {
            items.push(format!(
                "At {}, the attempts of {} were superseded (the run resumed from `{}`).",
                when(&s.at),
                s.steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.from
            ));
        }
        b.push(Block::List { items });
    }

    if !run.preflights.is_empty() {
        b.push(h(2, "Pre-flight"));
        b.push(table(
            &["At", "Hosts checked", "Problems"],
            run.preflights
                .iter()
                .map(|p| {
                    vec![
                        when(&p.at),
                        p.hosts.join(", "),
                        if p.problems.is_empty() {
                            "none".into()
                        } else {
                            p.problems.join("; ")
                        },
                    ]
                })
                .collect(),
        ));
    }
    if !run.warnings.is_empty() {
        b.push(h(2, "Warnings"));
        b.push(Block::List {
            items: run
                .warnings
                .iter()
                .map(|w| format!("{}: {}", when(&w.at), w.text))
                .collect(),
        });
    }

    if !r.comparison.is_empty() {
        b.push(h(2, "Rehearsal and production side by side"));
        let mut head = vec!["Step".to_string(), format!("{} (this report)", r.env)];
        head.extend(r.comparison.iter().map(|c| c.env.clone()));
        let cell = |result: Option<&str>, ms: Option<u64>, attempts: u32| match result {
            None => "not run".to_string(),
            Some(res) => {
                let mut s = res.replace('_', " ");
                if let Some(ms) = ms {
                    s.push_str(&format!(", {}", human_ms(ms)));
                }
                if attempts > 1 {
                    s.push_str(&format!(", {attempts} attempts"));
                }
                s
            }
        };
        let mut rows: Vec<Vec<String>> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let a = latest(run, &s.id);
                let mut row = vec![
                    format!("`{}`", s.id),
                    cell(
                        a.and_then(|a| a.result.as_deref()),
                        a.and_then(|a| a.elapsed_ms),
                        run.attempts.iter().filter(|x| x.id == s.id).count() as u32,
                    ),
                ];
                for c in &r.comparison {
                    let cs = &c.steps[i];
                    row.push(cell(cs.result.as_deref(), cs.elapsed_ms, cs.attempts));
                }
                row
            })
            .collect();
        let mut down = vec![
            "Downtime".to_string(),
            run.downtime_ms.map_or("—".into(), human_ms),
        ];
        down.extend(
            r.comparison
                .iter()
                .map(|c| c.downtime_ms.map_or("—".into(), human_ms)),
        );
        rows.push(down);
        let mut fin = vec![
            "Finished".to_string(),
            run.finished.as_ref().map_or("no".into(), |f| {
                if f.ok { "yes".into() } else { "stopped".into() }
            }),
        ];
        fin.extend(r.comparison.iter().map(|c| {
            c.finished.as_ref().map_or("no".into(), |f| {
                if f.ok { "yes".into() } else { "stopped".into() }
            })
        }));
        rows.push(fin);
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        b.push(table(&head, rows));
        for c in &r.comparison {
            if !c.failed.is_empty() {
                b.push(p(format!(
                    "Failed at least once in `{}`: {}.",
                    c.env,
                    c.failed
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }

    b.push(h(2, "The plan as it was run"));
    b.push(p(format!(
        "From {}; BLAKE3 of the text `{}`{}. Credentials in commands are shown as `***`.",
        r.plan.origin,
        r.plan.text_digest,
        match &r.plan.run_digest {
            Some(d) if *d == r.plan.text_digest => ", the digest the run recorded".to_string(),
            Some(d) => format!(", NOT the digest the run recorded (`{d}`)"),
            None => String::new(),
        }
    )));
    b.push(Block::Preformatted {
        text: r.plan.text.clone(),
    });
    Document {
        title: format!("Migration report: {}", r.migration.title),
        blocks: without_empty_sections(b),
    }
}

/// Drops every heading with nothing under it before the next heading of its level or above (or
/// the end): the sections above leave themselves out when empty; this keeps one that a later
/// change forgets from printing a bare heading.
fn without_empty_sections(blocks: Vec<Block>) -> Vec<Block> {
    let level_of = |b: &Block| match b {
        Block::Heading { level, .. } => Some(*level),
        _ => None,
    };
    let mut keep = vec![true; blocks.len()];
    // From the end, so a heading whose only content was an empty subsection goes too.
    for i in (0..blocks.len()).rev() {
        let Some(level) = level_of(&blocks[i]) else {
            continue;
        };
        let next = (i + 1..blocks.len()).find(|&j| keep[j]);
        let empty = match next {
            None => true,
            Some(j) => level_of(&blocks[j]).is_some_and(|l| l <= level),
        };
        if empty && level > 1 {
            keep[i] = false;
        }
    }
    blocks
        .into_iter()
        .zip(keep)
        .filter_map(|(b, k)| k.then_some(b))
        .collect()
}

fn timeline(r: &Report, plan: &Plan) -> Timeline {
    let run = &r.run;
    let start = run.first_at.clone().unwrap_or_default();
    let end = run.last_at.clone().unwrap_or_default();
    let span_ms = ms_between(&start, &end).unwrap_or(0);
    let index = |id: &str| plan.step_index(id).map_or(0, |i| i + 1);
    let bars = run
        .attempts
        .iter()
        .map(|a| {
            let s = ms_between(&start, &a.started).unwrap_or(0);
            let e = a
                .finished
                .as_deref()
                .or(run.last_at.as_deref())
                .and_then(|f| ms_between(&start, f))
                .unwrap_or(s)
                .max(s);
            let manual = is_manual(plan, &a.id);
            let state = if a.superseded {
                BarState::Superseded
            } else if a.rolled_back == Some(true) {
                BarState::RolledBack
            } else {
                match a.result.as_deref() {
                    Some("done") if manual => BarState::Manual,
                    Some("done") => BarState::Done,
                    Some("failed") => BarState::Failed,
                    Some("skipped") => BarState::Skipped,
                    Some("not_confirmed") => BarState::NotConfirmed,
                    _ => BarState::Interrupted,
                }
            };
            let failed_verification = a.verification.as_ref().is_some_and(|v| v.exit_code != 0);
            let state = if failed_verification && state == BarState::Done {
                BarState::Failed
            } else {
                state
            };
            let mut note = result_word(a);
            if let Some(ms) = a.elapsed_ms.filter(|_| !manual) {
                note.push_str(&format!(" in {}", human_ms(ms)));
            }
            if let Some(by) = &a.confirmed_by {
                note.push_str(&format!(
                    "; confirmed by {by} at {}",
                    when(a.finished.as_deref().unwrap_or("?"))
                ));
            }
            let mut label = format!("{}. `{}`", index(&a.id), a.id);
            if run.attempts.iter().filter(|x| x.id == a.id).count() > 1 {
                label.push_str(&format!(" attempt {}", a.attempt));
            }
            Bar {
                id: a.id.clone(),
                label,
                start_ms: s,
                end_ms: e,
                state,
                note,
            }
        })
        .collect();
    Timeline {
        start: when(&start),
        end: when(&end),
        span_ms,
        bars,
    }
}

#[cfg(test)]
mod tests;

/// A database exercise's outcome in a few words, for the verification's heading.
fn exercise_outcome(x: &rehost_journal::step_data::ExerciseData) -> String {
    if x.error.is_some() {
        "DID NOT RUN TO ITS END".into()
    } else if !x.unchanged {
        "LEFT CHANGES BEHIND".into()
    } else if x.failed > 0 {
        format!("{} OPERATION(S) FAILED", x.failed)
    } else {
        "read, modify, add passed; database unchanged".into()
    }
}

/// The exercise's figures and what "unchanged" rests on, as rows of the verification's table.
fn exercise_rows(x: &rehost_journal::step_data::ExerciseData, rows: &mut Vec<Vec<String>>) {
    rows.push(vec![
        "Exercised (read, modify, add; rolled back) on".into(),
        if x.login.is_empty() {
            x.target.clone()
        } else {
            format!("{} as the application's login {}", x.target, x.login)
        },
    ]);
    if let Some(e) = &x.error {
        rows.push(vec![
            "Exercise".into(),
            format!("did not run to its end: {e}"),
        ]);
        return;
    }
    rows.push(vec![
        "Exercise: tables, operations, failed, skipped".into(),
        format!(
            "{}, {}, {}, {}",
            x.tables, x.operations, x.failed, x.skipped
        ),
    ]);
    rows.push(vec![
        "Database unchanged by the exercise".into(),
        if x.unchanged {
            format!(
                "yes: the checksum after equals the one before (BLAKE3 {}); the check: {}",
                x.checksum_after, x.check
            )
        } else {
            format!(
                "NO: {} difference(s) between the checksum before (BLAKE3 {}) and after (BLAKE3 {}); the check: {}",
                x.left_behind.len(),
                x.checksum_before,
                x.checksum_after,
                x.check
            )
        },
    ]);
    rows.push(vec![
        "Checksummed: tables (rows), sequences".into(),
        format!(
            "{} ({}), {}",
            x.checked_tables, x.checked_rows, x.checked_sequences
        ),
    ]);
    if !x.not_covered.is_empty() {
        rows.push(vec![
            "Not covered by the checksum".into(),
            x.not_covered.join("; "),
        ]);
    }
}

/// What the exercise left behind, and its failed and skipped operations.
fn exercise_tables(x: &rehost_journal::step_data::ExerciseData, b: &mut Vec<Block>) {
    if !x.left_behind.is_empty() {
        b.push(Block::Paragraph {
            text: "The exercise left these changed (checksum before and after the exercise):"
                .into(),
        });
        b.push(Block::Table {
            head: ["Class", "Object", "Before", "After"]
                .map(String::from)
                .to_vec(),
            rows: x
                .left_behind
                .iter()
                .map(|l| {
                    vec![
                        l.class.clone(),
                        format!("{} {}", l.kind, l.name),
                        l.before.clone().unwrap_or_default(),
                        l.after.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        });
    }
    if !x.problems.is_empty() {
        b.push(Block::Paragraph {
            text: format!(
                "Operations of the exercise that failed or were skipped ({} failed, {} skipped):",
                x.failed, x.skipped
            ),
        });
        b.push(Block::Table {
            head: ["Table", "Operation", "Result", "Detail"]
                .map(String::from)
                .to_vec(),
            rows: x
                .problems
                .iter()
                .map(|o| {
                    vec![
                        o.table.clone(),
                        o.operation.clone(),
                        o.status.clone(),
                        o.detail.clone(),
                    ]
                })
                .collect(),
        });
    }
}
