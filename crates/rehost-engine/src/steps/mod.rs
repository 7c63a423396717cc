//! Step executors, one module per kind, each behind one contract: an `Executor` takes the
//! run's context (`exec::Ctx`: the plan, the hosts, the event sink, the output file, the
//! confirmer, cancellation, the attempt) and the step, and returns an `Outcome` the engine
//! records; it also says what the pre-flight must check on hosts before the run starts
//! (`Need`). `EXECUTORS` is the registry, one line per kind; a test fails when it and the
//! plan's registry (`rehost_plan::KINDS`) disagree.

use crate::EngineError;
use crate::exec::{Ctx, Outcome};
use rehost_plan::{Command, Plan, Step, SyncMethod};

mod address_moved;
mod compat;
mod compat_sql;
mod dns_propagated;
mod dns_switch;
mod dns_ttl;
mod drain;
mod health;
mod manual;
pub(crate) mod retire_old;
mod run;
mod scan_refs;
mod service;
mod start;
mod stop;
mod switch;
mod sync;
pub use sync::rate;
mod verify_config;
mod verify_db;
mod verify_files;
mod verify_keys;
mod verify_tree;
mod wait;
pub(crate) mod watch_old;

/// The registry: every step kind's executor, one line each.
pub(crate) static EXECUTORS: &[&Executor] = &[
    &manual::EXECUTOR,
    &run::EXECUTOR,
    &wait::EXECUTOR,
    &sync::EXECUTOR,
    &verify_tree::EXECUTOR,
    &watch_old::EXECUTOR,
    &retire_old::EXECUTOR,
    &stop::EXECUTOR,
    &start::EXECUTOR,
    &health::EXECUTOR,
    &verify_db::EXECUTOR,
    &verify_files::EXECUTOR,
    &verify_keys::EXECUTOR,
    &drain::EXECUTOR,
    &scan_refs::EXECUTOR,
    &address_moved::EXECUTOR,
    &switch::EXECUTOR,
    &dns_propagated::EXECUTOR,
    &dns_switch::EXECUTOR,
    &dns_ttl::EXECUTOR,
    &verify_config::EXECUTOR,
    &compat::EXECUTOR,
    &compat_sql::EXECUTOR,
];

/// A kind's own rollback of a finished step: `Ok` says what was done (for the journal), `Err`
/// why it could not be undone.
pub(crate) type Undo = fn(&mut Ctx, &Step) -> Result<String, String>;

/// One step kind's executor.
pub(crate) struct Executor {
    /// The kind's name, as in `rehost_plan::KINDS`.
    pub kind: &'static str,
    /// Runs the step. Errors are for what stops the run (not confirmed); a step that fails is
    /// `Ok(Outcome::Failed)`.
    pub execute: fn(&mut Ctx, &Step) -> Result<Outcome, EngineError>,
    /// What the step needs of its hosts, checked by the pre-flight before the first step runs
    /// (besides its `host` being reachable, which holds for every step).
    pub needs: for<'s> fn(&'s Plan, &'s Step) -> Vec<Need<'s>>,
    /// Undoes a finished step when the plan gives it no `rollback` command (`Ok`: what was
    /// done, for the journal; `Err`: why it could not be undone). The kind's `KindSpec`
    /// describes it (`builtin_rollback`).
    pub rollback: Option<Undo>,
}

