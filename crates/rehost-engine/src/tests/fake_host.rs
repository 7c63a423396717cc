//! A host in memory for in-process engine tests: scripted results per command, every call
//! recorded, nothing run. It answers what a run asks of every host (its lock, a pre-flight
//! probe) and refuses any other request by name, so a test that reaches one fails saying so.
//!
//! It is this machine unless it is given an ssh destination (`over_ssh`: rsync then reaches it
//! through its remote shell), and it may have a disk (`with_disk`): a directory of the test's
//! that answers the tree requests (probe, manifest, read, apply), each recorded. Either way it
//! is not rehost's local host, so the engine's paths are the ones every host takes.

use crate::clock::FakeClock;
use rehost_host::{
    CommandSpec, ExitInfo, Host, HostError, ManifestOptions, OutputStream, Program, RemoteEnd,
    Request, Response, RunOutcome, SshSpec,
};
use std::path::{Path, PathBuf};
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
    /// For the pattern `connections`: one client (10.0.0.7:40000, process 7 `app`) is
    /// connected to each port asked about until the run's clock has advanced this far.
    Connected(std::time::Duration),
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
    /// How rsync on another machine reaches it; `None`: it is this machine.
    ssh: Option<SshSpec>,
    /// Its files: the host rehost opens for a directory of the test's, which answers the tree
    /// requests.
    disk: Option<Box<dyn Host>>,
    /// Its connections were ended (`EndConnections`): no listing has them any more.
    ended: AtomicBool,
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
            ssh: None,
            disk: None,
            ended: AtomicBool::new(false),
        }
    }

    /// Reached over ssh at this destination (and port), not this machine.
    pub fn over_ssh(mut self, spec: SshSpec) -> FakeHost {
        self.ssh = Some(spec);
        self
    }

    /// Its paths are under `root`, for the tree requests.
    pub fn with_disk(mut self, root: &Path) -> FakeHost {
        let spec = rehost_host::HostSpec::Local {
            root: Some(root.to_owned()),
        };
        self.disk = Some(rehost_host::open(&self.name, &spec).expect("a host for a directory"));
        self
    }

    fn record(&self, call: String) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{}: {call}", self.name));
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
            Script::Connected(_) => RunOutcome {
                exit: exit(0),
                timed_out: false,
                cancelled: false,
            },
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

    fn remote_end(&self, path: &str, here: bool) -> Option<RemoteEnd> {
        let spec = self.ssh.as_ref()?;
        Some(RemoteEnd::over_ssh(spec, &self.resolve(path), here))
    }

    /// The disk's walk, without the user's cache (the test's directories come and go); the
    /// call says whether an incremental walk was asked for.
    fn manifest(
        &self,
        path: &[u8],
        options: &ManifestOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(rehost_tree::Counts),
    ) -> Result<rehost_tree::Manifest, HostError> {
        let incremental = if options.incremental {
            " (incremental)"
        } else {
            ""
        };
        self.record(format!(
            "manifest {}{incremental}",
            String::from_utf8_lossy(path)
        ));
        let Some(disk) = &self.disk else {
            return Err(HostError::Protocol {
                host: self.name.clone(),
                message: "the fake host has no disk to walk".into(),
            });
        };
        let options = ManifestOptions {
            incremental: false,
            ..options.clone()
        };
        disk.manifest(path, &options, cancel, progress)
    }

    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        match req {
            Request::Lock { .. } => {
                on_response(Response::Locked);
                Ok(())
            }
            // A pre-flight of steps that need no tree asks about no path.
            Request::Probe { paths, .. } if paths.is_empty() => Ok(()),
            Request::Connections { ports, .. } => {
                self.record("connections".into());
                let until = self.script.iter().find_map(|(p, s)| match s {
                    Script::Connected(d) if p == "connections" => Some(*d),
                    _ => None,
                });
                let connected = until.is_some_and(|d| self.clock.advanced() < d)
                    && !self.ended.load(Ordering::Relaxed);
                let connections = ports
                    .iter()
                    .filter(|_| connected)
                    .map(|&port| rehost_host::conns::Connection {
                        local_addr: [10, 0, 0, 1].into(),
                        local_port: port,
                        peer_addr: [10, 0, 0, 7].into(),
                        peer_port: 40000,
                        send_queue: 0,
                        recv_queue: 0,
                        uid: 0,
                        inode: u64::from(port),
                        pid: Some(7),
                        command: Some("app".into()),
                    })
                    .collect();
                on_response(Response::Connections {
                    listing: rehost_host::conns::Listing {
                        connections,
                        source: rehost_host::conns::Source::Netlink,
                        fallback: None,
                        truncated: false,
                        processes_not_read: false,
                    },
                });
                Ok(())
            }
            // Ends every target by SOCK_DESTROY.
            Request::EndConnections { targets, .. } => {
                self.record("end_connections".into());
                self.ended.store(true, Ordering::Relaxed);
                let attempts = targets
                    .iter()
                    .map(|t| rehost_host::conns::end::Attempt::Done {
                        target: t.clone(),
                        mechanism: rehost_host::conns::end::Mechanism::SockDestroy,
                    })
                    .collect();
                on_response(Response::ConnectionsEnded { attempts });
                Ok(())
            }
            other => match &self.disk {
                Some(disk) => {
                    // The pre-flight's probes are not the steps' calls.
                    if !matches!(other, Request::Probe { .. }) {
                        self.record(other.describe());
                    }
                    disk.request(other, cancel, on_response)
                }
                None => Err(HostError::Protocol {
                    host: self.name.clone(),
                    message: format!("the fake host does not answer {}", other.describe()),
                }),
            },
        }
    }
}
