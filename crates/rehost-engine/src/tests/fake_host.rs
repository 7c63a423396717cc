//! A host in memory for in-process engine tests: scripted results per command, every call
//! recorded, nothing run. It answers what a run asks of every host (its lock, a pre-flight
//! probe) and refuses any other request by name, so a test that reaches one fails saying so.

use crate::clock::FakeClock;
use rehost_host::{
    CommandSpec, ExitInfo, Host, HostError, OutputStream, Program, Request, Response, RunOutcome,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a scripted command does.
#[derive(Clone, Debug)]
pub enum Script {
    /// Prints these lines and ends with this exit status.
    Exit(i32, Vec<String>),
    /// A signal arrives while it runs: the cancel flag is set and the command is ended.
    CancelledMidway,
    /// Runs this long on the run's (fake) clock, then succeeds.
    Takes(std::time::Duration),
}

/// Every call to every fake host of a test, in order: `host: command`.
pub type Calls = Arc<Mutex<Vec<String>>>;

pub struct FakeHost {
    name: String,
    /// (text the command contains, what it does); the first match wins; unmatched commands
    /// succeed silently.
    script: Vec<(String, Script)>,
    calls: Calls,
    /// The run's clock, which a command that takes time advances.
    clock: Arc<FakeClock>,
}

impl FakeHost {
    pub fn new(
        name: &str,
        script: Vec<(String, Script)>,
        calls: Calls,
        clock: Arc<FakeClock>,
    ) -> FakeHost {
        FakeHost {
            name: name.to_owned(),
            script,
            calls,
            clock,
        }
    }
}

fn text(cmd: &CommandSpec) -> String {
    match &cmd.program {
        Program::Shell(s) => s.clone(),
        Program::Argv(a) => a.join(" "),
    }
}

impl Host for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        &self,
        cmd: &CommandSpec,
        cancel: &AtomicBool,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<RunOutcome, HostError> {
        let command = text(cmd);
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}: {command}", self.name));
        // The pre-flight's checks find everything there; the scripts are for the steps.
        let preflight = command.contains(crate::preflight::MARK);
        let script = self
            .script
            .iter()
            .filter(|_| !preflight)
            .find(|(pattern, _)| command.contains(pattern.as_str()))
            .map(|(_, s)| s.clone())
            .unwrap_or(Script::Exit(0, Vec::new()));
        let exit = |code| ExitInfo {
            code: Some(code),
            signal: None,
        };
        Ok(match script {
            Script::Exit(code, lines) => {
                for l in lines {
                    on_output(OutputStream::Stdout, l.as_bytes());
                }
                RunOutcome {
                    exit: exit(code),
                    timed_out: false,
                    cancelled: false,
                }
            }
            Script::Takes(d) => {
                self.clock.advance(d);
                RunOutcome {
                    exit: exit(0),
                    timed_out: false,
                    cancelled: false,
                }
            }
            Script::CancelledMidway => {
                cancel.store(true, Ordering::SeqCst);
                RunOutcome {
                    exit: ExitInfo {
                        code: None,
                        signal: Some(libc::SIGTERM),
                    },
                    timed_out: false,
                    cancelled: true,
                }
            }
        })
    }

    fn resolve(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn request(
        &self,
        req: &Request,
        _cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        match req {
            Request::Lock { .. } => {
                on_response(Response::Locked);
                Ok(())
            }
            // A pre-flight of steps that need no tree asks about no path.
            Request::Probe { paths, .. } if paths.is_empty() => Ok(()),
            other => Err(HostError::Protocol {
                host: self.name.clone(),
                message: format!("the fake host does not answer {}", other.describe()),
            }),
        }
    }
}
