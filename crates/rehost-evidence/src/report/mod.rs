//! The report of a run: built from the state directory (the journal, the evidence it names)
//! and the plan, as a typed model ([`Report`], the JSON) and as a [`Document`](crate::doc::Document) (HTML,
//! Markdown).
//!
//! [`build`] makes the model and its [`Verdict`] (`verdict.rs`, one function per kind of item);
//! [`document`] renders it, one function per section (`document.rs`), each kind of
//! verification rendering its own part (`verification.rs`).
//!
//! Deterministic: the same state directory gives the same bytes, wherever it is copied. No time
//! but the journal's appears, and files are named relative to the state directory.

mod connections;
mod document;
mod keys;
mod load;
pub mod model;
mod names;
pub mod points;
pub mod read;
mod switch;
mod verdict;
mod verification;

#[cfg(test)]
use crate::doc::{Block, Document};
use crate::doc::{Level, human_ms};
pub use document::document;
#[cfg(test)]
use document::without_empty_sections;
pub use model::*;
pub use read::{PlanText, load_run, plan_text_for};
use rehost_plan::{Plan, Step, StepKind};
use verdict::verdict;

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

/// What a measured downtime does not cover, said wherever it is shown.
fn not_measured(m: Option<&rehost_journal::Measured>) -> Vec<String> {
    let Some(m) = m else {
        return vec![
            "no service has a `probe`: the downtime clients saw was not measured, only the one the steps declare".into(),
        ];
    };
    let mut out = vec![
        format!(
            "the time between two samples of a side ({} ms): an outage shorter than that may be missed, and each figure is exact only to it",
            m.interval_ms
        ),
        "clients elsewhere in the network: the probes ran on the machine rehost ran on".into(),
        "the time between runs, when no prober ran (a run stopped and resumed)".into(),
    ];
    if m.unfinished {
        out.push("a prober left no summary (the run was killed or is under way): its last changes may be missing".into());
    }
    out
}

pub fn build(input: Input) -> Report {
    let plan = input.plan;
    let m = &plan.migration;
    let run = input.run;
    let rehearsal = run.env != "production";
    let window = plan.window_for(rehearsal.then_some(run.env.as_str()));
    let outages = &run.downtime.outages;
    let measured = run.downtime.measured.clone();
    let mut downtime = Downtime {
        declared_ms: run.downtime.total_ms,
        outages: outages.clone(),
        not_measured: not_measured(measured.as_ref()),
        measured,
        budget_ms: m.max_downtime.map(|d| d.as_millis() as u64),
        window_start: window.map(|w| w.start_text.clone()),
        window_end: window.map(|w| w.end_text.clone()),
        down_at: outages.first().map(|o| o.down_at.clone()),
        up_at: outages.last().and_then(|o| o.up_at.clone()),
        ..Downtime::default()
    };
    // Clients' view where there is one: the measured downtime; else the declared one.
    let (basis, figure) = match &downtime.measured {
        Some(m) => ("measured", Some(m.total_ms)),
        None => ("declared", downtime.declared_ms),
    };
    if let (Some(d), Some(b)) = (figure, downtime.budget_ms) {
        downtime.within_budget = Some(d <= b);
        downtime.budget_basis = Some(basis.into());
    }
    // Every outage inside the window: each one's start and end.
    if let Some(w) = window
        && downtime.declared_ms.is_some()
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
    let keys = keys::statuses(plan, &run);
    let mut report = Report {
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
        keys,
        points: Vec::new(),
    };
    report.points = points::assess(&report, plan);
    report
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

/// The report as pretty JSON (the schema in docs/report.md).
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize") + "\n"
}

#[cfg(test)]
mod tests;