/// What a step needs of the hosts before the run starts: every resource it will touch, so
/// that what would fail mid-window fails the day before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Need<'s> {
    /// The data set's source tree exists (unless a step still to come creates it).
    ReadsData { data: &'s str },
    /// The data set is copied: its source exists, its destination has room, and rsync runs on
    /// both ends if that is the method.
    CopiesData { data: &'s str, method: SyncMethod },
    /// The command's first program is found on the host (`command -v` through its shell);
    /// `what` names the command in messages (`command`, `rollback`, `stop command`).
    Runs {
        host: String,
        command: Command,
        what: &'static str,
    },
    /// A systemd unit the step's command names exists on the host (`systemctl cat`).
    Unit { host: String, unit: String },
    /// A name the step connects to (a health URL's) resolves on the host (`getent hosts`).
    Resolves { host: String, name: String },
    /// The database answers from its `from` (or `to`) host: the client is there, it connects,
    /// the server says its version.
    Database { database: &'s str, to: bool },
    /// These files exist on the host (the originals a `verify-files` compares).
    Files { host: &'s str, paths: &'s [String] },
    /// The host opens (besides the step's `host`: a kind's own host keys).
    Opens { host: &'s str },
    /// The step cannot run as the plan stands (a service without the command it needs).
    Fails { why: String },
    /// The step acts on a network endpoint as production has it (`key` = `value`): in a
    /// rehearsal the environment must map it (`endpoints`), or the step would not run.
    Endpoint { key: &'static str, value: &'s str },
}

/// The names of the kinds that have an executor, in registry order.
pub fn kinds() -> Vec<&'static str> {
    EXECUTORS.iter().map(|e| e.kind).collect()
}

/// A step's executor: an exhaustive match, so that a kind without its executor is a compile
/// error here (and one missing from [`EXECUTORS`] a test failure).
fn executor(step: &Step) -> &'static Executor {
    use rehost_plan::StepKind as K;
    match &step.kind {
        K::Manual { .. } => &manual::EXECUTOR,
        K::Run { .. } => &run::EXECUTOR,
        K::Wait { .. } => &wait::EXECUTOR,
        K::Sync { .. } => &sync::EXECUTOR,
        K::VerifyTree { .. } => &verify_tree::EXECUTOR,
        K::WatchOld { .. } => &watch_old::EXECUTOR,
        K::RetireOld { .. } => &retire_old::EXECUTOR,
        K::Stop { .. } => &stop::EXECUTOR,
        K::Start { .. } => &start::EXECUTOR,
        K::Health { .. } => &health::EXECUTOR,
        K::VerifyDb { .. } => &verify_db::EXECUTOR,
        K::VerifyFiles { .. } => &verify_files::EXECUTOR,
        K::VerifyKeys { .. } => &verify_keys::EXECUTOR,
        K::Drain { .. } => &drain::EXECUTOR,
        K::ScanRefs { .. } => &scan_refs::EXECUTOR,
        K::AddressMoved { .. } => &address_moved::EXECUTOR,
        K::Switch { .. } => &switch::EXECUTOR,
        K::DnsPropagated { .. } => &dns_propagated::EXECUTOR,
        K::DnsTtl { .. } => &dns_ttl::EXECUTOR,
        K::DnsSwitch { .. } => &dns_switch::EXECUTOR,
        K::VerifyConfig { .. } => &verify_config::EXECUTOR,
        K::Compat { .. } => &compat::EXECUTOR,
        K::CompatSql { .. } => &compat_sql::EXECUTOR,
    }
}

/// The kind's own rollback of a step, where the plan gives the step no `rollback` command.
pub(crate) fn builtin_rollback(step: &Step) -> Option<Undo> {
    if step.rollback.is_some() {
        return None;
    }
    executor(step).rollback
}

/// Executes a step with its kind's executor.
pub(crate) fn execute(ctx: &mut Ctx, step: &Step) -> Result<Outcome, EngineError> {
    (executor(step).execute)(ctx, step)
}

/// What a step needs of its hosts before the run (see [`Need`]): its kind's needs, and the
/// program of its rollback on its host.
pub(crate) fn needs<'s>(plan: &'s Plan, step: &'s Step) -> Vec<Need<'s>> {
    let mut needs = (executor(step).needs)(plan, step);
    if let (Some(rollback), Some(host)) = (&step.rollback, &step.host) {
        needs.push(Need::Runs {
            host: host.clone(),
            command: rollback.clone(),
            what: "rollback",
        });
    }
    needs
}

#[cfg(test)]
mod tests;
