//! Ending established TCP connections to a host's service ports (`conns drain --terminate`, the
//! `drain` step's `terminate`), and the proof that they ended.
//!
//! On the host ([`end_here`], the `EndConnections` capability): the host lists its established
//! sockets to the asked ports again (netlink `sock_diag`, with each socket's cookie) and ends
//! only those whose inode, addresses and ports are still exactly a target's, so that a stale or
//! hostile target list, or a connection that closed and was replaced in between, never ends
//! anything else. Each is ended by `SOCK_DESTROY` (the kernel aborts the socket, the peer gets
//! a reset; needs `CAP_NET_ADMIN` and `CONFIG_INET_DIAG_DESTROY`, and the cookie makes the
//! kernel refuse a socket other than the one listed), or, where the kernel refuses it, by the
//! stated fallback: the socket is duplicated out of the process that holds it
//! (`pidfd_open` + `pidfd_getfd`, which needs the right to ptrace that process), checked again
//! (a socket, the same inode, the same addresses and ports) and shut down both ways
//! (`shutdown(SHUT_RDWR)`: the service reads its end, the peer is sent a FIN). Neither: the
//! connection is named as one to end by hand, with why each way failed.
//!
//! On rehost's side ([`terminate`]): what the host answered is checked against what was asked
//! (only the targets, each at most once), then the connections are listed again and a target
//! is called ended only when the kernel's listing no longer has it.

use super::{Connection, Listing};
use crate::agent::{Request, Response};
use crate::{Host, HostError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How many connections one request may ask to end.
pub const MAX_TARGETS: usize = 10_000;
/// How long rehost lists again for the ended connections to leave the kernel's listing.
pub(super) const SETTLE: Duration = Duration::from_secs(3);
/// How long a reason the host gives is kept.
pub(super) const MAX_WHY: usize = 500;

/// A connection to end, as a listing showed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub peer_addr: IpAddr,
    pub peer_port: u16,
    /// The socket's inode: a connection with the same addresses but another socket is not it.
    pub inode: u64,
}

impl Target {
    pub fn of(c: &Connection) -> Target {
        Target {
            local_addr: c.local_addr,
            local_port: c.local_port,
            peer_addr: c.peer_addr,
            peer_port: c.peer_port,
            inode: c.inode,
        }
    }
}

/// How a connection was ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Netlink `SOCK_DESTROY`: the kernel aborted the socket (the peer got a reset).
    SockDestroy,
    /// The socket duplicated from its process (`pidfd_getfd`) and shut down both ways.
    PidfdShutdown,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::SockDestroy => "sock_destroy",
            Mechanism::PidfdShutdown => "pidfd_shutdown",
        }
    }
}

/// What the host did for one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Attempt {
    /// The kernel took the ending (not yet the proof: see [`terminate`]).
    Done {
        target: Target,
        mechanism: Mechanism,
    },
    /// The host did not find it established any more when it looked.
    Gone { target: Target },
    /// Neither way could end it: why.
    Failed { target: Target, why: String },
}

impl Attempt {
    pub fn target(&self) -> &Target {
        match self {
            Attempt::Done { target, .. }
            | Attempt::Gone { target }
            | Attempt::Failed { target, .. } => target,
        }
    }
}

/// What became of one connection rehost was asked to end, by the listing made afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Ended {
    /// Ended by rehost: the host ended it by `mechanism` and the next listing no longer has it.
    Ended { mechanism: Mechanism },
    /// It closed by itself before rehost could end it (the host no longer found it, and
    /// neither does the next listing).
    Left,
    /// Still established at the last listing: to be ended by hand; why.
    Remained { why: String },
}

/// One connection rehost was asked to end, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub connection: Connection,
    #[serde(flatten)]
    pub result: Ended,
}

/// What [`terminate`] did, connection by connection, in the order asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    pub outcomes: Vec<Outcome>,
    /// The listing the results were read from (the last one made): every connection to the
    /// ports still established then, the ones that came since included.
    pub listing: Listing,
}

impl Termination {
    pub fn count(&self, f: impl Fn(&Ended) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.result)).count()
    }
}

/// `ADDR:PORT (process PID COMMAND) to port P`, escaped for a terminal: a connection named as
/// a drain names a client (`super::Client::describe`).
pub fn describe(c: &Connection) -> String {
    let process = match (c.pid, &c.command) {
        (Some(p), Some(cmd)) => format!("process {p} {}", rehost_tree::escape::text(cmd)),
        (Some(p), None) => format!("process {p}"),
        _ => "process not visible".into(),
    };
    format!("{} ({process}) to port {}", c.peer(), c.local_port)
}

