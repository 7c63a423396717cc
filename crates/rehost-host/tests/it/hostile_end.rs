//! Ending connections on a hostile host (issue 21): an agent that answers an `EndConnections`
//! for connections it was not asked to end, twice for one, with an endless reason, or claims
//! it ended connections its kernel still lists. rehost refuses the answer whole naming the
//! host, or calls the connection remained, never ended; and it never asks to end a connection
//! to a port that was not asked for.

use rehost_host::agent::{Request, Response};
use rehost_host::conns::end::{Attempt, Ended, Mechanism, Target, terminate};
use rehost_host::conns::unix_end::{UnixAttempt, UnixTarget, end_unix_connections};
use rehost_host::conns::{Connection, Listing, Source};
use rehost_host::{Host, HostError};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

#[derive(Clone, Copy, PartialEq)]
enum Lie {
    /// Answers for a connection it was not asked to end.
    NotAsked,
    /// Answers twice for the same one.
    Twice,
    /// A reason of a megabyte.
    LongReason,
    /// Says it ended each one, and its listing still has them.
    EndedButListed,
    /// Says it did not find them, and its listing still has them.
    GoneButListed,
    /// Honest: it did not find them, and its listing has none.
    Gone,
}

struct Liar {
    lie: Lie,
    /// Every `EndConnections` asked of it.
    asked: Mutex<Vec<Request>>,
}

fn conn(port: u16, peer_port: u16, inode: u64) -> Connection {
    Connection {
        local_addr: [127, 0, 0, 1].into(),
        local_port: port,
        peer_addr: [10, 0, 0, 1].into(),
        peer_port,
        send_queue: 0,
        recv_queue: 0,
        uid: 0,
        inode,
        pid: None,
        command: None,
    }
}

impl Host for Liar {
    fn name(&self) -> &str {
        "old"
    }

    fn resolve(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }

    fn remote_end(&self, _path: &str, _here: bool) -> Option<rehost_host::RemoteEnd> {
        None
    }

    fn request(
        &self,
        req: &Request,
        _cancel: &AtomicBool,
        on_response: &mut dyn FnMut(Response),
    ) -> Result<(), HostError> {
        match req {
            Request::EndConnections { targets, .. } => {
                self.asked.lock().unwrap().push(req.clone());
                let t = targets[0].clone();
                let attempts = match self.lie {
                    Lie::NotAsked => vec![Attempt::Done {
                        target: Target::of(&conn(5432, 1, 99)),
                        mechanism: Mechanism::SockDestroy,
                    }],
                    Lie::Twice => vec![
                        Attempt::Gone { target: t.clone() },
                        Attempt::Done {
                            target: t,
                            mechanism: Mechanism::SockDestroy,
                        },
                    ],
                    Lie::LongReason => vec![Attempt::Failed {
                        target: t,
                        why: "x".repeat(1 << 20),
                    }],
                    Lie::EndedButListed => targets
                        .iter()
                        .map(|t| Attempt::Done {
                            target: t.clone(),
                            mechanism: Mechanism::SockDestroy,
                        })
                        .collect(),
                    Lie::GoneButListed | Lie::Gone => targets
                        .iter()
                        .map(|t| Attempt::Gone { target: t.clone() })
                        .collect(),
                };
                on_response(Response::ConnectionsEnded { attempts });
            }
            Request::EndUnixConnections { targets, .. } => {
                let t = targets[0].clone();
                let attempts = match self.lie {
                    Lie::NotAsked => vec![UnixAttempt::Done {
                        target: UnixTarget {
                            path: t.path.clone(),
                            inode: 99,
                        },
                    }],
                    Lie::Twice => vec![
                        UnixAttempt::Gone { target: t.clone() },
                        UnixAttempt::Done { target: t },
                    ],
                    Lie::LongReason => vec![UnixAttempt::Failed {
                        target: t,
                        why: "x".repeat(1 << 20),
                    }],
                    _ => targets
                        .iter()
                        .map(|t| UnixAttempt::Gone { target: t.clone() })
                        .collect(),
                };
                on_response(Response::UnixConnectionsEnded { attempts });
            }
            Request::Connections { .. } => on_response(Response::Connections {
                listing: Listing {
                    connections: match self.lie {
                        Lie::Gone => vec![],
                        _ => vec![conn(5432, 40000, 7)],
                    },
                    source: Source::Netlink,
                    fallback: None,
                    truncated: false,
                    processes_not_read: false,
                },
            }),
            _ => {}
        }
        Ok(())
    }
}

fn liar(lie: Lie) -> Liar {
    Liar {
        lie,
        asked: Mutex::new(Vec::new()),
    }
}

