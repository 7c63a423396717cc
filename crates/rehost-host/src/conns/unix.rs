//! The connected peers of listening Unix-domain sockets (a local PostgreSQL socket is a
//! persistent connection like a TCP one), read from the kernel: netlink `sock_diag` for
//! `AF_UNIX` (as `ss -x` does), or else `/proc/net/unix` (the stated fallback, which names the
//! service's ends but not the clients' ends: it has no peers).
//!
//! A listener is found by its path: the socket whose file-system inode and device are those of
//! the path (`UNIX_DIAG_VFS`), so a relative name at bind time or a path reached through a
//! symlink still finds it. The sockets the service accepted share the listener's address and
//! inode; each of them has a peer (`UNIX_DIAG_PEER`), the client's end. The owning process of
//! both ends comes from `/proc/*/fd`, where this user may look.

use super::Source;
use crate::bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// How many socket paths one request may name.
pub const MAX_PATHS: usize = 64;

/// One connection accepted on a listening Unix socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixConnection {
    /// The listening socket's path, as it was asked for.
    pub path: Bytes,
    /// The service's end: its socket inode, receive queue and owning process where visible.
    pub inode: u64,
    pub recv_queue: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The client's end: its socket inode (`None` when read from `/proc/net/unix`, which has
    /// no peers) and owning process where visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_inode: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_command: Option<String>,
}

impl UnixConnection {
    /// The path, escaped for a terminal.
    pub fn path_text(&self) -> String {
        rehost_tree::escape::display(self.path.as_bytes())
    }

    /// The service's process as shown: `PID (COMMAND)`, `PID`, or `not visible`.
    pub fn process(&self) -> String {
        show_process(self.pid, self.command.as_deref())
    }

    /// The client's process as shown: `PID (COMMAND)`, `PID`, or `not visible`.
    pub fn peer_process(&self) -> String {
        show_process(self.peer_pid, self.peer_command.as_deref())
    }
}

fn show_process(pid: Option<u32>, command: Option<&str>) -> String {
    match (pid, command) {
        (Some(p), Some(c)) => format!("{p} ({})", rehost_tree::escape::text(c)),
        (Some(p), None) => p.to_string(),
        _ => "not visible".into(),
    }
}

/// What [`connected`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixListing {
    /// Sorted by path, then the service's inode.
    pub connections: Vec<UnixConnection>,
    /// The paths asked for on which a socket listens; a path not here has no listener (or is
    /// not there), and has no connections.
    pub listening: Vec<Bytes>,
    pub source: Source,
    /// Why netlink was not used, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// More connections than `limit` were accepted; the first `limit` are listed.
    #[serde(default)]
    pub truncated: bool,
}

/// The connections accepted on the listening Unix sockets at `paths` (absolute paths of this
/// machine, at most [`MAX_PATHS`]), at most `limit`, with the processes at both ends where
/// visible.
pub fn connected(paths: &[Bytes], limit: usize) -> std::io::Result<UnixListing> {
    use std::os::unix::fs::MetadataExt;
    if paths.len() > MAX_PATHS {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} socket paths asked for, at most {MAX_PATHS}",
                paths.len()
            ),
        ));
    }
    // The file-system identity of each path (inode, device as the kernel encodes them for
    // sock_diag: 32 bits each); a path that is not there matches nothing.
    let ids: Vec<Option<(u32, u32)>> = paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p.as_path()).ok()?;
            use std::os::unix::fs::FileTypeExt;
            m.file_type()
                .is_socket()
                .then(|| (m.ino() as u32, encode_dev(m.dev())))
        })
        .collect();
    let wanted: Vec<(u32, u32)> = ids.iter().flatten().copied().collect();
    let (mut connections, listening, source, fallback) = match netlink::sockets(&wanted) {
        Ok(socks) => {
            let (c, l) = from_netlink(paths, &ids, &socks);
            (c, l, Source::Netlink, None)
        }
        Err(e) => {
            let table = std::fs::read_to_string("/proc/net/unix").map_err(|e2| {
                std::io::Error::new(
                    e2.kind(),
                    format!("netlink sock_diag: {e}; /proc/net/unix: {e2}"),
                )
            })?;
            let (c, l) = from_procfs(paths, &table);
            (
                c,
                l,
                Source::Procfs,
                Some(format!("netlink sock_diag: {e}")),
            )
        }
    };
    connections.sort_by(|a, b| (&a.path.0, a.inode).cmp(&(&b.path.0, b.inode)));
    let truncated = connections.len() > limit;
    connections.truncate(limit);
    let inodes = connections
        .iter()
        .flat_map(|c| std::iter::once(c.inode).chain(c.peer_inode));
    let holders = super::holders(inodes);
    for c in &mut connections {
        if let Some((pid, command)) = holders.get(&c.inode) {
            c.pid = Some(*pid);
            c.command = command.clone();
        }
        if let Some((pid, command)) = c.peer_inode.and_then(|i| holders.get(&i)) {
            c.peer_pid = Some(*pid);
            c.peer_command = command.clone();
        }
    }
    Ok(UnixListing {
        connections,
        listening,
        source,
        fallback,
        truncated,
    })
}

