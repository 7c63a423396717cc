//! Hosts: where a migration's work happens.
//!
//! A host is reached either in-process (`local`, optionally under a root directory so that two
//! hosts can stand side by side on one machine) or through the system's OpenSSH client, where
//! the rehost agent does the work (see `docs/agent.md`). Every capability that touches a host
//! goes through the [`Host`] trait, so the engine never cares which kind of host a step acts on:
//! a capability is one [`Request`] variant, executed by [`execute`] on the host that holds the
//! data.

pub mod agent;
mod bytes;
mod capability;
mod command;
pub mod conns;
mod error;
pub mod host_lock;
mod identity;
mod keys;
mod keys_cache;
mod listing;
mod local;
mod location;
mod pair;
mod reach;
pub mod refs;
pub mod retire;
pub mod ssh;
pub mod survey;
pub mod transfer;

pub use agent::{ManifestOptions, Request, Response};
pub use bytes::{Blob, Bytes};
pub use capability::execute;
pub use command::{CommandSpec, ExitInfo, OutputStream, Program, RunOutcome};
pub use error::{AgentCannotRun, HostError, HostKeyFailure};
pub use identity::this_machine_id;
pub use keys::{
    MAX_PASSWORDS, fresh_digest_key, read_password_file, scan_keys, scan_keys_cached,
    scan_keys_opened, scan_keys_with,
};
pub use listing::{EntryKind, TreeEntry, list_tree};
pub use local::{LocalHost, resolve_under};
pub use location::{Location, LocationError};
pub use pair::{PairError, PairVerified, TrustedFrom, verify_pair};
pub use reach::RemoteEnd;
pub use refs::{RefFound, RefsScan, scan_refs};
pub use ssh::SshHost;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Overrides the agent uploaded to every ssh host (raw or gzip'd). By default rehost uploads
/// `rehost-agent-<uname -m>.gz` from beside its own binary (`scripts/build-agent` makes it),
/// else itself where it can run on the host (see [`ssh::AgentSource`]).
pub const AGENT_BINARY_ENV: &str = "REHOST_AGENT_BINARY";

/// How a host is reached, as declared in the plan or on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSpec {
    /// This machine. With a `root`, the host's paths are taken under it and its commands run
    /// with it as working directory and `REHOST_ROOT` set to it (no chroot).
    Local { root: Option<PathBuf> },
    /// A machine reached with the system `ssh`.
    Ssh(SshSpec),
}

/// The parts of an ssh destination rehost passes to OpenSSH. Anything else belongs in the
/// user's ssh config, which rehost respects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshSpec {
    /// `user@host` or `host`, as `ssh` takes it.
    pub destination: String,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    pub proxy_jump: Option<String>,
    /// An ssh config file passed as `ssh -F`.
    pub ssh_config: Option<PathBuf>,
    /// Like a local host's root: the host's paths are taken under it and its commands run in
    /// it with `REHOST_ROOT` set (lets two test hosts share one machine).
    pub root: Option<PathBuf>,
}

impl SshSpec {
    /// The spec for a destination as a location writes it (`user@host`, a port from
    /// `ssh://`), with the `--ssh-config` file if one was given.
    pub fn for_destination(
        destination: &str,
        port: Option<u16>,
        ssh_config: Option<PathBuf>,
    ) -> SshSpec {
        SshSpec {
            destination: destination.to_owned(),
            port,
            ssh_config,
            ..SshSpec::default()
        }
    }
}

/// A host that work can be sent to.
pub trait Host: Send + Sync {
    /// The host's name in the plan (or the location's host part).
    fn name(&self) -> &str;

