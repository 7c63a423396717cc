//! Established TCP connections to local ports, read from the kernel: netlink `sock_diag` (as
//! `ss` does), or else `/proc/net/tcp` and `/proc/net/tcp6` (the stated fallback, when the
//! kernel refuses a diagnostic socket). The owning process comes from `/proc/*/fd` (the
//! socket's inode), where this user may look: another user's processes stay unnamed for an
//! unprivileged rehost. The process is named by its `comm` (the kernel's short name), never
//! its command line, which may hold a credential. Never read from another tool's output.

pub mod end;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// How many connections one listing holds at most unless the caller asks for fewer; a host
/// sending more is refused (see [`crate::Host::connections`]).
pub const MAX_CONNECTIONS: usize = 100_000;

/// One established TCP connection to a local port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The local address and port (the service's side).
    pub local_addr: IpAddr,
    pub local_port: u16,
    /// The client's address and port.
    pub peer_addr: IpAddr,
    pub peer_port: u16,
    /// Bytes queued to send to the peer and received but not yet read by the service.
    pub send_queue: u32,
    pub recv_queue: u32,
    /// The socket's owner (user id) and inode.
    pub uid: u32,
    pub inode: u64,
    /// The process holding the socket, where visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// That process's short name (`/proc/PID/comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Connection {
    /// `ADDR:PORT` of the peer (`[ADDR]:PORT` for IPv6).
    pub fn peer(&self) -> String {
        std::net::SocketAddr::new(self.peer_addr, self.peer_port).to_string()
    }

    /// The process as shown: `PID (COMMAND)`, `PID`, or `not visible`. Escaped for a terminal.
    pub fn process(&self) -> String {
        match (self.pid, &self.command) {
            (Some(p), Some(c)) => format!("{p} ({})", rehost_tree::escape::text(c)),
            (Some(p), None) => p.to_string(),
            _ => "not visible".into(),
        }
    }
}

/// Where a listing was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Netlink `sock_diag`.
    Netlink,
    /// `/proc/net/tcp` and `/proc/net/tcp6`.
    Procfs,
}

/// What [`established`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub connections: Vec<Connection>,
    pub source: Source,
    /// Why netlink was not used, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// More connections than `limit` were established; the first `limit` are listed.
    #[serde(default)]
    pub truncated: bool,
    /// The owning processes were not looked up (`conns list --no-process`): `pid` and
    /// `command` are absent for that reason, not because they were not visible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub processes_not_read: bool,
}

/// How many distinct clients a [`Tracker`] keeps; more are counted, not kept.
pub const MAX_TRACKED: usize = 10_000;

/// A client seen by a [`Tracker`]: when it was first and last seen connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub peer_addr: IpAddr,
    pub peer_port: u16,
    pub local_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Milliseconds from the first listing to the one it was first seen in (0: connected at
    /// the start).
    pub first_seen_ms: u64,
    /// Milliseconds from the first listing to the first one it was no longer in; `None`:
    /// still connected at the last listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<u64>,
}

impl Client {
    /// `ADDR:PORT` of the client.
    pub fn peer(&self) -> String {
        std::net::SocketAddr::new(self.peer_addr, self.peer_port).to_string()
    }

    /// `ADDR:PORT (process PID COMMAND) to port P`, escaped for a terminal.
    pub fn describe(&self) -> String {
        let process = match (self.pid, &self.command) {
            (Some(p), Some(c)) => format!("process {p} {}", rehost_tree::escape::text(c)),
            (Some(p), None) => format!("process {p}"),
            _ => "process not visible".into(),
        };
        format!("{} ({process}) to port {}", self.peer(), self.local_port)
    }
}

/// Who was connected across successive listings: a drain's record of who was there at the
/// start, who came later, who left when, and who remained.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    clients: Vec<Client>,
    index: HashMap<(IpAddr, u16, u16), usize>,
    /// When the first listing was made, on the caller's clock.
    origin: Option<u64>,
    /// Distinct clients past [`MAX_TRACKED`], counted only.
    pub untracked: u64,
}

