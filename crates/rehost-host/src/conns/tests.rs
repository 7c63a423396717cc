use super::*;
use std::net::{TcpListener, TcpStream};

/// A listener on `addr` and `n` clients connected to it, accepted.
fn open(addr: &str, n: usize) -> (TcpListener, Vec<TcpStream>, Vec<TcpStream>) {
    let l = TcpListener::bind(addr).unwrap();
    let a = l.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(a).unwrap()).collect();
    let served = (0..n).map(|_| l.accept().unwrap().0).collect();
    (l, clients, served)
}

#[test]
fn netlink_and_procfs_list_the_same_connections_with_this_process_as_owner() {
    let (l4, c4, _s4) = open("127.0.0.1:0", 2);
    let (l6, c6, _s6) = open("[::1]:0", 1);
    let ports = [
        l4.local_addr().unwrap().port(),
        l6.local_addr().unwrap().port(),
    ];
    let listing = established(&ports, MAX_CONNECTIONS).unwrap();
    assert_eq!(listing.source, Source::Netlink, "{:?}", listing.fallback);
    assert_eq!(listing.connections.len(), 3, "{listing:?}");
    let mut peers: Vec<u16> = listing.connections.iter().map(|c| c.peer_port).collect();
    peers.sort();
    let mut expected: Vec<u16> = c4
        .iter()
        .chain(&c6)
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    expected.sort();
    assert_eq!(peers, expected);
    for c in &listing.connections {
        assert_eq!(c.pid, Some(std::process::id()), "{c:?}");
        assert!(c.command.is_some());
    }
    assert!(listing.connections.iter().any(|c| c.peer_addr.is_ipv6()));

    let want = |p: u16| ports.contains(&p);
    let mut from_proc = procfs::established(&want).unwrap();
    from_proc.sort_by_key(|c| c.inode);
    let mut from_netlink = listing.connections.clone();
    for c in &mut from_netlink {
        (c.pid, c.command) = (None, None);
    }
    from_netlink.sort_by_key(|c| c.inode);
    assert_eq!(from_proc, from_netlink);
}

#[test]
fn a_listing_holds_at_most_its_limit_and_says_it_was_cut() {
    let (l, _c, _s) = open("127.0.0.1:0", 3);
    let listing = established(&[l.local_addr().unwrap().port()], 2).unwrap();
    assert_eq!(listing.connections.len(), 2);
    assert!(listing.truncated);
}