    /// Runs a command on the host, calling `on_output` with each line (without its newline) as
    /// it arrives. Returns when the command ends, its timeout passes (the command is then ended,
    /// with its whole process group) or `cancel` is set.
    fn run(
        &self,
        cmd: &CommandSpec,
        cancel: &AtomicBool,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<RunOutcome, HostError> {
        let req = Request::Run {
            command: cmd.clone(),
        };
        let mut outcome = None;
        self.request(&req, cancel, &mut |r| match r {
            Response::Output { stream, line } => on_output(stream, line.as_bytes()),
            Response::Exit { outcome: o } => outcome = Some(o),
            _ => {}
        })?;
        outcome.ok_or_else(|| HostError::Protocol {
            host: self.name().to_owned(),
            message: format!("no exit status for {}", req.describe()),
        })
    }

    /// Maps a path as written in the plan to where it lives for this host (under its root for a
    /// host with a root).
    fn resolve(&self, path: &str) -> PathBuf;

    /// How a program on another machine (rsync) reaches `path` on this host: the remote shell
    /// and `DESTINATION:PATH`. `None` when this host is the machine rehost runs on: a program
    /// here names the path itself ([`Host::resolve`]). `here`: the program runs on this
    /// machine (see [`RemoteEnd::over_ssh`]).
    fn remote_end(&self, path: &str, here: bool) -> Option<RemoteEnd>;

    /// rsync's version on the host (`3.2.7`; `unknown` when `rsync --version` runs but does not
    /// say it), or `None` when rsync does not run there.
    fn rsync_version(&self, cancel: &AtomicBool) -> Result<Option<String>, HostError> {
        let spec = CommandSpec::new(Program::Argv(vec!["rsync".into(), "--version".into()]));
        let mut first = String::new();
        let out = self.run(&spec, cancel, &mut |stream, line| {
            if stream == OutputStream::Stdout && first.is_empty() {
                first = String::from_utf8_lossy(line).into_owned();
            }
        })?;
        Ok((out.exit.code == Some(0)).then(|| {
            first
                .split_whitespace()
                .skip_while(|w| *w != "version")
                .nth(1)
                .unwrap_or("unknown")
                .to_owned()
        }))
    }

    /// Creates the directory `path` (resolved on the host) and its missing parents
    /// (`mkdir -p`).
    fn make_dir(&self, path: &str, cancel: &AtomicBool) -> Result<(), HostError> {
        let dir = self.resolve(path);
        let spec = CommandSpec::new(Program::Argv(vec![
            "mkdir".into(),
            "-p".into(),
            "--".into(),
            dir.to_string_lossy().into_owned(),
        ]));
        let mut err = String::new();
        let out = self.run(&spec, cancel, &mut |stream, line| {
            if stream == OutputStream::Stderr && err.len() < 1000 {
                err.push_str(&String::from_utf8_lossy(line));
            }
        })?;
        if out.exit.code == Some(0) {
            return Ok(());
        }
        Err(HostError::CreateDir {
            host: self.name().to_owned(),
            path: dir,
            source: std::io::Error::other(err.trim().to_owned()),
        })
    }

    /// The host's machine id (`/etc/machine-id`), if it has one: a rehearsal host whose id is
    /// this machine's is this machine.
    fn machine_id(&self, cancel: &AtomicBool) -> Result<Option<String>, HostError> {
        let mut out = Vec::new();
        let cmd = CommandSpec::new(Program::Argv(vec!["cat".into(), "/etc/machine-id".into()]));
        let outcome = self.run(&cmd, cancel, &mut |stream, bytes| {
            if stream == OutputStream::Stdout && out.len() < 4096 {
                out.extend_from_slice(bytes);
            }
        })?;
        if outcome.exit.code != Some(0) {
            return Ok(None);
        }
        let id = String::from_utf8_lossy(&out).trim().to_owned();
        Ok((!id.is_empty()).then_some(id))
    }

    /// This machine's host, for the fast paths in this crate that work on two trees of this
    /// machine in one process ([`verify_pair`] with one pool and the caller's cache,
    /// [`transfer::transfer_between`] at disk speed). Code outside rehost-host asks the host
    /// what it needs instead of branching on this (`tidy.rs` keeps rehost-engine off it).
    #[doc(hidden)]
    fn as_local(&self) -> Option<&LocalHost> {
        None
    }

    /// Executes any request on the host, passing each streamed response to `on_response`.
    /// Local hosts call [`execute`] in-process; ssh hosts send it to the agent.
    fn request(
        &self,
        req: &Request,
        cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError>;

    /// Lists the tree at `path` (resolved on the host): every entry with its type, size, mode
    /// and mtime, in a deterministic order.
    fn list_tree(&self, path: &[u8], cancel: &AtomicBool) -> Result<Vec<TreeEntry>, HostError> {
        let mut out = Vec::new();
        let limit = limits::max_entries();
        let req = Request::ListTree { path: path.into() };
        request_bounded(self, &req, cancel, &mut |r| {
            if let Response::Entries { entries } = r {
                out.extend(entries);
                if out.len() as u64 > limit {
                    return Err(format!(
                        "the listing of {} has more than {limit} entries; refused ({})",
                        String::from_utf8_lossy(path),
                        limits::HINT
                    ));
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Walks and hashes the tree at `path` (resolved on the host) into a manifest, on the host
    /// that holds it; only the manifest crosses the network. `progress` gets the counts so far
    /// about every 200 ms. Compare two hosts' manifests with `rehost_tree::compare`; run the
    /// two walks on two threads so both sides hash at the same time.
    fn manifest(
        &self,
        path: &[u8],
        options: &ManifestOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(rehost_tree::Counts),
    ) -> Result<rehost_tree::Manifest, HostError> {
        let req = Request::Manifest {
            path: path.into(),
            options: options.clone(),
        };
        let mut data = Vec::new();
        let mut counts = (0, 0, Vec::new());
        let limit = limits::max_manifest_bytes();
        request_bounded(self, &req, cancel, &mut |r| {
            match r {
                Response::Progress { entries, bytes } => {
                    progress(rehost_tree::Counts { entries, bytes })
                }
                Response::ManifestData { data: d } => {
                    if (data.len() + d.0.len()) as u64 > limit {
                        return Err(format!(
                            "the manifest of {} is larger than {limit} bytes; refused ({})",
                            String::from_utf8_lossy(path),
                            limits::HINT
                        ));
                    }
                    data.extend_from_slice(&d.0)
                }
                Response::ManifestCounts {
                    rehashed,
                    trusted,
                    warnings,
                } => {
                    counts = (
                        rehashed,
                        trusted,
                        warnings.into_iter().take(10_000).collect(),
                    )
                }
                _ => {}
            }
            Ok(())
        })?;
        let invalid = |e: &dyn std::fmt::Display| HostError::Protocol {
            host: self.name().to_owned(),
            message: format!(
                "the manifest of {} received is not valid, refused whole: {e}",
                String::from_utf8_lossy(path)
            ),
        };
        let mut manifest = rehost_tree::Manifest::from_binary(&data).map_err(|e| invalid(&e))?;
        manifest.check().map_err(|e| invalid(&e))?;
        (manifest.rehashed, manifest.trusted, manifest.warnings) = counts;
        let host = self.name();
        for w in &mut manifest.warnings {
            *w = format!("{host}: {w}");
        }
        Ok(manifest)
    }

    /// Examines paths on the host for a pre-flight: what each is, the free space where it is
    /// (or would be), and with `measure` the bytes below it. One answer per path, in order.
    fn probe(
        &self,
        paths: &[&[u8]],
        measure: bool,
        cancel: &AtomicBool,
    ) -> Result<Vec<agent::Probe>, HostError> {
        let req = Request::Probe {
            paths: paths.iter().map(|p| Bytes::from(*p)).collect(),
            measure,
        };
        let mut out = Vec::new();
        let n = paths.len();
        request_bounded(self, &req, cancel, &mut |r| {
            if let Response::Probed { probe } = r {
                if out.len() == n {
                    return Err(format!("sent more than the {n} probes asked for"));
                }
                out.push(probe);
            }
            Ok(())
        })?;
        if out.len() != n {
            return Err(HostError::Protocol {
                host: self.name().to_owned(),
                message: format!("asked for {n} probes, received {}", out.len()),
            });
        }
        Ok(out)
    }

    /// The established TCP connections to `ports` on the host (all local ports when empty),
    /// at most `limit` (at most [`conns::MAX_CONNECTIONS`]): `truncated` says more were
    /// there. A host that sends more than asked for, or a second listing, is refused.
    fn connections(
        &self,
        ports: &[u16],
        limit: usize,
        cancel: &AtomicBool,
    ) -> Result<conns::Listing, HostError> {
        self.connections_with(ports, limit, true, cancel)
    }

    /// [`Host::connections`], with the owning processes looked up or not (`processes`).
    fn connections_with(
        &self,
        ports: &[u16],
        limit: usize,
        processes: bool,
        cancel: &AtomicBool,
    ) -> Result<conns::Listing, HostError> {
        let limit = limit.min(conns::MAX_CONNECTIONS);
        let req = Request::Connections {
            ports: ports.to_vec(),
            limit: limit as u64,
            no_process: !processes,
        };
        let mut out: Option<conns::Listing> = None;
        request_bounded(self, &req, cancel, &mut |r| {
            if let Response::Connections { listing } = r {
                if out.is_some() {
                    return Err("sent a second connection listing".into());
                }
                if listing.connections.len() > limit {
                    return Err(format!(
                        "sent {} connections, more than the {limit} asked for",
                        listing.connections.len()
                    ));
                }
                if let Some(c) = listing
                    .connections
                    .iter()
                    .find(|c| !ports.is_empty() && !ports.contains(&c.local_port))
                {
                    return Err(format!(
                        "sent a connection to port {}, which was not asked for",
                        c.local_port
                    ));
                }
                out = Some(listing);
            }
            Ok(())
        })?;
        out.ok_or_else(|| HostError::Protocol {
            host: self.name().to_owned(),
            message: "answered the connection listing with nothing".into(),
        })
    }

    /// Surveys the host (`rehost survey`): what it runs and what each service depends on,
    /// collected where it runs, with the clients sampled for `options.sample_seconds`.
    /// `progress` gets the host's progress (its text is the host's: escape it to show it).
    /// What the host sends is bounded by `rehost_survey::limits` and refused whole when it
    /// is more or does not read as an inventory.
    fn survey(
        &self,
        options: &survey::SurveyOptions,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&survey::SurveyProgress),
    ) -> Result<rehost_survey::Inventory, HostError> {
        survey::receive(self, options, cancel, progress)
    }

    /// Removes every write bit beneath the tree at `path` (`retire-old`; `crate::retire`),
    /// passing each batch of changes to `take` as the host sends it (a refusal stops the
    /// request), or (`Check`) counts what still has one. What the host sends is checked: paths
    /// inside the tree, bounded lists, as many changes as it says it made.
    fn read_only(
        &self,
        path: &str,
        action: retire::ReadOnlyAction,
        cancel: &AtomicBool,
        take: &mut dyn FnMut(Vec<retire::ModeChange>) -> Result<(), String>,
    ) -> Result<retire::ReadOnlySummary, HostError> {
        retire::receive(self, path, action, cancel, take)
    }

    /// Sets back the modes `changes` record beneath the tree at `path`, each only where the
    /// entry is still the inode and mode rehost left (`crate::retire::restore`).
    fn restore_modes(
        &self,
        path: &str,
        changes: &[retire::ModeChange],
        cancel: &AtomicBool,
    ) -> Result<retire::RestoreSummary, HostError> {
        retire::restore_on(self, path, changes, cancel)
    }

    /// The listening TCP sockets on `ports`, from the host's kernel, and what could not be
    /// read (`gaps`): whether a service is stopped (`retire-old`). Processes and sockets are
    /// the machine's, whatever a local host's root.
    fn listening(
        &self,
        ports: &[u16],
        cancel: &AtomicBool,
    ) -> Result<(Vec<retire::Listening>, Vec<String>), HostError> {
        retire::listening_on(self, ports, cancel)
    }

    /// Ends connections to the host. Called once at the end of a run; dropping does it too.
    fn close(&self) {}
}

/// Bounds on what a host may send, so that a hostile agent cannot grow this process without
/// limit. Each can be raised through the environment for trees larger than the defaults allow.
pub mod limits {
    /// What to do when a bound is hit.
    pub const HINT: &str = "a compromised or broken agent, or a tree larger than rehost's bound: raise it with REHOST_MAX_MANIFEST_BYTES or REHOST_MAX_ENTRIES";

    fn env_or(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// Bytes of one manifest's binary encoding (about 100 bytes an entry): 4 GiB.
    pub fn max_manifest_bytes() -> u64 {
        env_or("REHOST_MAX_MANIFEST_BYTES", 4 << 30)
    }

    /// Entries of one listing: 50 million.
    pub fn max_entries() -> u64 {
        env_or("REHOST_MAX_ENTRIES", 50_000_000)
    }
}

/// Runs `req` on `host` like [`Host::request`], passing each response to `take`; when `take`
/// refuses one (too much data, more answers than asked for), the request is cancelled, what
/// follows is dropped and the refusal is the error, naming the host. What a hostile agent
/// sends is never accumulated without a bound.
pub fn request_bounded<H: Host + ?Sized>(
    host: &H,
    req: &Request,
    cancel: &AtomicBool,
    take: &mut dyn FnMut(Response) -> Result<(), String>,
) -> Result<(), HostError> {
    let mut refused = None;
    let r = with_own_stop(cancel, |stop| {
        host.request(req, stop, &mut |resp| {
            if refused.is_none()
                && let Err(e) = take(resp)
            {
                refused = Some(e);
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    match refused {
        Some(message) => Err(HostError::Protocol {
            host: host.name().to_owned(),
            message,
        }),
        None => r,
    }
}

/// Runs `f` with a stop flag of its own, which the caller's `cancel` also sets: `f` can stop
/// what it runs (a request whose answer is refused) without cancelling the caller. Already
/// cancelled: the flag is set from the start. The watcher is woken when `f` returns, so it
/// adds no wait to every call (a transfer makes many).
pub fn with_own_stop<R>(cancel: &AtomicBool, f: impl FnOnce(&AtomicBool) -> R) -> R {
    use std::sync::atomic::Ordering::Relaxed;
    let stop = AtomicBool::new(cancel.load(Relaxed));
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            while !done.load(Relaxed) {
                if cancel.load(Relaxed) {
                    stop.store(true, Relaxed);
                }
                std::thread::park_timeout(std::time::Duration::from_millis(20));
            }
        });
        let r = f(&stop);
        done.store(true, Relaxed);
        watcher.thread().unpark();
        r
    })
}

/// Walks and hashes two trees at the same time, each on its own host (both sides of a
/// `verify tree`), and returns both manifests for `rehost_tree::compare`. `progress` gets the
/// counts of both sides (A first) on the calling thread, so it need not be `Send`.
pub fn manifest_pair(
    a: (&dyn Host, &[u8]),
    b: (&dyn Host, &[u8]),
    options: &ManifestOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut([rehost_tree::Counts; 2]),
) -> (
    Result<rehost_tree::Manifest, HostError>,
    Result<rehost_tree::Manifest, HostError>,
) {
    // Bounded: a host that reports progress faster than it is shown waits instead of queueing.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, rehost_tree::Counts)>(16);
    std::thread::scope(|s| {
        let (txa, txb) = (tx.clone(), tx.clone());
        let ja = s.spawn(move || {
            a.0.manifest(a.1, options, cancel, &mut |c| {
                let _ = txa.send((0, c));
            })
        });
        let jb = s.spawn(move || {
            b.0.manifest(b.1, options, cancel, &mut |c| {
                let _ = txb.send((1, c));
            })
        });
        drop(tx);
        let mut counts = [rehost_tree::Counts::default(); 2];
        // Ends when both walks have finished and dropped their senders.
        for (i, c) in rx {
            counts[i] = c;
            progress(counts);
        }
        let join = |j: std::thread::ScopedJoinHandle<'_, Result<_, HostError>>| {
            j.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        };
        (join(ja), join(jb))
    })
}

/// Opens a host from its spec, once per host per run. Ssh hosts get the agent for their
/// architecture from [`agent_source`].
pub fn open(name: &str, spec: &HostSpec) -> Result<Box<dyn Host>, HostError> {
    match spec {
        HostSpec::Local { root } => Ok(Box::new(LocalHost::new(name, root.clone()))),
        HostSpec::Ssh(ssh) => Ok(Box::new(SshHost::open_with(name, ssh, &agent_source()?)?)),
    }
}

/// Where this rehost takes its agents from: [`AGENT_BINARY_ENV`] if set, else beside the
/// running binary.
pub fn agent_source() -> Result<ssh::AgentSource, HostError> {
    Ok(match std::env::var_os(AGENT_BINARY_ENV) {
        Some(p) => ssh::AgentSource::File(PathBuf::from(p)),
        None => ssh::AgentSource::Beside {
            exe: std::env::current_exe().map_err(|source| HostError::AgentBinary {
                path: PathBuf::from("/proc/self/exe"),
                source,
            })?,
        },
    })
}

/// [`open`] for an ssh host with an explicit agent binary (tests, or a cross-built agent).
pub fn open_with_agent(
    name: &str,
    spec: &SshSpec,
    agent_binary: &Path,
) -> Result<Box<dyn Host>, HostError> {
    Ok(Box::new(SshHost::open(name, spec, agent_binary)?))
}