impl Tracker {
    /// Takes in one listing made at `at_ms` on the caller's clock (the clients' times are
    /// kept from the first listing): clients not seen before are added, clients no longer
    /// listed are marked as left (a client that comes back with the same address and ports is
    /// connected again).
    pub fn observe(&mut self, conns: &[Connection], at_ms: u64) {
        let at_ms = at_ms.saturating_sub(*self.origin.get_or_insert(at_ms));
        let mut now = std::collections::HashSet::new();
        for c in conns {
            let key = (c.peer_addr, c.peer_port, c.local_port);
            now.insert(key);
            match self.index.get(&key) {
                Some(&i) => self.clients[i].left_ms = None,
                None if self.clients.len() < MAX_TRACKED => {
                    self.index.insert(key, self.clients.len());
                    self.clients.push(Client {
                        peer_addr: c.peer_addr,
                        peer_port: c.peer_port,
                        local_port: c.local_port,
                        pid: c.pid,
                        command: c.command.clone(),
                        first_seen_ms: at_ms,
                        left_ms: None,
                    });
                }
                None => self.untracked += 1,
            }
        }
        for c in &mut self.clients {
            if c.left_ms.is_none() && !now.contains(&(c.peer_addr, c.peer_port, c.local_port)) {
                c.left_ms = Some(at_ms);
            }
        }
    }

    /// Every client seen, in the order first seen.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// The clients connected at the last listing.
    pub fn remaining(&self) -> impl Iterator<Item = &Client> {
        self.clients.iter().filter(|c| c.left_ms.is_none())
    }
}

/// The established TCP connections (IPv4 and IPv6) whose local port is one of `ports` (all
/// when empty), at most `limit`, sorted by local port, peer address and port, with their
/// owning processes where visible.
pub fn established(ports: &[u16], limit: usize) -> std::io::Result<Listing> {
    established_with(ports, limit, true)
}

/// [`established`], with the owning processes looked up in `/proc/*/fd` or not (`owners`):
/// the lookup reads every process's descriptors, most of a listing's time on a busy host.
pub fn established_with(ports: &[u16], limit: usize, owners: bool) -> std::io::Result<Listing> {
    let want = |p: u16| ports.is_empty() || ports.contains(&p);
    let (mut connections, source, fallback) = match netlink::established(ports) {
        Ok((c, _)) => (c, Source::Netlink, None),
        Err(e) => (
            procfs::established(&want)?,
            Source::Procfs,
            Some(format!("netlink sock_diag: {e}")),
        ),
    };
    connections.sort_by(|a, b| {
        (a.local_port, a.peer_addr, a.peer_port, a.inode).cmp(&(
            b.local_port,
            b.peer_addr,
            b.peer_port,
            b.inode,
        ))
    });
    let truncated = connections.len() > limit;
    connections.truncate(limit);
    if owners {
        self::owners(&mut connections);
    }
    Ok(Listing {
        connections,
        source,
        fallback,
        truncated,
        processes_not_read: !owners,
    })
}

/// Fills in each connection's process from `/proc/*/fd`: the first process (lowest pid) that
/// holds the socket. Processes this user may not look into are passed over.
fn owners(conns: &mut [Connection]) {
    let held = holders(conns.iter().map(|c| c.inode));
    for c in conns {
        if let Some((pid, command)) = held.get(&c.inode) {
            c.pid = Some(*pid);
            c.command = command.clone();
        }
    }
}

/// The process holding each socket inode, from `/proc/*/fd`: the first (lowest pid) that
/// holds it, with its short name (`/proc/PID/comm`). Processes this user may not look into
/// are passed over; an inode no visible process holds is absent.
pub(crate) fn holders(inodes: impl Iterator<Item = u64>) -> HashMap<u64, (u32, Option<String>)> {
    let mut wanted: HashMap<u64, Option<u32>> = inodes.map(|i| (i, None)).collect();
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut left = wanted.len();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            if let Some(slot @ None) = wanted.get_mut(&inode) {
                *slot = Some(pid);
                left -= 1;
            }
        }
        if left == 0 {
            break;
        }
    }
    let mut names: HashMap<u32, Option<String>> = HashMap::new();
    for (inode, pid) in wanted {
        let Some(pid) = pid else { continue };
        let command = names
            .entry(pid)
            .or_insert_with(|| {
                std::fs::read(format!("/proc/{pid}/comm"))
                    .ok()
                    .map(|b| String::from_utf8_lossy(b.trim_ascii_end()).into_owned())
            })
            .clone();
        out.insert(inode, (pid, command));
    }
    out
}

