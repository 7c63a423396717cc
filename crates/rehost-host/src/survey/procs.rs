//! The first links of the chain, from the kernel: the listening sockets (TCP and UDP through
//! netlink `sock_diag` as `conns` reads connections, else `/proc/net/{tcp,udp}{,6}`; Unix
//! sockets from `/proc/net/unix`), the process holding each (`/proc/PID/fd`'s socket inodes,
//! as `conns` finds owners), and what the kernel says of that process: its executable
//! (`/proc/PID/exe`), command line (credentials masked), real user, and systemd unit
//! (`/proc/PID/cgroup`, only where systemd runs). Processes and sockets are this machine's,
//! whatever the host's root.

use crate::conns::{Connection, netlink, procfs};
use rehost_survey::{Found, FoundBy, Gap, Listen, Proto};
use std::collections::HashMap;

/// Arguments of a command line kept, and bytes of each.
const MAX_ARGS: usize = 64;
const MAX_ARG: usize = 1024;
/// Listening sockets kept (a host with more is cut, with a gap).
pub(crate) const MAX_SOCKETS: usize = 20_000;

/// A listening socket with its inode, before it is tied to a process.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub listen: Listen,
    pub inode: u64,
    pub found: Found,
}

/// Every listening TCP socket, bound UDP socket and listening Unix socket of this machine.
pub(crate) fn listeners(gaps: &mut Vec<Gap>) -> Vec<Listener> {
    let mut out = Vec::new();
    match inet_netlink() {
        Ok(l) => out.extend(l),
        Err(e) => {
            let mut read_any = false;
            for (file, proto, state) in [
                ("/proc/net/tcp", Proto::Tcp, "0A"),
                ("/proc/net/tcp6", Proto::Tcp, "0A"),
                ("/proc/net/udp", Proto::Udp, "07"),
                ("/proc/net/udp6", Proto::Udp, "07"),
            ] {
                match std::fs::read_to_string(file) {
                    Ok(text) => {
                        read_any = true;
                        out.extend(
                            procfs::parse_state(&text, state)
                                .into_iter()
                                .map(|c| inet(proto, &c, FoundBy::Kernel, file)),
                        )
                    }
                    Err(e2) if e2.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e2) => gaps.push(Gap {
                        what: file.into(),
                        why: format!("not read: {e2}"),
                    }),
                }
            }
            gaps.push(Gap {
                what: "netlink sock_diag".into(),
                why: format!(
                    "refused ({e}): the listening sockets were read from /proc/net instead{}",
                    if read_any {
                        ""
                    } else {
                        ", which could not be read either"
                    }
                ),
            });
        }
    }
    match std::fs::read_to_string("/proc/net/unix") {
        Ok(table) => out.extend(unix_listeners(&table)),
        Err(e) => gaps.push(Gap {
            what: "/proc/net/unix".into(),
            why: format!("not read, the Unix sockets are not listed: {e}"),
        }),
    }
    out.sort_by(|a, b| a.listen.cmp(&b.listen).then(a.inode.cmp(&b.inode)));
    out.dedup_by(|a, b| a.listen == b.listen && a.inode == b.inode);
    if out.len() > MAX_SOCKETS {
        gaps.push(Gap {
            what: "listening sockets".into(),
            why: format!(
                "{} listening sockets, only the first {MAX_SOCKETS} followed",
                out.len()
            ),
        });
        out.truncate(MAX_SOCKETS);
    }
    out
}

fn inet(proto: Proto, c: &Connection, by: FoundBy, source: &str) -> Listener {
    Listener {
        listen: Listen {
            proto,
            address: c.local_addr.to_string(),
            port: c.local_port,
        },
        inode: c.inode,
        found: Found::new(by, source),
    }
}

/// Listening TCP and bound UDP sockets of both families through one diagnostic socket.
fn inet_netlink() -> std::io::Result<Vec<Listener>> {
    use netlink_packet_sock_diag::{
        SockDiagMessage,
        constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
        inet::{SocketId, StateFlags},
    };
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut out = Vec::new();
    for (protocol, proto, states, state) in [
        (IPPROTO_TCP, Proto::Tcp, StateFlags::LISTEN, 10u8),
        (IPPROTO_UDP, Proto::Udp, StateFlags::CLOSE, 7u8),
    ] {
        for (family, id) in [
            (AF_INET, SocketId::new_v4()),
            (AF_INET6, SocketId::new_v6()),
        ] {
            socket.send(
                &netlink::dump_request_of(family, protocol, states.clone(), id, None),
                0,
            )?;
            netlink::receive(&socket, &mut |m| {
                if let SockDiagMessage::InetResponse(r) = m
                    && r.header.state == state
                {
                    let id = &r.header.socket_id;
                    out.push(Listener {
                        listen: Listen {
                            proto,
                            address: id.source_address.to_canonical().to_string(),
                            port: id.source_port,
                        },
                        inode: r.header.inode.into(),
                        found: Found::new(FoundBy::Kernel, "netlink sock_diag"),
                    });
                }
            })?;
        }
    }
    Ok(out)
}