/// A device as `UNIX_DIAG_VFS` reports it: the kernel's own `dev_t` (`MKDEV`: the major
/// number above 20 bits of minor), not the encoding `stat` answers in.
fn encode_dev(dev: u64) -> u32 {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    (major << 20) | (minor & 0xfffff)
}

/// One socket of the `AF_UNIX` dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sock {
    pub inode: u32,
    /// `TCP_LISTEN` (10) or `TCP_ESTABLISHED` (1), as sock_diag says it for Unix sockets.
    pub state: u8,
    /// The file-system inode and device of the socket's path (`UNIX_DIAG_VFS`): the
    /// listener's, shared by the sockets it accepted.
    pub vfs: Option<(u32, u32)>,
    pub peer: Option<u32>,
    pub recv_queue: u32,
}

const LISTEN: u8 = 10;
const ESTABLISHED: u8 = 1;

/// The service's ends of the connections to each listening path, from a dump.
pub(crate) fn from_netlink(
    paths: &[Bytes],
    ids: &[Option<(u32, u32)>],
    socks: &[Sock],
) -> (Vec<UnixConnection>, Vec<Bytes>) {
    let mut listening = Vec::new();
    let mut out = Vec::new();
    for (path, id) in paths.iter().zip(ids) {
        let Some(id) = id else { continue };
        if socks
            .iter()
            .any(|s| s.state == LISTEN && s.vfs == Some(*id))
        {
            listening.push(path.clone());
        }
        for s in socks
            .iter()
            .filter(|s| s.state == ESTABLISHED && s.vfs == Some(*id))
        {
            out.push(UnixConnection {
                path: path.clone(),
                inode: s.inode.into(),
                recv_queue: s.recv_queue,
                pid: None,
                command: None,
                peer_inode: s.peer.map(u64::from),
                peer_pid: None,
                peer_command: None,
            });
        }
    }
    (out, listening)
}

/// The service's ends from `/proc/net/unix` (`Num RefCount Protocol Flags Type St Inode
/// Path`): the connected sockets (state 03) whose path is one asked for, by name (the table
/// has no file-system inode); a listener has the `__SO_ACCEPTCON` flag (0x10000).
pub(crate) fn from_procfs(paths: &[Bytes], table: &str) -> (Vec<UnixConnection>, Vec<Bytes>) {
    let mut listening = Vec::new();
    let mut out = Vec::new();
    let rows: Vec<(u32, &str, u64, &str)> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(8, ' ').filter(|s| !s.is_empty()).collect();
            if f.len() < 8 {
                return None;
            }
            Some((
                u32::from_str_radix(f[3], 16).ok()?,
                f[5],
                f[6].parse().ok()?,
                f[7],
            ))
        })
        .collect();
    for path in paths {
        let name = String::from_utf8_lossy(path.as_bytes());
        if rows
            .iter()
            .any(|(flags, _, _, p)| flags & 0x10000 != 0 && *p == name)
        {
            listening.push(path.clone());
        }
        for (_, st, inode, _) in rows
            .iter()
            .filter(|(flags, st, _, p)| flags & 0x10000 == 0 && *st == "03" && *p == name)
        {
            let _ = st;
            out.push(UnixConnection {
                path: path.clone(),
                inode: *inode,
                recv_queue: 0,
                pid: None,
                command: None,
                peer_inode: None,
                peer_pid: None,
                peer_command: None,
            });
        }
    }
    (out, listening)
}

