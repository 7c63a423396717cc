//! Rehearsal informs production (issue 24): the latest finished rehearsal's step durations
//! and downtime, which `rehost concept` shows as the expected timeline and `rehost run` of the
//! real migration checks against the budget and the window before it starts. Pure: built from
//! runs the caller read ([`crate::report::load_run`]).

use crate::report::model::Run;
use rehost_plan::Plan;
use std::time::Duration;

/// What the latest rehearsal took.
#[derive(Clone, Debug)]
pub struct Rehearsed {
    pub env: String,
    /// When it finished (the journal's time).
    pub finished_at: String,
    /// Each step of the plan with its last attempt's duration there (`None`: not run there).
    pub steps: Vec<(String, Option<u64>)>,
    /// The sum of those durations: the time the steps took, not the time between
    /// invocations or before the first.
    pub duration_ms: u64,
    /// The downtime: measured by the probes where it was, else declared by the steps.
    pub downtime_ms: Option<u64>,
    pub measured: bool,
}

/// The rehearsal that finished last, with every step done, among `runs` (the plan's
/// environments' runs); `None` when there is none.
pub fn latest(plan: &Plan, runs: &[Run]) -> Option<Rehearsed> {
    let run = runs
        .iter()
        .filter(|r| r.env != "production" && r.finished.as_ref().is_some_and(|f| f.ok))
        .max_by(|a, b| finished_at(a).cmp(finished_at(b)))?;
    let steps: Vec<(String, Option<u64>)> = plan
        .steps
        .iter()
        .map(|s| {
            let last = run
                .attempts
                .iter()
                .rev()
                .find(|a| a.id == s.id && !a.superseded);
            (s.id.clone(), last.and_then(|a| a.elapsed_ms))
        })
        .collect();
    let measured = run.downtime.measured.as_ref().map(|m| m.total_ms);
    Some(Rehearsed {
        env: run.env.clone(),
        finished_at: finished_at(run).to_owned(),
        duration_ms: steps.iter().filter_map(|(_, ms)| *ms).sum(),
        steps,
        downtime_ms: measured.or(run.downtime.total_ms),
        measured: measured.is_some(),
    })
}

fn finished_at(r: &Run) -> &str {
    r.finished.as_ref().map(|f| f.at.as_str()).unwrap_or("")
}

fn fmt(ms: u64) -> String {
    rehost_plan::format_duration(Duration::from_millis(ms))
}

/// What production should know before it starts: the rehearsed downtime over the budget, the
/// rehearsed duration longer than the window. Each names the rehearsal it comes from.
pub fn warnings(plan: &Plan, r: &Rehearsed) -> Vec<String> {
    let m = &plan.migration;
    let from = format!(
        "the rehearsal in `{}` (finished {})",
        r.env,
        crate::report::when(&r.finished_at)
    );
    let mut out = Vec::new();
    if let (Some(budget), Some(down)) = (m.max_downtime, r.downtime_ms)
        && Duration::from_millis(down) > budget
    {
        out.push(format!(
            "{from} had a downtime of {} ({}), over the budget of {}",
            fmt(down),
            if r.measured {
                "measured by the probes"
            } else {
                "declared by the steps"
            },
            rehost_plan::format_duration(budget)
        ));
    }
    if let Some(w) = &m.window {
        let window_ms = (w.end.as_millisecond() - w.start.as_millisecond()).max(0) as u64;
        if r.duration_ms > window_ms {
            out.push(format!(
                "the steps of {from} took {}, longer than the window of {}",
                fmt(r.duration_ms),
                fmt(window_ms)
            ));
        }
    }
    out
}

/// One line for the concept and the run: "the rehearsal in `test` (finished …): steps took
/// 12.5s, downtime 1.1s measured".
pub fn summary(r: &Rehearsed) -> String {
    format!(
        "the rehearsal in `{}` (finished {}): its steps took {}, downtime {}",
        r.env,
        crate::report::when(&r.finished_at),
        fmt(r.duration_ms),
        match r.downtime_ms {
            Some(ms) if r.measured => format!("{} measured by the probes", fmt(ms)),
            Some(ms) => format!("{} declared by the steps", fmt(ms)),
            None => "not known (a service still down when it ended)".into(),
        }
    )
}
