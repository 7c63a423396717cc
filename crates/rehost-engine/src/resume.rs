//! Resuming from the journal: the plan as run (its snapshot, and whether it changed since the
//! run started), and what to do with a step an earlier run left interrupted.

use crate::EngineError;
use crate::events::Event;
use crate::recorder::Recorder;
use crate::run::RunOptions;
use rehost_journal::StepResult;
use rehost_journal::journal::Record;
use rehost_journal::state::{RunState, StepStatus};
use rehost_plan::{Plan, Step};
use rehost_tree::private::PrivateDir;

/// The digest of a step's definition, independent of where it sits in the file.
pub(crate) fn step_digest(s: &Step) -> String {
    let canonical = serde_json::json!({
        "title": s.title, "kind": s.kind, "host": s.host,
        "after": s.after.iter().map(|a| &a.value).collect::<Vec<_>>(),
        "timeout": s.timeout.map(|t| t.as_millis() as u64), "rollback": s.rollback,
        "idempotent": s.idempotent, "needs_window": s.needs_window, "on_failure": s.on_failure,
        "effects": s.effects,
    });
    blake3::hash(canonical.to_string().as_bytes()).to_hex()[..16].to_string()
}

fn describe_changes(old: &[(String, String)], new: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    for (id, d) in new {
        match old.iter().find(|(o, _)| o == id) {
            None => parts.push(format!("step `{id}` added")),
            Some((_, od)) if od != d => parts.push(format!("step `{id}` changed")),
            _ => {}
        }
    }
    for (id, _) in old {
        if !new.iter().any(|(n, _)| n == id) {
            parts.push(format!("step `{id}` removed"));
        }
    }
    let old_order: Vec<&String> = old
        .iter()
        .map(|(i, _)| i)
        .filter(|i| new.iter().any(|(n, _)| n == *i))
        .collect();
    let new_order: Vec<&String> = new
        .iter()
        .map(|(i, _)| i)
        .filter(|i| old.iter().any(|(o, _)| o == *i))
        .collect();
    if parts.is_empty() && old_order != new_order {
        parts.push("steps reordered".into());
    }
    parts.join(", ")
}

/// What a run starts from.
pub(crate) struct Start<'p> {
    pub plan: &'p Plan,
    pub plan_text: &'p str,
    pub env: &'p str,
    /// Who started the run, where from.
    pub operator_host: String,
    pub terminal: String,
}

/// Records the start of a run, or, resuming one, checks the plan against the one the run
/// started with: a changed step needs `--accept-plan-change` (recorded). The plan text is kept
/// whenever it is new to the state directory. Returns whether the run resumes.
pub(crate) fn begin(
    rec: &mut Recorder,
    state: &PrivateDir,
    o: &RunOptions,
    start: Start,
    prior: &RunState,
) -> Result<bool, EngineError> {
    let digests: Vec<(String, String)> = start
        .plan
        .steps
        .iter()
        .map(|s| (s.id.clone(), step_digest(s)))
        .collect();
    let plan_digest = rehost_plan::digest(start.plan_text);
    let resumed = prior.started.is_some();
    if !resumed {
        let plan_file = snapshot_plan(state, start.plan_text, &plan_digest)?;
        let at = rec.now();
        rec.append(Record::RunStarted {
            at,
            plan_digest: plan_digest.clone(),
            env: start.env.to_owned(),
            steps: digests.clone(),
            user: o.user.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            plan_file: Some(plan_file),
            operator_host: Some(start.operator_host),
            terminal: Some(start.terminal),
        })?;
    } else if prior.step_digests != digests {
        let changes = describe_changes(&prior.step_digests, &digests);
        if !o.accept_plan_change {
            return Err(EngineError::PlanChanged { changes });
        }
        rec.decision(&o.user, "accept-plan-change", &changes)?;
        let plan_file = snapshot_plan(state, start.plan_text, &plan_digest)?;
        let at = rec.now();
        rec.append(Record::PlanAccepted {
            at,
            plan_digest: plan_digest.clone(),
            steps: digests.clone(),
            by: o.user.clone(),
            plan_file: Some(plan_file),
        })?;
    } else if prior.plan_digest.as_deref() != Some(plan_digest.as_str())
        || prior.plan_file.is_none()
    {
        // The text changed where no step did, or an older rehost kept no snapshot: the
        // plan as run from now on is kept too.
        let plan_file = snapshot_plan(state, start.plan_text, &plan_digest)?;
        let at = rec.now();
        rec.append(Record::PlanSnapshot {
            at,
            plan_digest: plan_digest.clone(),
            plan_file,
        })?;
    }
    Ok(resumed)
}