/// The inode of a `socket:[INODE]` link target.
fn socket_inode(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

pub(crate) mod netlink {
    use super::Connection;
    use netlink_packet_core::{
        NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_sock_diag::{
        SockDiagMessage,
        constants::{AF_INET, AF_INET6, IPPROTO_TCP},
        inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
    };
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    use std::io;

    /// How a dump was filtered by port.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) struct Filtered {
        /// The kernel ran the port filter (for every family dumped).
        pub by_kernel: bool,
        /// Answers the kernel sent for another port (passed over here).
        pub passed_over: usize,
    }

    /// Both families' established TCP sockets to `ports` (all when empty), through one
    /// diagnostic socket; and how they were filtered by port.
    pub(super) fn established(ports: &[u16]) -> io::Result<(Vec<Connection>, Filtered)> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let mut out = Vec::new();
        let mut filtered = Filtered {
            by_kernel: true,
            passed_over: 0,
        };
        for (family, id) in [
            (AF_INET, SocketId::new_v4()),
            (AF_INET6, SocketId::new_v6()),
        ] {
            let f = dump_established(&socket, family, id, ports, &mut |h| {
                let id = &h.socket_id;
                out.push(Connection {
                    local_addr: canonical(id.source_address),
                    local_port: id.source_port,
                    peer_addr: canonical(id.destination_address),
                    peer_port: id.destination_port,
                    send_queue: h.send_queue,
                    recv_queue: h.recv_queue,
                    uid: h.uid,
                    inode: h.inode.into(),
                    pid: None,
                    command: None,
                });
            })?;
            filtered.by_kernel &= f.by_kernel;
            filtered.passed_over += f.passed_over;
        }
        Ok((out, filtered))
    }

    /// `INET_DIAG_REQ_BYTECODE` (linux/inet_diag.h): the attribute after the request that
    /// holds a filter program, run by the kernel on each socket before it builds an answer.
    const INET_DIAG_REQ_BYTECODE: u16 = 1;
    /// `INET_DIAG_BC_JMP`: go on `no` bytes.
    pub(crate) const BC_JMP: u8 = 1;
    /// `INET_DIAG_BC_S_COND`: the local side matches the `struct inet_diag_hostcond` after it.
    pub(crate) const BC_S_COND: u8 = 7;
    /// An `S_COND` operation with its `inet_diag_hostcond` (family `AF_UNSPEC`: no address).
    const COND_LEN: usize = 4 + 8;
    /// At most this many ports are given to the kernel as a filter; a listing of more ports is
    /// filtered here only.
    pub(crate) const MAX_FILTER_PORTS: usize = 256;

    /// The kernel's filter program for "the local port is one of `ports`", as `ss` builds it
    /// for `sport = :P or sport = :Q …` (iproute2 `misc/ss.c`, `ssfilter_bytecode`): for each
    /// port an `S_COND` of family `AF_UNSPEC` and prefix 0 (the port alone), each but the last
    /// followed by a `JMP` to the end. The kernel (`inet_diag_bc_run`) takes a socket when the
    /// program runs off its end exactly: a condition that holds goes on to its `JMP` (or, the
    /// last, off the end), one that fails skips its `JMP` to the next condition (the last one 4
    /// bytes past the end: not taken). Each operation is `{code: u8, yes: u8, no: u16}` in host
    /// byte order, the hostcond `{family: u8, prefix_len: u8, pad: u16, port: i32}`.
    /// `None` for no port (every port wanted) or more than [`MAX_FILTER_PORTS`].
    pub(crate) fn sport_filter(ports: &[u16]) -> Option<Vec<u8>> {
        let mut ports = ports.to_vec();
        ports.sort_unstable();
        ports.dedup();
        if ports.is_empty() || ports.len() > MAX_FILTER_PORTS {
            return None;
        }
        let len = ports.len() * (COND_LEN + 4) - 4;
        let mut bc = Vec::with_capacity(len);
        let op = |bc: &mut Vec<u8>, code: u8, yes: u8, no: u16| {
            bc.extend_from_slice(&[code, yes]);
            bc.extend_from_slice(&no.to_ne_bytes());
        };
        for (i, port) in ports.iter().enumerate() {
            op(&mut bc, BC_S_COND, COND_LEN as u8, (COND_LEN + 4) as u16);
            bc.extend_from_slice(&[0, 0, 0, 0]); // AF_UNSPEC, prefix 0, padding
            bc.extend_from_slice(&i32::from(*port).to_ne_bytes());
            if i + 1 < ports.len() {
                let to_end = (len - bc.len()) as u16;
                op(&mut bc, BC_JMP, 4, to_end);
            }
        }
        debug_assert_eq!(bc.len(), len);
        Some(bc)
    }

    /// The bytes of a dump request for `family`'s established TCP sockets, with `filter` as its
    /// `INET_DIAG_REQ_BYTECODE` attribute when given (netlink-packet-sock-diag has no such
    /// attribute: it is appended to the serialised request and the message's length mended).
    pub(crate) fn dump_request(family: u8, socket_id: SocketId, filter: Option<&[u8]>) -> Vec<u8> {
        dump_request_of(
            family,
            IPPROTO_TCP,
            StateFlags::ESTABLISHED,
            socket_id,
            filter,
        )
    }

    /// [`dump_request`] for any protocol and states (the survey's listening TCP and bound UDP
    /// sockets).
    pub(crate) fn dump_request_of(
        family: u8,
        protocol: u8,
        states: StateFlags,
        socket_id: SocketId,
        filter: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id,
            })
            .into(),
        );
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        if let Some(bc) = filter {
            let attr = 4 + bc.len();
            buf.extend_from_slice(&(attr as u16).to_ne_bytes());
            buf.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
            buf.extend_from_slice(bc);
            buf.resize((buf.len() + 3) & !3, 0);
            let total = buf.len() as u32;
            buf[..4].copy_from_slice(&total.to_ne_bytes());
        }
        buf
    }

    /// One family's established TCP sockets whose local port `want`s, each passed on as the
    /// kernel's answer: with the ports given to the kernel as a filter (`ports` not empty and
    /// at most [`MAX_FILTER_PORTS`]), so that it builds answers for those sockets only; where
    /// the kernel refuses the filter (`EINVAL`), everything again, filtered here. Says how it
    /// was filtered.
    pub(crate) fn dump_established(
        socket: &Socket,
        family: u8,
        socket_id: SocketId,
        ports: &[u16],
        each: &mut dyn FnMut(&InetResponseHeader),
    ) -> io::Result<Filtered> {
        let want = |p: u16| ports.is_empty() || ports.contains(&p);
        let mut passed_over = 0;
        let mut pass = |m: SockDiagMessage| {
            if let SockDiagMessage::InetResponse(r) = m {
                if r.header.state == 1 && want(r.header.socket_id.source_port) {
                    each(&r.header);
                } else {
                    passed_over += 1;
                }
            }
        };
        if let Some(bc) = sport_filter(ports) {
            socket.send(&dump_request(family, socket_id.clone(), Some(&bc)), 0)?;
            match receive(socket, &mut pass) {
                Ok(()) => {
                    return Ok(Filtered {
                        by_kernel: true,
                        passed_over,
                    });
                }
                // Refused before any answer (the kernel checks a program before it runs it).
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
        }
        socket.send(&dump_request(family, socket_id, None), 0)?;
        receive(socket, &mut pass)?;
        Ok(Filtered {
            by_kernel: false,
            passed_over,
        })
    }

    /// Reads the kernel's answer to one sock_diag request until its end (`NLMSG_DONE`, or an
    /// acknowledgement), passing each message on; an error the kernel sends is the error. The one
    /// reader of the TCP listing, the Unix socket listing and the ending of connections.
    pub(crate) fn receive(
        socket: &Socket,
        each: &mut dyn FnMut(SockDiagMessage),
    ) -> io::Result<()> {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        // Page-aligned: the kernel copies up to 64 KiB of listing into it per call (issue 27).
        let mut rx = rehost_tree::aligned::AlignedBuf::new(1 << 16);
        loop {
            let n = match socket.recv(&mut &mut rx[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(bad("the kernel ended its answer without its end".into()));
            }
            let mut at = 0;
            while at < n {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&rx[at..n])
                    .map_err(|e| bad(format!("a sock_diag answer does not read: {e}")))?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(_) => Err(e.to_io()),
                            None => Ok(()),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => each(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                at += (len + 3) & !3;
            }
        }
    }

    /// An IPv4 peer of an IPv6 socket as the IPv4 address it is.
    fn canonical(a: std::net::IpAddr) -> std::net::IpAddr {
        a.to_canonical()
    }
}

pub(crate) mod procfs {
    use super::Connection;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Both families' established TCP sockets from `/proc/net/tcp` and `/proc/net/tcp6` (the
    /// latter may be absent on a kernel without IPv6).
    pub(crate) fn established(want: &dyn Fn(u16) -> bool) -> std::io::Result<Vec<Connection>> {
        let mut out = Vec::new();
        for (file, required) in [("/proc/net/tcp", true), ("/proc/net/tcp6", false)] {
            match std::fs::read_to_string(file) {
                Ok(text) => out.extend(parse(&text).into_iter().filter(|c| want(c.local_port))),
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(std::io::Error::new(e.kind(), format!("{file}: {e}")));
                }
            }
        }
        Ok(out)
    }

    /// The established connections of one `/proc/net/tcp*` table; lines that do not read are
    /// passed over.
    pub(crate) fn parse(text: &str) -> Vec<Connection> {
        text.lines().skip(1).filter_map(line).collect()
    }

    fn line(l: &str) -> Option<Connection> {
        line_in(l, "01")
    }

    /// The sockets of one `/proc/net/tcp*` or `/proc/net/udp*` table in `state` (`0A`: a
    /// listening TCP socket; `07`: a bound, unconnected UDP socket); lines that do not read are
    /// passed over.
    pub(crate) fn parse_state(text: &str, state: &str) -> Vec<Connection> {
        text.lines()
            .skip(1)
            .filter_map(|l| line_in(l, state))
            .collect()
    }

    fn line_in(l: &str, state: &str) -> Option<Connection> {
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
        let f: Vec<&str> = l.split_ascii_whitespace().collect();
        if f.len() < 10 || f[3] != state {
            return None;
        }
        let (local_addr, local_port) = endpoint(f[1])?;
        let (peer_addr, peer_port) = endpoint(f[2])?;
        let (tx, rx) = f[4].split_once(':')?;
        Some(Connection {
            local_addr,
            local_port,
            peer_addr,
            peer_port,
            send_queue: u32::from_str_radix(tx, 16).ok()?,
            recv_queue: u32::from_str_radix(rx, 16).ok()?,
            uid: f[7].parse().ok()?,
            inode: f[9].parse().ok()?,
            pid: None,
            command: None,
        })
    }

    /// `0100007F:1F90` → 127.0.0.1:8080: the address is the kernel's 32-bit words in host
    /// byte order, the port big-endian hex.
    fn endpoint(s: &str) -> Option<(IpAddr, u16)> {
        let (a, p) = s.split_once(':')?;
        let port = u16::from_str_radix(p, 16).ok()?;
        let word = |i: usize| -> Option<[u8; 4]> {
            Some(
                u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16)
                    .ok()?
                    .to_ne_bytes(),
            )
        };
        let addr = match a.len() {
            8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
            32 => {
                let mut b = [0u8; 16];
                for i in 0..4 {
                    b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
                }
                IpAddr::V6(Ipv6Addr::from(b)).to_canonical()
            }
            _ => return None,
        };
        Some((addr, port))
    }
}

pub mod unix;
pub mod unix_end;
pub mod watch;

#[cfg(test)]
mod tests;
