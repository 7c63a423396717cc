//! Hosts: where a migration's work happens.
//!
//! A host is reached either in-process (`local`, optionally under a root directory so that two
//! hosts can stand side by side on one machine) or through the system's OpenSSH client. Every
//! capability that touches a host goes through the [`Host`] trait, so the engine never cares which
//! kind of host a step acts on.

mod command;
mod error;
mod local;
mod location;

pub use command::{CommandSpec, ExitInfo, OutputStream, Program, RunOutcome};
pub use error::HostError;
pub use local::LocalHost;
pub use location::{Location, LocationError};

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

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
    ) -> Result<RunOutcome, HostError>;

    /// Maps a path as written in the plan to where it lives for this host (under its root for a
    /// local host with a root).
    fn resolve(&self, path: &str) -> PathBuf;
}

/// Opens a host from its spec. Local hosts are always available; ssh hosts are reached in the
/// ssh module.
pub fn open(name: &str, spec: &HostSpec) -> Result<Box<dyn Host>, HostError> {
    match spec {
        HostSpec::Local { root } => Ok(Box::new(LocalHost::new(name, root.clone()))),
        HostSpec::Ssh(ssh) => Err(HostError::Unsupported {
            host: name.to_owned(),
            what: format!("ssh hosts ({})", ssh.destination),
        }),
    }
}
