//! The rehost agent: the same `rehost` binary, started on a remote host as `rehost agent`,
//! serving [`Request`]s over stdio in length-prefixed JSON frames (`docs/agent.md`).
//!
//! [`serve`] is the agent's side; [`AgentConn`] is rehost's side of one session, over any child
//! process whose stdio reaches an agent (an `ssh` session, or a local `rehost agent` in tests).

mod client;
mod frame;
mod protocol;
mod server;

pub use client::{AgentConn, SessionError};
pub use frame::{Framed, MAX_DATA, MAX_FRAME, read_frame, write_frame};
pub(crate) use protocol::kind_name;
pub use protocol::{
    AgentFrame, ClientFrame, FilePiece, ManifestOptions, PROTOCOL_VERSION, Probe, Request, Response,
};
pub use server::{ServeError, serve};

#[cfg(test)]
mod tests;
