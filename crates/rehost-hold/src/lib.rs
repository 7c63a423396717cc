//! `rehost hold`: a TCP relay in front of a service that moves it to another upstream without
//! refusing a client.
//!
//! The relay accepts on its listening socket and forwards each connection to the current
//! upstream, connected without blocking. A few worker threads (one per CPU, at most four) each
//! watch their connections' non-blocking sockets through an epoll set (edge-triggered) and copy
//! both directions: `read`/`write` through the worker's buffer for small messages, `splice(2)`
//! through a pipe once a read fills the 64 KiB buffer. A switch, asked for through the control
//! socket ([`switch`]):
//!
//! 1. connects to the new upstream once; if that fails, nothing is paused and the relay keeps
//!    its upstream (the switch fails, nobody waited);
//! 2. stops calling `accept()`: new clients complete the TCP handshake with the kernel and wait
//!    in the listening socket's backlog, not refused;
//! 3. waits for the relayed connections to the old upstream to end, up to three quarters of the
//!    time box; those still open then are shut down (both directions, both sockets) and listed
//!    as ended;
//! 4. connects to the new upstream again: up, the relay re-points to it; down, it stays with
//!    the old one (the switch fails, saying which side was up);
//! 5. resumes `accept()`, and answers with what happened ([`SwitchReport`]): how long accept
//!    was paused (no new client waited longer), how many clients were waiting in the backlog
//!    when it resumed, the connections drained and the ones ended.
//!
//! The control socket lives in a private directory (`rehost_tree::private`: owned by the user,
//! not group/world-writable, refused otherwise), is reached through that directory's descriptor,
//! and each side checks the other's uid (`SO_PEERCRED`): another local user steers nothing.

mod control;
mod relay;
mod worker;

pub use control::{default_state_dir, serve, socket_name, summary, switch};
pub use relay::{Hold, Log, MAX_CONNECTIONS, activated_listener, bind};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The time box of a switch when none is given.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How many ended connections a report names (the rest are counted).
pub const MAX_NAMED: usize = 1000;

/// What a switch did, as the relay reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchReport {
    /// The upstream before the switch.
    pub from: String,
    /// The upstream asked for.
    pub to: String,
    /// The upstream new connections go to now.
    pub now: String,
    /// `now` is `to`.
    pub switched: bool,
    /// Accept was paused (false: the switch had nothing to do, or the new upstream was down
    /// before anything was paused).
    pub paused: bool,
    /// How long `accept()` was paused, in milliseconds (rounded down): no client that arrived
    /// meanwhile waited longer for it.
    pub paused_ms: u64,
    /// Clients waiting in the listening socket's backlog when accept resumed (the kernel's
    /// count).
    pub queued: u32,
    /// Relayed connections to the old upstream open when accept was paused.
    pub open_at_pause: u32,
    /// Of those, the ones that ended by themselves before the drain deadline.
    pub drained: u32,
    /// Those, named with when each ended (at most [`MAX_NAMED`]; `drained` counts all).
    #[serde(default)]
    pub left: Vec<Left>,
    /// The ones still open at the drain deadline, shut down by the hold (at most
    /// [`MAX_NAMED`]; `ended_count` counts all).
    pub ended: Vec<Ended>,
    pub ended_count: u32,
    /// The drain deadline, in milliseconds after the pause began.
    pub drain_deadline_ms: u64,
    /// Why the switch failed; `None` when it succeeded.
    pub failure: Option<String>,
}

/// A relayed connection the hold shut down at the drain deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// The client's address and port.
    pub client: String,
    /// The upstream it was relayed to.
    pub upstream: String,
    /// How long it had been open, in milliseconds.
    pub age_ms: u64,
}

/// A relayed connection to the old upstream, open at the pause, that ended by itself before
/// the drain deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The client's address and port.
    pub client: String,
    /// The upstream it was relayed to.
    pub upstream: String,
    /// When it ended, in milliseconds after the pause began.
    pub after_ms: u64,
}

/// Why the hold could not start, or a switch could not be asked for.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(
        "the control directory was refused: {0}; use a directory only you can write (mode 0700), e.g. --state-dir under your home"
    )]
    Refused(rehost_tree::private::PrivateError),
    #[error("the control directory: {0}")]
    Dir(rehost_tree::private::PrivateError),
    #[error("no hold is listening on {listen}: no control socket {}: start `rehost hold --listen {listen}` first, or give its --state-dir", path.display())]
    NotRunning { listen: SocketAddr, path: PathBuf },
    #[error("{} is not a control socket owned by you (uid {me}): refused", path.display())]
    NotOurs { path: PathBuf, me: u32 },
    #[error("the process behind {} runs as uid {peer}, not {me}: refused", path.display())]
    PeerUid { path: PathBuf, peer: u32, me: u32 },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the hold at {listen} answered something that does not read as a switch report: {why}")]
    Answer { listen: SocketAddr, why: String },
    #[error("{0}")]
    Activation(String),
}

impl HoldError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HoldError {
        let what = what.into();
        move |source| HoldError::Io { what, source }
    }

    pub(crate) fn private(e: rehost_tree::private::PrivateError) -> HoldError {
        if e.is_refusal() {
            HoldError::Refused(e)
        } else {
            HoldError::Dir(e)
        }
    }
}