/// Checks the paths of a request: absolute, at most [`MAX_PATHS`].
pub fn check_paths(paths: &[Bytes]) -> Result<(), String> {
    if paths.len() > MAX_PATHS {
        return Err(format!("{} socket paths, at most {MAX_PATHS}", paths.len()));
    }
    match paths
        .iter()
        .find(|p| !Path::new(p.as_os_str()).is_absolute())
    {
        Some(p) => Err(format!(
            "socket path `{}` is not absolute",
            rehost_tree::escape::display(p.as_bytes())
        )),
        None => Ok(()),
    }
}

/// [`connected`] on `host` (in process for this machine, through the agent otherwise): at most
/// `limit` connections (at most [`super::MAX_CONNECTIONS`]). A host that sends more than asked
/// for, a connection or listener on a path not asked for, or a second listing is refused.
pub fn on_host(
    host: &dyn crate::Host,
    paths: &[Bytes],
    limit: usize,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<UnixListing, crate::HostError> {
    use crate::{HostError, Request, Response};
    check_paths(paths).map_err(|message| HostError::Protocol {
        host: host.name().to_owned(),
        message,
    })?;
    let limit = limit.min(super::MAX_CONNECTIONS);
    let req = Request::UnixConnections {
        paths: paths.to_vec(),
        limit: limit as u64,
    };
    let mut out: Option<UnixListing> = None;
    crate::request_bounded(host, &req, cancel, &mut |r| {
        if let Response::UnixConnections { listing } = r {
            if out.is_some() {
                return Err("sent a second Unix socket listing".into());
            }
            if listing.connections.len() > limit {
                return Err(format!(
                    "sent {} Unix socket connections, more than the {limit} asked for",
                    listing.connections.len()
                ));
            }
            let asked = |p: &Bytes| paths.contains(p);
            if let Some(p) = listing
                .connections
                .iter()
                .map(|c| &c.path)
                .chain(&listing.listening)
                .find(|p| !asked(p))
            {
                return Err(format!(
                    "sent Unix socket path `{}`, which was not asked for",
                    rehost_tree::escape::display(p.as_bytes())
                ));
            }
            out = Some(listing);
        }
        Ok(())
    })?;
    out.ok_or_else(|| HostError::Protocol {
        host: host.name().to_owned(),
        message: "answered the Unix socket listing with nothing".into(),
    })
}

/// Groups a listing's connections by path (for display), in the order asked.
pub fn by_path<'a>(
    paths: &'a [Bytes],
    listing: &'a UnixListing,
) -> Vec<(&'a Bytes, Vec<&'a UnixConnection>)> {
    let mut m: HashMap<&[u8], Vec<&UnixConnection>> = HashMap::new();
    for c in &listing.connections {
        m.entry(c.path.as_bytes()).or_default().push(c);
    }
    paths
        .iter()
        .map(|p| (p, m.remove(p.as_bytes()).unwrap_or_default()))
        .collect()
}