/// What to do with a step whose status the journal gives.
pub(crate) enum Resume {
    /// Run it (again).
    Run,
    /// Leave it: done, skipped, or counted as done by the operator now.
    Pass,
}

/// A step an earlier run finished is passed over; one it left interrupted runs again if it is
/// idempotent, and otherwise only on the operator's recorded decision (`--retry-interrupted`,
/// or `--skip-interrupted`, which records it as skipped).
pub(crate) fn decide(
    rec: &mut Recorder,
    o: &RunOptions,
    step: &Step,
    index: usize,
    status: &StepStatus,
    attempt: u32,
) -> Result<Resume, EngineError> {
    match status {
        StepStatus::Done | StepStatus::Skipped => Ok(Resume::Pass),
        // A manual step does nothing but ask: left at its prompt (rehost killed while it
        // waited), it asks again, as one nobody answered does.
        StepStatus::Interrupted if matches!(step.kind, rehost_plan::StepKind::Manual { .. }) => {
            rec.emit(&Event::Warning {
                message: format!(
                    "step `{}` was waiting for confirmation when an earlier run ended; it asks again",
                    step.id
                ),
            });
            Ok(Resume::Run)
        }
        StepStatus::Interrupted if !step.idempotent => {
            if o.skip_interrupted {
                rec.decision(
                    &o.user,
                    "skip-interrupted",
                    &format!("step `{}` counted as done", step.id),
                )?;
                let at = rec.now();
                rec.record(
                    Record::StepFinished {
                        at,
                        id: step.id.clone(),
                        attempt,
                        result: StepResult::Skipped,
                        elapsed_ms: 0,
                        detail: Some(
                            "interrupted earlier; the operator counted it as done (--skip-interrupted)"
                                .into(),
                        ),
                        confirmed_by: Some(o.user.clone()),
                        exit_code: None,
                        output: None,
                        result_data: None,
                    },
                    Event::StepFinished {
                        index,
                        id: step.id.clone(),
                        result: StepResult::Skipped,
                        elapsed_ms: 0,
                        detail: Some(
                            "interrupted earlier; counted as done (--skip-interrupted)".into(),
                        ),
                        confirmed_by: None,
                    },
                )?;
                Ok(Resume::Pass)
            } else if o.retry_interrupted {
                rec.decision(
                    &o.user,
                    "retry-interrupted",
                    &format!("step `{}` runs again", step.id),
                )?;
                Ok(Resume::Run)
            } else {
                Err(EngineError::Interrupted {
                    step: step.id.clone(),
                    kind: step.kind.name().into(),
                })
            }
        }
        StepStatus::Interrupted => {
            rec.emit(&Event::Warning {
                message: format!(
                    "step `{}` was interrupted in an earlier run; it is idempotent, so it runs again",
                    step.id
                ),
            });
            Ok(Resume::Run)
        }
        _ => Ok(Resume::Run),
    }
}

/// Where the state directory keeps the plan text whose BLAKE3 digest is `digest`.
pub fn plan_snapshot_name(digest: &str) -> String {
    format!("plans/{digest}.toml")
}

/// Keeps the plan text in the state directory (content-addressed, 0600), so a report can be
/// rebuilt when the plan file has changed or is gone. Returns its name there.
fn snapshot_plan(state: &PrivateDir, text: &str, digest: &str) -> Result<String, EngineError> {
    let plans = state
        .subdir("plans", true)
        .map_err(EngineError::from_private)?
        .expect("created");
    let name = format!("{digest}.toml");
    plans
        .write_atomic(&name, true, &mut |w| w.write_all(text.as_bytes()))
        .map_err(EngineError::from_private)?;
    Ok(plan_snapshot_name(digest))
}
