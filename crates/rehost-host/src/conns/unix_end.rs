//! Ending the clients of listening Unix sockets (`conns drain --socket --terminate`, the `drain`
//! step's `terminate` for a service's `sockets`), and the proof that they ended.
//!
//! The kernel has no `SOCK_DESTROY` for Unix sockets, so the one way is the stated fallback of
//! TCP ending (`super::end`): on the host ([`end_here`], the `EndUnixConnections` capability)
//! the service's sockets are listed again (`super::unix::connected`), and each target still
//! accepted on its path with exactly its inode is duplicated out of the process that holds it
//! (`pidfd_open` + `pidfd_getfd`, which needs the right to ptrace that process), checked again (a
//! socket with that inode) and shut down both ways: the service reads the end of its client's
//! stream (PostgreSQL's backend ends the session and logs the disconnection), the client reads
//! the end of the service's. A target not listed any more is gone; one no process of those this
//! user may look into holds is named with why, to be ended by hand.
//!
//! On rehost's side ([`terminate`]): the host's answer is checked against the question (only the
//! targets, each at most once, reasons bounded), then the sockets are listed again and a target
//! is called ended only when that listing no longer has it.

use super::end::Ended;
use super::unix::UnixConnection;
use crate::agent::{Request, Response};
use crate::bytes::Bytes;
use crate::{Host, HostError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::end::{MAX_WHY, SETTLE, truncate};

/// A Unix-socket connection to end: the listening path and the service's end's inode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnixTarget {
    pub path: Bytes,
    pub inode: u64,
}

impl UnixTarget {
    pub fn of(c: &UnixConnection) -> UnixTarget {
        UnixTarget {
            path: c.path.clone(),
            inode: c.inode,
        }
    }
}

/// What the host did for one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UnixAttempt {
    /// Duplicated from its process and shut down (not yet the proof: see [`terminate`]).
    Done { target: UnixTarget },
    /// The host did not find it accepted on its path any more when it looked.
    Gone { target: UnixTarget },
    /// It could not be ended: why.
    Failed { target: UnixTarget, why: String },
}

impl UnixAttempt {
    pub fn target(&self) -> &UnixTarget {
        match self {
            UnixAttempt::Done { target }
            | UnixAttempt::Gone { target }
            | UnixAttempt::Failed { target, .. } => target,
        }
    }
}

/// One Unix-socket connection rehost was asked to end, and what became of it (`Ended::Ended`
/// always with the mechanism `pidfd_shutdown`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixOutcome {
    pub connection: UnixConnection,
    #[serde(flatten)]
    pub result: Ended,
}

/// On the host: ends each of `targets` still accepted on one of `paths` with exactly its inode.
pub fn end_here(paths: &[Bytes], targets: &[UnixTarget]) -> std::io::Result<Vec<UnixAttempt>> {
    let targets = &targets[..targets.len().min(super::end::MAX_TARGETS)];
    let listing = super::unix::connected(paths, super::MAX_CONNECTIONS)?;
    let listed: HashSet<UnixTarget> = listing.connections.iter().map(UnixTarget::of).collect();
    let mut out = Vec::with_capacity(targets.len());
    let mut to_end: Vec<&UnixTarget> = Vec::new();
    for t in targets {
        if !paths.contains(&t.path) {
            out.push(UnixAttempt::Failed {
                target: t.clone(),
                why: "its socket path was not asked for".into(),
            });
        } else if !listed.contains(t) {
            out.push(UnixAttempt::Gone { target: t.clone() });
        } else {
            to_end.push(t);
        }
    }
    if !to_end.is_empty() {
        let holders = super::end::holders(to_end.iter().map(|t| t.inode).collect());
        for t in to_end {
            out.push(
                match super::end::shutdown_held(t.inode, holders.get(&t.inode), |_| Ok(())) {
                    Ok(()) => UnixAttempt::Done { target: t.clone() },
                    Err(why) => UnixAttempt::Failed {
                        target: t.clone(),
                        why: truncate(why),
                    },
                },
            );
        }
    }
    Ok(out)
}

