//! The state of each step, folded from a run's journal. `rehost status`, resume and the report
//! read this; a step's attempts are counted by the per-attempt fold ([`crate::attempts`]).

use crate::journal::Record;
use crate::journal::StepResult;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Started and not finished: the run was killed or interrupted during it.
    Interrupted,
    Done,
    /// A person was asked to confirm it and nobody did (Ctrl-C at the prompt, or `no`): not a
    /// failure; the next run asks again, without any flag.
    WaitingForConfirmation,
    Failed,
    Skipped,
    RolledBack,
    /// It finished in an earlier attempt, but a rollback after it undid what it relied on (the
    /// old service ran again and took writes): it runs again.
    Superseded,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepState {
    pub id: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub elapsed_ms: Option<u64>,
    pub confirmed_by: Option<String>,
    pub detail: Option<String>,
    pub exit_code: Option<i32>,
    /// How many of its attempts a rollback superseded.
    pub superseded: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunState {
    pub started: Option<String>,
    pub plan_digest: Option<String>,
    /// The snapshot of the plan text in force, relative to the state directory (`None` for a
    /// journal from before snapshots).
    pub plan_file: Option<String>,
    /// The step digests in force (from the start or the last accepted change).
    pub step_digests: Vec<(String, String)>,
    pub steps: Vec<StepState>,
    pub finished: Option<(bool, String)>,
    pub decisions: Vec<(String, String, String)>,
}

/// Folds journal records into the state of each of `step_ids`.
pub fn status(records: &[Record], step_ids: &[String]) -> RunState {
    let mut steps: Vec<StepState> = step_ids
        .iter()
        .map(|id| StepState {
            id: id.clone(),
            status: StepStatus::Pending,
            attempts: 0,
            started: None,
            finished: None,
            elapsed_ms: None,
            confirmed_by: None,
            detail: None,
            exit_code: None,
            superseded: 0,
        })
        .collect();
    let mut st = RunState {
        started: None,
        plan_digest: None,
        plan_file: None,
        step_digests: Vec::new(),
        steps: Vec::new(),
        finished: None,
        decisions: Vec::new(),
    };
    for r in records {
        match r {
            Record::RunStarted {
                at,
                plan_digest,
                steps: d,
                plan_file,
                ..
            } => {
                st.started.get_or_insert_with(|| at.clone());
                st.plan_digest = Some(plan_digest.clone());
                st.plan_file = plan_file.clone();
                st.step_digests = d.clone();
                st.finished = None;
            }
            Record::PlanSnapshot {
                plan_digest,
                plan_file,
                ..
            } => {
                st.plan_digest = Some(plan_digest.clone());
                st.plan_file = Some(plan_file.clone());
            }
            Record::PlanAccepted {
                plan_digest,
                steps: d,
                plan_file,
                ..
            } => {
                st.plan_digest = Some(plan_digest.clone());
                st.plan_file = plan_file.clone();
                st.step_digests = d.clone();
            }
            Record::Decision {
                what, detail, by, ..
            } => st
                .decisions
                .push((what.clone(), detail.clone(), by.clone())),
            Record::StepStarted { at, id, attempt } => {
                if let Some(s) = steps.iter_mut().find(|s| &s.id == id) {
                    s.status = StepStatus::Interrupted;
                    s.attempts = *attempt;
                    s.started = Some(at.clone());
                    s.finished = None;
                    s.elapsed_ms = None;
                    // What an earlier attempt ended with is not this attempt's (an interrupted
                    // step showed the previous attempt's failure).
                    s.detail = None;
                    s.exit_code = None;
                    s.confirmed_by = None;
                    st.finished = None;
                }
            }
            Record::StepFinished {
                at,
                id,
                attempt,
                result,
                elapsed_ms,
                detail,
                confirmed_by,
                exit_code,
                ..
            } => {
                if let Some(s) = steps.iter_mut().find(|s| &s.id == id) {
                    // One finished without a start (not confirmed before it started) counts.
                    s.attempts = s.attempts.max(*attempt);
                    s.status = match result {
                        StepResult::Done => StepStatus::Done,
                        StepResult::Failed => StepStatus::Failed,
                        StepResult::Skipped => StepStatus::Skipped,
                        StepResult::Interrupted => StepStatus::Interrupted,
                        StepResult::NotConfirmed => StepStatus::WaitingForConfirmation,
                    };
                    s.finished = Some(at.clone());
                    s.elapsed_ms = Some(*elapsed_ms);
                    s.detail = detail.clone();
                    s.confirmed_by = confirmed_by.clone();
                    s.exit_code = *exit_code;
                }
            }
            Record::RolledBack { id, ok, detail, .. } => {
                if let Some(s) = steps.iter_mut().find(|s| &s.id == id)
                    && *ok
                {
                    s.status = StepStatus::RolledBack;
                    s.detail = detail.clone();
                }
            }
            Record::Superseded {
                steps: ids, failed, ..
            } => {
                for s in steps.iter_mut().filter(|s| ids.contains(&s.id)) {
                    s.status = StepStatus::Superseded;
                    s.superseded = s.attempts;
                    s.detail = Some(format!(
                        "superseded by the rollback after step `{failed}` failed; it runs again"
                    ));
                }
            }
            Record::RunFinished { ok, summary, .. } => st.finished = Some((*ok, summary.clone())),
            Record::RollbackStarted { .. }
            | Record::Warning { .. }
            | Record::Preflight { .. }
            | Record::ProbeStarted { .. }
            | Record::ProbeChanged { .. }
            | Record::ProbeSummary { .. }
            | Record::OldSideRechecked { .. }
            | Record::ReadOnlyRechecked { .. }
            | Record::LoadStarted { .. }
            | Record::LoadStopped { .. }
            | Record::LoadChecked { .. } => {}
        }
    }
    // How many attempts each step had, as the report counts them: from the one per-attempt fold.
    let history = crate::attempts::history(records, step_ids);
    for s in &mut steps {
        s.attempts = history.count(&s.id);
    }
    st.steps = steps;
    st
}

impl RunState {
    /// The first step that still has to run (not done nor skipped).
    pub fn next(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| !matches!(s.status, StepStatus::Done | StepStatus::Skipped))
    }
}
