//! A run's history, folded from its journal: every attempt of every step in journal order and
//! what became of it (superseded by a rollback, rolled back), the rollbacks with the steps each
//! sent round again, the supersessions and the decisions taken by a flag.
//!
//! The one per-attempt fold: the report reads a run through it, and [`status`](crate::status)
//! counts a step's attempts with it, so `rehost status` and the report cannot count them apart.

use crate::journal::{OutputRef, Record, StepResult};
use crate::step_data::StepData;

/// One attempt of a step: from its start record (or, for one finished without starting, its
/// finish record) to its finish record, and what a rollback did to it afterwards.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub attempt: u32,
    pub started: String,
    /// `None` while it ran, or when it was killed.
    pub finished: Option<String>,
    pub result: Option<StepResult>,
    pub elapsed_ms: Option<u64>,
    pub detail: Option<String>,
    pub confirmed_by: Option<String>,
    pub exit_code: Option<i32>,
    pub output: Option<OutputRef>,
    pub result_data: Option<StepData>,
    /// A rollback after it undid what it relied on; a later attempt runs again.
    pub superseded: bool,
    /// Its rollback ran: whether it succeeded.
    pub rolled_back: Option<bool>,
}

/// The rollback of one step, within a [`Rollback`].
#[derive(Clone, Debug, PartialEq)]
pub struct RolledBackStep {
    pub at: String,
    pub id: String,
    pub ok: bool,
    pub detail: Option<String>,
    pub output: Option<OutputRef>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rollback {
    pub at: String,
    /// The failed step that started it (empty for a rolled-back step recorded without a start
    /// of the rollback, as journals before it had).
    pub failed: String,
    pub steps: Vec<RolledBackStep>,
    /// Every step the next run had to do again, in plan order: from the earliest step whose
    /// rollback ran through the failed one (rolled back, superseded or failed alike).
    pub again: Vec<String>,
    /// Those of them that a later attempt did run again.
    pub ran_again: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Supersession {
    pub at: String,
    pub from: String,
    pub steps: Vec<String>,
    pub failed: String,
}

/// A decision taken by a flag; an accepted plan change is one, with the digest it accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub at: String,
    pub what: String,
    pub detail: String,
    pub by: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Every attempt of every step in journal order, superseded ones included.
    pub attempts: Vec<Attempt>,
    pub rollbacks: Vec<Rollback>,
    pub supersessions: Vec<Supersession>,
    pub decisions: Vec<Decision>,
}

impl History {
    /// How many attempts step `id` had: the count `rehost status` and the report both give.
    pub fn count(&self, id: &str) -> u32 {
        self.attempts.iter().filter(|a| a.id == id).count() as u32
    }