/// Ends `conns` (connections to `ports` on `host`, as a listing showed them) and proves it:
/// the host is asked to end exactly these (the `EndConnections` capability), its answer is
/// checked against the question, then the connections to `ports` are listed again (for up to
/// 3 s, until every one the host ended is gone) and each is called ended only when that
/// listing no longer has it. `ports` must not be empty, and a connection to another port is
/// never asked for.
pub fn terminate(
    host: &dyn Host,
    ports: &[u16],
    conns: &[Connection],
    cancel: &AtomicBool,
) -> Result<Termination, HostError> {
    let conns: Vec<&Connection> = conns
        .iter()
        .filter(|c| ports.contains(&c.local_port))
        .collect();
    let targets: Vec<Target> = conns.iter().map(|c| Target::of(c)).collect();
    let mut attempts = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(MAX_TARGETS) {
        attempts.extend(end_connections(host, ports, chunk, cancel)?);
    }
    let by_target: HashMap<&Target, &Attempt> = attempts.iter().map(|a| (a.target(), a)).collect();
    let started = Instant::now();
    let listing: Listing = loop {
        let listing = host.connections(ports, super::MAX_CONNECTIONS, cancel)?;
        let listed: HashSet<Target> = listing.connections.iter().map(Target::of).collect();
        let waiting = attempts
            .iter()
            .any(|a| matches!(a, Attempt::Done { .. }) && listed.contains(a.target()));
        if !waiting || started.elapsed() >= SETTLE || cancel.load(Relaxed) {
            break listing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let listed: HashSet<Target> = listing.connections.iter().map(Target::of).collect();
    let outcomes = conns
        .iter()
        .zip(&targets)
        .map(|(c, t)| {
            let in_listing = listed.contains(t);
            let result = match (by_target.get(t), in_listing) {
                // Absent from a listing cut at its bound proves nothing.
                (_, false) if listing.truncated => Ended::Remained {
                    why: format!(
                        "the listing afterwards was cut at {} connections: not proven ended",
                        super::MAX_CONNECTIONS
                    ),
                },
                (Some(Attempt::Done { mechanism, .. }), false) => Ended::Ended {
                    mechanism: *mechanism,
                },
                (Some(Attempt::Done { mechanism, .. }), true) => Ended::Remained {
                    why: format!(
                        "the host ended it by {}, but the kernel still listed it {}s later",
                        mechanism.as_str(),
                        SETTLE.as_secs()
                    ),
                },
                (Some(Attempt::Gone { .. } | Attempt::Failed { .. }), false) => Ended::Left,
                (Some(Attempt::Gone { .. }), true) => Ended::Remained {
                    why: "the host did not find it, yet its kernel lists it".into(),
                },
                (Some(Attempt::Failed { why, .. }), true) => Ended::Remained { why: why.clone() },
                (None, false) => Ended::Left,
                (None, true) => Ended::Remained {
                    why: "the host did not answer for it".into(),
                },
            };
            Outcome {
                connection: (*c).clone(),
                result,
            }
        })
        .collect();
    Ok(Termination { outcomes, listing })
}

/// Asks `host` to end `targets` (connections to `ports`): one [`Attempt`] per target it answers
/// for. An answer for a connection that was not asked for, a second answer for one, or a reason
/// longer than a bound is refused whole, naming the host.
pub fn end_connections(
    host: &dyn Host,
    ports: &[u16],
    targets: &[Target],
    cancel: &AtomicBool,
) -> Result<Vec<Attempt>, HostError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let asked: HashSet<&Target> = targets.iter().collect();
    let req = Request::EndConnections {
        ports: ports.to_vec(),
        targets: targets.to_vec(),
    };
    let mut out: Vec<Attempt> = Vec::new();
    let mut answered: HashSet<Target> = HashSet::new();
    crate::request_bounded(host, &req, cancel, &mut |r| {
        if let Response::ConnectionsEnded { attempts } = r {
            for a in attempts {
                let t = a.target();
                if !asked.contains(t) || !ports.contains(&t.local_port) {
                    return Err(format!(
                        "answered for a connection it was not asked to end (port {}, inode {})",
                        t.local_port, t.inode
                    ));
                }
                if !answered.insert(t.clone()) {
                    return Err(format!(
                        "answered twice for the connection of inode {}",
                        t.inode
                    ));
                }
                if let Attempt::Failed { why, .. } = &a
                    && why.len() > MAX_WHY
                {
                    return Err(format!("sent a reason longer than {MAX_WHY} bytes"));
                }
                out.push(a);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// On the host: ends each of `targets` that is still an established connection to one of
/// `ports` with exactly its inode, addresses and ports (see the module's doc). Targets to
/// other ports are answered as failed without being looked at.
pub fn end_here(ports: &[u16], targets: &[Target]) -> std::io::Result<Vec<Attempt>> {
    let targets = &targets[..targets.len().min(MAX_TARGETS)];
    // With the kernel's ids (netlink); where it refuses a diagnostic socket, the procfs
    // listing finds them for the fallback alone.
    let (listed, refused) = match destroy::listed(ports) {
        Ok(l) => (l, None),
        Err(e) => {
            let want = |p: u16| ports.contains(&p);
            let l = super::procfs::established(&want)?
                .iter()
                .map(|c| destroy::Listed::without_id(Target::of(c)))
                .collect();
            (l, Some(format!("netlink sock_diag: {}", os_error(&e))))
        }
    };
    let mut out = Vec::with_capacity(targets.len());
    let mut fallback: Vec<(&Target, String)> = Vec::new();
    for t in targets {
        if !ports.contains(&t.local_port) {
            out.push(Attempt::Failed {
                target: t.clone(),
                why: format!("port {} was not asked for", t.local_port),
            });
            continue;
        }
        let Some(l) = listed.iter().find(|s| s.target == *t) else {
            out.push(Attempt::Gone { target: t.clone() });
            continue;
        };
        if let Some(why) = &refused {
            fallback.push((t, why.clone()));
            continue;
        }
        match destroy::destroy(l) {
            Ok(()) => out.push(Attempt::Done {
                target: t.clone(),
                mechanism: Mechanism::SockDestroy,
            }),
            // Closed since the listing (no such socket, or another one in its place).
            Err(e)
                if matches!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::NOENT | rustix::io::Errno::STALE)
                ) =>
            {
                out.push(Attempt::Gone { target: t.clone() })
            }
            Err(e) => fallback.push((t, format!("SOCK_DESTROY: {}", os_error(&e)))),
        }
    }
    if !fallback.is_empty() {
        let holders = pidfd::holders(fallback.iter().map(|(t, _)| t.inode).collect());
        for (t, refused) in fallback {
            out.push(match pidfd::shutdown(t, holders.get(&t.inode)) {
                Ok(()) => Attempt::Done {
                    target: t.clone(),
                    mechanism: Mechanism::PidfdShutdown,
                },
                Err(e) => Attempt::Failed {
                    target: t.clone(),
                    why: truncate(format!("{refused}; {e}")),
                },
            });
        }
    }
    Ok(out)
}

/// A reason cut to [`MAX_WHY`] bytes (at a character boundary).
pub(super) fn truncate(mut s: String) -> String {
    if s.len() > MAX_WHY {
        let mut at = MAX_WHY - 3;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push_str("...");
    }
    s
}

/// An error's words without the `(os error N)` suffix a reader does not need.
fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

mod destroy {
    use super::Target;
    use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
    use netlink_packet_sock_diag::{
        SockDiagMessage,
        constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DESTROY},
        inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    };
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    use std::io;

    /// An established socket as the kernel named it, with what identifies it to the kernel.
    pub(super) struct Listed {
        pub(super) target: Target,
        /// The family and id to name it by in a `SOCK_DESTROY`; none from `/proc/net/tcp*`.
        id: Option<(u8, SocketId)>,
    }

    impl Listed {
        pub(super) fn without_id(target: Target) -> Listed {
            Listed { target, id: None }
        }
    }

    fn open() -> io::Result<Socket> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(socket)
    }

    fn send(
        socket: &Socket,
        flags: u16,
        message_type: Option<u16>,
        req: InetRequest,
    ) -> io::Result<()> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(req).into());
        packet.finalize();
        if let Some(t) = message_type {
            packet.header.message_type = t;
        }
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        socket.send(&buf, 0)?;
        Ok(())
    }

    /// Reads answers until the end of a dump or an acknowledgement, passing each socket on.
    fn receive(
        socket: &Socket,
        each: &mut dyn FnMut(u8, &netlink_packet_sock_diag::inet::InetResponseHeader),
    ) -> io::Result<()> {
        crate::conns::netlink::receive(socket, &mut |m| {
            if let SockDiagMessage::InetResponse(r) = m {
                each(r.header.family, &r.header)
            }
        })
    }

    /// The established TCP sockets (both families) to `ports`, with their kernel ids.
    pub(super) fn listed(ports: &[u16]) -> io::Result<Vec<Listed>> {
        let socket = open()?;
        let mut out = Vec::new();
        for (family, socket_id) in [
            (AF_INET, SocketId::new_v4()),
            (AF_INET6, SocketId::new_v6()),
        ] {
            if ports.is_empty() {
                continue;
            }
            crate::conns::netlink::dump_established(&socket, family, socket_id, ports, &mut |h| {
                let id = &h.socket_id;
                out.push(Listed {
                    target: Target {
                        local_addr: id.source_address.to_canonical(),
                        local_port: id.source_port,
                        peer_addr: id.destination_address.to_canonical(),
                        peer_port: id.destination_port,
                        inode: h.inode.into(),
                    },
                    id: Some((family, id.clone())),
                });
            })?;
        }
        Ok(out)
    }

    /// `SOCK_DESTROY` of exactly that socket (its cookie included: the kernel refuses another
    /// socket with the same addresses, `ESTALE`).
    pub(super) fn destroy(l: &Listed) -> io::Result<()> {
        let Some((family, id)) = &l.id else {
            return Err(io::Error::other(
                "the socket was not listed through netlink",
            ));
        };
        let socket = open()?;
        send(
            &socket,
            NLM_F_REQUEST | NLM_F_ACK,
            Some(SOCK_DESTROY),
            InetRequest {
                family: *family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::ESTABLISHED,
                socket_id: id.clone(),
            },
        )?;
        receive(&socket, &mut |_, _| {})
    }
}