#[test]
fn an_ending_answered_beyond_what_was_asked_is_refused_whole() {
    let no = AtomicBool::new(false);
    let listed = [conn(5432, 40000, 7)];
    for (lie, words) in [
        (
            Lie::NotAsked,
            "answered for a connection it was not asked to end",
        ),
        (Lie::Twice, "answered twice for the connection of inode 7"),
        (Lie::LongReason, "sent a reason longer than 500 bytes"),
    ] {
        let e = terminate(&liar(lie), &[5432], &listed, &no)
            .unwrap_err()
            .to_string();
        assert!(e.contains("old") && e.contains(words), "{e}");
    }
}

/// The same for the clients of a Unix socket (`end_unix_connections`): an answer beyond what
/// was asked is refused whole, naming the host; an honest one is taken.
#[test]
fn a_unix_socket_ending_answered_beyond_what_was_asked_is_refused_whole() {
    let no = AtomicBool::new(false);
    let path = rehost_host::Bytes::from("/run/postgresql/.s.PGSQL.5432");
    let asked = [UnixTarget {
        path: path.clone(),
        inode: 7,
    }];
    for (lie, words) in [
        (
            Lie::NotAsked,
            "answered for a Unix-socket connection it was not asked to end (inode 99)",
        ),
        (
            Lie::Twice,
            "answered twice for the Unix-socket connection of inode 7",
        ),
        (Lie::LongReason, "gave a reason longer than 500 bytes"),
    ] {
        let e = end_unix_connections(&liar(lie), std::slice::from_ref(&path), &asked, &no)
            .unwrap_err()
            .to_string();
        assert!(e.contains("old") && e.contains(words), "{e}");
    }
    let honest = end_unix_connections(&liar(Lie::Gone), &[path], &asked, &no).unwrap();
    assert_eq!(honest.len(), 1);
    assert!(matches!(&honest[0], UnixAttempt::Gone { target } if target.inode == 7));
}

#[test]
fn a_connection_the_kernel_still_lists_is_never_called_ended() {
    let no = AtomicBool::new(false);
    // Also handed a connection to a port not asked for: it is not asked to be ended.
    let listed = [conn(5432, 40000, 7), conn(22, 50000, 8)];
    for lie in [Lie::EndedButListed, Lie::GoneButListed] {
        let host = liar(lie);
        let t = terminate(&host, &[5432], &listed, &no).unwrap();
        assert_eq!(t.outcomes.len(), 1, "only the connection to port 5432");
        match &t.outcomes[0].result {
            Ended::Remained { why } => assert!(
                why.contains("still listed") || why.contains("yet its kernel lists it"),
                "{why}"
            ),
            other => panic!("called {other:?}"),
        }
        let asked = host.asked.lock().unwrap();
        let [Request::EndConnections { ports, targets }] = &asked[..] else {
            panic!("{asked:?}")
        };
        assert_eq!(ports, &[5432]);
        assert_eq!(targets, &[Target::of(&listed[0])]);
    }
}

#[test]
fn a_connection_gone_before_it_was_ended_left_by_itself() {
    let no = AtomicBool::new(false);
    let t = terminate(&liar(Lie::Gone), &[5432], &[conn(5432, 40000, 7)], &no).unwrap();
    assert_eq!(t.outcomes[0].result, Ended::Left);
    assert!(t.listing.connections.is_empty());
}

#[test]
fn nothing_is_asked_without_ports_or_targets() {
    let no = AtomicBool::new(false);
    let host = liar(Lie::EndedButListed);
    let t = terminate(&host, &[], &[conn(5432, 40000, 7)], &no).unwrap();
    assert!(t.outcomes.is_empty());
    assert!(host.asked.lock().unwrap().is_empty());
}

/// On this machine, the host side ends nothing that is not exactly a target: a target naming a
/// real connection's addresses with another inode, or to a port not asked for, is left alone.
#[test]
fn the_host_ends_only_a_socket_that_is_exactly_a_target() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_served, _) = listener.accept().unwrap();
    let port = listener.local_addr().unwrap().port();
    let listing = rehost_host::conns::established(&[port], 10).unwrap();
    assert_eq!(listing.connections.len(), 1, "{listing:?}");
    let real = Target::of(&listing.connections[0]);
    let wrong_inode = Target {
        inode: real.inode + 1,
        ..real.clone()
    };
    let a = rehost_host::conns::end::end_here(&[port], std::slice::from_ref(&wrong_inode)).unwrap();
    assert_eq!(
        a,
        vec![Attempt::Gone {
            target: wrong_inode
        }]
    );
    let a = rehost_host::conns::end::end_here(&[port + 1], std::slice::from_ref(&real)).unwrap();
    assert!(
        matches!(&a[..], [Attempt::Failed { why, .. }] if why.contains("was not asked for")),
        "{a:?}"
    );
    let still = rehost_host::conns::established(&[port], 10).unwrap();
    assert_eq!(still.connections.len(), 1, "nothing was ended: {still:?}");
    client
        .set_nonblocking(true)
        .expect("a client that can be polled");
    let mut buf = [0u8; 1];
    assert_eq!(
        client.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the client's connection is untouched"
    );
}
