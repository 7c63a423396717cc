//! The points of M 2.319 a run proves: one [`Cell`] per [`Point`], read off the report's model
//! (the same latest attempts, verifications and verdict items the report shows), never from
//! the journal again. The fleet's matrix and the OSCAL export are these cells.
//!
//! A cell is `verified` only when the latest attempt of every step that proves its point holds
//! a passing result (a verification with exit 0, a drain that drained, a switch done), and no
//! item of the verdict fails that step. A state directory that does not verify turns every
//! `verified` into a finding.

use super::*;
use crate::kompendium::Point;
use serde::Serialize;

/// What a run shows for one point (the document model's [`Mark`](crate::doc::Mark)).
pub use crate::doc::Mark as CellState;

#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub point: Point,
    pub state: CellState,
    /// Why, in one sentence.
    pub text: String,
    /// The plan's steps that prove it.
    pub steps: Vec<String>,
}

/// How one step stands for a point.
enum Outcome {
    Ok(String),
    Bad(String),
    NotRun(String),
}

/// The points a step kind proves, and whether it can prove one (`true`) or only find against
/// it (`false`: `watch-old`, whose re-check finds writes the copy lost but proves no copy).
fn proves(kind: &StepKind) -> &'static [(Point, bool)] {
    match kind {
        StepKind::VerifyTree { .. } | StepKind::VerifyFiles { .. } => &[(Point::Data, true)],
        StepKind::WatchOld { .. } => &[(Point::Data, false)],
        StepKind::VerifyDb {
            exercise: Some(_), ..
        } => &[(Point::Data, true), (Point::NewVersion, true)],
        StepKind::VerifyDb { exercise: None, .. } => &[(Point::Data, true)],
        StepKind::VerifyConfig { .. } => &[(Point::Configuration, true)],
        StepKind::Compat { .. } | StepKind::CompatSql { .. } => &[(Point::Compatibility, true)],
        StepKind::VerifyKeys { .. } => &[(Point::Keys, true)],
        StepKind::DnsPropagated { .. }
        | StepKind::DnsTtl { .. }
        | StepKind::DnsSwitch { .. }
        | StepKind::AddressMoved { .. } => &[(Point::Names, true)],
        StepKind::Drain { .. } | StepKind::Switch { .. } => &[(Point::Connections, true)],
        StepKind::Manual { .. }
        | StepKind::Run { .. }
        | StepKind::Wait { .. }
        | StepKind::Sync { .. }
        | StepKind::Stop { .. }
        | StepKind::Start { .. }
        | StepKind::Health { .. }
        | StepKind::ScanRefs { .. }
        // Retiring the old side is an action after the copy is proved; its checks are in its
        // result's detail.
        | StepKind::RetireOld { .. } => &[],
    }
}

