//! The engine: executes a plan's checklist step by step, and survives being killed.
//!
//! The journal ([`journal`]) is the source of truth: every step's start and end is recorded
//! (and fsynced) before the engine moves on, so `rehost run` again resumes where it stopped and
//! `rehost status` or a report can be rebuilt from the journal and the plan alone. The engine
//! never prints: it emits [`Event`]s to a [`Sink`].

mod engine;
mod error;
mod events;
mod exec;
pub mod isolation;
pub mod journal;
mod lock;
mod state;
mod tree_steps;

pub use engine::{Confirmer, Engine, RunOptions, RunOutcome, StdinConfirmer};
pub use error::EngineError;
pub use events::{Event, Sink, StepResult};
pub use exec::host_spec;
pub use journal::{Journal, Record};
pub use state::{RunState, StepState, StepStatus, downtime, status};

use std::path::{Path, PathBuf};

/// The state directory of a plan: `.rehost/<plan file stem>` next to the plan, unless given.
pub fn state_dir(plan_path: &Path, explicit: Option<&Path>, env: Option<&str>) -> PathBuf {
    let base = match explicit {
        Some(d) => d.to_owned(),
        None => {
            let dir = plan_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let stem = plan_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plan".into());
            dir.join(".rehost").join(stem)
        }
    };
    base.join(env.unwrap_or("production"))
}
