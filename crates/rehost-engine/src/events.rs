//! Events: what the engine tells the world. The terminal view, `--json` lines and tests are
//! sinks of the same events.

use rehost_journal::StepResult;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        plan: String,
        env: String,
        steps: usize,
        resumed: bool,
        /// Index of the first step that will run.
        from: usize,
    },
    /// The pre-flight checked these hosts; the run starts only when `problems` is empty.
    Preflight {
        hosts: Vec<String>,
        problems: Vec<String>,
    },
    /// Something the operator should know that does not stop the run.
    Warning {
        message: String,
    },
    /// A decision the operator made by flag, recorded in the journal.
    Decision {
        what: String,
        detail: String,
    },
    StepStarted {
        index: usize,
        total: usize,
        id: String,
        title: String,
        kind: String,
        host: Option<String>,
        attempt: u32,
    },
    /// Instructions of a manual step, shown before asking for confirmation.
    Instructions {
        id: String,
        text: String,
    },
    Output {
        id: String,
        host: String,
        stream: String,
        line: String,
    },
    Progress {
        id: String,
        message: String,
    },
    StepFinished {
        index: usize,
        id: String,
        result: StepResult,
        elapsed_ms: u64,
        detail: Option<String>,
        confirmed_by: Option<String>,
    },
    RollbackStarted {
        failed: String,
        steps: Vec<String>,
    },
    RolledBack {
        id: String,
        ok: bool,
        detail: Option<String>,
    },
    RunFinished {
        ok: bool,
        elapsed_ms: u64,
        summary: String,
    },
    /// The invocation stopped after the `--until` step, which is done (or was already); the
    /// run is not finished: `left` steps wait for the next `rehost run`.
    RunStopped {
        after: String,
        left: usize,
        elapsed_ms: u64,
        summary: String,
    },
    /// The prober began sampling these services on both sides.
    ProbeStarted {
        targets: Vec<rehost_journal::journal::ProbeTarget>,
    },
    /// A side of a probed service became reachable or unreachable (or was first sampled).
    ProbeChanged {
        service: String,
        /// `old` or `new`.
        side: String,
        up: bool,
        detail: Option<String>,
    },
    /// A load of the environment started, stopped or had its acknowledged writes checked
    /// (the journal holds the figures).
    Load {
        id: String,
        message: String,
    },
}

pub trait Sink {
    fn emit(&mut self, event: &Event);
}

impl Sink for Vec<Event> {
    fn emit(&mut self, event: &Event) {
        self.push(event.clone());
    }
}