fn outcome(r: &Report, s: &Step, point: Point) -> Outcome {
    let failed = r
        .verdict
        .items
        .iter()
        .find(|i| i.level == Level::Failed && i.step.as_deref() == Some(s.id.as_str()));
    if let Some(i) = failed {
        return Outcome::Bad(i.text.clone());
    }
    let Some(a) = latest(&r.run, &s.id) else {
        return Outcome::NotRun(format!("`{}` has not run", s.id));
    };
    match a.result.as_deref() {
        Some("done") => {}
        Some(other) => {
            return Outcome::Bad(format!(
                "`{}` attempt {}: {}{}",
                s.id,
                a.attempt,
                other.replace('_', " "),
                a.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
        None => {
            return Outcome::NotRun(format!(
                "`{}` attempt {} has no end (running, or killed)",
                s.id, a.attempt
            ));
        }
    }
    if let Some(v) = &a.verification {
        if v.exit_code != 0 {
            return Outcome::Bad(format!(
                "`{}` attempt {}: {} finding(s)",
                s.id, a.attempt, v.findings_total
            ));
        }
        if point == Point::NewVersion {
            return match &v.exercise {
                Some(e) if e.error.is_none() && e.failed == 0 && e.unchanged => {
                    Outcome::Ok(format!(
                        "`{}`: {} operation(s) read, changed and added on the copy, rolled back, checksum unchanged",
                        s.id, e.operations
                    ))
                }
                Some(e) => Outcome::Bad(format!(
                    "`{}`: the exercise {}",
                    s.id,
                    e.error
                        .clone()
                        .unwrap_or_else(|| format!("failed {} operation(s)", e.failed))
                )),
                None => Outcome::Bad(format!("`{}` recorded no exercise", s.id)),
            };
        }
        return Outcome::Ok(format!("`{}` attempt {}: verified", s.id, a.attempt));
    }
    if let Some(d) = &a.drain {
        return if d.drained {
            Outcome::Ok(format!(
                "`{}`: no connection to `{}` remained",
                s.id, d.service
            ))
        } else {
            Outcome::Bad(format!(
                "`{}`: connections to `{}` remained",
                s.id, d.service
            ))
        };
    }
    match s.kind {
        // Done means proven: the switch probed the new upstream, the update was read back
        // from the primary.
        StepKind::Switch { .. } | StepKind::DnsSwitch { .. } => {
            Outcome::Ok(format!("`{}` attempt {}: done", s.id, a.attempt))
        }
        // It can only find against the point: lost writes are a failed verdict item of the
        // step (returned above); done without them is no finding (and proves nothing).
        StepKind::WatchOld { .. } => Outcome::Ok(format!("`{}` attempt {}: done", s.id, a.attempt)),
        _ => Outcome::Bad(format!(
            "`{}` attempt {} finished without a result this rehost reads",
            s.id, a.attempt
        )),
    }
}

/// Every point of M 2.319 for this run.
pub fn assess(r: &Report, plan: &Plan) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Point::ALL
        .iter()
        .map(|&point| match point {
            Point::Rehearsal => rehearsal(r, plan),
            Point::Rollback => rollback(r),
            _ => by_steps(r, plan, point),
        })
        .collect();
    if let Some(problem) = r.run.integrity.as_ref().and_then(|i| i.problems.first()) {
        for c in cells.iter_mut().filter(|c| c.state == CellState::Verified) {
            c.state = CellState::Finding;
            c.text = format!(
                "the state directory does not verify ({problem}): {}",
                c.text
            );
        }
    }
    cells
}

fn by_steps(r: &Report, plan: &Plan, point: Point) -> Cell {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut not_run = Vec::new();
    let mut steps = Vec::new();
    for s in &plan.steps {
        let by_kind = proves(&s.kind).iter().find(|(p, _)| *p == point);
        // Key files compared byte for byte by a tree or files verification that says it
        // verifies the `[[keys]]` entry.
        let by_bytes = point == Point::Keys
            && matches!(
                s.kind,
                StepKind::VerifyTree { .. } | StepKind::VerifyFiles { .. }
            )
            && plan.keys.iter().any(|k| {
                s.effects
                    .contains(&rehost_plan::Effect::Verifies(k.id.clone()))
            });
        let can_prove = match by_kind {
            Some(&(_, can)) => can,
            None if by_bytes => true,
            None => continue,
        };
        steps.push(s.id.clone());
        match outcome(r, s, point) {
            Outcome::Ok(t) if can_prove => ok.push(t),
            Outcome::Ok(_) => {}
            Outcome::Bad(t) => bad.push(t),
            Outcome::NotRun(t) if can_prove => not_run.push(t),
            Outcome::NotRun(_) => {}
        }
    }
    if point == Point::Keys {
        for k in &r.keys {
            if k.not_carried.is_some() || k.verdict.contains("missing") {
                bad.push(format!("key `{}`: {}", k.key, k.verdict));
            }
        }
    }
    let (state, texts) = if !bad.is_empty() {
        (CellState::Finding, bad)
    } else if !not_run.is_empty() {
        (CellState::NotRun, not_run)
    } else if !ok.is_empty() {
        (CellState::Verified, ok)
    } else {
        (
            CellState::NotApplicable,
            vec!["the plan has no step that proves it".into()],
        )
    };
    Cell {
        point,
        state,
        text: join(&texts),
        steps,
    }
}

/// At most three reasons, then how many more.
fn join(texts: &[String]) -> String {
    let mut s = texts.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    if texts.len() > 3 {
        s.push_str(&format!("; and {} more", texts.len() - 3));
    }
    s
}

fn rehearsal(r: &Report, plan: &Plan) -> Cell {
    let cell = |state, text: String| Cell {
        point: Point::Rehearsal,
        state,
        text,
        steps: Vec::new(),
    };
    if r.rehearsal {
        return match &r.run.finished {
            Some(f) if f.ok && r.verdict.level != Level::Failed => cell(
                CellState::Verified,
                format!(
                    "this run is the rehearsal in `{}`, finished {}",
                    r.env,
                    when(&f.at)
                ),
            ),
            Some(f) => cell(
                CellState::Finding,
                format!("the rehearsal in `{}`: {}", r.env, r.verdict.headline)
                    + if f.ok { "" } else { " (stopped)" },
            ),
            None => cell(
                CellState::Finding,
                format!("the rehearsal in `{}` did not finish", r.env),
            ),
        };
    }
    if plan.environments.is_empty() {
        return cell(
            CellState::NotApplicable,
            "the plan defines no test environment".into(),
        );
    }
    let rehearsals: Vec<&Comparison> = r
        .comparison
        .iter()
        .filter(|c| c.env != "production")
        .collect();
    if let Some(c) = rehearsals
        .iter()
        .find(|c| c.finished.as_ref().is_some_and(|f| f.ok) && c.failed.is_empty())
    {
        let at = c.finished.as_ref().map(|f| when(&f.at)).unwrap_or_default();
        return cell(
            CellState::Verified,
            format!(
                "rehearsed in `{}`, finished {at} with no failed step",
                c.env
            ),
        );
    }
    match rehearsals.first() {
        None => cell(
            CellState::NotRun,
            "no run of a test environment was found beside this one".into(),
        ),
        Some(c) if c.finished.is_none() => cell(
            CellState::Finding,
            format!("the rehearsal in `{}` did not finish", c.env),
        ),
        Some(c) => cell(
            CellState::Finding,
            format!(
                "the rehearsal in `{}` failed: {}",
                c.env,
                c.failed
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

fn rollback(r: &Report) -> Cell {
    let run = &r.run;
    let cell = |state, text: String, steps: Vec<String>| Cell {
        point: Point::Rollback,
        state,
        text,
        steps,
    };
    if run.rollbacks.is_empty() {
        let failed = failed_steps(run);
        return if failed.is_empty() && run.finished.is_none() {
            // A run under way (or waiting for a confirmation) may still roll back.
            cell(
                CellState::NotRun,
                "the run has not ended: nothing was rolled back so far".into(),
                Vec::new(),
            )
        } else if failed.is_empty() {
            cell(
                CellState::NotApplicable,
                "nothing needed rolling back".into(),
                Vec::new(),
            )
        } else {
            cell(
                CellState::Finding,
                format!(
                    "{} failed and no rollback ran",
                    failed
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                failed,
            )
        };
    }
    let failed: Vec<&RolledBackStep> = run
        .rollbacks
        .iter()
        .flat_map(|rb| rb.steps.iter())
        .filter(|s| !s.ok)
        .collect();
    let steps: Vec<String> = run
        .rollbacks
        .iter()
        .flat_map(|rb| rb.steps.iter().map(|s| s.id.clone()))
        .collect();
    if failed.is_empty() {
        let rb = run.rollbacks.last().expect("not empty");
        cell(
            CellState::Verified,
            format!(
                "rolled back after `{}` failed: {} step(s) undone, each successfully",
                rb.failed,
                rb.steps.len()
            ),
            steps,
        )
    } else {
        cell(
            CellState::Finding,
            format!(
                "the rollback of {} failed",
                failed
                    .iter()
                    .map(|s| format!("`{}`", s.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            steps,
        )
    }
}