#[test]
fn proc_net_tcp_lines_read_as_the_kernel_writes_them() {
    let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 0100007F:D431 01 00000010:00000002 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1\n\
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4241 1 0000000000000000 100 0 0 10 0\n";
    let c = procfs::parse(text);
    assert_eq!(c.len(), 1, "the listening socket is not established");
    assert_eq!(c[0].local_port, 8080);
    assert_eq!(c[0].peer_port, 0xD431);
    assert_eq!(c[0].peer_addr, IpAddr::from([127, 0, 0, 1]));
    assert_eq!((c[0].send_queue, c[0].recv_queue), (16, 2));
    assert_eq!((c[0].uid, c[0].inode), (1000, 4242));
    let v6 = "h\n   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 7 1\n";
    let c = procfs::parse(v6);
    assert_eq!(c[0].local_addr, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(
        c[0].peer_addr,
        IpAddr::from([127, 0, 0, 1]),
        "a mapped IPv4 peer"
    );
}

#[test]
fn socket_links_name_their_inode() {
    assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
    assert_eq!(socket_inode(b"pipe:[12345]"), None);
    assert_eq!(socket_inode(b"/dev/null"), None);
}

#[test]
fn a_tracker_records_who_was_there_who_came_and_who_left_when() {
    let conn = |peer_port: u16| Connection {
        local_addr: IpAddr::from([127, 0, 0, 1]),
        local_port: 5432,
        peer_addr: IpAddr::from([10, 0, 0, 7]),
        peer_port,
        send_queue: 0,
        recv_queue: 0,
        uid: 0,
        inode: u64::from(peer_port),
        pid: Some(7),
        command: Some("app".into()),
    };
    let mut t = Tracker::default();
    // Times are kept from the first listing, whenever the caller's clock began.
    t.observe(&[conn(1), conn(2)], 500);
    t.observe(&[conn(2), conn(3)], 1500);
    t.observe(&[conn(3)], 2500);
    let seen: Vec<(u16, u64, Option<u64>)> = t
        .clients()
        .iter()
        .map(|c| (c.peer_port, c.first_seen_ms, c.left_ms))
        .collect();
    assert_eq!(
        seen,
        [(1, 0, Some(1000)), (2, 0, Some(2000)), (3, 1000, None)]
    );
    let remaining: Vec<String> = t.remaining().map(Client::describe).collect();
    assert_eq!(remaining, ["10.0.0.7:3 (process 7 app) to port 5432"]);
}

/// The kernel's check (`inet_diag_bc_audit`) and run (`inet_diag_bc_run`) of a filter
/// program, for the operations [`netlink::sport_filter`] writes, as linux/net/ipv4/inet_diag.c
/// has them: `Some(taken)` for a port, `None` where the kernel would refuse the program.
fn kernel_runs(bc: &[u8], sport: u16) -> Option<bool> {
    let op = |at: usize| -> Option<(u8, usize, usize)> {
        let b = bc.get(at..at + 4)?;
        Some((
            b[0],
            b[1] as usize,
            u16::from_ne_bytes([b[2], b[3]]) as usize,
        ))
    };
    // Audit: every operation well formed, every jump inside the program or 4 past its end.
    let mut at = 0;
    while at < bc.len() {
        let (code, yes, no) = op(at)?;
        let len = bc.len() - at;
        let min = match code {
            netlink::BC_S_COND => {
                let family = *bc.get(at + 4)?;
                let prefix = *bc.get(at + 5)?;
                if family != 0 || prefix != 0 || len < 12 {
                    return None;
                }
                12
            }
            netlink::BC_JMP => 4,
            _ => return None,
        };
        if no < min || no > len + 4 || no % 4 != 0 || yes < min || yes > len + 4 || yes % 4 != 0 {
            return None;
        }
        at += yes;
    }
    if at != bc.len() {
        return None;
    }
    // Run.
    let mut len = bc.len() as isize;
    let mut at = 0usize;
    while len > 0 {
        let (code, yes, no) = op(at)?;
        let taken = match code {
            netlink::BC_S_COND => {
                let port = i32::from_ne_bytes(bc[at + 8..at + 12].try_into().unwrap());
                port == -1 || port == i32::from(sport)
            }
            _ => false, // JMP
        };
        let step = if taken { yes } else { no };
        len -= step as isize;
        at += step;
    }
    Some(len == 0)
}

#[test]
fn the_port_filter_is_the_bytes_ss_sends_for_sport() {
    assert_eq!(netlink::sport_filter(&[]), None);
    // `ss state established '( sport = :5432 )'`: one S_COND {code 7, yes 12, no 16},
    // hostcond {AF_UNSPEC, prefix 0, pad, port 5432}.
    let mut one = vec![7u8, 12];
    one.extend(16u16.to_ne_bytes());
    one.extend([0, 0, 0, 0]);
    one.extend(5432i32.to_ne_bytes());
    assert_eq!(netlink::sport_filter(&[5432]).unwrap(), one);
    // Two ports (sorted, duplicates once): cond, JMP to the end (16 bytes on), cond.
    let two = netlink::sport_filter(&[8080, 22, 8080]).unwrap();
    assert_eq!(two.len(), 28);
    let mut jmp = vec![1u8, 4];
    jmp.extend(16u16.to_ne_bytes());
    assert_eq!(&two[12..16], &jmp[..]);
    assert_eq!(i32::from_ne_bytes(two[8..12].try_into().unwrap()), 22);
    assert_eq!(i32::from_ne_bytes(two[24..28].try_into().unwrap()), 8080);
    // More ports than the kernel is given: filtered here only.
    let many: Vec<u16> = (1..=netlink::MAX_FILTER_PORTS as u16 + 1).collect();
    assert_eq!(netlink::sport_filter(&many), None);
}

#[test]
fn the_kernel_takes_exactly_the_sockets_on_the_filters_ports() {
    for ports in [
        vec![1u16],
        vec![5432],
        vec![22, 80],
        vec![65535, 1, 443],
        (1000..1000 + netlink::MAX_FILTER_PORTS as u16).collect(),
    ] {
        let bc = netlink::sport_filter(&ports).unwrap();
        for sport in [
            0u16, 1, 2, 21, 22, 23, 79, 80, 443, 999, 1000, 1001, 1255, 1256, 5432, 65535,
        ] {
            assert_eq!(
                kernel_runs(&bc, sport),
                Some(ports.contains(&sport)),
                "ports {ports:?}, socket port {sport}"
            );
        }
    }
}

#[test]
fn a_dump_request_carries_the_filter_as_its_bytecode_attribute() {
    use netlink_packet_sock_diag::{constants::AF_INET, inet::SocketId};
    let bare = netlink::dump_request(AF_INET, SocketId::new_v4(), None);
    let bc = netlink::sport_filter(&[22, 80]).unwrap();
    let with = netlink::dump_request(AF_INET, SocketId::new_v4(), Some(&bc));
    assert_eq!(with.len(), bare.len() + 4 + bc.len());
    assert_eq!(
        u32::from_ne_bytes(with[..4].try_into().unwrap()) as usize,
        with.len()
    );
    assert_eq!(
        &with[4..bare.len()],
        &bare[4..],
        "the request itself is unchanged"
    );
    let attr = &with[bare.len()..];
    assert_eq!(
        u16::from_ne_bytes([attr[0], attr[1]]) as usize,
        4 + bc.len()
    );
    assert_eq!(
        u16::from_ne_bytes([attr[2], attr[3]]),
        1,
        "INET_DIAG_REQ_BYTECODE"
    );
    assert_eq!(&attr[4..], &bc[..]);
}

#[test]
fn the_kernel_filtered_listing_equals_the_whole_listing_filtered_here() {
    let (l4, _c4, _s4) = open("127.0.0.1:0", 3);
    let (l6, _c6, _s6) = open("[::1]:0", 2);
    let (other, _co, _so) = open("127.0.0.1:0", 2);
    let ports = [
        l4.local_addr().unwrap().port(),
        l6.local_addr().unwrap().port(),
    ];
    let other = other.local_addr().unwrap().port();
    let (mut filtered, how) = netlink::established(&ports).unwrap();
    assert!(how.by_kernel, "the kernel refused the port filter");
    // The kernel sent nothing else: not the clients' ends, not the other listener's.
    assert_eq!(how.passed_over, 0);
    let (all, whole) = netlink::established(&[]).unwrap();
    assert!(!whole.by_kernel);
    assert!(all.len() >= 14, "both ends of the 7 connections: {all:?}");
    assert!(
        all.iter().any(|c| c.local_port == other),
        "the whole listing has the other port"
    );
    let mut here: Vec<Connection> = all
        .into_iter()
        .filter(|c| ports.contains(&c.local_port))
        .collect();
    let key = |c: &Connection| c.inode;
    filtered.sort_by_key(key);
    here.sort_by_key(key);
    assert_eq!(filtered.len(), 5, "{filtered:?}");
    assert_eq!(filtered, here);
}
