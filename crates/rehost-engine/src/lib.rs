//! The engine: executes a plan's checklist step by step, and survives being killed.
//!
//! The journal ([`rehost_journal`]) is the source of truth: every step's start and end is recorded
//! (and fsynced) before the engine moves on, so `rehost run` again resumes where it stopped and
//! `rehost status` or a report can be rebuilt from the journal and the plan alone. The engine
//! never prints: it emits [`Event`]s to a [`Sink`].

pub mod clock;
pub mod config;
mod error;
mod events;
mod exec;
pub mod isolation;
mod load;
mod open;
pub mod preflight;
pub mod probe;
mod recorder;
mod resume;
mod rollback;
mod run;
pub mod sql_replay;
pub mod steps;
mod window;

pub use clock::{Clock, FakeClock, SystemClock};
pub use error::EngineError;
pub use events::{Event, Sink};
pub use exec::{Hosts, host_spec};
pub use resume::plan_snapshot_name;
pub use run::{Confirmer, Engine, RunOptions, RunOutcome};
pub use steps::watch_old::recheck_now as recheck_old;

#[cfg(test)]
mod tests;

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

/// Opens the state directory `dir` (see [`state_dir`]): created 0700 with `create`, refused
/// when it or a directory rehost made for it (`--state`'s directory, or `.rehost` and the
/// plan's directory in it) is a symlink, another user's, or writable by group or others.
/// `Ok(None)` when it does not exist and `create` is false.
pub fn open_state_dir(
    dir: &Path,
    create: bool,
) -> Result<Option<rehost_tree::private::PrivateDir>, EngineError> {
    use rehost_tree::private::PrivateDir;
    // `<--state>/<env>` or `.rehost/<plan>/<env>`: every level is rehost's.
    let mut chain = Vec::new();
    let mut first = dir.to_owned();
    for _ in 0..2 {
        match (first.parent(), first.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() || chain.is_empty() => {
                let parent = parent.to_owned();
                if chain.len() == 1 && parent.file_name() != Some(std::ffi::OsStr::new(".rehost")) {
                    break;
                }
                chain.insert(0, name.to_owned());
                first = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent
                };
            }
            _ => break,
        }
    }
    let mut d = match PrivateDir::open(&first, create).map_err(EngineError::from_private)? {
        Some(d) => d,
        None => return Ok(None),
    };
    for name in chain {
        let name = name.to_string_lossy();
        d = match d.subdir(&name, create).map_err(EngineError::from_private)? {
            Some(d) => d,
            None => return Ok(None),
        };
    }
    Ok(Some(d))
}
