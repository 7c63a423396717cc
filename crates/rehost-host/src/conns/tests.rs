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
