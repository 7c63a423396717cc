//! After a failed step: the plan's `on_failure` policy, and the rollback it asks for — the
//! failed step's rollback and those of every finished step before it, in reverse order of
//! completion, each recorded with its output; then the finished steps after the earliest
//! rolled-back one are superseded, so the next run does them again.

use crate::EngineError;
use crate::events::Event;
use crate::exec::{Confirmer, Ctx, Hosts, run_command};
use crate::recorder::{OutputFile, Recorder, sanitize};
use rehost_journal::journal::Record;
use rehost_journal::state::StepStatus;
use rehost_plan::{OnFailure, Plan, Step};
use rehost_tree::private::PrivateDir;
use std::sync::atomic::AtomicBool;

/// What a rollback works with.
pub(crate) struct Env<'r, 'a> {
    pub plan: &'r Plan,
    /// The rehearsal environment, `None` in production.
    pub env: Option<&'r str>,
    pub state: &'r PrivateDir,
    pub hosts: &'r mut Hosts,
    pub rec: &'r mut Recorder<'a>,
    pub cancel: &'r AtomicBool,
}

/// Rollback commands are not confirmed by anyone.
struct NoConfirmer;

impl Confirmer for NoConfirmer {
    fn confirm(&mut self, _step: &Step, _text: &str, _pnr: bool) -> Result<String, String> {
        Ok(String::new())
    }
}