    /// The latest attempt of step `id` that a rollback did not supersede.
    pub fn latest(&self, id: &str) -> Option<&Attempt> {
        self.attempts
            .iter()
            .rev()
            .find(|a| a.id == id && !a.superseded)
    }
}

/// Folds journal records into the history of a run of the steps `step_ids` (in plan order: the
/// order a rollback's steps to run again are listed in). Pure.
pub fn history(records: &[Record], step_ids: &[String]) -> History {
    let mut h = History::default();
    for r in records {
        match r {
            // The engine records the decision, then the digests it accepted: one decision.
            Record::PlanAccepted {
                at,
                plan_digest,
                by,
                ..
            } => match h.decisions.last_mut() {
                Some(d) if d.what == "accept-plan-change" => d
                    .detail
                    .push_str(&format!(" (plan digest from now on {plan_digest})")),
                _ => h.decisions.push(Decision {
                    at: at.clone(),
                    what: "accept-plan-change".into(),
                    detail: format!("plan digest from now on {plan_digest}"),
                    by: by.clone(),
                }),
            },
            Record::Decision {
                at,
                what,
                detail,
                by,
            } => h.decisions.push(Decision {
                at: at.clone(),
                what: what.clone(),
                detail: detail.clone(),
                by: by.clone(),
            }),
            Record::StepStarted { at, id, attempt } => h.attempts.push(started(id, *attempt, at)),
            Record::StepFinished {
                at,
                id,
                attempt,
                result,
                elapsed_ms,
                detail,
                confirmed_by,
                exit_code,
                output,
                result_data,
            } => {
                let i = match h
                    .attempts
                    .iter()
                    .rposition(|a| &a.id == id && a.attempt == *attempt)
                {
                    Some(i) => i,
                    // Finished without a start record (skip-interrupted, or not confirmed before
                    // starting): an attempt of no length.
                    None => {
                        h.attempts.push(started(id, *attempt, at));
                        h.attempts.len() - 1
                    }
                };
                let a = &mut h.attempts[i];
                a.finished = Some(at.clone());
                a.result = Some(result.clone());
                a.elapsed_ms = Some(*elapsed_ms);
                a.detail = detail.clone();
                a.confirmed_by = confirmed_by.clone();
                a.exit_code = *exit_code;
                a.output = output.clone();
                a.result_data = result_data.clone();
            }
            Record::RollbackStarted { at, failed } => h.rollbacks.push(Rollback {
                at: at.clone(),
                failed: failed.clone(),
                steps: Vec::new(),
                again: Vec::new(),
                ran_again: Vec::new(),
            }),
            Record::RolledBack {
                at,
                id,
                ok,
                detail,
                output,
            } => {
                if let Some(a) = h.attempts.iter_mut().rev().find(|a| &a.id == id) {
                    a.rolled_back = Some(*ok);
                }
                let step = RolledBackStep {
                    at: at.clone(),
                    id: id.clone(),
                    ok: *ok,
                    detail: detail.clone(),
                    output: output.clone(),
                };
                match h.rollbacks.last_mut() {
                    Some(rb) => rb.steps.push(step),
                    None => h.rollbacks.push(Rollback {
                        at: at.clone(),
                        failed: String::new(),
                        steps: vec![step],
                        again: Vec::new(),
                        ran_again: Vec::new(),
                    }),
                }
            }
            Record::Superseded {
                at,
                from,
                steps,
                failed,
            } => {
                for id in steps {
                    if let Some(a) = h.attempts.iter_mut().rev().find(|a| &a.id == id) {
                        a.superseded = true;
                    }
                }
                h.supersessions.push(Supersession {
                    at: at.clone(),
                    from: from.clone(),
                    steps: steps.clone(),
                    failed: failed.clone(),
                });
            }
            Record::RunStarted { .. }
            | Record::PlanSnapshot { .. }
            | Record::Warning { .. }
            | Record::Preflight { .. }
            | Record::ProbeStarted { .. }
            | Record::ProbeChanged { .. }
            | Record::ProbeSummary { .. }
            | Record::OldSideRechecked { .. }
            | Record::ReadOnlyRechecked { .. }
            | Record::LoadStarted { .. }
            | Record::LoadStopped { .. }
            | Record::LoadChecked { .. }
            | Record::RunFinished { .. } => {}
        }
    }
    again_after_rollbacks(records, step_ids, &mut h.rollbacks);
    h
}

fn started(id: &str, attempt: u32, at: &str) -> Attempt {
    Attempt {
        id: id.to_owned(),
        attempt,
        started: at.to_owned(),
        finished: None,
        result: None,
        elapsed_ms: None,
        detail: None,
        confirmed_by: None,
        exit_code: None,
        output: None,
        result_data: None,
        superseded: false,
        rolled_back: None,
    }
}

/// For each rollback: the steps the next run had to do again (from the earliest step whose
/// rollback ran through the failed one), and those a later attempt ran.
fn again_after_rollbacks(records: &[Record], step_ids: &[String], rollbacks: &mut [Rollback]) {
    let index = |id: &str| step_ids.iter().position(|s| s == id);
    let starts: Vec<usize> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| matches!(r, Record::RollbackStarted { .. }).then_some(i))
        .collect();
    for (rb, &i) in rollbacks
        .iter_mut()
        .filter(|rb| !rb.failed.is_empty())
        .zip(&starts)
    {
        let Some(failed) = index(&rb.failed) else {
            continue;
        };
        let from = rb
            .steps
            .iter()
            .filter_map(|s| index(&s.id))
            .min()
            .unwrap_or(failed)
            .min(failed);
        rb.again = step_ids[from..=failed].to_vec();
        rb.ran_again = rb
            .again
            .iter()
            .filter(|id| {
                records[i..].iter().any(|r| match r {
                    Record::StepStarted { id: s, .. } => s == *id,
                    // Counted as done by the operator (--skip-interrupted) without a start.
                    Record::StepFinished { id: s, .. } => s == *id,
                    _ => false,
                })
            })
            .cloned()
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{StepStatus, status};

    fn at(s: u32) -> String {
        format!("2026-12-05T21:00:{s:02}Z")
    }

    fn start(s: u32, id: &str, attempt: u32) -> Record {
        Record::StepStarted {
            at: at(s),
            id: id.into(),
            attempt,
        }
    }

    fn finish(s: u32, id: &str, attempt: u32, result: StepResult) -> Record {
        Record::StepFinished {
            at: at(s),
            id: id.into(),
            attempt,
            result,
            elapsed_ms: 1000,
            detail: None,
            confirmed_by: None,
            exit_code: None,
            output: None,
            result_data: None,
        }
    }

    /// A rollback after `flaky` failed, a rerun whose point of no return (`start`) nobody
    /// confirmed, and a third run.
    fn records() -> Vec<Record> {
        vec![
            start(0, "stop", 1),
            finish(1, "stop", 1, StepResult::Done),
            start(2, "flaky", 1),
            finish(3, "flaky", 1, StepResult::Failed),
            Record::RollbackStarted {
                at: at(4),
                failed: "flaky".into(),
            },
            Record::RolledBack {
                at: at(5),
                id: "stop".into(),
                ok: true,
                detail: None,
                output: None,
            },
            Record::Superseded {
                at: at(6),
                from: "stop".into(),
                steps: vec!["stop".into()],
                failed: "flaky".into(),
            },
            start(10, "stop", 2),
            finish(11, "stop", 2, StepResult::Done),
            start(12, "flaky", 2),
            finish(13, "flaky", 2, StepResult::Done),
            // Not confirmed at the prompt: finished without a start.
            finish(14, "start", 1, StepResult::NotConfirmed),
            start(20, "start", 2),
            finish(21, "start", 2, StepResult::Done),
        ]
    }

    fn ids() -> Vec<String> {
        ["stop", "flaky", "start"].map(String::from).to_vec()
    }

    #[test]
    fn attempts_rollbacks_and_what_ran_again() {
        let h = history(&records(), &ids());
        let seen: Vec<_> = h
            .attempts
            .iter()
            .map(|a| {
                (
                    a.id.as_str(),
                    a.attempt,
                    a.result.clone(),
                    a.superseded,
                    a.rolled_back,
                )
            })
            .collect();
        use StepResult::*;
        assert_eq!(
            seen,
            [
                ("stop", 1, Some(Done), true, Some(true)),
                ("flaky", 1, Some(Failed), false, None),
                ("stop", 2, Some(Done), false, None),
                ("flaky", 2, Some(Done), false, None),
                ("start", 1, Some(NotConfirmed), false, None),
                ("start", 2, Some(Done), false, None),
            ]
        );
        assert_eq!(h.rollbacks.len(), 1);
        assert_eq!(h.rollbacks[0].again, ["stop", "flaky"]);
        assert_eq!(h.rollbacks[0].ran_again, ["stop", "flaky"]);
        assert_eq!(h.supersessions.len(), 1);
        assert_eq!(h.latest("stop").map(|a| a.attempt), Some(2));
        assert_eq!(
            h.latest("start").map(|a| a.result.clone()),
            Some(Some(Done))
        );
    }

    /// `status` counts a step's attempts as the history lists them, the unconfirmed prompt
    /// included (its next run is numbered after it).
    #[test]
    fn status_counts_the_attempts_the_history_lists() {
        let records = records();
        let h = history(&records, &ids());
        let st = status(&records, &ids());
        for s in &st.steps {
            assert_eq!(s.attempts, h.count(&s.id), "{}", s.id);
            assert_eq!(s.status, StepStatus::Done, "{}", s.id);
        }
        assert_eq!(
            st.steps.iter().map(|s| s.attempts).collect::<Vec<_>>(),
            [2, 2, 2]
        );
        // Before the third run: waiting for confirmation, one attempt.
        let st = status(&records[..12], &ids());
        assert_eq!(st.steps[2].status, StepStatus::WaitingForConfirmation);
        assert_eq!(st.steps[2].attempts, 1);
    }
}