pub(super) use pidfd::{holders, shutdown_held};

mod pidfd {
    use super::{Target, os_error};
    use std::collections::HashMap;
    use std::os::fd::AsFd;

    /// The processes (pid, fd number) holding each of `inodes`, from `/proc/*/fd`, as far as
    /// this user may look.
    pub(in crate::conns) fn holders(mut inodes: Vec<u64>) -> HashMap<u64, Vec<(u32, i32)>> {
        inodes.sort_unstable();
        let mut out: HashMap<u64, Vec<(u32, i32)>> = HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Some(n) = fd.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(link) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                if let Some(inode) = super::super::socket_inode(link.as_os_str().as_encoded_bytes())
                    && inodes.binary_search(&inode).is_ok()
                {
                    out.entry(inode).or_default().push((pid, n));
                }
            }
        }
        out
    }

    /// Duplicates the socket out of a process that holds it, checks it is still the target
    /// (a socket, the same inode, the same addresses and ports) and shuts it down both ways.
    pub(super) fn shutdown(t: &Target, holders: Option<&Vec<(u32, i32)>>) -> Result<(), String> {
        shutdown_held(t.inode, holders, |dup| {
            let here = address(&rustix::net::getsockname(dup).map_err(|e| e.to_string())?);
            let there = address(
                &rustix::net::getpeername(dup)
                    .map_err(|e| e.to_string())?
                    .ok_or("no peer")?,
            );
            if here != Some((t.local_addr, t.local_port))
                || there != Some((t.peer_addr, t.peer_port))
            {
                return Err("its addresses are no longer the listed ones; left alone".into());
            }
            Ok(())
        })
    }

    /// Duplicates the socket of `inode` out of a process that holds it, checks it is still a
    /// socket with that inode and passes `check`, and shuts it down both ways.
    pub(in crate::conns) fn shutdown_held(
        inode: u64,
        holders: Option<&Vec<(u32, i32)>>,
        check: impl Fn(&rustix::fd::OwnedFd) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(holders) = holders.filter(|h| !h.is_empty()) else {
            return Err(
                "no process of those this user may look into holds it (pidfd_getfd not tried)"
                    .into(),
            );
        };
        let mut why = Vec::new();
        for &(pid, fd) in holders {
            match one(inode, pid, fd, &check) {
                Ok(()) => return Ok(()),
                Err(e) => why.push(format!("process {pid}: {e}")),
            }
        }
        Err(why.join("; "))
    }

    fn one(
        inode: u64,
        pid: u32,
        fd: i32,
        check: &impl Fn(&rustix::fd::OwnedFd) -> Result<(), String>,
    ) -> Result<(), String> {
        use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
        let pid_ = Pid::from_raw(pid as i32).ok_or("not a process id")?;
        let pidfd = pidfd_open(pid_, PidfdFlags::empty())
            .map_err(|e| format!("pidfd_open: {}", os_error(&e.into())))?;
        let dup = pidfd_getfd(pidfd.as_fd(), fd, PidfdGetfdFlags::empty())
            .map_err(|e| format!("pidfd_getfd: {}", os_error(&e.into())))?;
        let st = rustix::fs::fstat(&dup).map_err(|e| format!("fstat: {e}"))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket
            || st.st_ino != inode
        {
            return Err("its descriptor is no longer that socket; left alone".into());
        }
        check(&dup)?;
        rustix::net::shutdown(&dup, rustix::net::Shutdown::Both)
            .map_err(|e| format!("shutdown: {e}"))
    }

    fn address(a: &rustix::net::SocketAddrAny) -> Option<(std::net::IpAddr, u16)> {
        let s: std::net::SocketAddr = a.clone().try_into().ok()?;
        Some((s.ip().to_canonical(), s.port()))
    }
}