/// The listening Unix sockets of `/proc/net/unix` that have a path (`__SO_ACCEPTCON`, not
/// abstract).
pub(crate) fn unix_listeners(table: &str) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            // Num RefCount Protocol Flags Type St Inode Path
            let f: Vec<&str> = l.split_ascii_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            let path = f[7..].join(" ");
            (flags & 0x10000 != 0 && path.starts_with('/')).then(|| Listener {
                listen: Listen {
                    proto: Proto::Unix,
                    address: path,
                    port: 0,
                },
                inode: f[6].parse().unwrap_or(0),
                found: Found::new(FoundBy::Kernel, "/proc/net/unix"),
            })
        })
        .collect()
}

/// What the kernel says of one process.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// `/proc/PID/exe`'s target as this machine names it; `None` when it could not be read.
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    pub uid: Option<u32>,
    /// The systemd unit of its cgroup, where systemd runs.
    pub cgroup_unit: Option<String>,
}

/// The holder of each socket inode (the lowest pid among those holding it).
pub(crate) fn owners(inodes: impl Iterator<Item = u64>) -> HashMap<u64, u32> {
    crate::conns::holders(inodes)
        .into_iter()
        .map(|(inode, (pid, _))| (inode, pid))
        .collect()
}

/// Reads `/proc/PID/*`; what cannot be read is a gap.
pub(crate) fn process(pid: u32, systemd: bool, gaps: &mut Vec<Gap>) -> ProcInfo {
    let mut p = ProcInfo {
        pid,
        ..ProcInfo::default()
    };
    let at = |f: &str| format!("/proc/{pid}/{f}");
    if let Ok(status) = std::fs::read_to_string(at("status")) {
        for l in status.lines() {
            if let Some(v) = l.strip_prefix("PPid:") {
                p.ppid = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = l.strip_prefix("Uid:") {
                p.uid = v.split_whitespace().next().and_then(|u| u.parse().ok());
            } else if let Some(v) = l.strip_prefix("Name:") {
                p.comm = v.trim().to_owned();
            }
        }
    }
    match std::fs::read_link(at("exe")) {
        Ok(t) => {
            let t = t.to_string_lossy();
            p.exe = Some(t.strip_suffix(" (deleted)").unwrap_or(&t).to_owned());
        }
        Err(e) => gaps.push(Gap {
            what: at("exe"),
            why: format!(
                "not read ({e}): the executable of {} is unknown, and so its package and unit; survey as root",
                p.comm
            ),
        }),
    }
    match std::fs::read(at("cmdline")) {
        Ok(raw) => p.cmdline = mask(&args(&raw)),
        Err(e) => gaps.push(Gap {
            what: at("cmdline"),
            why: format!("not read: {e}"),
        }),
    }
    if systemd && let Ok(cg) = std::fs::read_to_string(at("cgroup")) {
        p.cgroup_unit = unit_of_cgroup(&cg);
    }
    p
}

/// A command line's arguments (NUL-separated), bounded.
fn args(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .take(MAX_ARGS)
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            let mut end = s.len().min(MAX_ARG);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        })
        .collect()
}

/// The arguments with credentials masked: what `rehost_plan::redact` masks in each, and the
/// argument after an option whose name is a secret's (`--password hunter2`).
pub(crate) fn mask(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut secret_next = false;
    for a in args {
        if secret_next {
            out.push("***".to_owned());
            secret_next = false;
            continue;
        }
        let name = a.trim_start_matches('-');
        if a.starts_with('-') && !name.contains('=') && rehost_plan::is_secret_name(name) {
            secret_next = true;
        }
        let masked = match a.split_once('=') {
            Some((k, _)) if rehost_plan::is_secret_name(k.trim_start_matches('-')) => {
                format!("{k}=***")
            }
            _ => rehost_plan::redact(a),
        };
        out.push(masked);
    }
    out
}

/// The unit of a `/proc/PID/cgroup`: the last `*.service` (or `.scope`, `.socket`) component of
/// the unified hierarchy's path (`0::/system.slice/nginx.service`), else of systemd's own.
pub(crate) fn unit_of_cgroup(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("0::"))
        .or_else(|| text.lines().find(|l| l.contains(":name=systemd:")))?;
    let path = line.splitn(3, ':').nth(2)?;
    path.split('/')
        .rev()
        .find(|c| c.ends_with(".service") || c.ends_with(".socket"))
        .map(str::to_owned)
}

/// The user name of `uid` from the host's accounts, else the number.
pub(crate) fn user_name(uid: Option<u32>, accounts: &[rehost_survey::Account]) -> String {
    match uid {
        Some(u) => accounts
            .iter()
            .find(|a| a.uid == u)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| u.to_string()),
        None => "unknown".into(),
    }
}