mod netlink {
    use super::Sock;
    use netlink_packet_core::{Emitable, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
    use netlink_packet_sock_diag::{
        SockDiagMessage,
        unix::{ShowFlags, StateFlags, UnixRequest, nlas::Nla},
    };
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    use std::io;

    /// The listening and connected Unix sockets bound to one of the paths `wanted` (by their
    /// file-system inode and device), with their peers and queues; the others are passed over
    /// as they are read, so what is kept is bounded by those paths' connections.
    pub(super) fn sockets(wanted: &[(u32, u32)]) -> io::Result<Vec<Sock>> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::UnixRequest(UnixRequest {
                state_flags: StateFlags::LISTEN | StateFlags::ESTABLISHED,
                inode: 0,
                show_flags: ShowFlags::VFS | ShowFlags::PEER | ShowFlags::RQLEN,
                cookie: [0xff; 8],
            })
            .into(),
        );
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        socket.send(&buf, 0)?;
        let mut out = Vec::new();
        crate::conns::netlink::receive(&socket, &mut |m| {
            if let SockDiagMessage::UnixResponse(r) = m {
                let mut s = Sock {
                    inode: r.header.inode,
                    state: r.header.state,
                    ..Sock::default()
                };
                for nla in &r.nlas {
                    match nla {
                        Nla::Vfs(v) => {
                            // Its fields are private: read them as the kernel wrote them.
                            let mut b = [0u8; 8];
                            v.emit(&mut b);
                            s.vfs = Some((
                                u32::from_ne_bytes(b[..4].try_into().unwrap()),
                                u32::from_ne_bytes(b[4..].try_into().unwrap()),
                            ));
                        }
                        Nla::Peer(p) => s.peer = Some(*p),
                        Nla::ReceiveQueueLength(q, _) => s.recv_queue = *q,
                        _ => {}
                    }
                }
                if s.vfs.is_some_and(|v| wanted.contains(&v)) {
                    out.push(s);
                }
            }
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn the_accepted_sockets_of_the_path_s_listener_are_its_connections() {
        let id = Some((77, 2049));
        let socks = [
            Sock {
                inode: 10,
                state: LISTEN,
                vfs: Some((77, 2049)),
                ..Sock::default()
            },
            Sock {
                inode: 11,
                state: ESTABLISHED,
                vfs: Some((77, 2049)),
                peer: Some(21),
                recv_queue: 5,
            },
            // The client's end: no path of its own.
            Sock {
                inode: 21,
                state: ESTABLISHED,
                vfs: None,
                peer: Some(11),
                recv_queue: 0,
            },
            // Another socket's connection, same inode number on another device.
            Sock {
                inode: 12,
                state: ESTABLISHED,
                vfs: Some((77, 1)),
                peer: Some(22),
                recv_queue: 0,
            },
        ];
        let paths = [b("/run/pg/.s.PGSQL.5432"), b("/nothing")];
        let (c, l) = from_netlink(&paths, &[id, None], &socks);
        assert_eq!(l, vec![b("/run/pg/.s.PGSQL.5432")]);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].inode, c[0].peer_inode, c[0].recv_queue),
            (11, Some(21), 5)
        );
    }

    #[test]
    fn proc_net_unix_names_the_service_s_ends_by_path() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 100 /tmp/s.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 101 /tmp/s.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 102\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 103 /tmp/s.sock with space\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 104 /tmp/other\n";
        let paths = [b("/tmp/s.sock"), b("/tmp/s.sock with space")];
        let (c, l) = from_procfs(&paths, table);
        assert_eq!(l, vec![b("/tmp/s.sock")]);
        let got: Vec<(u64, Option<u64>)> = c.iter().map(|c| (c.inode, c.peer_inode)).collect();
        assert_eq!(got, vec![(101, None), (103, None)]);
    }

    #[test]
    fn relative_or_too_many_paths_are_refused() {
        assert!(check_paths(&[b("/run/x")]).is_ok());
        assert!(
            check_paths(&[b("run/x")])
                .unwrap_err()
                .contains("not absolute")
        );
        let many: Vec<Bytes> = (0..=MAX_PATHS).map(|i| b(&format!("/s{i}"))).collect();
        assert!(check_paths(&many).is_err());
    }

    #[test]
    fn a_real_listener_s_accepted_connection_is_found_with_both_ends() {
        use std::os::unix::net::{UnixListener, UnixStream};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let _client = UnixStream::connect(&path).unwrap();
        let _served = listener.accept().unwrap();
        let p = Bytes(path.as_os_str().as_encoded_bytes().to_vec());
        let l = connected(std::slice::from_ref(&p), 100).unwrap();
        assert_eq!(l.source, Source::Netlink, "{l:?}");
        assert_eq!(l.listening, vec![p.clone()]);
        assert_eq!(l.connections.len(), 1, "{l:?}");
        let me = std::process::id();
        assert_eq!(l.connections[0].pid, Some(me));
        assert_eq!(l.connections[0].peer_pid, Some(me));
        assert!(l.connections[0].peer_inode.is_some());
    }
}