/// Asks `host` to end `targets` (on `paths`): one [`UnixAttempt`] per target it answers for.
/// An answer for a connection that was not asked for, a second answer for one, or a reason
/// longer than the bound is refused whole, naming the host.
pub fn end_unix_connections(
    host: &dyn Host,
    paths: &[Bytes],
    targets: &[UnixTarget],
    cancel: &AtomicBool,
) -> Result<Vec<UnixAttempt>, HostError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let asked: HashSet<&UnixTarget> = targets.iter().collect();
    let req = Request::EndUnixConnections {
        paths: paths.to_vec(),
        targets: targets.to_vec(),
    };
    let mut out: Vec<UnixAttempt> = Vec::new();
    let mut answered: HashSet<UnixTarget> = HashSet::new();
    crate::request_bounded(host, &req, cancel, &mut |r| {
        if let Response::UnixConnectionsEnded { attempts } = r {
            for a in attempts {
                let t = a.target();
                if !asked.contains(t) {
                    return Err(format!(
                        "answered for a Unix-socket connection it was not asked to end (inode {})",
                        t.inode
                    ));
                }
                if !answered.insert(t.clone()) {
                    return Err(format!(
                        "answered twice for the Unix-socket connection of inode {}",
                        t.inode
                    ));
                }
                if let UnixAttempt::Failed { why, .. } = &a
                    && why.len() > MAX_WHY
                {
                    return Err(format!("gave a reason longer than {MAX_WHY} bytes"));
                }
                out.push(a);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Ends `conns` (connections accepted on the listening sockets `paths` on `host`, as a listing
/// showed them) and proves it: the host is asked to end exactly these, its answer is checked,
/// then the sockets are listed again (for up to 3 s, until every one the host ended is gone)
/// and each is called ended only when that listing no longer has it. Returns the outcomes in
/// the order asked, and the connections listed last.
pub fn terminate(
    host: &dyn Host,
    paths: &[Bytes],
    conns: &[UnixConnection],
    cancel: &AtomicBool,
) -> Result<(Vec<UnixOutcome>, Vec<UnixConnection>), HostError> {
    let conns: Vec<&UnixConnection> = conns.iter().filter(|c| paths.contains(&c.path)).collect();
    let targets: Vec<UnixTarget> = conns.iter().map(|c| UnixTarget::of(c)).collect();
    let mut attempts = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(super::end::MAX_TARGETS) {
        attempts.extend(end_unix_connections(host, paths, chunk, cancel)?);
    }
    let by_target: HashMap<&UnixTarget, &UnixAttempt> =
        attempts.iter().map(|a| (a.target(), a)).collect();
    let started = Instant::now();
    let listing = loop {
        let listing = super::unix::on_host(host, paths, super::MAX_CONNECTIONS, cancel)?;
        let listed: HashSet<UnixTarget> = listing.connections.iter().map(UnixTarget::of).collect();
        let waiting = attempts
            .iter()
            .any(|a| matches!(a, UnixAttempt::Done { .. }) && listed.contains(a.target()));
        if !waiting || started.elapsed() >= SETTLE || cancel.load(Relaxed) {
            break listing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let listed: HashSet<UnixTarget> = listing.connections.iter().map(UnixTarget::of).collect();
    let mechanism = super::end::Mechanism::PidfdShutdown;
    let outcomes = conns
        .iter()
        .zip(&targets)
        .map(|(c, t)| {
            let result = match (by_target.get(t), listed.contains(t)) {
                (_, false) if listing.truncated => Ended::Remained {
                    why: format!(
                        "the listing afterwards was cut at {} connections: not proven ended",
                        super::MAX_CONNECTIONS
                    ),
                },
                (Some(UnixAttempt::Done { .. }), false) => Ended::Ended { mechanism },
                (Some(UnixAttempt::Done { .. }), true) => Ended::Remained {
                    why: format!(
                        "the host shut it down, but the kernel still listed it {}s later",
                        SETTLE.as_secs()
                    ),
                },
                (Some(UnixAttempt::Gone { .. } | UnixAttempt::Failed { .. }), false)
                | (None, false) => Ended::Left,
                (Some(UnixAttempt::Gone { .. }), true) => Ended::Remained {
                    why: "the host did not find it, yet it is listed".into(),
                },
                (Some(UnixAttempt::Failed { why, .. }), true) => {
                    Ended::Remained { why: why.clone() }
                }
                (None, true) => Ended::Remained {
                    why: "the host did not answer for it".into(),
                },
            };
            UnixOutcome {
                connection: (*c).clone(),
                result,
            }
        })
        .collect();
    Ok((outcomes, listing.connections))
}