/// Applies the failure policy to the step at `failed` whose failure is `detail`: rolls back
/// where the plan says so and the step is not past the point of no return. Returns why the
/// run stopped and what the operator does next.
pub(crate) fn after_failure(
    env: &mut Env,
    failed: usize,
    statuses: &[StepStatus],
    detail: String,
) -> Result<String, EngineError> {
    let plan = env.plan;
    let step = &plan.steps[failed];
    let policy = step.on_failure.unwrap_or(plan.migration.on_failure);
    let pnr = plan
        .migration
        .point_of_no_return
        .as_ref()
        .and_then(|p| plan.step_index(&p.value));
    Ok(
        if policy == OnFailure::Rollback && pnr.is_none_or(|p| failed <= p) {
            let (n, from) = rollback(env, failed, statuses)?;
            // Every step the next run does again: from the earliest rolled-back step through
            // the failed one (rolled back, superseded or failed alike).
            let again = match from {
                Some(from) => format!(
                    "; the next run does again {}",
                    plan.steps[from..=failed]
                        .iter()
                        .map(|s| format!("`{}`", s.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => String::new(),
            };
            if n == 0 && from.is_none() {
                format!(
                    "{detail}; no earlier step had finished, so nothing was rolled back. Fix the cause, then run again to retry from this step"
                )
            } else if n == 0 {
                format!(
                    "{detail}; NOT rolled back: every rollback that ran failed (each named above){again}. Undo by hand what they name, fix the cause, then `rehost run` starts again from the first step whose rollback ran"
                )
            } else {
                format!(
                    "{detail}; rolled back {n} step(s) in reverse order{again}. Fix the cause, then `rehost run` starts again from the first rolled-back step"
                )
            }
        } else if policy == OnFailure::Rollback {
            format!(
                "{detail}; no rollback: the step is past the point of no return. Fix the cause on the host and run again to retry from this step"
            )
        } else {
            format!("{detail}. Fix the cause, then run again to retry from this step")
        },
    )
}

/// How one step was undone: its plan's `rollback` command, or its kind's own rollback.
enum Rollback<C> {
    Command(Result<C, String>),
    Builtin(Result<String, String>),
}

/// Runs the rollbacks of the failed step and of every finished step before it, in reverse
/// order, recording each. Returns how many rollbacks succeeded, and the earliest step whose
/// rollback ran, where the next run starts again (the finished steps after it are sent round
/// again by a `superseded` record).
///
/// Those steps must run again: once the old side is back (its service restarted by the
/// rollback), it takes writes that the final sync, the dump and the verifications before the
/// failure never saw. Resuming only the rolled-back steps would end "done" with a stale copy.
fn rollback(
    env: &mut Env,
    failed: usize,
    statuses: &[StepStatus],
) -> Result<(usize, Option<usize>), EngineError> {
    let plan = env.plan;
    let order: Vec<usize> = (0..=failed)
        .rev()
        .filter(|&j| j == failed || statuses[j] == StepStatus::Done)
        .filter(|&j| {
            plan.steps[j].rollback.is_some()
                || crate::steps::builtin_rollback(&plan.steps[j]).is_some()
        })
        .collect();
    let at = env.rec.now();
    env.rec.record(
        Record::RollbackStarted {
            at,
            failed: plan.steps[failed].id.clone(),
        },
        Event::RollbackStarted {
            failed: plan.steps[failed].id.clone(),
            steps: order.iter().map(|&j| plan.steps[j].id.clone()).collect(),
        },
    )?;
    let mut ok_count = 0;
    let mut undone = Vec::new();
    for &j in &order {
        let step = &plan.steps[j];
        let host = step.host.clone().unwrap_or_default();
        // Kept as evidence, like a step's output; numbered, as a step can be rolled back more
        // than once (a failed rollback leaves it done, and the next failure rolls back again).
        let n = env
            .rec
            .records()
            .iter()
            .filter(|r| matches!(r, Record::RolledBack { id, .. } if *id == step.id))
            .count()
            + 1;
        let name = format!("{:04}-{}.rollback-{n}.log", j + 1, sanitize(&step.id));
        let outputs = env
            .state
            .subdir("output", true)
            .map_err(EngineError::from_private)?
            .expect("created");
        let mut out = OutputFile::create(&outputs, &name)?;
        let mut tail = Vec::new();
        let result = {
            let clock = env.rec.clock;
            let (records, mut relay) = env.rec.records_and_sink();
            let sink = &mut relay;
            let mut ctx = Ctx {
                plan,
                env: env.env,
                state_dir: env.state.path(),
                state: env.state,
                hosts: &mut *env.hosts,
                sink,
                records: &records,
                clock,
                cancel: env.cancel,
                output: &mut out,
                confirmer: &mut NoConfirmer,
                tail: &mut tail,
                attempt: 0,
            };
            match (&step.rollback, crate::steps::builtin_rollback(step)) {
                (Some(command), _) => {
                    Rollback::Command(run_command(&mut ctx, step, &host, command, None))
                }
                (None, Some(undo)) => Rollback::Builtin(undo(&mut ctx, step)),
                (None, None) => unreachable!("filtered: a command or the kind's own rollback"),
            }
        };
        let (ok, detail) = match result {
            Rollback::Command(Ok(o)) if o.exit.code == Some(0) => (true, None),
            Rollback::Command(Ok(o)) => (
                false,
                Some(format!(
                    "the rollback command ended with {} on host {host}",
                    o.exit
                )),
            ),
            Rollback::Command(Err(e)) => (false, Some(e)),
            Rollback::Builtin(Ok(done)) => (true, Some(done)),
            Rollback::Builtin(Err(why)) => (false, Some(why)),
        };
        if ok {
            ok_count += 1;
            undone.push(j);
        }
        let output = out.finish(&tail);
        let at = env.rec.now();
        env.rec.record(
            Record::RolledBack {
                at,
                id: step.id.clone(),
                ok,
                detail: detail.clone(),
                output,
            },
            Event::RolledBack {
                id: step.id.clone(),
                ok,
                detail,
            },
        )?;
    }
    // The earliest step whose rollback ran (even if it failed: the operator fixes that too,
    // and running the steps after it again never loses data). Steps rolled back stay
    // "rolled back"; the others in between are superseded.
    let Some(&from) = order.last() else {
        return Ok((ok_count, None));
    };
    let again: Vec<String> = (from..failed)
        .filter(|&j| matches!(statuses[j], StepStatus::Done | StepStatus::Skipped))
        .filter(|j| !undone.contains(j))
        .map(|j| plan.steps[j].id.clone())
        .collect();
    if !again.is_empty() {
        let at = env.rec.now();
        env.rec.append(Record::Superseded {
            at,
            from: plan.steps[from].id.clone(),
            steps: again.clone(),
            failed: plan.steps[failed].id.clone(),
        })?;
    }
    Ok((ok_count, Some(from)))
}
