//! Step executors, one module per kind, each behind one contract: an [`Executor`] takes the
//! run's context (`exec::Ctx`: the plan, the hosts, the event sink, the output file, the
//! confirmer, cancellation, the attempt) and the step, and returns an `Outcome` the engine
//! records; it also says what the pre-flight must check on hosts before the run starts
//! ([`Need`]). [`EXECUTORS`] is the registry, one line per kind; a test fails when it and the
//! plan's registry (`rehost_plan::KINDS`) disagree.

use crate::EngineError;
use crate::exec::{Ctx, Outcome};
use rehost_plan::{Step, SyncMethod};

mod health;
mod manual;
mod run;
mod service;
mod start;
mod stop;
mod sync;
pub use sync::rate;
mod verify_db;
mod verify_tree;
mod wait;

/// The registry: every step kind's executor, one line each.
pub(crate) static EXECUTORS: &[&Executor] = &[
    &manual::EXECUTOR,
    &run::EXECUTOR,
    &wait::EXECUTOR,
    &sync::EXECUTOR,
    &verify_tree::EXECUTOR,
    &stop::EXECUTOR,
    &start::EXECUTOR,
    &health::EXECUTOR,
    &verify_db::EXECUTOR,
];

/// One step kind's executor.
pub(crate) struct Executor {
    /// The kind's name, as in `rehost_plan::KINDS`.
    pub kind: &'static str,
    /// Runs the step. Errors are for what stops the run (not confirmed); a step that fails is
    /// `Ok(Outcome::Failed)`.
    pub execute: fn(&mut Ctx, &Step) -> Result<Outcome, EngineError>,
    /// What the step needs of its hosts, checked by the pre-flight before the first step runs
    /// (besides its `host` being reachable, which holds for every step).
    pub needs: for<'s> fn(&'s Step) -> Vec<Need<'s>>,
}

/// What a step needs of the hosts before the run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need<'s> {
    /// The data set's source tree exists (unless a step still to come creates it).
    ReadsData { data: &'s str },
    /// The data set is copied: its source exists, its destination has room, and rsync runs on
    /// both ends if that is the method.
    CopiesData { data: &'s str, method: SyncMethod },
}

/// The names of the kinds that have an executor, in registry order.
pub fn kinds() -> Vec<&'static str> {
    EXECUTORS.iter().map(|e| e.kind).collect()
}

fn executor(step: &Step) -> Option<&'static Executor> {
    let name = step.kind.name();
    EXECUTORS.iter().copied().find(|e| e.kind == name)
}

/// Executes a step with its kind's executor.
pub(crate) fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    match executor(step) {
        Some(e) => (e.execute)(ctx, step),
        None => crate::exec::failed(format!(
            "step kind `{}` has no executor in this rehost (steps/mod.rs)",
            step.kind.name()
        )),
    }
}

/// What a step needs of its hosts before the run (see [`Need`]).
pub(crate) fn needs(step: &Step) -> Vec<Need<'_>> {
    executor(step).map(|e| (e.needs)(step)).unwrap_or_default()
}

#[cfg(test)]
mod tests;
