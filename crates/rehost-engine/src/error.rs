//! Errors that stop a run. Each names what failed and what to do next.

use rehost_journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state directory: refused, unusable, its journal corrupt, or locked by another run.
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("failed to take host `{host}` for this run: {reason}")]
    HostLock { host: String, reason: String },
    #[error(
        "the plan has no environment `{0}`; declare [environments.{0}] or choose another with --env"
    )]
    UnknownEnvironment(String),
    #[error("--until names no step of the plan: `{0}`; `rehost status PLAN` lists the step ids")]
    UnknownUntil(String),
    #[error(
        "the plan changed since this run began: {changes}. Check that the change is intended, then run again with --accept-plan-change (recorded in the journal)"
    )]
    PlanChanged { changes: String },
    #[error(
        "the plan has {0} M 2.319 finding(s); a production run needs them fixed or --accept-findings (recorded in the journal). Rehearse with --env first"
    )]
    FindingsNotAccepted(usize),
    #[error(
        "step `{step}` ({kind}) started but did not finish in an earlier run and is not idempotent; check on its host whether it took effect, then run again with --retry-interrupted to run it again or --skip-interrupted to count it as done (recorded)"
    )]
    Interrupted { step: String, kind: String },
    #[error(
        "step `{step}` needs the maintenance window ({start} to {end}) and it is {now}; run again inside the window, or with --ignore-window (recorded)"
    )]
    OutsideWindow {
        step: String,
        start: String,
        end: String,
        now: String,
    },
    #[error(
        "the pre-flight found {} problem(s), so nothing was run; fix them, or check again with `rehost check --hosts`:\n  {}",
        problems.len(),
        problems.join("\n  ")
    )]
    Preflight { problems: Vec<String> },
    /// Named by its id and plan line; the command itself is never repeated (it may carry
    /// credentials).
    #[error("step `{step}` (plan line {line}) failed: {reason}")]
    StepFailed {
        step: String,
        line: usize,
        reason: String,
    },
    #[error(
        "rehearsal host `{env_host}` of environment `{env}` is production host `{prod_host}`: {why}. Nothing ran: give [environments.{env}] hosts of its own"
    )]
    MeetsProduction {
        env: String,
        env_host: String,
        prod_host: String,
        why: String,
    },
    #[error(
        "environment `{env}` would reach production's database: database `{database}` {detail}. Nothing ran: give the rehearsal its own database server in [environments.{env}.databases.{database}] (port, socket or, for SQLite, a file under the host's root)"
    )]
    DatabaseMeetsProduction {
        env: String,
        database: String,
        /// From which rehearsal host, which production database it is, and why.
        detail: String,
    },
    #[error("failed to check that environment `{env}` is not production: {message}; nothing ran")]
    IsolationUnknown { env: String, message: String },
    #[error("step `{step}` was not confirmed: {reason}; run again to continue from this step")]
    NotConfirmed { step: String, reason: String },
    #[error("interrupted during step `{step}`; run again to resume")]
    Cancelled { step: String },
    #[error("interrupted before step `{step}` started; run again to resume")]
    CancelledBefore { step: String },
}

impl EngineError {
    /// A refused state directory, or trouble using it.
    pub(crate) fn from_private(e: rehost_tree::private::PrivateError) -> EngineError {
        EngineError::Journal(JournalError::from_private(e))
    }
}
